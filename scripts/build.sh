#!/usr/bin/env bash
# Builds the C library and the `reparo` command-line tool (release) with the Swift runtime
# linked statically, so C programs and Python load the library, and the tool runs, on a
# machine without Swift's libraries on the loader path. Prints the library's path.
#   scripts/build.sh            → .build-release/release/libreparo.so and …/release/reparo
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="${REPARO_SCRATCH:-.build-release}"
# One set of flags for every product (bench/run.sh uses it too): a build with other -Xswiftc
# flags would recompile ReparoCore.
flags=(-c release --scratch-path "$scratch" -Xswiftc -static-stdlib
       -Xlinker -l_FoundationCollections -Xlinker -l_FoundationCShims -Xlinker -lswiftSynchronization)
# SwiftPM names a library file after its product, and the product `reparo` is the tool, so the
# library is the product `reparo-capi`, linked with the SONAME libreparo.so and published
# under that name. A copy, not a symlink: the engine finds the bundled data/ beside the path
# ending in /libreparo.so in /proc/self/maps, which shows a symlink's target. The rename is
# atomic, so a program that has the old file loaded keeps running.
swift build "${flags[@]}" --product reparo-capi -Xlinker -soname=libreparo.so >&2
swift build "${flags[@]}" --product reparo >&2
release="$scratch/release"
cp "$release/libreparo-capi.so" "$release/libreparo.so.tmp"
mv -f "$release/libreparo.so.tmp" "$release/libreparo.so"
echo "$(pwd)/$release/libreparo.so"
