#!/usr/bin/env bash
# Install what promlab needs on a fresh Debian machine with Python 3.11. Idempotent: each step
# is skipped when its result is already there.
#   1. (as root, only if a binary is missing) Debian packages: Prometheus, promtool,
#      node_exporter, Pushgateway, Alertmanager, Chromium + ChromeDriver, DejaVu fonts;
#   2. a virtualenv in .venv with `pip install -e .[dev]` (redone when pyproject.toml changes).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(prometheus prometheus-node-exporter prometheus-pushgateway prometheus-alertmanager
              chromium chromium-driver fonts-dejavu-core)
NEEDED=(/usr/bin/prometheus /usr/bin/promtool /usr/bin/prometheus-node-exporter
        /usr/bin/prometheus-pushgateway /usr/bin/prometheus-alertmanager /usr/bin/chromium
        /usr/bin/chromedriver /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf)

missing=()
for f in "${NEEDED[@]}"; do [ -e "$f" ] || missing+=("$f"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages (missing: ${missing[*]})"
    # No service manager here: keep package scripts from starting the daemons they install.
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && own_policy=1
    fi
    trap '[ "$own_policy" = 1 ] && rm -f "$policy"' EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${APT_PACKAGES[@]}"
  else
    echo "setup: not root, cannot install ${APT_PACKAGES[*]}; tests that need them will be skipped" >&2
  fi
fi

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null; then PY=$cand; break; fi
  done
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -c 'import sys; assert sys.version_info >= (3, 11), "promlab needs Python >= 3.11"'
  echo "setup: creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi

stamp=.venv/.promlab-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -x .venv/bin/promlab ]; then
  echo "setup: pip install -e .[dev]"
  if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' > .venv/pip-install.log 2>&1; then
    cat .venv/pip-install.log >&2
    echo "setup: pip install failed" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
