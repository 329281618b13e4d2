#include "prometheus.hpp"

#include "deferq/utf8.hpp"

#include <cmath>
#include <cstdlib>
#include <regex>
#include <set>
#include <stdexcept>

namespace deferq::test {
namespace {

const std::regex metric_name_pattern("[a-zA-Z_:][a-zA-Z0-9_:]*");
const std::regex label_name_pattern("[a-zA-Z_][a-zA-Z0-9_]*");

double parse_value(const std::string& text) {
    if (text == "NaN") return std::nan("");
    if (text == "+Inf") return INFINITY;
    if (text == "-Inf") return -INFINITY;
    static const std::regex number(R"([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)");
    if (!std::regex_match(text, number)) throw std::runtime_error("bad value '" + text + "'");
    return std::strtod(text.c_str(), nullptr);
}

/// The family a sample belongs to: histogram samples carry a suffix.
std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
    if (types.count(name)) return name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        std::string s(suffix);
        if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
            auto base = name.substr(0, name.size() - s.size());
            auto it = types.find(base);
            if (it != types.end() && (it->second == "histogram" || it->second == "summary"))
                return base;
        }
    }
    return name;
}

} // namespace

std::optional<double>
prometheus_exposition::value(const std::string& name,
                             const std::map<std::string, std::string>& labels) const {
    for (const auto& sample : samples)
        if (sample.name == name && sample.labels == labels) return sample.value;
    return std::nullopt;
}

