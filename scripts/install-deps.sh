#!/usr/bin/env bash
# Installs what Reparo needs on a fresh Debian machine with Swift: OpenBLAS (build and run),
# and the Python packages the tests and the plot use. Idempotent; needs root for apt.
set -euo pipefail
if ! dpkg -s libopenblas-dev pkg-config >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev pkg-config >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check numpy pytest safetensors matplotlib
