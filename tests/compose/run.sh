#!/usr/bin/env bash
# The Docker tests: docker-compose.yml and the Dockerfile, on this machine's Docker engine.
#   (a) up --scale worker=4: the demo runs at start-up and prints total: 330; run again, its three jobs
#       go to three different workers; the broker's and the workers' health checks pass
#   (b) 400 calculate calls of 200 ms: mid-batch one worker is killed and another frozen (docker pause)
#       past heartbeat expiry, then thawed: every call answered once, correctly
#   (c) 400 calls: mid-batch, scale down from 4 workers to 2: they drain (no expiry, nothing run
#       twice), nothing lost
#   (d) 400 calls: mid-batch, restart the broker: the client resends, every call completes once
#   (e) docker stack deploy of the same file on a one-node swarm: the demo runs there too
#   (f) CURVE with docker-compose.curve.yml and keys made in the image: the keyed demo prints
#       total: 330; a client with a key not on the list, and one without CURVE, get nothing
#   (g) a broker pair (docker-compose.pair.yml): primary killed, the demo runs on the backup; the
#       primary started again stands by (passive), the backup stays active
# The batches are driven from the host by tests/compose/batch.py (the client protocol in Python).
# Without a Docker engine it prints "SKIPPED: no Docker engine" and exits 0. Base images that cannot be
# pulled are made by .ci/docker-base-images. Every cluster is torn down whatever happens; a swarm is left
# only if this script made it. Every wait is bounded.
#   DEFERQ_COMPOSE_TESTS="a b"   run only these tests
#   DEFERQ_COMPOSE_KEEP_LOGS=1   keep the logs folder (default: kept only when a test failed)
#   DEFERQ_COMPOSE_SKIP_BUILD=1  use the image already built (deferq:compose-test) as it is
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

if ! timeout 30 docker info > /dev/null 2>&1; then
    echo "SKIPPED: no Docker engine"
    exit 0
fi

suite_started=$(date +%s)
# On SIGTERM/SIGINT the running test's subshell tears its cluster down; bash runs this trap only once
# that subshell has ended, so the clean-up is not cut short.
trap 'echo "compose: interrupted"; exit 143' TERM INT
logs=$(mktemp -d /tmp/deferq-compose-XXXXXX)
python=/usr/bin/python3
image=${DEFERQ_COMPOSE_IMAGE:-deferq:compose-test}   # kept between runs: the build cache stays warm
prefix=deferq-test-$$
only=${DEFERQ_COMPOSE_TESTS:-a b c d e f g}

note() { echo "compose: $*"; }
elapsed() { echo $(( $(date +%s) - $1 )); }

# What this machine lacks, from Debian's packages: a compose tool, and the batch client's modules.
need=()
if ! timeout 30 docker compose version > /dev/null 2>&1 && ! command -v docker-compose > /dev/null; then
    need+=(docker-compose)
