#include "job_queue.hpp"

#include "records.hpp"

namespace deferq::broker_detail {

namespace {

/// Empty priority levels kept while no more levels than this exist, and spare lines kept.
constexpr std::size_t kept_levels = 4;
constexpr std::size_t kept_spares = 8;

} // namespace

job_queue::level& job_queue::level_of(std::uint8_t priority) {
    auto it = _levels.begin();
    while (it != _levels.end() && it->priority > priority)
        ++it;
    if (it == _levels.end() || it->priority != priority) {
        it = _levels.insert(it, level{priority, {}, {}, {}});
        it->first_served = it->turns.end();
    }
    return *it;
}

job_queue::level* job_queue::find_level(std::uint8_t priority) {
    for (auto& at : _levels)
        if (at.priority == priority) return &at;
    return nullptr;
}

void job_queue::push(job& j, queue_end end) {
    auto& at = level_of(j.priority);
    auto found = at.by_tenant.find(j.tenant);
    if (found == at.by_tenant.end()) {
        // A tenant new to this priority joins the round behind the other newcomers, ahead of the
        // tenants served already; one whose job was taken back (front) was being served: first.
        auto where = end == queue_end::back ? at.first_served : at.turns.begin();
        auto which = new_line(at, where, j.tenant);
        if (_spare_entries.empty()) {
            found = at.by_tenant.emplace(j.tenant, which).first;
        } else {
            auto entry = std::move(_spare_entries.back());
            _spare_entries.pop_back();
            entry.key() = j.tenant;
            entry.mapped() = which;
            found = at.by_tenant.insert(std::move(entry)).position;
        }
    }
    auto& into = *found->second;
    j.link = {};
    if (!into.head) {
        into.head = into.tail = &j;
    } else if (end == queue_end::back) {
        j.link.prev = into.tail;
        into.tail->link.next = &j;
        into.tail = &j;
    } else {
        j.link.next = into.head;
        into.head->link.prev = &j;
        into.head = &j;
    }
    ++_size;
}

job* job_queue::front() const {
    for (const auto& at : _levels)
        for (const auto& line : at.turns)
            if (!line.tenant->paused) return line.head;
    return nullptr;
}

void job_queue::pop_front() {
    for (auto& at : _levels) {
        for (auto which = at.turns.begin(); which != at.turns.end(); ++which) {
            if (which->tenant->paused) continue; // it keeps its place in the round
            auto& j = *which->head;
            if (j.link.next) {
                // Its turn is over: to the back of the round, among the tenants served already.
                if (at.first_served == which) ++at.first_served;
                at.turns.splice(at.turns.end(), at.turns, which);
                if (at.first_served == at.turns.end()) at.first_served = which;
            }
            unlink(j, at, which);
            return;
        }
    }
}

void job_queue::remove(job& j) {
    auto* at = find_level(j.priority);
    if (!at) return;
    auto found = at->by_tenant.find(j.tenant);
    if (found == at->by_tenant.end()) return;
    unlink(j, *at, found->second);
}

void job_queue::unlink(job& j, level& at, round::iterator which) {
    auto& from = *which;
    if (j.link.prev)
        j.link.prev->link.next = j.link.next;
    else
        from.head = j.link.next;
    if (j.link.next)
        j.link.next->link.prev = j.link.prev;
    else
        from.tail = j.link.prev;
    j.link = {};
    --_size;
    if (from.head) return;
    drop_line(at, which);
    // An empty level stays for the next job of its priority, unless jobs of many priorities
    // came: then the empty ones go.
    if (at.turns.empty() && _levels.size() > kept_levels)
        _levels.remove_if([](const level& candidate) { return candidate.turns.empty(); });
}

job_queue::round::iterator job_queue::new_line(level& at, round::iterator where,
                                               tenant_record* tenant) {
    if (_spare_lines.empty()) return at.turns.insert(where, line{tenant, nullptr, nullptr});
    auto which = _spare_lines.begin();
    at.turns.splice(where, _spare_lines, which);
    *which = line{tenant, nullptr, nullptr};
    return which;
}

void job_queue::drop_line(level& at, round::iterator which) {
    auto entry = at.by_tenant.extract(which->tenant);
    if (!entry.empty() && _spare_entries.size() < kept_spares)
        _spare_entries.push_back(std::move(entry));
    if (at.first_served == which) ++at.first_served;
    if (_spare_lines.size() < kept_spares)
        _spare_lines.splice(_spare_lines.begin(), at.turns, which);
    else
        at.turns.erase(which);
}

void job_queue::for_each_line_front(const std::function<void(job&)>& visit) const {
    for (const auto& at : _levels)
        for (const auto& each : at.turns)
            visit(*each.head);
}

void job_queue::take_if(const std::function<bool(const job&)>& take,
                        const std::function<void(job&)>& taken) {
    std::vector<job*> chosen;
    for (const auto& at : _levels)
        for (const auto& each : at.turns)
            for (auto* j = each.head; j; j = j->link.next)
                if (take(*j)) chosen.push_back(j);
    for (auto* j : chosen) {
        remove(*j);
        taken(*j);
    }
}

std::size_t job_queue::lines() const {
    std::size_t count = 0;
    for (const auto& at : _levels)
        count += at.turns.size();
    return count;
}

} // namespace deferq::broker_detail
