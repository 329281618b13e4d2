#pragma once
/// A per-function job queue: ordered by priority (higher first), then arrival. Holds job ids only.
/// Removal is lazy: a cancelled or expired job stays in the queue as a stale id that the next pop
/// skips, so that cancelling is O(1); compact() drops stale ids when they pile up.

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <vector>

namespace deferq::broker_detail {

class job_queue {
public:
    using is_live_fn = std::function<bool(std::uint64_t)>;

    void push_back(std::uint8_t priority, std::uint64_t job_id) {
        level_of(priority).push_back(job_id);
        ++_entries;
    }
    void push_front(std::uint8_t priority, std::uint64_t job_id) {
        level_of(priority).push_front(job_id);
        ++_entries;
    }

    /// The first live job (highest priority, oldest), dropping stale ids met on the way.
    template <typename IsLive> std::optional<std::uint64_t> front(IsLive&& is_live) {
        for (auto& level : _levels) {
            while (!level.ids.empty()) {
                if (is_live(level.ids.front())) return level.ids.front();
                level.ids.pop_front();
                --_entries;
            }
        }
        return std::nullopt;
    }

    /// Calls `visit(id)` with the first live id of each priority level, highest first, dropping
    /// stale ids met on the way (for the age of the oldest queued job).
    template <typename IsLive, typename Visit>
    void for_each_level_front(IsLive&& is_live, Visit&& visit) {
        for (auto& level : _levels) {
            while (!level.ids.empty() && !is_live(level.ids.front())) {
                level.ids.pop_front();
                --_entries;
            }
            if (!level.ids.empty()) visit(level.ids.front());
        }
    }

    /// Takes out, level by level, the live ids at the front for which `take(id)` is true (stops at
    /// the first it is false for), dropping stale ids met on the way; calls `taken(id)` for each.
    template <typename IsLive, typename Take, typename Taken>
    void take_fronts_while(IsLive&& is_live, Take&& take, Taken&& taken) {
        for (auto& level : _levels) {
            while (!level.ids.empty()) {
                auto id = level.ids.front();
                bool live = is_live(id);
                if (live && !take(id)) break;
                level.ids.pop_front();
                --_entries;
                if (live) taken(id);
            }
        }
    }

    /// Removes the first id (call after front() returned it).
    void pop_front() {
        for (auto& level : _levels)
            if (!level.ids.empty()) {
                level.ids.pop_front();
                --_entries;
                return;
            }
    }

    /// The priority of the first entry (after front()).
    std::uint8_t front_priority() const {
        for (const auto& level : _levels)
            if (!level.ids.empty()) return level.priority;
        return 0;
    }

    /// Entries including stale ones.
    std::size_t entries() const { return _entries; }

    template <typename IsLive> void compact(IsLive&& is_live) {
        _entries = 0;
        for (auto& level : _levels) {
            std::deque<std::uint64_t> kept;
            for (auto id : level.ids)
                if (is_live(id)) kept.push_back(id);
            level.ids.swap(kept);
            _entries += level.ids.size();
        }
    }

private:
    struct level {
        std::uint8_t priority;
        std::deque<std::uint64_t> ids;
    };

    std::deque<std::uint64_t>& level_of(std::uint8_t priority) {
        auto it = _levels.begin();
        while (it != _levels.end() && it->priority > priority)
            ++it;
        if (it == _levels.end() || it->priority != priority)
            it = _levels.insert(it, level{priority, {}});
        return it->ids;
    }

    std::vector<level> _levels; // few levels, sorted by priority, highest first
    std::size_t _entries = 0;
};

} // namespace deferq::broker_detail
