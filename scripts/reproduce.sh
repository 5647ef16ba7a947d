#!/usr/bin/env bash
# The main job, from a fresh clone: install dependencies, build, and run the end-to-end
# pipeline on Fashion-MNIST (train a dense VGG-16 teacher, or reuse it from results/ → prune
# at 0.5/0.7/0.9/0.95 → fine-tune four ways (vanilla, expand + SP-KD, expand, SP-KD) over 3
# seeds → collapse → test accuracy with paired 95 % intervals). Writes results/. Extra
# arguments go to `reparo reproduce` (see --help), e.g. --protocol long, --dataset digits.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
# The plot runs `python3` from the PATH; matplotlib lives in install-deps.sh's .venv.
export PATH="$(pwd)/.venv/bin:$PATH"
exec .build-release/release/reparo reproduce --out-dir results "$@"
