// The mailbox between a loop's thread and the threads that feed it: who is woken, and when.

#include "deferq/mailbox.hpp"

#include <catch2/catch.hpp>

#include <poll.h>

#include <deque>

namespace {

bool readable(int fd) {
    pollfd item{fd, POLLIN, 0};
    return ::poll(&item, 1, 0) == 1 && (item.revents & POLLIN);
}

} // namespace

TEST_CASE("a push wakes the consumer unless a wake-up is pending; a quiet push never does",
          "[mailbox]") {
    deferq::mailbox<int> box;
    std::deque<int> out;
    CHECK_FALSE(readable(box.fd()));
    box.push_quiet(1);
    box.push_quiet(2);
    CHECK_FALSE(readable(box.fd()));
    CHECK_FALSE(box.empty());
    box.push(3); // behind quiet items only: it wakes the consumer
    CHECK(readable(box.fd()));
    box.take_all(out);
    CHECK_FALSE(readable(box.fd()));
    out.clear();
    box.push_quiet(1);
    box.push_quiet(2);
    box.push_quiet(3);
    box.take_queued(out);
    CHECK(out == std::deque<int>{1, 2, 3});
    CHECK(box.empty());

    box.push(4); // no wake-up pending: wakes
    CHECK(readable(box.fd()));
    box.push_quiet(5);
    box.take_queued(out); // takes both, leaves the wake-up for the loop's next turn
    CHECK(out == std::deque<int>{1, 2, 3, 4, 5});
    CHECK(readable(box.fd()));
    box.take_all(out); // nothing more, and the wake-up is spent
    CHECK(out.size() == 5);
    CHECK_FALSE(readable(box.fd()));
}
