#pragma once
/// Logging. Every deferq library logs through one spdlog logger named "deferq", which writes to
/// stderr (never stdout: that belongs to the user's program). Programs call setup_logging once;
/// library users may reconfigure it with spdlog::get("deferq").

#include <spdlog/logger.h>

#include <string_view>

namespace deferq {

/// The "deferq" logger (created on first use, registered with spdlog, writes to stderr).
spdlog::logger& log();

/// Sets the logger's level ("trace", "debug", "info", "warn", "error", "off") and format ("text",
/// or "json": one JSON object per line for log collectors). Throws std::invalid_argument.
void setup_logging(std::string_view level, std::string_view format = "text");

} // namespace deferq
