#!/usr/bin/env bash
# The project's virtualenv (evt installed editable with its extras, pinned by
# constraints.txt), created or brought up to date. Needs no root: `make setup` calls it, and
# so do `make lint` and `make test-fast` on a machine where setup cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${EVT_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

log() { printf '[venv] %s\n' "$*"; }

if [ ! -d "$VENV" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import evt, hydra, docker, pandas, rich, psutil, prometheus_client, pytest, hypothesis, scipy, matplotlib, ray, hydra_plugins.hydra_ray_launcher' 2>/dev/null \
   || [ ! -x "$VENV/bin/ruff" ] || [ ! -x "$VENV/bin/mypy" ] \
   || [ pyproject.toml -nt "$VENV/.evt-installed" ] || [ constraints.txt -nt "$VENV/.evt-installed" ]; then
  log "installing evt into $VENV"
  "$VENV/bin/pip" install -q -c constraints.txt --config-settings editable_mode=compat -e '.[test,plots,report,remote]' 2>&1 | grep -v '^WARNING: Location' || true
  "$VENV/bin/python" -c 'import evt, hydra, docker, pandas, rich, psutil, prometheus_client, pytest, hypothesis, scipy, matplotlib, ray, hydra_plugins.hydra_ray_launcher' # fail loudly if the install did not take
  touch "$VENV/.evt-installed"
fi