fi
"$python" -c 'import zmq, msgpack' 2> /dev/null || need+=(python3-zmq python3-msgpack)
if [ ${#need[@]} -gt 0 ]; then
    note "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq && timeout 600 apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
fi
if timeout 30 docker compose version > /dev/null 2>&1; then
    compose=(docker compose)
else
    compose=(docker-compose)
fi
note "using $("${compose[@]}" version 2> /dev/null | head -1)"

free_ports() {       # three TCP ports free on this machine, for the broker's published ports:
    # below the kernel's ephemeral range, so that while a broker is down the kernel hands none of
    # them to another socket (tests/support/ports.hpp says more)
    "$python" -c '
import random, socket
first, last = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
low, high = (20000, first - 1) if first - 20000 >= 2000 else (last + 1, 65535)  # as ports.cpp
chosen = []
while len(chosen) < 3:
    port = random.randint(low, high)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("0.0.0.0", port))
    except OSError:
        continue
    finally:
        s.close()
    if port not in chosen:
        chosen.append(port)
print(*chosen)'
}

# The settings every compose command of a test sees (the same each time, so nothing is recreated).
export DEFERQ_IMAGE=$image
export DEFERQ_BUILD_NETWORK=host
export DEFERQ_CALCULATE_DELAY=1000
export DEFERQ_LOG_LEVEL=info

project=""           # the compose project of the test that runs
overrides=()         # more compose files on top of docker-compose.yml (-f FILE ...), per test
dc() {               # dc [--timeout S] ARGS: compose on $project; its chatter goes to the log
    local limit=180
    if [ "$1" = --timeout ]; then limit=$2; shift 2; fi
    timeout "$limit" "${compose[@]}" -p "$project" -f "$root/docker-compose.yml" "${overrides[@]}" "$@" \
        2>> "$logs/compose.log"
}

wait_for() {         # wait_for SECONDS WHAT COMMAND...: until COMMAND succeeds, or fail
    local limit=$1 what=$2 deadline=$(( $(date +%s) + $1 ))
    shift 2
    until "$@" > /dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "timed out after ${limit}s waiting for $what" >&2
            return 1
        fi
        sleep 1
    done
}

containers_of() {    # containers_of SERVICE [-a]: the service's containers (-a: stopped ones too)
    timeout 60 docker ps -q ${2:-} --filter "label=com.docker.compose.project=$project" \
        --filter "label=com.docker.compose.service=$1" --filter "label=com.docker.compose.oneoff=False"
}
container_of() { containers_of "$@" | head -1; }
has_exited() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2> /dev/null)" = false ]; }
health_of() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1" 2> /dev/null; }
is_healthy() { [ "$(health_of "$1")" = healthy ]; }

broker_status() {    # the broker's `deferq status --json`, asked from inside its own container
    timeout 20 docker exec "$1" deferq --broker tcp://127.0.0.1:5555 --timeout 5000 status --json
}
live_workers() {     # live_workers BROKER_CONTAINER: how many workers the broker knows
    broker_status "$1" | "$python" -c 'import json, sys; print(len(json.load(sys.stdin)["workers"]))'
}
has_workers() { [ "$(live_workers "$1")" = "$2" ]; }

progress_at_least() { [ -f "$1" ] && [ "$(cat "$1" 2> /dev/null || echo 0)" -ge "$2" ]; }

show_logs() {        # the end of every container's log of the current project
    echo "----- compose log (last 20 lines)"
    tail -20 "$logs/compose.log"
    dc logs --no-color --tail=40 > "$logs/$project.log" 2>&1 || true
    echo "----- container logs (last 40 lines each): $logs/$project.log"
    tail -120 "$logs/$project.log"
}

teardown() {         # the current project, whatever state it is in
    [ -n "$project" ] || return 0
    local ids
    ids=$(timeout 60 docker ps -aq --filter "label=com.docker.compose.project=$project" 2> /dev/null)
    for id in $ids; do
        [ "$(docker inspect -f '{{.State.Paused}}' "$id" 2> /dev/null)" = true ] && timeout 30 docker unpause "$id" > /dev/null 2>&1
    done
    dc --timeout 180 down --volumes --remove-orphans --timeout 10 > /dev/null 2>&1 || true
    ids=$(timeout 60 docker ps -aq --filter "label=com.docker.compose.project=$project" 2> /dev/null)
    [ -z "$ids" ] || timeout 60 docker rm -f $ids > /dev/null 2>&1 || true
    timeout 60 docker network rm "${project}_default" > /dev/null 2>&1 || true
}

start_cluster() {    # start_cluster WORKERS: broker healthy, WORKERS workers joined; sets $broker
    dc up -d --scale worker="$1" --scale demo=0 || return 1
    broker=$(container_of broker)
    [ -n "$broker" ] || { echo "no broker container" >&2; return 1; }
    wait_for 90 "a healthy broker" is_healthy "$broker" || return 1
    wait_for 60 "$1 workers at the broker" has_workers "$broker" "$1" || return 1
}

batch() {            # batch NAME ARGS...: starts the batch client in the background; sets $batch_pid
    rm -f "$logs/$1.progress"
    "$python" "$root/tests/compose/batch.py" --broker "tcp://127.0.0.1:$DEFERQ_CLIENT_PORT" \
        --progress "$logs/$1.progress" --deadline 240 --verbose "${@:2}" > "$logs/$1.out" 2>&1 &
    batch_pid=$!
}
finish_batch() {     # finish_batch NAME: waits for the batch client (bounded by its deadline), shows it
    local status=0
    wait "$batch_pid" || status=$?
    batch_pid=""
    cat "$logs/$1.out"
    return $status
}

