#include "deferq/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <stdexcept>
#include <string>

namespace deferq {
namespace {

/// The `%*` flag of the JSON pattern: the message as the inside of a JSON string (quotes,
/// backslashes and control characters escaped), so that a line stays one valid JSON object
/// whatever a worker name or an error message holds.
class json_escaped_message : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& message, const std::tm&,
                spdlog::memory_buf_t& out) override {
        static constexpr char hex[] = "0123456789abcdef";
        auto append = [&out](std::string_view text) {
            out.append(text.data(), text.data() + text.size());
        };
        for (char c : message.payload) {
            switch (c) {
            case '"':
                append("\\\"");
                break;
            case '\\':
                append("\\\\");
                break;
            case '\n':
                append("\\n");
                break;
            case '\r':
                append("\\r");
                break;
            case '\t':
                append("\\t");
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char escaped[] = {'\\', 'u', '0', '0', hex[(c >> 4) & 15], hex[c & 15]};
                    out.append(escaped, escaped + sizeof escaped);
                } else {
                    out.push_back(c);
                }
            }
        }
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<json_escaped_message>();
    }
};

} // namespace

spdlog::logger& log() {
    static std::shared_ptr<spdlog::logger> logger = [] {
        static std::mutex mutex;
        std::lock_guard lock(mutex);
        if (auto existing = spdlog::get("deferq")) return existing;
        auto created = spdlog::stderr_color_mt("deferq");
        created->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%P] %v");
        return created;
    }();
    return *logger;
}

void setup_logging(std::string_view level, std::string_view format) {
    auto parsed = spdlog::level::from_str(std::string(level));
    if (parsed == spdlog::level::off && level != "off")
        throw std::invalid_argument("unknown log level '" + std::string(level) + "'");
    auto& logger = log();
    logger.set_level(parsed);
    if (format == "json") {
        auto formatter = std::make_unique<spdlog::pattern_formatter>();
        formatter->add_flag<json_escaped_message>('*').set_pattern(
            R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","pid":%P,"msg":"%*"})");
        logger.set_formatter(std::move(formatter));
    } else if (format == "text")
        logger.set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%P] %v");
    else
        throw std::invalid_argument("unknown log format '" + std::string(format) + "'");
    logger.flush_on(spdlog::level::info);
}

} // namespace deferq
