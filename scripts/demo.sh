#!/usr/bin/env bash
# Install what is missing, then run `promlab demo`: scrape node_exporter and an instrumented app
# into data/, query the store and plot it. Extra arguments go to it, e.g. --duration 60.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/promlab demo "$@"
