#!/usr/bin/env bash
# Installs what Reparo needs on a fresh Debian machine with Swift: OpenBLAS and zlib (build and
# run), Fashion-MNIST (dataset-fashion-mnist: the default data of the main job, four gzipped
# IDX files in /usr/share/datasets/fashion-mnist), and, in a virtual environment .venv at the
# repository root (never system-wide), the Python packages the tests and the plot use: numpy,
# pytest, safetensors, matplotlib, and torch, onnx, onnxruntime for the interop and agreement
# tests. Idempotent: pip runs only when .venv cannot import them all. Needs root for apt.
set -euo pipefail
packages=(libopenblas-dev zlib1g-dev pkg-config dataset-fashion-mnist)
if ! dpkg -s "${packages[@]}" >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
if ! .venv/bin/python -c 'import torch, onnx, onnxruntime, numpy, pytest, safetensors, matplotlib' \
        >/dev/null 2>&1; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        numpy pytest safetensors matplotlib torch onnx onnxruntime
fi
