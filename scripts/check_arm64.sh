#!/usr/bin/env bash
# Cross-compile check for arm64 (no arm64 machine or Swift arm64 stdlib needed): every C file of
# Sources/CVectorKernels compiled with `clang --target=aarch64-linux-gnu` against Debian's
# arm64 sysroot (libc6-dev-arm64-cross), warnings as errors, optimized and not; the objects
# linked into one shared library with no undefined symbols beyond libc (so every entry point
# of vector_kernels.h has a non-x86 body); and a grep of the Swift and C sources for x86-only
# constructs outside an x86 guard. The Swift code itself cannot be type-checked for arm64 here:
# `swiftc -target aarch64-unknown-linux-gnu -typecheck` stops at "could not find module
# 'Swift' for target 'aarch64-unknown-linux-gnu'" (the toolchain ships the x86_64 stdlib only).
# Takes ≈ 2 s. Exit status 0 when everything passes.
set -euo pipefail
cd "$(dirname "$0")/.."
sysroot=/usr/aarch64-linux-gnu
if [ ! -d "$sysroot/include" ]; then
    echo "check_arm64: no arm64 sysroot at $sysroot (Debian: apt-get install libc6-dev-arm64-cross)" >&2
    exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
flags=(--target=aarch64-linux-gnu --sysroot="$sysroot" -isystem "$sysroot/include" -ISources/CVectorKernels/include
       -Wall -Wextra -Werror -fPIC)
for optimization in -O0 -O2; do
    for source in Sources/CVectorKernels/*.c; do
        object="$work/$(basename "$source" .c)$optimization.o"
        if ! clang "${flags[@]}" "$optimization" -c "$source" -o "$object"; then
            echo "check_arm64: $source does not compile for arm64 ($optimization)" >&2
            failed=1
        fi
    done
done
# One library from the optimized objects: an entry point left without an arm64 body is an
# undefined symbol here.
if [ "$failed" = 0 ] && ! clang --target=aarch64-linux-gnu -fuse-ld=lld -shared -nostdlib \
        -Wl,--no-undefined -Wl,--allow-shlib-undefined "$work"/*-O2.o -L"$sysroot/lib" -lc \
        -o "$work/libCVectorKernels.so"; then
    echo "check_arm64: the arm64 objects leave symbols undefined" >&2
    failed=1
fi
# x86-only constructs: in C, intrinsics and their headers outside `#if defined(__x86_64__)`
# files (each x86 kernel file is wrapped whole, so a file using them must carry that guard);
# in Swift, Float80 (x86 only), x86 intrinsic modules and SIMD types from them.
for source in Sources/*/*.c Sources/*/*.h Sources/*/include/*.h; do
    [ -f "$source" ] || continue
    if grep -qE '_mm(256|512)?_|__m(128|256|512)|immintrin\.h|cpuid\.h|__builtin_ia32' "$source" \
        && ! grep -qE '#if defined\(__x86_64__\)|defined\(__i386__\)' "$source"; then
        echo "check_arm64: $source uses x86 intrinsics without an x86 guard" >&2
        failed=1
    fi
done
if grep -rnE '\bFloat80\b|_Builtin_intrinsics|\b_mm(256|512)?_|__m(128|256|512)' Sources bench/Sources --include='*.swift' \
        | grep -vE '#if arch\(x86_64\)'; then
    echo "check_arm64: x86-only constructs in Swift sources (above)" >&2
    failed=1
fi
[ "$failed" = 0 ] && echo "check_arm64: CVectorKernels compiles and links for aarch64-linux-gnu; no x86-only Swift"
exit "$failed"
