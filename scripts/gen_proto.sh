#!/usr/bin/env bash
# Regenerate promlab/remote/proto/*_pb2.py(i) from the .proto files (checked in, so the wheel and
# a fresh checkout need no protoc). Needs grpcio-tools in the venv: pip install grpcio-tools.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=promlab/remote/proto
"${PYTHON:-.venv/bin/python}" -m grpc_tools.protoc -I"$dir" --python_out="$dir" --pyi_out="$dir" "$dir"/*.proto
# The exposition format (io.prometheus.client), for protobuf scrapes.
edir=promlab/exposition/proto
"${PYTHON:-.venv/bin/python}" -m grpc_tools.protoc -I"$edir" --python_out="$edir" --pyi_out="$edir" "$edir"/metrics.proto
# protoc writes top-level imports between the generated modules; make them package-relative.
sed -i -E 's/^import (prometheus_[a-z_]+_pb2) as ([A-Za-z0-9_]+)$/from . import \1 as \2  # noqa: F401/' "$dir"/*_pb2.py
