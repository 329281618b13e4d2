#include "client_registry.hpp"

namespace deferq::broker_detail {

client_record* client_registry::find(std::string_view routing_id) {
    auto it = _clients.find(routing_id);
    return it == _clients.end() ? nullptr : it->second.get();
}

client_record& client_registry::touch(std::string_view routing_id, const peer_dialect& dialect,
                                      time_point now, bool& added) {
    auto it = _clients.find(routing_id);
    added = it == _clients.end();
    if (added) {
        auto record = std::make_unique<client_record>();
        record->routing_id = std::string(routing_id);
        record->dialect = &dialect;
        it = _clients.emplace(record->routing_id, std::move(record)).first;
        set_gauge(_counters.live_clients, _clients.size());
    }
    it->second->last_seen = now;
    return *it->second;
}

void client_registry::remove(client_record& client) {
    _clients.erase(client.routing_id);
    set_gauge(_counters.live_clients, _clients.size());
}

std::optional<std::uint64_t> client_registry::pending_job(const client_record& client,
                                                          std::uint64_t correlation_id) {
    auto it = client.pending.find(correlation_id);
    if (it == client.pending.end()) return std::nullopt;
    return it->second;
}

} // namespace deferq::broker_detail
