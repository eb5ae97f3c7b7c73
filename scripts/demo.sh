#!/usr/bin/env bash
# Install what is missing, then run `promlab demo` (extra arguments go to it, e.g. --hours 24).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/promlab demo "$@"
