#pragma once
/// For the fuzz targets: the "deferq" logger stays quiet below error level, and an error-level line
/// aborts the run. In the code under test such a line means a handler threw where it should have
/// returned a decode error (the broker's loop catches and logs it), which the fuzzer must report.

#include "deferq/log.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>

namespace deferq::fuzz {

class trap_sink : public spdlog::sinks::base_sink<std::mutex> {
protected:
    void sink_it_(const spdlog::details::log_msg& message) override {
        if (message.level < spdlog::level::err) return;
        std::fprintf(stderr, "deferq logged at error level under fuzzing: %.*s\n",
                     static_cast<int>(message.payload.size()), message.payload.data());
        std::abort();
    }
    void flush_() override {}
};

/// Installs the trap as the logger's only sink. With DEFERQ_FUZZ_LOG=LEVEL (debug, info…) the
/// log is also written to stderr from that level on, to see what an input does.
inline void trap_errors_in_log() {
    auto& logger = deferq::log();
    logger.sinks().clear();
    logger.set_level(spdlog::level::err);
    if (const char* level = std::getenv("DEFERQ_FUZZ_LOG")) {
        logger.sinks().push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
        logger.set_level(spdlog::level::from_str(level));
    }
    logger.sinks().push_back(std::make_shared<trap_sink>());
}

} // namespace deferq::fuzz
