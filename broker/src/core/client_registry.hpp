#pragma once
/// The clients the broker knows, by routing id, and the calls each has pending (correlation id →
/// job id): the table that makes a repeated request a duplicate instead of a second job. The rules
/// for what happens to a forgotten client's calls are broker_core's. Owned by the broker loop.

#include "records.hpp"

#include "deferq/broker_counters.hpp"

#include <memory>
#include <optional>
#include <string_view>

namespace deferq::broker_detail {

class client_registry {
public:
    explicit client_registry(broker_counters& counters) : _counters(counters) {}

    client_record* find(std::string_view routing_id);

    /// The client of that routing id, seen at `now`; added when new (`added` says so).
    client_record& touch(std::string_view routing_id, const peer_dialect& dialect, time_point now,
                         bool& added);

    /// Forgets a client. Its pending calls are the caller's to abandon first.
    void remove(client_record& client);

    /// The job of a pending call, if the client has one under that correlation id.
    static std::optional<std::uint64_t> pending_job(const client_record& client,
                                                    std::uint64_t correlation_id);
    static void add_pending(client_record& client, std::uint64_t correlation_id,
                            std::uint64_t job_id) {
        client.pending.emplace(correlation_id, job_id);
    }
    /// The call ended (answered, failed, cancelled): a new request with that id is a new call.
    static void end_pending(client_record& client, std::uint64_t correlation_id) {
        client.pending.erase(correlation_id);
    }

    std::size_t size() const { return _clients.size(); }
    const string_map<std::unique_ptr<client_record>>& all() const { return _clients; }

private:
    broker_counters& _counters;
    string_map<std::unique_ptr<client_record>> _clients;
};

} // namespace deferq::broker_detail
