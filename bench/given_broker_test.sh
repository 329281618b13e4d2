#!/usr/bin/env bash
# CTest "bench: through a given broker": deferq-bench --broker measures W1 and W2 through a broker
# it did not start (a broker and 2 workers started here, on 127.0.0.1 with kernel-chosen ports).
#   given_broker_test.sh DEFERQ_BROKER DEFERQ_WORKER DEFERQ_BENCH DEFERQ_CLI
set -euo pipefail
broker_bin=$1 worker_bin=$2 bench_bin=$3 cli_bin=$4
dir=$(mktemp -d "${TMPDIR:-/tmp}/deferq-bench-given-XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
    wait 2> /dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

"$broker_bin" --clients tcp://127.0.0.1:0 --workers tcp://127.0.0.1:0 --ready-file "$dir/ready" \
    > "$dir/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$dir/ready" ] && break; sleep 0.1; done
clients=$(sed -n 's/^clients=//p' "$dir/ready")
workers=$(sed -n 's/^workers=//p' "$dir/ready")
[ -n "$clients" ] && [ -n "$workers" ] || { echo "the broker did not start:"; cat "$dir/broker.log"; exit 1; }
for name in given-1 given-2; do
    "$worker_bin" --broker "$workers" --name "$name" --concurrency 1 > "$dir/$name.log" 2>&1 &
    pids+=($!)
done

# W3 is asked for too: it is skipped (it needs processes of its own), W1 and W2 run.
"$bench_bin" --quick --only W1,W2,W3 --broker "$clients" > "$dir/table" 2> "$dir/bench.err" || {
    echo "deferq-bench failed:"; cat "$dir/table" "$dir/bench.err"; exit 1; }
cat "$dir/table"
grep -q "W3 skipped" "$dir/bench.err" || { echo "W3 was not reported as skipped"; exit 1; }
rows=$(grep -c "deferq: .*the broker at $clients" "$dir/table" || true)
[ "$rows" = 6 ] || { echo "expected 6 deferq rows through $clients, found $rows"; exit 1; }
# The calls went through that broker: its workers ran them.
done_jobs=$("$cli_bin" --broker "$clients" status --json |
    /usr/bin/python3 -c 'import json,sys; print(sum(w["jobs_done"] for w in json.load(sys.stdin)["workers"]))')
echo "jobs done by the given broker's workers: $done_jobs"
[ "$done_jobs" -ge 10000 ] || { echo "expected at least 10,000 jobs through the given broker"; exit 1; }
