#!/usr/bin/env bash
# Issue 19 item 6: is the bimodal batch-1 time the host's vCPU placement? Alternates, ROUNDS
# times (default 12): the core-to-core round trip between CPUs 0 and 1 (core_to_core.c), the
# pruned 0.7 VGG-16 (collapsed, BN folded) batch-1 inference with 2 threads and with 1, and the
# round trip again. Run on a quiet machine from the checkout after scripts/build.sh.
#   bench/bimodal/run.sh            ROUNDS=30 bench/bimodal/run.sh
set -euo pipefail
cd "$(dirname "$0")"
python="${PYTHON:-../../.venv/bin/python}"
work=$(mktemp -d /tmp/reparo-bimodal-XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -O2 -pthread core_to_core.c -o "$work/core_to_core"
"$python" - "$work/pruned.safetensors" <<'PY'
import pathlib, sys
sys.path.insert(0, str(pathlib.Path.cwd().parents[1] / "bindings" / "python"))
import reparo
with reparo.Model.create({"preset": "vgg16"}) as dense, dense.prune(ratio=0.7) as pruned:
    pruned.expand(rate=4)
    pruned.collapse(fold_batchnorm=True)
    pruned.save(sys.argv[1])
PY
median() { "$python" infer_probe.py "$work/pruned.safetensors" "$1" | sed 's/.*"median_ms": \([0-9.]*\).*/\1/'; }
echo "| round | round trip before (ns) | 2 threads (ms) | 1 thread (ms) | round trip after (ns) |"
echo "|---:|---:|---:|---:|---:|"
for ((i = 1; i <= ${ROUNDS:-12}; i++)); do
    before=$("$work/core_to_core"); two=$(median 2); one=$(median 1); after=$("$work/core_to_core")
    printf '| %d | %s | %.3f | %.3f | %s |\n' "$i" "$before" "$two" "$one" "$after"
done
