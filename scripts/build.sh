#!/usr/bin/env bash
# Builds libreparo.so (release) with the Swift runtime linked statically, so C programs and
# Python load it on a machine without Swift's libraries on the loader path. Prints the path.
#   scripts/build.sh            → .build-release/release/libreparo.so (also: the CLI)
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="${REPARO_SCRATCH:-.build-release}"
swift build -c release --scratch-path "$scratch" --product reparo \
    -Xswiftc -static-stdlib \
    -Xlinker -l_FoundationCollections -Xlinker -l_FoundationCShims -Xlinker -lswiftSynchronization >&2
swift build -c release --scratch-path "$scratch" --product reparo-cli >&2
echo "$(pwd)/$scratch/release/libreparo.so"
