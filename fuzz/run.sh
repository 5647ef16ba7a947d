#!/usr/bin/env bash
# libFuzzer targets over ReparoCore (see fuzz/README.md).
#
#   fuzz/run.sh build [target...]        build every target (or the ones named) into fuzz/.build/
#   fuzz/run.sh run <target> <seconds>   fuzz one target (load | spec | checkpoint | idx | onnx) for a time budget
#   fuzz/run.sh ci                       build, replay fixed and known findings, fuzz each
#                                        target 20 s; non-zero on any finding (FUZZ_KNOWN=warn:
#                                        known ones are reported only; FUZZ_CI_SECONDS=N per
#                                        target). Run by scripts/test.sh.
#   fuzz/run.sh repro <target> <file>... run a target on given inputs only (no fuzzing)
#   fuzz/run.sh corpus                   regenerate the seed corpora (fuzz/make_corpus.sh)
#
# Each target is ReparoCore's sources plus one harness, compiled as ONE module with
# -sanitize=fuzzer,address (onnx: ReparoONNX's sources plus the harness, over SwiftProtobuf and
# ReparoCore built as separate modules, instrumented the same way). A finding (crash, Swift
# trap, ASan report, malloc over -malloc_limit_mb, RSS over -rss_limit_mb, one input over
# -timeout seconds) stops the run with a non-zero status and writes the input to
# fuzz/corpus/<target>/{crash,oom,timeout}-<sha1>.
# Once fixed, such a finding is renamed regression-<what>: it stays in the corpus as a seed,
# and 'ci' replays it and fails if it fails again. New interesting inputs go to
# fuzz/.work/<target>/ (not committed); the committed seeds stay in fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(load spec checkpoint idx onnx)
build_dir=fuzz/.build
work_dir=fuzz/.work
limits=(-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=1)

harness() {
    case "$1" in
        load) echo fuzz/Sources/FuzzLoad/main.swift ;;
        spec) echo fuzz/Sources/FuzzSpec/main.swift ;;
        checkpoint) echo fuzz/Sources/FuzzCheckpoint/main.swift ;;
        idx) echo fuzz/Sources/FuzzIDX/main.swift ;;
        onnx) echo fuzz/Sources/FuzzONNX/main.swift ;;
        *) echo "unknown target '$1' (targets: ${targets[*]})" >&2; exit 2 ;;
    esac
}

# The libFuzzer runtime that `swiftc -sanitize=fuzzer` links; absent from some toolchains.
fuzzer_runtime() {
    local resources
    resources=$(swiftc -print-target-info 2>/dev/null | sed -n 's/.*"runtimeResourcePath": "\(.*\)".*/\1/p' | head -n1)
    local candidate
    for candidate in "$resources"/clang/lib/linux/libclang_rt.fuzzer-x86_64.a \
                     "$resources"/clang/lib/linux/libclang_rt.fuzzer-"$(uname -m)".a; do
        [[ -f "$candidate" ]] && { echo "$candidate"; return 0; }
    done
    return 1
}

