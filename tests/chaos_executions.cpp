// deferq-chaos's execution counter (tests/chaos_executions.hpp has the rule).

#include "chaos_executions.hpp"

#include "chaos_brokers.hpp"
#include "process.hpp"

#include <sstream>

namespace deferq::chaos {

void worker_faults::killed(const std::string& worker, time_point at) {
    _faults[worker].emplace_back(at, time_point::max());
}

void worker_faults::frozen(const std::string& worker, time_point from) {
    _faults[worker].emplace_back(from, time_point::max());
}

void worker_faults::thawed(const std::string& worker, time_point at) {
    auto found = _faults.find(worker);
    if (found == _faults.end() || found->second.empty()) return;
    if (found->second.back().second == time_point::max()) found->second.back().second = at;
}

bool worker_faults::hit(const std::string& worker, time_point from, time_point to) const {
    auto found = _faults.find(worker);
    if (found == _faults.end()) return false;
    for (auto& [begin, end] : found->second)
        if (begin <= to && end >= from) return true;
    return false;
}

std::string execution_tally::summary() const {
    std::ostringstream out;
    out << "counted calls " << calls << ", runs " << runs << " of " << keys_run
        << " keys, run more than once " << more_than_once << " (explained by a worker fault "
        << explained << "), answered but never run " << answered_never_ran;
    return out.str();
}

std::string exec_log_path(const std::string& log_dir, const std::string& worker) {
    return log_dir + "/exec-" + worker + ".log";
}

execution_tally tally_executions(const std::string& log_dir,
                                 const std::vector<std::string>& workers,
                                 const std::vector<counted_call>& calls,
                                 const worker_faults& faults) {
    execution_tally tally;
    std::map<std::string, std::vector<std::string>> ran_on; // key → a worker per run
    for (auto& worker : workers) {
        std::istringstream lines(test::read_file(exec_log_path(log_dir, worker)));
        for (std::string line; std::getline(lines, line);)
            if (!line.empty()) {
                ran_on[line].push_back(worker);
                ++tally.runs;
            }
    }
    tally.calls = calls.size();
    tally.keys_run = ran_on.size();
    for (auto& call : calls) {
        auto found = ran_on.find(call.key);
        if (found == ran_on.end()) {
            if (call.answered) {
                ++tally.answered_never_ran;
                if (tally.examples.size() < 10)
                    tally.examples.push_back(call.key + ": answered, but no worker logged a run");
            }
            continue;
        }
        auto& runs = found->second;
        if (runs.size() < 2) continue;
        ++tally.more_than_once;
        bool explained = false;
        for (auto& worker : runs)
            explained = explained || faults.hit(worker, call.started, call.ended);
        std::string where;
        for (auto& worker : runs)
            where += (where.empty() ? "" : ", ") + worker;
        if (explained) {
            ++tally.explained;
        } else {
            ++tally.executed_twice;
            if (tally.examples.size() < 10)
                tally.examples.push_back(call.key + ": ran " + std::to_string(runs.size()) +
                                         " times (on " + where +
                                         "), none of them killed or frozen during the call (" +
                                         wall_clock(call.started) + " to " +
                                         (call.ended == call.ended.max() ? std::string("the end")
                                                                         : wall_clock(call.ended)) +
                                         ")");
        }
    }
    return tally;
}

} // namespace deferq::chaos