# ---- the tests: each runs in a subshell that tears its cluster down on the way out ----------------

test_a_scale_and_demo() {
    dc up -d --scale worker=4 || return 1           # the demo service runs once, at start-up
    broker=$(container_of broker)
    wait_for 90 "a healthy broker" is_healthy "$broker" || return 1
    local demo
    demo=$(container_of demo -a)
    [ -n "$demo" ] || { echo "no demo container" >&2; return 1; }
    wait_for 120 "the start-up demo to end" has_exited "$demo" || return 1
    echo "start-up demo (exit $(docker inspect -f '{{.State.ExitCode}}' "$demo")):"
    docker logs "$demo" 2>&1 | sed 's/^/  /'
    docker logs "$demo" 2>&1 | grep -qx 'total: 330' || { echo "start-up demo: no 'total: 330'" >&2; return 1; }
    [ "$(docker inspect -f '{{.State.ExitCode}}' "$demo")" = 0 ] || return 1

    wait_for 60 "4 workers at the broker" has_workers "$broker" 4 || return 1
    local workers
    workers=$(containers_of worker)
    for worker in $workers; do
        wait_for 60 "worker ${worker:0:12} healthy" is_healthy "$worker" || return 1
    done
    echo "health: broker $(health_of "$broker"), workers $(for w in $workers; do printf '%s ' "$(health_of "$w")"; done)"

    local output
    output=$(dc run --rm --no-deps -T demo) || { echo "$output"; return 1; }
    echo "docker compose run --rm demo:"
    echo "$output" | sed 's/^/  /'
    echo "$output" | grep -qx 'total: 330' || return 1
    local distinct
    distinct=$(echo "$output" | sed -n 's/.*\[worker \(.*\)\]$/\1/p' | sort -u | wc -l)
    echo "distinct workers: $distinct"
    [ "$distinct" -ge 3 ] || return 1

    # As the README shows it: the CLI inside the broker's container.
    dc exec -T broker deferq status --json | "$python" -c '
import json, sys
status = json.load(sys.stdin)
print("docker compose exec broker deferq status --json: workers", sorted(w["name"] for w in status["workers"]))'
}

test_b_kill_and_pause() {
    export DEFERQ_CALCULATE_DELAY=200
    start_cluster 4 || return 1
    local workers victim frozen
    workers=($(containers_of worker))
    victim=${workers[0]} frozen=${workers[1]}
    batch b --calls 400
    wait_for 90 "the batch under way" progress_at_least "$logs/b.progress" 60 || return 1
    echo "after $(cat "$logs/b.progress") answers: docker kill ${victim:0:12}"
    timeout 60 docker kill "$victim" > /dev/null || return 1
    wait_for 90 "more answers" progress_at_least "$logs/b.progress" 120 || return 1
    echo "after $(cat "$logs/b.progress") answers: docker pause ${frozen:0:12} for 6 s (heartbeat expiry: 3 s)"
    timeout 60 docker pause "$frozen" > /dev/null || return 1
    sleep 6
    timeout 60 docker unpause "$frozen" > /dev/null || return 1
    echo "unpaused at $(cat "$logs/b.progress") answers"
    finish_batch b || return 1
    local expired
    expired=$(docker logs "$broker" 2>&1 | grep -c 'expired (no heartbeat)')
    docker logs "$broker" 2>&1 | grep -E 'expired|requeued' | sed 's/^/  broker: /'
    [ "$expired" -ge 2 ] || { echo "expected 2 workers expired at the broker, saw $expired" >&2; return 1; }
}

