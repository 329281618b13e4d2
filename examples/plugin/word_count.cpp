// A deferq worker plugin (docs/plugins.md): functions in a shared library that deferq-worker loads
// with --plugin, no rebuild of deferq needed.
//
//     deferq-worker --broker tcp://127.0.0.1:5556 --plugin ./libdeferq_word_count.so
//     deferq --broker tcp://127.0.0.1:5555 call word_count "the quick brown fox"    # 4
//     deferq --broker tcp://127.0.0.1:5555 call multiply 6 7                        # 42

#include <deferq/plugin.hpp>

#include <cctype>
#include <cstdint>
#include <map>
#include <string>

namespace {

std::int64_t count_words(const std::string& text) {
    std::int64_t words = 0;
    bool in_word = false;
    for (unsigned char c : text) {
        bool letter = !std::isspace(c);
        if (letter && !in_word) ++words;
        in_word = letter;
    }
    return words;
}

} // namespace

extern "C" std::uint32_t deferq_plugin_abi_version() {
    return deferq::plugin_abi_version;
}

extern "C" void deferq_register(deferq::Worker& worker) {
    worker.define("word_count", [](const std::string& text) { return count_words(text); });
    worker.define("multiply", [](double a, double b) { return a * b; });
    // How often each word occurs: a msgpack map back to the caller.
    worker.define("word_frequencies", [](const std::string& text) {
        std::map<std::string, std::int64_t> counts;
        std::string word;
        for (unsigned char c : text + " ") {
            if (std::isspace(c)) {
                if (!word.empty()) ++counts[word];
                word.clear();
            } else {
                word += static_cast<char>(std::tolower(c));
            }
        }
        return counts;
    });
}
