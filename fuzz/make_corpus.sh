#!/usr/bin/env bash
# Regenerates the seed corpora (fuzz/corpus/{load,spec,checkpoint}/) from real files made
# through the C API: builds libreparo.so with scripts/build.sh, then runs make_corpus.py;
# fuzz/corpus/idx/ with make_idx_corpus.py (standard library only, no build); and
# fuzz/corpus/onnx/ with make_onnx_corpus.py (numpy and onnx, torch optional: .venv's python,
# see scripts/install-deps.sh --tests).
# Deterministic for a given library. Findings (crash-*, …) and fixed ones (regression-*) are
# left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
lib=$(bash scripts/build.sh)
python3 fuzz/make_corpus.py "$lib"
python3 fuzz/make_idx_corpus.py
python=python3
[[ -x .venv/bin/python ]] && python=.venv/bin/python
if "$python" -c 'import numpy, onnx' 2>/dev/null; then
    "$python" fuzz/make_onnx_corpus.py
else
    echo "make_corpus: $python has no numpy/onnx: fuzz/corpus/onnx/ left as it is" >&2
fi
du -sh fuzz/corpus/* >&2
