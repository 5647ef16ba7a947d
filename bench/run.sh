#!/usr/bin/env bash
# Reparo's benchmark: engine micro-benchmarks (reparo-bench) then Reparo against PyTorch and
# ONNX Runtime (peers.py), 2 threads everywhere, RUNS times (default 2), then the Fashion-MNIST
# training throughput against PyTorch (fashion_mnist_throughput.py, when its data is installed)
# and the table of issue 19's targets over the runs (targets.py: median, spread, status).
# Writes bench/results/<date>-run<i>.json (or $BENCH_OUT-run<i>.json) and the targets table
# beside them, and prints markdown tables. About 8 minutes per run on 2 cores. See bench/README.md.
#   bench/run.sh              build, wait for a quiet CPU, run everything
#   bench/run.sh --no-build   reuse the built library and bench binary
#   RUNS=1 REPS=10 BENCH_QUIET_WAIT=300 bench/run.sh
#   ENGINE=conv-efficiency bench/run.sh   only that reparo-bench section (enough for the targets)
#   BENCH_NICE=-15 bench/run.sh   on a shared machine (root only): run at a higher priority so
#                                 other jobs take less of the CPU from the timed code
set -euo pipefail
cd "$(dirname "$0")/.."
reps="${REPS:-10}"
threads=2
export OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, when the machine sets them, are left as they are.

venv="${BENCH_VENV:-bench/.venv}"   # BENCH_VENV: an existing venv with torch, onnxruntime, onnx, numpy
if [[ ! -x $venv/bin/python ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet torch onnxruntime onnx numpy
fi

if [[ "${1:-}" != "--no-build" ]]; then
    scripts/build.sh >/dev/null
    # Same flags as scripts/build.sh, so both builds share ReparoCore's objects.
    swift build -c release --scratch-path .build-release --product reparo-bench \
        -Xswiftc -static-stdlib -Xlinker -l_FoundationCollections -Xlinker -l_FoundationCShims \
        -Xlinker -lswiftSynchronization >&2
fi

# Wait (up to BENCH_QUIET_WAIT seconds) for 5 s in which the CPU is at least 95% idle: a
# benchmark taken while something else compiles measures the compiler. Each section still
# reports the share of CPU other processes took during it.
wait_for_quiet() {
    local deadline=$((SECONDS + ${BENCH_QUIET_WAIT:-300}))
    local a b
    while ((SECONDS < deadline)); do
        read -ra a < /proc/stat; sleep 5; read -ra b < /proc/stat
        local busy=$(( (b[1]+b[2]+b[3]+b[6]+b[7]+b[8]) - (a[1]+a[2]+a[3]+a[6]+a[7]+a[8]) ))
        local total=$(( busy + (b[4]+b[5]) - (a[4]+a[5]) ))
        if ((total > 0 && busy * 100 < total * 5)); then return 0; fi
        echo "waiting for a quiet CPU ($((busy * 100 / total))% busy) ..." >&2
    done
    echo "warning: the CPU did not become quiet; results may be noisy" >&2
}

run=()
if [[ -n "${BENCH_NICE:-}" ]]; then run=(nice -n "$BENCH_NICE"); fi

date=$(date +%F)
base="${BENCH_OUT:-bench/results/$date}"   # e.g. BENCH_OUT=bench/results/<date>-zen4
base="${base%.json}"
runs="${RUNS:-2}"
mkdir -p "$(dirname "$base")"
outs=()
for ((i = 1; i <= runs; i++)); do
    echo "=== run $i of $runs ===" >&2
    out="$base-run$i.json"
    engine_json=$(mktemp /tmp/reparo-engine-XXXXXX.json)
    wait_for_quiet
    "${run[@]}" .build-release/release/reparo-bench "${ENGINE:-all}" --threads $threads --reps "$reps" --json "$engine_json"
    wait_for_quiet
    "${run[@]}" "$venv/bin/python" bench/peers.py --reps "$reps" --engine-json "$engine_json" --out "$out"
    rm -f "$engine_json"
    outs+=("$out")
done

throughput=()
if [[ -f bench/fashion_mnist_throughput.py && -d /usr/share/datasets/fashion-mnist ]]; then
    wait_for_quiet
    # ${STEPS:+...}: a shorter look (STEPS batches per round instead of a full epoch)
    "${run[@]}" "$venv/bin/python" bench/fashion_mnist_throughput.py ${STEPS:+--steps "$STEPS"} \
        --out "$base-fashion-mnist.md"
    throughput=(--throughput "$base-fashion-mnist.json")
fi
echo >&2
echo "### Issue 19 targets ($runs runs)" >&2
"$venv/bin/python" bench/targets.py "${outs[@]}" "${throughput[@]}" --out "$base-targets.md"
