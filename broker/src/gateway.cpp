#include "gateway.hpp"

#include "rpc_codec.hpp"

#include "deferq/log.hpp"

#include <spdlog/spdlog.h>

#include <optional>
#include <variant>
#include <vector>

namespace deferq {
namespace {

/// What one call ended with: the msgpack result, or a failure.
using outcome = std::variant<msgpack_value, Failure>;

bool equal_in_constant_time(std::string_view a, std::string_view b) {
    unsigned char difference = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i)
        difference |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
    return difference == 0;
}

nlohmann::json failure_data(const Failure& failure) {
    return {{"code", std::string(to_string(failure.code()))},
            {"type", failure.type()},
            {"worker", failure.worker()},
            {"attempts", failure.attempts()}};
}

} // namespace

gateway::gateway(zmq::context_t& context, std::string broker_endpoint, gateway_options options)
    : _options(std::move(options)),
      _client(std::make_unique<Client>(context, client_options{.broker = broker_endpoint})) {}

gateway::~gateway() = default;

void gateway::add_routes(http_server& server) {
    server.post("/rpc", [this](const http_request& request, http_response& response) {
        serve(request, response, [&] { json_rpc(request, response); });
    });
    server.post("/RPC2", [this](const http_request& request, http_response& response) {
        serve(request, response, [&] { xml_rpc(request, response); });
    });
}

template <typename Serve>
void gateway::serve(const http_request& request, http_response& response, Serve&& serve_it) {
    if (!authorized(request, response) || !admitted(response)) return;
    struct place {
        std::atomic<std::size_t>& in_progress;
        ~place() { in_progress.fetch_sub(1, std::memory_order_relaxed); }
    } held{_in_progress};
    serve_it();
}

bool gateway::admitted(http_response& response) {
    if (_in_progress.fetch_add(1, std::memory_order_relaxed) < _options.max_in_progress)
        return true;
    _in_progress.fetch_sub(1, std::memory_order_relaxed);
    auto busy = _counters.busy.fetch_add(1, std::memory_order_relaxed) + 1;
    if (busy == 1 || busy % 1000 == 0)
        log().warn("gateway: {} requests in progress, the most it serves at once: answered 503 "
                   "({} so far)",
                   _options.max_in_progress, busy);
    response.status = 503;
    response.headers.emplace_back("Retry-After", "1");
    response.body = "503 busy: the gateway serves " + std::to_string(_options.max_in_progress) +
                    " requests at once; retry (docs/interop.md)\n";
    return false;
}

bool gateway::authorized(const http_request& request, http_response& response) {
    _counters.requests.fetch_add(1, std::memory_order_relaxed);
    if (_options.token.empty()) return true;
    auto header = request.header("Authorization");
    std::string presented;
    if (header.starts_with("Bearer ")) {
        presented = header.substr(7);
    } else if (header.starts_with("Basic ")) {
        if (auto decoded = rpc::base64_decode(header.substr(6)))
            if (auto colon = decoded->find(':'); colon != std::string::npos)
                presented = decoded->substr(colon + 1);
    }
    if (!presented.empty() && equal_in_constant_time(presented, _options.token)) return true;
    auto refused = _counters.unauthorized.fetch_add(1, std::memory_order_relaxed) + 1;
    log().warn("gateway: refused {} {} from {}: {} ({} refused so far)", request.method,
               request.path, request.remote_address,
               header.empty() ? "no Authorization header" : "wrong token", refused);
    response.status = 401;
    response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"deferq\"");
    response.body = "401 unauthorized: give the gateway token (docs/interop.md)\n";
    return false;
}

// ---- JSON-RPC 2.0
// ---------------------------------------------------------------------------------

