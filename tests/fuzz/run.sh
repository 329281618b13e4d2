#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) in their own build folder and runs each for a
# bounded time, starting from the committed seed corpora. Fails on any crash, leak, timeout or
# sanitizer report (docs/security.md, Fuzzing).
#   DEFERQ_FUZZ_SECONDS=N     seconds per target (default 60)
#   DEFERQ_FUZZ_TARGETS="…"   which targets (default: broker client worker)
#   DEFERQ_FUZZ_BUILD=DIR     build folder (default build-fuzz)
# Inputs found along the way go to DIR/fuzz-runs/TARGET/corpus (not the committed corpus); a crash
# leaves its input in DIR/fuzz-runs/TARGET/ as crash-*, leak-* or timeout-*: replay it with
#   DIR/tests/fuzz/deferq_fuzz_TARGET FILE
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${DEFERQ_FUZZ_SECONDS:-60}
targets=${DEFERQ_FUZZ_TARGETS:-broker client worker}
build=${DEFERQ_FUZZ_BUILD:-build-fuzz}

if ! command -v clang++ > /dev/null; then
    echo "fuzz: clang++ not found (bash .ci/setup installs it)" >&2
    exit 1
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DDEFERQ_FUZZ=ON -DDEFERQ_BUILD_TESTS=OFF > /dev/null
build_targets=()
for target in $targets; do build_targets+=("deferq_fuzz_$target"); done
cmake --build "$build" -j "${DEFERQ_BUILD_JOBS:-$(nproc)}" --target "${build_targets[@]}"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
failures=()
for target in $targets; do
    run="$build/fuzz-runs/$target"
    mkdir -p "$run/corpus"
    echo "=== fuzz: $target for ${seconds} s"
    if "$build/tests/fuzz/deferq_fuzz_$target" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$run/" \
        "$run/corpus" "tests/fuzz/corpus/$target" > "$run/log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb' \
            "$run/log" || true
        echo "fuzz: $target passed"
    else
        status=1
        tail -n 60 "$run/log"
        input=$(ls "$run"/crash-* "$run"/leak-* "$run"/timeout-* "$run"/oom-* 2> /dev/null | head -1)
        echo "fuzz: $target FAILED (log: $run/log; input: $input)"
        failures+=("$target" "$run/log" "$input")
    fi
done
# Again at the end, as the last lines (CI keeps only the tail of a long log): each failure's report
# and its input in base64, so that a failure seen only in CI can be replayed here:
#   base64 -d > input <<< '…'; DIR/tests/fuzz/deferq_fuzz_TARGET input
set -- "${failures[@]}"
while [ $# -ge 3 ]; do
    echo "== fuzz: $1 failed; its report:"
    grep -E -A 24 '^==[0-9]+==ERROR|runtime error|invariant broken|deadly signal|^ALARM|out-of-memory' "$2" |
        head -n 40 || true
    if [ -n "$3" ] && [ "$(stat -c %s "$3")" -le 4096 ]; then
        echo "== fuzz: $1's input ($(basename "$3")), base64:"
        base64 -w 0 "$3"
        echo
    fi
    shift 3
done
exit $status
