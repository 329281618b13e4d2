#pragma once
/// TCP ports on 127.0.0.1 for the brokers the tests start and restart.
///
/// A port the kernel hands out for port 0 lies in its ephemeral range, the range it also takes a
/// connecting socket's own port from. A broker restarted on such a port can find it taken: while
/// the broker is down, its workers and clients keep connecting to the port, and one of those
/// connections may be given that very port as its own end and connect to itself (TCP's
/// simultaneous open), holding it for good. So the ports here lie outside the ephemeral range, and
/// a lock file per port (under /tmp/deferq-test-ports, held while the process lives) keeps two
/// test processes running at once from taking the same one.

namespace deferq::test {

/// A TCP port on 127.0.0.1 that is free now, outside the kernel's ephemeral range, and that no
/// other live process has taken through this function. Throws if none is found.
int free_port();

} // namespace deferq::test
