#!/usr/bin/env bash
# Concurrency and memory checks of libreparo (see SECURITY.md).
#
#   reliability/run.sh threads [rounds]   8 threads share 2 models (reparo_infer, describe,
#                                         evaluate, clone) + 1 training thread; logits must be
#                                         bit-identical to the single-threaded run
#   reliability/run.sh tsan [rounds]      the same program against a ThreadSanitizer build of
#                                         the library: inference-only, then with the trainer
#   reliability/run.sh asan               the Swift test suite built with AddressSanitizer
#   reliability/run.sh leaks [cycles]     create/free cycles of models, trainers, datasets;
#                                         RSS must not grow after warm-up (default 10,000)
#   reliability/run.sh valgrind [cycles]  the same cycles under valgrind --leak-check=full
#                                         (default 100)
#   reliability/run.sh handles            foreign, wrong-kind, freed and reused handles rejected
#   reliability/run.sh nonfinite          NaN/Inf weights: load, infer, evaluate, train, method
#   reliability/run.sh allocations        warmed-up steps and inferences make no heap allocation
#                                         (malloc interposed for the whole process)
#   reliability/run.sh all                threads, leaks, handles, nonfinite, allocations, tsan, asan
# Each exits non-zero on a failure. Binaries go to reliability/.build/ (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
out=reliability/.build
mkdir -p "$out"

release_lib() {
    local lib
    lib=$(bash scripts/build.sh)
    dirname "$lib"
}

threads() {
    local dir; dir=$(release_lib)
    cc -O2 -Wall -Wextra -pthread -I include reliability/threads.c -L "$dir" -lreparo -Wl,-rpath,"$dir" \
        -o "$out/threads"
    "$out/threads" "${1:-40}"
}

# A debug build with -sanitize=thread (ReparoCore, the C layer and the C kernels instrumented,
# the kernels at -O1 so that they run; OpenBLAS and the Swift runtime are not). The TSan runtime linked into the C program intercepts
# libdispatch, so it needs libdispatch and the blocks runtime on its link line.
tsan() {
    # The library product and its published name, as in scripts/build.sh.
    swift build -c debug --scratch-path .build-tsan -Xswiftc -sanitize=thread -Xcc -fsanitize=thread -Xcc -O1 \
        --product reparo-capi -Xlinker -soname=libreparo.so >&2
    local dir="$PWD/.build-tsan/debug" swift_libs
    cp "$dir/libreparo-capi.so" "$dir/libreparo.so"
    swift_libs="$(swiftc -print-target-info | sed -n 's/.*"runtimeResourcePath": "\(.*\)".*/\1/p' | head -n1)/linux"
    clang -O1 -g -fsanitize=thread -pthread -I include reliability/threads.c -L "$dir" -lreparo \
        -L "$swift_libs" -ldispatch -lBlocksRuntime -Wl,-rpath,"$dir" -Wl,-rpath,"$swift_libs" \
        -o "$out/threads-tsan"
    local rounds=${1:-40} status=0 mode log
    for mode in infer-only with-trainer; do
        log="$out/tsan-$mode.log"
        # exitcode=66 is TSan's status when it reported anything.
        if TSAN_OPTIONS="halt_on_error=0 exitcode=66 ${TSAN_OPTIONS:-}" \
            "$out/threads-tsan" "$rounds" "$mode" >"$log" 2>&1; then
            echo "tsan ($mode): clean — $(grep 'passed' "$log")"
        else
            status=1
            echo "tsan ($mode): $(grep -c 'WARNING: ThreadSanitizer' "$log") report(s) — $(grep 'passed' "$log" || echo 'did not finish'); see $log"
            grep -E '^SUMMARY: ThreadSanitizer' "$log" | sort | uniq -c
        fi
    done
    return $status
}

# The whole Swift test suite with -sanitize=address (debug). LeakSanitizer is off: the Swift
# runtime's metadata caches look like leaks at exit; 'leaks' measures leaks instead. The C
# kernels (Sources/CVectorKernels) are instrumented too, and compiled at -O1 so that they
# are switched on (unoptimized they stay off; see vector_kernels.h): their masked loads and
# stores are checked lane by lane.
asan() {
    local flags=(-Xswiftc -sanitize=address -Xcc -fsanitize=address -Xcc -O1)
    swift build --build-tests --scratch-path .build-asan "${flags[@]}" >&2
    ASAN_OPTIONS="detect_leaks=0 ${ASAN_OPTIONS:-}" REPARO_EXPECT_VECTOR_KERNELS=1 \
        swift test --skip-build --scratch-path .build-asan "${flags[@]}"
}

leaks() {
    local dir; dir=$(release_lib)
    cc -O2 -Wall -Wextra -I include reliability/leaks.c -L "$dir" -lreparo -Wl,-rpath,"$dir" -o "$out/leaks"
    "$out/leaks" "${1:-10000}"
}

handles() {
    local dir; dir=$(release_lib)
    cc -O2 -Wall -Wextra -I include reliability/handles.c -L "$dir" -lreparo -Wl,-rpath,"$dir" -o "$out/handles"
    "$out/handles"
}

nonfinite() {
    local dir; dir=$(release_lib)
    python3 reliability/nonfinite.py "$dir/libreparo.so"
}

allocations() {
    local dir; dir=$(release_lib)
    cc -O2 -Wall -Wextra -pthread -I include -I bench/Sources/MallocCounter/include reliability/allocations.c \
        bench/Sources/MallocCounter/malloc_counter.c -L "$dir" -lreparo -Wl,-rpath,"$dir" -o "$out/allocations"
    "$out/allocations"
}

valgrind_leaks() {
    command -v valgrind >/dev/null || { echo "valgrind: SKIPPED (not installed: apt-get install valgrind)"; return 0; }
    local dir; dir=$(release_lib)
    cc -O1 -g -Wall -I include reliability/leaks.c -L "$dir" -lreparo -Wl,-rpath,"$dir" -o "$out/leaks"
    # Leak kinds definite and indirect fail the run; "possibly lost" and "still reachable"
    # blocks are the Swift runtime's and Foundation's caches, alive until exit.
    valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
        --error-exitcode=9 "$out/leaks" "${1:-100}" 1000000
}

case "${1:-}" in
    threads) shift; threads "$@" ;;
    tsan) shift; tsan "$@" ;;
    asan) asan ;;
    leaks) shift; leaks "$@" ;;
    valgrind) shift; valgrind_leaks "$@" ;;
    handles) handles ;;
    nonfinite) nonfinite ;;
    allocations) allocations ;;
    all) status=0
         for step in threads leaks handles nonfinite allocations tsan asan; do "$step" || status=1; done
         exit $status ;;
    *) sed -n '4,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
