# Writes a C++ header that holds a text file as a std::string_view (cmake -P, at build time).
#   cmake -DINPUT=page.html -DOUTPUT=page.hpp -DNAME=page_html -P embed_text.cmake
file(READ "${INPUT}" content)
set(delimiter "deferq_embed")
string(FIND "${content}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )${delimiter}\"")
endif()
get_filename_component(input_name "${INPUT}" NAME)
file(WRITE "${OUTPUT}.tmp" "// Generated from ${input_name} by cmake/embed_text.cmake at build time. Do not edit.
#pragma once
#include <string_view>
namespace deferq {
inline constexpr std::string_view ${NAME} = R\"${delimiter}(${content})${delimiter}\";
} // namespace deferq
")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
