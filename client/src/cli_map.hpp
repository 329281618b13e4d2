#pragma once
/// `deferq map FUNCTION`: one call per input — JSON argument arrays read from a file or stdin, or
/// numbers from a range — at most N in flight, results written as JSON lines in input order, a
/// progress bar on stderr, a summary of failures by code. docs/operations.md shows it.

#include "deferq/client.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace deferq::cli {

struct map_options {
    std::string function;
    /// One JSON array of arguments per line ("-": stdin). Blank lines are skipped.
    std::string input;
    /// "A:B" or "A:B:STEP": calls for i = A, A+STEP, … while i < B.
    std::string range;
    /// Fixed arguments for --range: i takes the place of a "{}" word, else it comes first.
    std::vector<std::string> words;
    bool words_as_json = false;
    std::string output = "-";
    std::size_t in_flight = 100;
    std::chrono::milliseconds timeout{0};
    /// Progress on stderr: a bar on a terminal, a line every few seconds otherwise; off with quiet.
    bool quiet = false;
};

/// Returns the exit code: 0 when every call succeeded, 1 when any failed, 2 for bad usage
/// (unreadable input, bad range), 130 when interrupted.
int run_map(Client& client, const map_options& options);

/// Parses "A:B" or "A:B:STEP" (STEP > 0). Empty on a malformed range.
struct int_range {
    std::int64_t first, last_exclusive, step;
};
std::optional<int_range> parse_range(std::string_view text);

} // namespace deferq::cli
