#pragma once
/// How `deferq call` and `deferq map` show a result they do not know the type of: as JSON, by the
/// rules every JSON view of deferq shares (deferq::msgpack_json, docs/interop.md "JSON and
/// msgpack").

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace deferq::cli {

/// The result as JSON. Throws deferq::Failure (bad_result) when the bytes are not one msgpack
/// value within the decoder's limits (codec::unpack: a worker may answer anything), or when the
/// value has no JSON form (NaN or infinity, binary data, an extension, a map key that is not a
/// string or comes twice, a string that is not UTF-8, deep nesting): the message names the value
/// and where it is, e.g. "the result has no JSON form: inf at $: JSON has no infinity or NaN".
nlohmann::json result_json(std::string_view msgpack_bytes);

/// result_json() as compact JSON text.
std::string result_text(std::string_view msgpack_bytes);

} // namespace deferq::cli
