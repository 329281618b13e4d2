# deferq: one image for every role; the command chooses (default: the broker).
#   docker run IMAGE                                       deferq-broker (clients :5555, workers :5556)
#   docker run IMAGE deferq-worker --broker tcp://HOST:5556
#   docker run IMAGE deferq --broker tcp://HOST:5555 demo
# Every option also comes from a DEFERQ_* environment variable (docker-compose.yml uses those).
# Build with the host network where the default bridge cannot reach Debian's mirror:
#   docker build --network host -t deferq .        (see docs/docker.md; no registry: .ci/docker-base-images)

# ---- build: compile and install into a staging prefix -------------------------------------------
FROM debian:bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential cmake ninja-build pkg-config \
        libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev \
        libcpp-httplib-dev libpugixml-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# -O2 as in CI's builds (GCC 12 at -O3 reports a false -Wrestrict, an error under -Werror); no debug info.
# Only the three programs (and the libraries they link) are built, not the examples or the benchmark,
# and only their parts are installed: broker/, worker/ and client/ (with shared/ as a dependency).
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
          -DDEFERQ_BUILD_TESTS=OFF \
 && cmake --build /build --target deferq-broker deferq-worker deferq \
 && for part in shared broker worker client; do cmake --install /build/$part --prefix /staging --strip; done \
 && test -x /staging/bin/deferq-broker && test -x /staging/bin/deferq-worker && test -x /staging/bin/deferq

# ---- runtime: the three programs and the shared libraries they load ------------------------------
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends libzmq5 libspdlog1.10 libfmt9 libcpp-httplib0.11 libpugixml1v5 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin deferq
COPY --from=build /staging/bin/deferq-broker /staging/bin/deferq-worker /staging/bin/deferq /usr/local/bin/
USER deferq:deferq
# 8080: the broker's HTTP endpoints (/metrics, /healthz, /status.json, /) when DEFERQ_HTTP is set.
EXPOSE 5555 5556 8080
# Healthy means: a broker answers `deferq status` on its client port (from DEFERQ_CLIENTS, else 5555);
# any other container (worker, client) is healthy while it runs. Compose overrides this per service.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD grep -qsx deferq-broker /proc/[0-9]*/comm || exit 0; \
        port="${DEFERQ_CLIENTS:-tcp://*:5555}"; \
        exec deferq --broker "tcp://127.0.0.1:${port##*:}" --timeout 3000 status --json > /dev/null
CMD ["deferq-broker"]