prometheus_exposition parse_prometheus(const std::string& text) {
    prometheus_exposition out;
    if (!text.empty() && text.back() != '\n')
        throw std::runtime_error("the exposition does not end with a newline");
    std::set<std::string> finished_families, series;
    std::string current_family;
    std::size_t line_number = 0, at = 0;
    auto fail = [&](const std::string& why, const std::string& line) {
        throw std::runtime_error("line " + std::to_string(line_number) + ": " + why + ": " + line);
    };
    auto enter_family = [&](const std::string& family, const std::string& line) {
        if (family == current_family) return;
        if (finished_families.count(family)) fail("family " + family + " split in two", line);
        if (!current_family.empty()) finished_families.insert(current_family);
        current_family = family;
    };
    while (at < text.size()) {
        auto end = text.find('\n', at);
        std::string line = text.substr(at, end - at);
        at = end + 1;
        ++line_number;
        if (!deferq::is_utf8(line)) fail("invalid UTF-8", line);
        if (line.empty()) fail("empty line", line);
        if (line[0] == '#') {
            std::smatch match;
            static const std::regex help(R"(# HELP (\S+) (.*))"), type(R"(# TYPE (\S+) (\S+))");
            if (std::regex_match(line, match, help)) {
                std::string name = match[1];
                if (!std::regex_match(name, metric_name_pattern)) fail("bad metric name", line);
                if (out.helps.count(name)) fail("second HELP", line);
                enter_family(name, line);
                out.helps[name] = match[2];
            } else if (std::regex_match(line, match, type)) {
                std::string name = match[1], kind = match[2];
                if (!std::regex_match(name, metric_name_pattern)) fail("bad metric name", line);
                if (out.types.count(name)) fail("second TYPE", line);
                static const std::set<std::string> kinds{"counter", "gauge", "histogram", "summary",
                                                         "untyped"};
                if (!kinds.count(kind)) fail("unknown type", line);
                enter_family(name, line);
                for (const auto& sample : out.samples)
                    if (family_of(sample.name, out.types) == name)
                        fail("TYPE after a sample of its family", line);
                out.types[name] = kind;
            } else if (line.rfind("# HELP", 0) == 0 || line.rfind("# TYPE", 0) == 0) {
                fail("malformed HELP or TYPE", line);
            }
            continue;
        }
        // name{label="value",...} value [timestamp]
        prometheus_sample sample;
        std::size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ')
            ++i;
        sample.name = line.substr(0, i);
        if (!std::regex_match(sample.name, metric_name_pattern)) fail("bad metric name", line);
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (true) {
                if (i < line.size() && line[i] == '}') {
                    ++i;
                    break;
                }
                auto equals = line.find('=', i);
                if (equals == std::string::npos) fail("label without '='", line);
                std::string label = line.substr(i, equals - i);
                if (!std::regex_match(label, label_name_pattern) || label.rfind("__", 0) == 0)
                    fail("bad label name '" + label + "'", line);
                i = equals + 1;
                if (i >= line.size() || line[i] != '"') fail("label value not quoted", line);
                ++i;
                std::string value;
                while (true) {
                    if (i >= line.size()) fail("unterminated label value", line);
                    char c = line[i++];
                    if (c == '"') break;
                    if (c == '\\') {
                        if (i >= line.size()) fail("dangling escape", line);
                        char e = line[i++];
                        if (e == 'n')
                            value += '\n';
                        else if (e == '\\' || e == '"')
                            value += e;
                        else
                            fail("bad escape", line);
                    } else {
                        value += c;
                    }
                }
                if (sample.labels.count(label)) fail("label given twice", line);
                sample.labels[label] = value;
                if (i < line.size() && line[i] == ',') {
                    ++i;
                } else if (i >= line.size() || line[i] != '}') {
                    fail("expected ',' or '}'", line);
                }
            }
        }
        if (i >= line.size() || line[i] != ' ') fail("no space before the value", line);
        auto rest = line.substr(i + 1);
        auto space = rest.find(' ');
        sample.value = parse_value(rest.substr(0, space));
        if (space != std::string::npos) {
            static const std::regex timestamp("-?\\d+");
            if (!std::regex_match(rest.substr(space + 1), timestamp)) fail("bad timestamp", line);
        }
        auto family = family_of(sample.name, out.types);
        if (!out.types.count(family)) fail("sample without a TYPE", line);
        enter_family(family, line);
        if (out.types[family] == "counter" && sample.value < 0) fail("negative counter", line);
        std::string key = sample.name;
        for (const auto& [k, v] : sample.labels)
            key += "\x1f" + k + "=" + v;
        if (!series.insert(key).second) fail("duplicate series", line);
        out.samples.push_back(std::move(sample));
    }

    // Histograms: per label set (without le), buckets in increasing le, counts not decreasing,
    // +Inf present and equal to _count, _sum present.
    for (const auto& [family, kind] : out.types) {
        if (kind != "histogram") continue;
        std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>>
            buckets;
        for (const auto& sample : out.samples) {
            if (sample.name != family + "_bucket") continue;
            auto labels = sample.labels;
            auto le = labels.find("le");
            if (le == labels.end()) throw std::runtime_error(family + "_bucket without le");
            double bound = parse_value(le->second);
            labels.erase(le);
            buckets[labels].emplace_back(bound, sample.value);
        }
        for (const auto& [labels, list] : buckets) {
            for (std::size_t k = 1; k < list.size(); ++k) {
                if (!(list[k].first > list[k - 1].first))
                    throw std::runtime_error(family + ": le not increasing");
                if (list[k].second < list[k - 1].second)
                    throw std::runtime_error(family + ": bucket counts decrease");
            }
            if (list.empty() || !std::isinf(list.back().first))
                throw std::runtime_error(family + ": no +Inf bucket");
            auto count = out.value(family + "_count", labels);
            if (!count || *count != list.back().second)
                throw std::runtime_error(family + ": +Inf bucket differs from _count");
            if (!out.value(family + "_sum", labels)) throw std::runtime_error(family + ": no _sum");
        }
        for (const auto& sample : out.samples)
            if (sample.name == family + "_count" && !buckets.count(sample.labels))
                throw std::runtime_error(family + ": _count without buckets");
    }
    return out;
}

} // namespace deferq::test
