#!/usr/bin/env bash
# The main job, from a fresh clone: install dependencies, build, and run the end-to-end
# pipeline (train a dense teacher on the bundled digits → prune at 0.5/0.7/0.9 → vanilla vs
# expand + SP-KD fine-tuning, 5 seeds → collapse → test accuracy). Writes results/.
# Extra arguments go to `reparo reproduce` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
# The plot runs `python3` from the PATH; matplotlib lives in install-deps.sh's .venv.
export PATH="$(pwd)/.venv/bin:$PATH"
exec .build-release/release/reparo reproduce --out-dir results "$@"
