#!/usr/bin/env bash
# Regenerates Sources/RepriseOTLP/Generated from OpenTelemetry's .proto files. Run by hand when the
# OTLP version moves; the output is committed, so builds (and CI) need neither protoc nor the plugin.
#
#   scripts/generate-otlp.sh OTEL_PROTO_DIR
#
# OTEL_PROTO_DIR: a checkout of github.com/open-telemetry/opentelemetry-proto (the files were last
# generated from v1.11.0-16-gac2c4b5). Needs `protoc` (apt-get install protobuf-compiler) and
# `protoc-gen-swift` built from apple/swift-protobuf at the version Package.swift names:
#   git clone https://github.com/apple/swift-protobuf && cd swift-protobuf && git checkout 1.39.0 &&
#   swift build -c release --product protoc-gen-swift
# then PROTOC_GEN_SWIFT=<that>/.build/release/protoc-gen-swift.
set -euo pipefail
SRC=${1:?usage: scripts/generate-otlp.sh OTEL_PROTO_DIR}
PLUGIN=${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift)}
OUT=$(cd "$(dirname "$0")/.." && pwd)/Sources/RepriseOTLP/Generated
rm -f "$OUT"/*.pb.swift
protoc --plugin=protoc-gen-swift="$PLUGIN" --swift_opt=Visibility=Public --swift_opt=FileNaming=PathToUnderscores \
  --swift_out="$OUT" -I "$SRC" \
  opentelemetry/proto/collector/trace/v1/trace_service.proto opentelemetry/proto/trace/v1/trace.proto \
  opentelemetry/proto/common/v1/common.proto opentelemetry/proto/resource/v1/resource.proto
echo "generated into $OUT"