# The AVX-512 kernels (a C target of the package) as objects, instrumented like the rest and
# optimized, so that they run (unoptimized they switch themselves off).
build_kernels() {
    mkdir -p "$build_dir/kernels"
    local source
    for source in Sources/CVectorKernels/*.c; do
        clang -O2 -g -fsanitize=address,fuzzer-no-link -I Sources/CVectorKernels/include \
            -c "$source" -o "$build_dir/kernels/$(basename "$source" .c).o"
    done
}

build_one() {
    local target=$1
    mkdir -p "$build_dir"
    if [[ "$target" == onnx ]]; then build_onnx; return; fi
    # -O: the fuzzer needs speed; -g: symbolized stacks. ReparoCore is language mode 5
    # (Package.swift); -module-name ReparoCore makes each harness part of the engine's module.
    # lld instead of gold: gold warns about every ASan outlined check symbol. CZlib and
    # COpenBLAS are module maps over system headers (Package.swift's system-library targets).
    # shellcheck disable=SC2046
    swiftc -parse-as-library -swift-version 5 -module-name ReparoCore -O -g \
        -sanitize=fuzzer,address -use-ld=lld \
        -I Sources/COpenBLAS -I Sources/CZlib -I Sources/CVectorKernels/include -I Sources/CReparo/include \
        $(find Sources/ReparoCore -name '*.swift' | LC_ALL=C sort) "$(harness "$target")" \
        "$build_dir"/kernels/*.o -lopenblas -lz -o "$build_dir/fuzz-$target"
}

# SwiftProtobuf's sources, from the package checkout that `swift build` makes (resolved here,
# offline-capable like any build, when the clone has never been built).
protobuf_sources() {
    local dir=.build/checkouts/swift-protobuf/Sources/SwiftProtobuf
    [[ -d "$dir" ]] || swift package resolve >&2
    [[ -d "$dir" ]] || { echo "fuzz: no SwiftProtobuf sources in $dir after 'swift package resolve'" >&2; return 1; }
    echo "$dir"
}

# The onnx target: the importer lives in ReparoONNX, which imports SwiftProtobuf and ReparoCore
# as modules (Package.swift), so those two are built as instrumented static libraries first and
# the harness joins ReparoONNX's module (it can call the importer's internals). SwiftProtobuf's
# settings mirror its Package@swift-6.1.swift: language mode 6, ExistentialAny, the default
# traits as conditions, and -package-name for its `package` declarations. It takes minutes to
# compile and never changes with Reparo, so it is rebuilt only when its sources or flags do.
build_onnx() {
    local modules="$build_dir/onnx" sources
    mkdir -p "$modules"
    sources=$(protobuf_sources)
    local protobuf_flags=(-parse-as-library -swift-version 6 -module-name SwiftProtobuf -package-name swift_protobuf
                          -O -g -sanitize=fuzzer,address -enable-upcoming-feature ExistentialAny
                          -D BinaryDelimitedStreams -D FieldMaskUtilities)
    local stamp
    stamp=$( { swiftc --version 2>&1; echo "${protobuf_flags[*]}"; find "$sources" -name '*.swift' | LC_ALL=C sort | xargs cat; } | sha1sum)
    if [[ ! -f "$modules/libSwiftProtobuf.a" || "$(cat "$modules/SwiftProtobuf.stamp" 2>/dev/null)" != "$stamp" ]]; then
        rm -f "$modules/SwiftProtobuf.stamp"
        # shellcheck disable=SC2046
        swiftc "${protobuf_flags[@]}" -emit-module -emit-module-path "$modules/SwiftProtobuf.swiftmodule" \
            -emit-library -static $(find "$sources" -name '*.swift' | LC_ALL=C sort) \
            -suppress-warnings -o "$modules/libSwiftProtobuf.a" || return 1
        echo "$stamp" >"$modules/SwiftProtobuf.stamp"
    fi
    # shellcheck disable=SC2046
    swiftc -parse-as-library -swift-version 5 -module-name ReparoCore -O -g -sanitize=fuzzer,address \
        -I Sources/COpenBLAS -I Sources/CZlib -I Sources/CVectorKernels/include -I Sources/CReparo/include \
        -emit-module -emit-module-path "$modules/ReparoCore.swiftmodule" -emit-library -static \
        $(find Sources/ReparoCore -name '*.swift' | LC_ALL=C sort) -o "$modules/libReparoCore.a"
    # shellcheck disable=SC2046
    swiftc -parse-as-library -swift-version 5 -module-name ReparoONNX -O -g \
        -sanitize=fuzzer,address -use-ld=lld \
        -I "$modules" -I Sources/COpenBLAS -I Sources/CZlib -I Sources/CVectorKernels/include -I Sources/CReparo/include \
        $(find Sources/ReparoONNX -name '*.swift' | LC_ALL=C sort) "$(harness onnx)" \
        "$modules/libReparoCore.a" "$modules/libSwiftProtobuf.a" "$build_dir"/kernels/*.o \
        -lopenblas -lz -o "$build_dir/fuzz-onnx"
}

# build [target...]: the given targets (all by default), in parallel.
build() {
    local pids=() target status=0 chosen=("$@")
    ((${#chosen[@]})) || chosen=("${targets[@]}")
    for target in "${chosen[@]}"; do harness "$target" >/dev/null; done
    build_kernels || { echo "fuzz: kernel build failed" >&2; exit 1; }
    protobuf_sources >/dev/null || exit 1   # once, before the parallel builds
    for target in "${chosen[@]}"; do
        build_one "$target" & pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || status=1; done
    [[ $status -eq 0 ]] || { echo "fuzz: build failed" >&2; exit 1; }
    echo "fuzz: built ${chosen[*]/#/$build_dir/fuzz-}" >&2
}

dictionary() {
    case "$1" in
        spec) cat fuzz/dict/json.dict ;;
        idx) cat fuzz/dict/idx.dict ;;
        onnx) cat fuzz/dict/onnx.dict ;;
        *) cat fuzz/dict/safetensors.dict fuzz/dict/json.dict ;;
    esac
}

# run <target> <seconds> [extra libFuzzer flags...]
run() {
    local target=$1 seconds=$2; shift 2
    harness "$target" >/dev/null
    local binary="$build_dir/fuzz-$target"
    [[ -x "$binary" ]] || { echo "fuzz: $binary missing; run 'fuzz/run.sh build' first" >&2; exit 1; }
    mkdir -p "$work_dir/$target"
    dictionary "$target" >"$work_dir/$target.dict"
    # Seeds: the committed corpus without earlier findings (those are replayed by 'repro').
    local seeds="$work_dir/$target-seeds"
    rm -rf "$seeds"; mkdir -p "$seeds"
    find "fuzz/corpus/$target" -maxdepth 1 -type f ! -name 'crash-*' ! -name 'oom-*' ! -name 'timeout-*' \
        -exec cp {} "$seeds/" \;
    # detect_leaks=0 (ASan's and libFuzzer's): the Swift runtime's lazily built type metadata
    # looks like leaks to LeakSanitizer; leaks are measured by reliability/run.sh leaks instead.
    # SWIFT_BACKTRACE: the Swift runtime's own crash handler reads the stack in a way ASan
    # reports as a stack-buffer-underflow; libFuzzer's handler prints the stack instead.
    # malloc_context_size=0: recording every allocation's stack took ~15% of the time; a
    # heap report still shows the faulting stack (replay with 'repro' for the allocation's).
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:malloc_context_size=0}" \
        "$binary" "${limits[@]}" -detect_leaks=0 -max_total_time="$seconds" -print_final_stats=1 \
        -dict="$work_dir/$target.dict" -artifact_prefix="fuzz/corpus/$target/" "$@" "$work_dir/$target" "$seeds"
}

# repro <target> <file>... [libFuzzer flags]: runs the inputs once each, nothing else.
repro() {
    local target=$1; shift
    harness "$target" >/dev/null
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" \
        "$build_dir/fuzz-$target" "${limits[@]}" -detect_leaks=0 "$@"
}

# Fails (status 1) when an input still crashes, runs out of memory or takes over -timeout
# alone. A timeout counts only if it happens on each of 3 replays: on a busy 2-core machine
# an input that takes 0.3 s can exceed 1 s once.
still_fails() {
    local target=$1 input=$2 attempt
    case "$(basename "$input")" in
        timeout-*)
            for attempt in 1 2 3; do
                repro "$target" "$input" >/dev/null 2>&1 && return 1
            done
            return 0 ;;
        *) ! repro "$target" "$input" >/dev/null 2>&1 ;;
    esac
}

ci() {
    if ! runtime=$(fuzzer_runtime); then
        echo "fuzz: SKIPPED — this toolchain has no libFuzzer runtime (libclang_rt.fuzzer); nothing was fuzzed" >&2
        exit 0
    fi
    echo "fuzz: libFuzzer runtime $runtime" >&2
    build
    local seconds=${FUZZ_CI_SECONDS:-20} target input findings=()
    # 1. Fixed findings (fuzz/corpus/<target>/regression-*) must stay fixed: no way around it.
    local replayed=0
    for target in "${targets[@]}"; do
        for input in fuzz/corpus/"$target"/regression-*; do
            [[ -e "$input" ]] || continue
            replayed=$((replayed + 1))
            if still_fails "$target" "$input"; then
                echo "fuzz: REGRESSION: a fixed finding fails again: fuzz/run.sh repro $target $input" >&2
                findings+=("$input")
            fi
        done
    done
    echo "fuzz: $replayed fixed findings (regression-*) replayed" >&2
    # 2. Findings committed earlier and not fixed yet (fuzz/corpus/<target>/crash-*, oom-*,
    #    timeout-*) fail too; FUZZ_KNOWN=warn reports them without failing (while a fix is
    #    under way). Once fixed, rename one to regression-<what> rather than deleting it.
    for target in "${targets[@]}"; do
        for input in fuzz/corpus/"$target"/{crash,oom,timeout}-*; do
            [[ -e "$input" ]] || continue
            if still_fails "$target" "$input"; then
                echo "fuzz: KNOWN FINDING still reproduces: fuzz/run.sh repro $target $input" >&2
                [[ "${FUZZ_KNOWN:-fail}" == warn ]] || findings+=("$input")
            else
                echo "fuzz: known finding $input no longer reproduces (fixed? rename it regression-<what>)" >&2
            fi
        done
    done
    # 3. A short fuzzing run per target.
    mkdir -p "$work_dir"   # absent in a fresh clone; the logs go there
    for target in "${targets[@]}"; do
        echo "fuzz: $target for $seconds s" >&2
        local log="$work_dir/$target-ci.log"
        if run "$target" "$seconds" 2>"$log"; then
            grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log" | tr '\n' ' ' >&2; echo >&2
            continue
        fi
        input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
        if [[ -n "$input" && -e "$input" ]] && ! still_fails "$target" "$input"; then
            mkdir -p "$work_dir/unconfirmed"
            mv "$input" "$work_dir/unconfirmed/"
            echo "fuzz: $target: $(basename "$input") did not reproduce alone (machine load); kept in $work_dir/unconfirmed/" >&2
            continue
        fi
        tail -n 60 "$log" >&2
        findings+=("${input:-$target (no input saved; see $log)}")
    done
    if ((${#findings[@]})); then
        echo "fuzz: FINDINGS (${#findings[@]}): ${findings[*]}" >&2
        echo "fuzz: replay one with: fuzz/run.sh repro <target> <file>" >&2
        exit 1
    fi
    echo "fuzz: ${#targets[@]} targets, no findings" >&2
}

case "${1:-}" in
    build) shift; build "$@" ;;
    run) [[ $# -ge 3 ]] || { echo "usage: fuzz/run.sh run <target> <seconds> [libFuzzer flags]" >&2; exit 2; }
         shift; run "$@" ;;
    repro) [[ $# -ge 3 ]] || { echo "usage: fuzz/run.sh repro <target> <file>..." >&2; exit 2; }
           shift; repro "$@" ;;
    ci) ci ;;
    corpus) exec fuzz/make_corpus.sh ;;
    *) sed -n '4,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
