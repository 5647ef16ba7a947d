#!/usr/bin/env bash
# Runs every test: the Swift suite, then (against the release libreparo.so, with .venv's
# python) the Python bindings' tests, which also build and run the C examples and the README's commands, then a
# short fuzzing pass (fuzz/run.sh ci: every fixed or known finding replayed, each libFuzzer
# target fuzzed $FUZZ_CI_SECONDS seconds, 20 by default; skipped with a message when the
# toolchain has no libFuzzer runtime).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --tests
echo "== Swift tests"
# The C kernels (Sources/CVectorKernels) are compiled optimized even in this debug build:
# unoptimized they switch themselves off (see vector_kernels.h), and the suite should test
# the code the release library runs. The variable makes a test fail if they stay off anyway
# on an AVX-512 CPU.
swift build --build-tests -Xcc -O2
REPARO_EXPECT_VECTOR_KERNELS=1 swift test --skip-build
echo "== arm64 cross-compile check (C kernels, x86-only constructs)"
bash scripts/check_arm64.sh
echo "== Release library and CLI"
bash scripts/build.sh
echo "== Python, C examples, README"
# The virtual environment's interpreter (install-deps.sh made it): the tests' subprocesses use
# sys.executable, and `python3` on the PATH (the README's main job plots with it) is the venv's.
PATH="$(pwd)/.venv/bin:$PATH" .venv/bin/python -m pytest -q bindings/python/tests
echo "== Fuzzing (short pass)"
FUZZ_CI_SECONDS="${FUZZ_CI_SECONDS:-20}" bash fuzz/run.sh ci
