#pragma once
/// Deadlines that go when their call ends: a min-heap of items by deadline in which each item
/// records its own position (an intrusive hook), so that removing any item costs O(log n) and
/// nothing is allocated per entry. Memory follows the live items, not items/s × timeout.
///
/// Used by the broker (a job's deadline) and the client (a call's deadline). Owned by one thread.

#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace deferq {

/// What an item keeps for its place in a deadline_heap. Default: not scheduled.
struct deadline_hook {
    std::chrono::steady_clock::time_point when{};
    std::uint32_t slot = unlinked;

    static constexpr std::uint32_t unlinked = UINT32_MAX;
    /// True while the item is in a heap (its deadline is armed).
    bool linked() const noexcept { return slot != unlinked; }
};

/// A heap of `Item`s (held by pointer: they must not move while scheduled) ordered by the
/// deadline in their `Hook` member.
template <typename Item, deadline_hook Item::*Hook> class deadline_heap {
public:
    using time_point = std::chrono::steady_clock::time_point;

    /// Arms `item`'s deadline at `when`, or moves it there when it is armed already.
    void schedule(Item& item, time_point when) {
        auto& hook = item.*Hook;
        hook.when = when;
        if (!hook.linked()) {
            hook.slot = static_cast<std::uint32_t>(_items.size());
            _items.push_back(&item);
            sift_up(hook.slot);
            return;
        }
        sift_up(hook.slot);
        sift_down((item.*Hook).slot);
    }

    /// Disarms `item`'s deadline; nothing when it is not armed.
    void cancel(Item& item) {
        auto& hook = item.*Hook;
        if (!hook.linked()) return;
        auto slot = hook.slot;
        hook.slot = deadline_hook::unlinked;
        auto* last = _items.back();
        _items.pop_back();
        if (last == &item) return;
        place(slot, last);
        sift_up(slot);
        sift_down((last->*Hook).slot);
    }

    /// The earliest deadline, if any item is armed.
    std::optional<time_point> next() const {
        if (_items.empty()) return std::nullopt;
        return (_items.front()->*Hook).when;
    }

    /// Disarms and returns the item with the earliest deadline when that deadline is at or before
    /// `now`; null when none is due.
    Item* pop_due(time_point now) {
        if (_items.empty() || (_items.front()->*Hook).when > now) return nullptr;
        auto* item = _items.front();
        cancel(*item);
        return item;
    }

    std::size_t size() const noexcept { return _items.size(); }
    bool empty() const noexcept { return _items.empty(); }
    /// Bytes the heap's own storage holds (for memory accounting).
    std::size_t capacity_bytes() const noexcept { return _items.capacity() * sizeof(Item*); }
    /// Gives back storage beyond what the armed items need (after a burst).
    void shrink() {
        if (_items.capacity() > 2 * _items.size() + 64) _items.shrink_to_fit();
    }

private:
    time_point when(std::size_t slot) const { return (_items[slot]->*Hook).when; }

    void place(std::size_t slot, Item* item) {
        _items[slot] = item;
        (item->*Hook).slot = static_cast<std::uint32_t>(slot);
    }

    void sift_up(std::size_t slot) {
        auto* item = _items[slot];
        while (slot > 0) {
            auto parent = (slot - 1) / 2;
            if (!((item->*Hook).when < when(parent))) break;
            place(slot, _items[parent]);
            slot = parent;
        }
        place(slot, item);
    }

    void sift_down(std::size_t slot) {
        auto* item = _items[slot];
        auto count = _items.size();
        while (true) {
            auto child = 2 * slot + 1;
            if (child >= count) break;
            if (child + 1 < count && when(child + 1) < when(child)) ++child;
            if (!(when(child) < (item->*Hook).when)) break;
            place(slot, _items[child]);
            slot = child;
        }
        place(slot, item);
    }

    std::vector<Item*> _items;
};

} // namespace deferq
