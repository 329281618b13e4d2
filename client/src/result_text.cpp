#include "result_text.hpp"

#include "msgpack_json.hpp"

#include "deferq/codec.hpp"
#include "deferq/failure.hpp"

namespace deferq::cli {

nlohmann::json result_json(std::string_view msgpack_bytes) {
    try {
        return msgpack_json::to_json(msgpack_bytes);
    } catch (const codec::decode_failure& e) {
        throw Failure(error_code::bad_result,
                      std::string("the result is not msgpack: ") + e.what());
    } catch (const msgpack_json::mapping_error& e) {
        throw Failure(error_code::bad_result,
                      std::string("the result has no JSON form: ") + e.what());
    }
}

std::string result_text(std::string_view msgpack_bytes) {
    return result_json(msgpack_bytes).dump();
}

} // namespace deferq::cli
