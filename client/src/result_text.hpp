#pragma once
/// How `deferq call` prints a result it does not know the type of (client/src/cli.cpp).

#include <string>
#include <string_view>

namespace deferq::cli {

/// The result as JSON when its msgpack maps to JSON, else in msgpack's own notation (binary,
/// extensions, non-string keys, strings that are not UTF-8). Throws deferq::Failure (bad_result)
/// when the bytes are not one msgpack value within the decoder's limits (codec::unpack): a worker
/// may answer anything.
std::string result_text(std::string_view msgpack_bytes);

} // namespace deferq::cli