test_c_scale_down() {
    export DEFERQ_CALCULATE_DELAY=200
    start_cluster 4 || return 1
    batch c --calls 400
    wait_for 90 "the batch under way" progress_at_least "$logs/c.progress" 80 || return 1
    echo "after $(cat "$logs/c.progress") answers: up -d --scale worker=2"
    local started
    started=$(date +%s)
    dc up -d --no-recreate --scale worker=2 --scale demo=0 || return 1
    echo "scaled down in $(elapsed "$started") s, at $(cat "$logs/c.progress") answers"
    finish_batch c || return 1
    docker logs "$broker" 2>&1 | grep -E 'draining|disconnected|expired' | sed 's/^/  broker: /'
    wait_for 30 "2 workers at the broker" has_workers "$broker" 2 || return 1
    [ "$(containers_of worker -a | wc -l)" = 2 ] || return 1
    # A drain, not a crash: both stopped workers said DRAIN and left; none expired, and no call ran
    # twice (a crashed worker's jobs would run again, with attempt 2).
    # (The log is read once into a variable: `docker logs | grep -q` fails under pipefail when grep
    # stops reading early. A client may expire meanwhile, e.g. a `deferq status` that ran.)
    local log draining
    log=$(timeout 30 docker logs "$broker" 2>&1)
    draining=$(grep -c 'draining with' <<< "$log")
    [ "$draining" -ge 2 ] || { echo "expected 2 workers draining at the broker, saw $draining" >&2; return 1; }
    ! grep -q '\] worker .* expired (no heartbeat)' <<< "$log" || { echo "a worker expired instead of draining" >&2; return 1; }
    grep -q '"retried": 0,' "$logs/c.out" || { echo "calls ran again: a worker did not drain" >&2; return 1; }
}

http_status() {      # the broker's /status.json through its published HTTP port
    "$python" -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
        "http://127.0.0.1:$DEFERQ_HTTP_PORT/status.json"
}
http_has_workers() { [ "$(http_status | "$python" -c 'import json, sys; print(len(json.load(sys.stdin)["workers"]))')" = "$1" ]; }
keygen() {           # keygen DIR NAME: a CURVE key pair made inside the image, as the uid it runs as
    timeout 60 docker run --rm --user 10001:10001 -v "$1:/keys" "$image" deferq keygen "/keys/$2" > /dev/null
}

