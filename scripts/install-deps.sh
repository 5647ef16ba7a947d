#!/usr/bin/env bash
# Installs what Reparo needs on a fresh Debian machine with Swift: OpenBLAS and zlib (build and
# run), Fashion-MNIST (dataset-fashion-mnist: the default data of the main job, four gzipped
# IDX files in /usr/share/datasets/fashion-mnist), and, in a virtual environment .venv at the
# repository root (never system-wide), the Python packages: numpy and matplotlib for the main
# job's plot; with --tests also pytest, safetensors, and torch, onnx, onnxruntime, onnxscript
# (torch.onnx.export's default exporter needs it) for the interop, agreement and ONNX tests
# (torch from PyPI is ≈ 5.6 GB with its CUDA libraries and takes 2–3 minutes to install, so
# the main job alone does not pull it in). Idempotent: pip runs only when .venv cannot import
# what is asked for. Needs root for apt.
set -euo pipefail
cd "$(dirname "$0")/.."
modules=(numpy matplotlib)
if [ "${1:-}" = "--tests" ]; then
    modules+=(pytest safetensors torch onnx onnxruntime onnxscript)
fi
packages=(libopenblas-dev zlib1g-dev pkg-config dataset-fashion-mnist)
# The arm64 C sysroot of scripts/check_arm64.sh (the tests cross-compile the kernels for arm64).
[ "${1:-}" = "--tests" ] && packages+=(libc6-dev-arm64-cross)
# Debian's own python3 makes virtual environments only with python3-venv.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || packages+=(python3-venv)
if ! dpkg -s "${packages[@]}" >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
if ! .venv/bin/python -c "import $(IFS=,; echo "${modules[*]}")" >/dev/null 2>&1; then
    echo "install-deps: installing ${modules[*]} into .venv" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "${modules[@]}"
fi
