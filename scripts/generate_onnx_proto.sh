#!/usr/bin/env bash
# Regenerates Sources/ReparoONNX/onnx.pb.swift from the official onnx.proto. Not a build step:
# the generated file is committed; run this only to move to another onnx.proto.
#
# Generated from onnx 1.23.2's onnx/onnx.proto (the copy in the Python package) with
# protoc (Debian protobuf-compiler) and protoc-gen-swift 1.39.0 (apple/swift-protobuf, the
# version Package.swift depends on: build it with `swift build -c release --product protoc-gen-swift`).
#
# Usage: scripts/generate_onnx_proto.sh [onnx.proto] [protoc-gen-swift]
set -euo pipefail
cd "$(dirname "$0")/.."
proto=${1:-$(python3 -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "onnx.proto"))')}
plugin=${2:-$(command -v protoc-gen-swift)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/onnx"
cp "$proto" "$work/onnx/onnx.proto"
protoc --plugin=protoc-gen-swift="$plugin" --proto_path="$work" \
    --swift_opt=Visibility=Internal --swift_out="$work" "$work/onnx/onnx.proto"
cp "$work/onnx/onnx.pb.swift" Sources/ReparoONNX/onnx.pb.swift
echo "wrote Sources/ReparoONNX/onnx.pb.swift from $proto"
