#include "result_text.hpp"

#include "deferq/codec.hpp"
#include "deferq/failure.hpp"

#include <nlohmann/json.hpp>

#include <sstream>

namespace deferq::cli {

std::string result_text(std::string_view msgpack_bytes) {
    // Checked with our own decoder first: it bounds nesting and sizes, which nlohmann's reader
    // (recursive) does not.
    msgpack::object_handle handle;
    try {
        handle = codec::unpack(msgpack_bytes.data(), msgpack_bytes.size());
    } catch (const codec::decode_failure& e) {
        throw Failure(error_code::bad_result,
                      std::string("the result is not msgpack: ") + e.what());
    }
    try {
        return nlohmann::json::from_msgpack(msgpack_bytes).dump();
    } catch (const std::exception&) {
        // Not representable as JSON: msgpack's own rendering.
        std::ostringstream out;
        out << handle.get();
        return out.str();
    }
}

} // namespace deferq::cli
