#include "tenant_registry.hpp"

namespace deferq::broker_detail {

tenant_record& tenant_registry::hold(std::string_view key) {
    auto it = _tenants.find(key);
    if (it == _tenants.end()) {
        auto record = std::make_unique<tenant_record>();
        record->key = std::string(key);
        it = _tenants.emplace(record->key, std::move(record)).first;
    }
    ++it->second->users;
    return *it->second;
}

void tenant_registry::release(tenant_record& tenant) {
    if (--tenant.users == 0) _tenants.erase(tenant.key);
}

tenant_record* tenant_registry::find(std::string_view key) {
    auto it = _tenants.find(key);
    return it == _tenants.end() ? nullptr : it->second.get();
}

} // namespace deferq::broker_detail
