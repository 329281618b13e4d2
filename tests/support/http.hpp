#pragma once
/// Plain HTTP requests to a broker's --http endpoint from integration tests, bounded in time.

#include <string>

namespace deferq::test {

struct http_reply {
    int status = 0; ///< 0 when the request failed (no connection, timeout): `body` says why
    std::string body, content_type;
};

/// GET http://ENDPOINT/PATH (ENDPOINT is "HOST:PORT"): 5 s to connect, 10 s to read.
http_reply http_get(const std::string& endpoint, const std::string& path);

/// POST a body to http://ENDPOINT/PATH, with an Authorization header when one is given: 5 s to
/// connect, 60 s to read (gateway calls wait for their jobs).
http_reply http_post(const std::string& endpoint, const std::string& path, const std::string& body,
                     const std::string& content_type, const std::string& authorization = "");

} // namespace deferq::test
