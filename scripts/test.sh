#!/usr/bin/env bash
# Install what is missing, then run the static checks and the test suite.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/test_cli.py -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/check
exec .venv/bin/python -m pytest -p no:cacheprovider --durations=10 "$@"
