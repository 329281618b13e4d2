#pragma once
/// TCP ports on 127.0.0.1 for the brokers the tests start and restart.
///
/// A port the kernel hands out for port 0 lies in its ephemeral range. Once let go (the old
/// free_port() closed its socket at once; a killed broker lets its ports go until it is restarted)
/// it is free for the kernel to hand to anyone: another test's broker binding `tcp://127.0.0.1:*`,
/// an HTTP server on port 0, a connection's own end. A broker started or restarted on it then
/// fails with "Address already in use" for as long as that other socket lives (stop 26's CI: the
/// chaos pair's backup, 50 tries in 6 s). So the ports here lie outside the ephemeral range, where
/// the kernel never hands one out, and a lock file per port (under /tmp/deferq-test-ports, held
/// while the process lives) keeps two test processes running at once from taking the same one.

namespace deferq::test {

/// A TCP port on 127.0.0.1 that is free now, outside the kernel's ephemeral range, and that no
/// other live process has taken through this function. Throws if none is found.
int free_port();

} // namespace deferq::test
