#include "http.hpp"

#include <httplib.h>

namespace deferq::test {
namespace {

httplib::Client client_of(const std::string& endpoint) {
    auto colon = endpoint.rfind(':');
    httplib::Client client(endpoint.substr(0, colon), std::stoi(endpoint.substr(colon + 1)));
    client.set_connection_timeout(5, 0);
    return client;
}

http_reply reply_of(const httplib::Result& result) {
    if (!result) return {0, httplib::to_string(result.error()), {}};
    return {result->status, result->body, result->get_header_value("Content-Type")};
}

} // namespace

http_reply http_get(const std::string& endpoint, const std::string& path) {
    auto client = client_of(endpoint);
    client.set_read_timeout(10, 0);
    return reply_of(client.Get(path.c_str()));
}

http_reply http_post(const std::string& endpoint, const std::string& path, const std::string& body,
                     const std::string& content_type, const std::string& authorization) {
    auto client = client_of(endpoint);
    client.set_read_timeout(60, 0);
    httplib::Headers headers;
    if (!authorization.empty()) headers.emplace("Authorization", authorization);
    return reply_of(client.Post(path, headers, body, content_type));
}

} // namespace deferq::test
