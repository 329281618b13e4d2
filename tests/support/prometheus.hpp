#pragma once
/// A strict parser of the Prometheus text exposition format (version 0.0.4) for tests: it throws
/// std::runtime_error, naming the line, on anything a Prometheus server would reject or that the
/// format forbids — bad metric or label names, bad escapes, invalid UTF-8, a sample before its
/// # TYPE, a family split in two, duplicate series, histogram buckets out of order or decreasing,
/// a missing +Inf bucket or one that differs from _count.

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace deferq::test {

struct prometheus_sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value;
};

struct prometheus_exposition {
    std::map<std::string, std::string> types; ///< family → counter, gauge, histogram, …
    std::map<std::string, std::string> helps; ///< family → help text
    std::vector<prometheus_sample> samples;

    /// The value of the series with exactly these labels; empty when absent.
    std::optional<double> value(const std::string& name,
                                const std::map<std::string, std::string>& labels = {}) const;
};

prometheus_exposition parse_prometheus(const std::string& text);

} // namespace deferq::test
