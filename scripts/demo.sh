#!/usr/bin/env bash
# Install what is missing, then run `promlab demo`: the demo targets scraped into data/ with the
# demo rules, and JupyterLab opened on quickstart.ipynb (the URL with its token is printed; Ctrl-C
# stops everything and leaves data/). Extra arguments go to it, e.g. --headless (the terminal
# demo: scrape, import, query, plot), --no-browser, --duration 60.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/promlab demo "$@"