void gateway::json_rpc(const http_request& request, http_response& response) {
    response.content_type = "application/json";
    auto parsed = rpc::parse_json_request(request.body);
    if (!parsed.error && parsed.calls.size() > _options.max_batch)
        parsed.error =
            rpc::json_error(nullptr, rpc::invalid_request_code,
                            "a batch of " + std::to_string(parsed.calls.size()) +
                                " calls (at most " + std::to_string(_options.max_batch) + ")");
    if (parsed.error) {
        _counters.refused.fetch_add(1, std::memory_order_relaxed);
        response.body = parsed.error->dump();
        return;
    }
    // Every call goes out at once; then each is awaited in turn.
    std::vector<std::optional<Deferred<msgpack_value>>> pending(parsed.calls.size());
    for (std::size_t i = 0; i < parsed.calls.size(); ++i) {
        auto& call = parsed.calls[i];
        if (call.error) {
            _counters.refused.fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        _counters.calls.fetch_add(1, std::memory_order_relaxed);
        pending[i] = _client->call_encoded<msgpack_value>(
            {.timeout = _options.call_timeout}, call.method,
            zmq::message_t(call.arguments.data(), call.arguments.size()));
    }
    auto answers = nlohmann::json::array();
    for (std::size_t i = 0; i < parsed.calls.size(); ++i) {
        auto& call = parsed.calls[i];
        std::optional<nlohmann::json> answer;
        if (call.error) {
            answer = *call.error;
        } else {
            try {
                auto result = pending[i]->get(_options.call_timeout + std::chrono::seconds{5});
                auto handle = result.unpack();
                try {
                    answer = rpc::json_result(call.id, msgpack_json::to_json(handle.get()));
                } catch (const rpc::mapping_error& e) {
                    answer =
                        rpc::json_error(call.id, rpc::internal_error_code,
                                        std::string("the result has no JSON form: ") + e.what(),
                                        {{"code", std::string(to_string(error_code::bad_result))}});
                }
            } catch (const Failure& failure) {
                answer = rpc::json_error(call.id, rpc::json_code(failure.code()), failure.what(),
                                         failure_data(failure));
            } catch (const std::exception& e) {
                answer = rpc::json_error(call.id, rpc::internal_error_code, e.what());
            }
        }
        if (!call.notification) answers.push_back(std::move(*answer));
    }
    if (answers.empty()) { // only notifications: nothing to answer
        response.status = 204;
        response.content_type.clear();
        return;
    }
    auto& body = parsed.batch ? answers : answers.front();
    response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// ---- XML-RPC
// -------------------------------------------------------------------------------------

void gateway::xml_rpc(const http_request& request, http_response& response) {
    response.content_type = "text/xml";
    auto parsed = rpc::parse_xml_call(request.body);
    if (auto* refused = std::get_if<rpc::request_error>(&parsed)) {
        _counters.refused.fetch_add(1, std::memory_order_relaxed);
        response.body = rpc::xml_fault(refused->code, refused->message);
        return;
    }
    auto& call = std::get<rpc::xml_call>(parsed);
    _counters.calls.fetch_add(1, std::memory_order_relaxed);
    try {
        auto result = _client
                          ->call_encoded<msgpack_value>(
                              {.timeout = _options.call_timeout}, call.method,
                              zmq::message_t(call.arguments.data(), call.arguments.size()))
                          .get(_options.call_timeout + std::chrono::seconds{5});
        auto handle = result.unpack();
        try {
            response.body = rpc::xml_response(handle.get());
        } catch (const rpc::mapping_error& e) {
            response.body = rpc::xml_fault(
                static_cast<int>(error_code::bad_result),
                std::string("bad_result: the result has no XML-RPC form: ") + e.what());
        }
    } catch (const Failure& failure) {
        // faultCode: the deferq error code's wire value (docs/protocol.md §5).
        response.body = rpc::xml_fault(static_cast<int>(failure.code()), failure.what());
    } catch (const std::exception& e) {
        response.body = rpc::xml_fault(rpc::internal_error_code, e.what());
    }
}

} // namespace deferq
