#include "open_file_limit.hpp"

#include "deferq/log.hpp"

#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <cerrno>
#include <cstring>

namespace deferq {

open_file_limit raise_open_file_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        log().warn("cannot read the open-file limit: {}", std::strerror(errno));
        return {};
    }
    open_file_limit result{limit.rlim_cur, limit.rlim_cur, limit.rlim_max};
    if (limit.rlim_cur < limit.rlim_max) {
        auto wanted = limit;
        wanted.rlim_cur = limit.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &wanted) == 0)
            result.now = wanted.rlim_cur;
        else
            log().warn("cannot raise the open-file limit from {} to {}: {}", limit.rlim_cur,
                       limit.rlim_max, std::strerror(errno));
    }
    auto peers =
        result.now > reserved_file_descriptors ? result.now - reserved_file_descriptors : 0;
    auto level = peers < 1000 ? spdlog::level::warn : spdlog::level::info;
    if (result.now != result.before)
        log().log(level,
                  "open files: up to {} (raised from {}): room for about {} clients and "
                  "workers",
                  result.now, result.before, peers);
    else
        log().log(level,
                  "open files: up to {} (the hard limit): room for about {} clients and "
                  "workers{}",
                  result.now, peers,
                  peers < 1000 ? "; raise it (ulimit -n, docker --ulimit nofile) for more" : "");
    return result;
}

} // namespace deferq