test_f_curve() {
    local keys="$logs/keys-$project"
    mkdir -p "$keys" && chown 10001:10001 "$keys" || return 1
    for name in broker worker demo stranger; do keygen "$keys" "$name" || return 1; done
    cat "$keys/demo.pub" > "$keys/clients.list"
    cat "$keys/worker.pub" > "$keys/workers.list"
    export DEFERQ_KEYS=$keys
    overrides=(-f "$root/docker-compose.curve.yml")
    dc up -d --scale worker=3 || return 1           # the demo runs once, with its key
    broker=$(container_of broker)
    wait_for 90 "a healthy broker" is_healthy "$broker" || return 1
    local log
    log=$(timeout 30 docker logs "$broker" 2>&1)        # read once: grep -q in a pipe trips pipefail
    grep 'CURVE on' <<< "$log" | sed 's/^/  broker: /'
    grep -q 'CURVE on: 1 client key(s), 1 worker key(s) allowed' <<< "$log" || { echo "the broker did not turn CURVE on" >&2; return 1; }
    wait_for 60 "3 workers at the broker" http_has_workers 3 || return 1
    local demo
    demo=$(container_of demo -a)
    [ -n "$demo" ] || { echo "no demo container" >&2; return 1; }
    wait_for 120 "the start-up demo to end" has_exited "$demo" || return 1
    log=$(timeout 30 docker logs "$demo" 2>&1)
    sed 's/^/  demo: /' <<< "$log"
    grep -qx 'total: 330' <<< "$log" || { echo "the demo with its key: no 'total: 330'" >&2; return 1; }

    # A key not on the clients' list, and no key at all: no call gets through.
    local output
    if output=$(dc run --rm --no-deps -T -v "$keys:/extra:ro" -e DEFERQ_CURVE_KEY=/extra/stranger.key \
            demo deferq --timeout 5000 call add 1 2 2>&1); then
        echo "a client with a key not on the list was served: $output" >&2; return 1
    fi
    echo "  stranger's key: $(tail -1 "$logs/compose.log")"     # dc sends the CLI's stderr there
    if output=$(timeout 60 docker run --rm --network "${project}_default" "$image" \
            deferq --broker tcp://broker:5555 --timeout 5000 call add 1 2 2>&1); then
        echo "a client without CURVE was served: $output" >&2; return 1
    fi
    echo "  no key: $(echo "$output" | tail -1)"
    log=$(timeout 30 docker logs "$broker" 2>&1)
    grep 'refused CURVE' <<< "$log" | sed 's/^/  broker: /'
    grep -q 'refused CURVE client .* with key' <<< "$log" || { echo "the refusal was not logged" >&2; return 1; }
    [ "$(http_status | "$python" -c 'import json, sys; print(json.load(sys.stdin)["counters"]["unauthorized"])')" -ge 1 ] || return 1
}

logged() {           # logged CONTAINER TEXT (read once: grep -q in a pipe trips pipefail)
    local log
    log=$(timeout 30 docker logs "$1" 2>&1)
    grep -q -- "$2" <<< "$log"
}

test_g_pair() {
    read -r DEFERQ_BACKUP_CLIENT_PORT DEFERQ_BACKUP_WORKER_PORT DEFERQ_BACKUP_HTTP_PORT < <(free_ports)
    export DEFERQ_BACKUP_CLIENT_PORT DEFERQ_BACKUP_WORKER_PORT DEFERQ_BACKUP_HTTP_PORT
    overrides=(-f "$root/docker-compose.pair.yml")
    dc up -d --scale worker=3 --scale demo=0 || return 1
    broker=$(container_of broker)
    local backup
    backup=$(container_of backup)
    [ -n "$broker" ] && [ -n "$backup" ] || { echo "no broker or no backup container" >&2; return 1; }
    wait_for 90 "a healthy primary" is_healthy "$broker" || return 1
    wait_for 90 "a healthy backup" is_healthy "$backup" || return 1
    wait_for 30 "the primary active" logged "$broker" "primary → active" || return 1
    wait_for 30 "the backup passive" logged "$backup" "backup → passive" || return 1
    wait_for 60 "3 workers at the primary" has_workers "$broker" 3 || return 1
    local output started
    output=$(dc run --rm --no-deps -T demo) || { echo "$output"; return 1; }
    echo "$output" | grep -qx 'total: 330' || { echo "$output"; return 1; }
    echo "demo on the primary: total: 330"

    echo "docker kill broker (the active primary; never restarted by its policy: a manual kill)"
    started=$(date +%s)
    timeout 60 docker kill "$broker" > /dev/null || return 1
    output=$(dc run --rm --no-deps -T demo) || { echo "$output"; return 1; }
    echo "demo after the kill ($(elapsed "$started") s from the kill to its total):"
    echo "$output" | sed 's/^/  /'
    echo "$output" | grep -qx 'total: 330' || return 1
    local log
    log=$(timeout 30 docker logs "$backup" 2>&1)
    grep 'standby:' <<< "$log" | sed 's/^/  backup: /'
    grep -q 'backup passive → active' <<< "$log" || { echo "the backup did not take over" >&2; return 1; }
    wait_for 60 "3 workers at the backup" has_workers "$backup" 3 || return 1

    echo "docker start broker: the primary comes back and stands by"
    timeout 60 docker start "$broker" > /dev/null || return 1
    wait_for 60 "the primary passive" logged "$broker" "primary → passive" || return 1
    sleep 3
    log=$(timeout 30 docker logs "$backup" 2>&1)
    ! grep -q 'active →' <<< "$log" || { echo "the backup left active: a flip-flop" >&2; return 1; }
    timeout 30 docker logs "$broker" 2>&1 | grep 'standby:' | tail -2 | sed 's/^/  primary: /'
    output=$(dc run --rm --no-deps -T demo) || { echo "$output"; return 1; }
    echo "$output" | grep -qx 'total: 330' || { echo "$output"; return 1; }
    echo "demo with the primary back (passive): total: 330"
}

test_d_broker_restart() {
    export DEFERQ_CALCULATE_DELAY=200
    start_cluster 4 || return 1
    batch d --calls 400
    wait_for 90 "the batch under way" progress_at_least "$logs/d.progress" 80 || return 1
    echo "after $(cat "$logs/d.progress") answers: restart broker"
    dc restart broker || return 1
    echo "broker restarted, at $(cat "$logs/d.progress") answers"
    finish_batch d || return 1
    grep -q '"broker_instances": 2' "$logs/d.out" || { echo "the client did not see the broker restart" >&2; return 1; }
    wait_for 60 "a healthy broker again" is_healthy "$broker" || return 1
    wait_for 30 "4 workers back at the broker" has_workers "$broker" 4 || return 1
}

swarm_created=0
gwbridge_before=1
stack=""
stack_containers_gone() { [ -z "$(timeout 30 docker ps -aq --filter "label=com.docker.stack.namespace=$1")" ]; }
network_gone() { ! timeout 30 docker network inspect "$1" > /dev/null 2>&1; }
stack_service_running() { timeout 30 docker ps -q --filter "label=com.docker.swarm.service.name=$1" | grep -q .; }
demo_printed_total() { timeout 20 docker service logs --raw "$1" 2>&1 | grep -qx 'total: 330'; }
show_stack_logs() {
    [ -n "$stack" ] || return 0
    for service in broker worker demo; do
        echo "----- docker service logs ${stack}_$service (last 30 lines)"
        timeout 30 docker service logs --raw --tail 30 "${stack}_$service" 2>&1
    done
    timeout 30 docker stack ps --no-trunc "$stack" 2>&1 | head -20
}
stack_teardown() {
    if [ -n "$stack" ]; then
        timeout 120 docker stack rm "$stack" > /dev/null 2>&1 || true
        wait_for 120 "the stack's containers to go" stack_containers_gone "$stack" || true
        timeout 60 docker network rm "${stack}_default" > /dev/null 2>&1 || true
        wait_for 30 "the stack's network to go" network_gone "${stack}_default" 2> /dev/null \
            || echo "swarm: network ${stack}_default still there after 30 s"
        stack=""
    fi
    if [ "$swarm_created" = 1 ]; then
        timeout 120 docker swarm leave --force > /dev/null 2>&1 || true
        # The swarm made this bridge; it outlives `swarm leave`.
        [ "$gwbridge_before" = 1 ] || timeout 60 docker network rm docker_gwbridge > /dev/null 2>&1 || true
        swarm_created=0
    fi
}

test_e_swarm() {
    local state
    state=$(timeout 30 docker info -f '{{.Swarm.LocalNodeState}}')
    if [ "$state" = inactive ]; then
        timeout 30 docker network inspect docker_gwbridge > /dev/null 2>&1 || gwbridge_before=0
        # A one-node swarm on loopback only.
        timeout 120 docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 > /dev/null || return 1
        swarm_created=1
        echo "swarm: initialised a one-node swarm (left again at the end)"
    elif [ "$state" = active ] && [ "$(timeout 30 docker info -f '{{.Swarm.ControlAvailable}}')" = true ]; then
        echo "swarm: using the swarm this engine is a manager of"
    else
        echo "swarm: this engine is in a swarm ($state) it cannot deploy to" >&2
        return 1
    fi
    stack=$prefix
    # The image is local only: no registry to resolve its digest from.
    timeout 180 docker stack deploy --resolve-image never -c "$root/docker-compose.yml" "$stack" \
        >> "$logs/compose.log" 2>&1 || return 1
    wait_for 120 "the stack's broker" stack_service_running "${stack}_broker" || return 1
    broker=$(docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_broker" | head -1)
    [ -n "$broker" ] || return 1
    wait_for 90 "a healthy broker" is_healthy "$broker" || return 1
    wait_for 90 "3 workers at the broker" has_workers "$broker" 3 || return 1
    wait_for 120 "the stack's demo to print its total" demo_printed_total "${stack}_demo" || return 1
    echo "stack demo service:"
    timeout 20 docker service logs --raw "${stack}_demo" 2>&1 | grep -E '^(calculate|total)' | sed 's/^/  /'
    local output distinct
    output=$(timeout 90 docker exec "$broker" deferq --broker tcp://127.0.0.1:5555 --timeout 60000 demo) \
        || { echo "$output"; return 1; }
    echo "deferq demo in the stack's broker container:"
    echo "$output" | sed 's/^/  /'
    echo "$output" | grep -qx 'total: 330' || return 1
    distinct=$(echo "$output" | sed -n 's/.*\[worker \(.*\)\]$/\1/p' | sort -u | wc -l)
    echo "distinct workers: $distinct"
    [ "$distinct" -ge 3 ] || return 1
    # The broker's ports, published on this node (mode host), from outside the swarm.
    export DEFERQ_CALCULATE_DELAY=1000
    batch e --calls 30
    finish_batch e || return 1
}

# ---- run ------------------------------------------------------------------------------------------

passed=0 failed=0
results=()
run_test() {         # run_test LETTER FUNCTION DESCRIPTION
    local letter=$1 function=$2 description=$3 started status
    case " $only " in *" $letter "*) ;; *) return 0 ;; esac
    echo "=== compose ($letter) $description"
    started=$(date +%s)
    (
        project=$prefix-$letter
        batch_pid=""
        read -r DEFERQ_CLIENT_PORT DEFERQ_WORKER_PORT DEFERQ_HTTP_PORT < <(free_ports)
        export DEFERQ_CLIENT_PORT DEFERQ_WORKER_PORT DEFERQ_HTTP_PORT
        cleanup() {
            local code=$?
            [ -n "$batch_pid" ] && kill "$batch_pid" 2> /dev/null
            if [ "$code" != 0 ]; then
                if [ "$letter" = e ]; then show_stack_logs; else show_logs; fi
            fi
            teardown
            stack_teardown
            exit $code
        }
        trap cleanup EXIT
        trap 'exit 143' TERM INT
        if [ "$letter" = e ]; then project=""; fi
        "$function"
    )
    status=$?
    if [ $status = 0 ]; then
        passed=$((passed + 1)); results+=("PASS ($letter) $description ($(elapsed "$started") s)")
    else
        failed=$((failed + 1)); results+=("FAIL ($letter) $description ($(elapsed "$started") s)")
    fi
    echo "${results[-1]}"
}

step=$(date +%s)
timeout 1800 bash "$root/.ci/docker-base-images" || { echo "compose: base images failed"; echo "compose: suite failed before its tests (0 of 7 run)"; exit 1; }
note "base images: $(elapsed "$step") s"

step=$(date +%s)
project=$prefix-build
if [ "${DEFERQ_COMPOSE_SKIP_BUILD:-0}" = 1 ] && docker image inspect "$image" > /dev/null 2>&1; then
    note "using the image $image as it is (DEFERQ_COMPOSE_SKIP_BUILD=1)"
elif ! dc --timeout 2700 build > "$logs/build.log" 2>&1; then
    tail -40 "$logs/build.log"
    tail -20 "$logs/compose.log"
    echo "compose: image build failed (log: $logs/build.log)"
    echo "compose: suite failed before its tests (0 of 7 run)"
    exit 1
else
    note "image $image built in $(elapsed "$step") s ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
fi
project=""

run_test a test_a_scale_and_demo "up --scale worker=4, the demo: total 330 on 3 workers, health checks"
run_test b test_b_kill_and_pause "400 calls; one worker killed, one frozen past expiry: all once, correct"
run_test c test_c_scale_down "400 calls; scale down 4 -> 2 mid-batch: nothing lost"
run_test d test_d_broker_restart "400 calls; broker restarted mid-batch: every call completes once"
run_test e test_e_swarm "docker stack deploy, same file, one-node swarm: the demo works"
run_test f test_f_curve "CURVE (docker-compose.curve.yml): keyed demo 330, a stranger's key and no key refused"
run_test g test_g_pair "a broker pair: primary killed, the demo runs on the backup; no flip-flop"

echo "=== compose summary ($(elapsed "$suite_started") s)"
printf '%s\n' "${results[@]}"
if [ $failed = 0 ] && [ "${DEFERQ_COMPOSE_KEEP_LOGS:-0}" != 1 ]; then rm -rf "$logs"; else echo "logs: $logs"; fi
echo "compose: $passed of $((passed + failed)) tests passed"
[ $failed = 0 ]
