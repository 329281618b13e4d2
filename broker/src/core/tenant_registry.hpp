#pragma once
/// The tenants the broker knows, by key, and who refers to them: a tenant lives while a client or
/// a job of it does (docs/protocol.md §5, Fair share). Owned by the broker loop.

#include "records.hpp"

#include <memory>
#include <string_view>

namespace deferq::broker_detail {

class tenant_registry {
public:
    /// The tenant of that key (added when new), with one more user.
    tenant_record& hold(std::string_view key);
    /// One more user of a tenant already held.
    static void hold(tenant_record& tenant) { ++tenant.users; }
    /// One user fewer; the tenant is forgotten when it has none.
    void release(tenant_record& tenant);

    tenant_record* find(std::string_view key);
    std::size_t size() const { return _tenants.size(); }
    const string_map<std::unique_ptr<tenant_record>>& all() const { return _tenants; }

private:
    string_map<std::unique_ptr<tenant_record>> _tenants;
};

} // namespace deferq::broker_detail
