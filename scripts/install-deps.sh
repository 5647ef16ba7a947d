#!/usr/bin/env bash
# Installs what Reparo needs on a fresh Debian machine with Swift: OpenBLAS and zlib (build and
# run), Fashion-MNIST (dataset-fashion-mnist: the default data of the main job, four gzipped
# IDX files in /usr/share/datasets/fashion-mnist), and the Python packages the tests and the
# plot use. Idempotent; needs root for apt.
set -euo pipefail
packages=(libopenblas-dev zlib1g-dev pkg-config dataset-fashion-mnist)
if ! dpkg -s "${packages[@]}" >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check numpy pytest safetensors matplotlib
