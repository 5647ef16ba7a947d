#!/usr/bin/env bash
# Regenerates the seed corpora (fuzz/corpus/{load,spec,checkpoint}/) from real files made
# through the C API: builds libreparo.so with scripts/build.sh, then runs make_corpus.py; and
# fuzz/corpus/idx/ with make_idx_corpus.py (standard library only, no build).
# Deterministic for a given library. Findings (crash-*, …) and fixed ones (regression-*) are
# left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
lib=$(bash scripts/build.sh)
python3 fuzz/make_corpus.py "$lib"
python3 fuzz/make_idx_corpus.py
du -sh fuzz/corpus/* >&2
