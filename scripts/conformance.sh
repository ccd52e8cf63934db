#!/usr/bin/env bash
# `make conformance`: upstream OpenStack's network API tests (tempest.api.network and neutron_tempest_plugin.api)
# against a throwaway `neutrino up` lab, with the extensions the server advertises. Tempest and the plugin live in
# their own venv (CONFORMANCE_VENV); the lab gets a temporary state dir and free ports and is always taken down.
# Prints passed/failed/skipped per module, the pass rate and every failure's reason, grouped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${CONFORMANCE_VENV:-$ROOT/.venv-conformance}
CONCURRENCY=${CONFORMANCE_CONCURRENCY:-2}
REGEX=${CONFORMANCE_REGEX:-'^(tempest\.api\.network|neutron_tempest_plugin\.api)\.'}
OUT=${CONFORMANCE_OUT:-$ROOT/build/conformance}
EXTENSIONS=${CONFORMANCE_EXTENSIONS:-advertised}     # or "all": every test, as if every extension were there

if [ ! -x "$VENV/bin/tempest" ] || ! "$VENV/bin/python" -c 'import neutron_tempest_plugin' 2>/dev/null; then
  echo "installing tempest and neutron-tempest-plugin in $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'tempest>=47' 'neutron-tempest-plugin>=3.3'
fi

free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
STATE=$(mktemp -d /tmp/neutrino-conformance.XXXXXX)
export NEUTRINO_STATE_DIR=$STATE
WORK=$STATE/tempest
DOWN_LOG=$(mktemp /tmp/neutrino-conformance-down.XXXXXX)
cleanup() {   # a second `down` finishes what a first one could not (a device still busy on a loaded machine)
  if .venv/bin/neutrino down >"$DOWN_LOG" 2>&1 || .venv/bin/neutrino down >>"$DOWN_LOG" 2>&1; then
    rm -f "$DOWN_LOG"
  else
    echo "neutrino down failed (log: $DOWN_LOG); state kept in $STATE"
  fi
}
trap cleanup EXIT

.venv/bin/neutrino up --port "$(free_port)" --identity-port "$(free_port)" > "$STATE/up.log" 2>&1 \
  || { cat "$STATE/up.log"; exit 1; }
"$VENV/bin/tempest" init --workspace-path "$STATE/workspaces.yaml" --name conformance "$WORK" >/dev/null 2>&1
.venv/bin/python scripts/conformance_conf.py "$STATE" "$WORK/etc/tempest.conf" "$EXTENSIONS"
mkdir -p "$OUT"
start=$(date +%s)
(cd "$WORK" && TEMPEST_CONFIG_DIR="$WORK/etc" "$VENV/bin/tempest" run --concurrency "$CONCURRENCY" --regex "$REGEX" --subunit \
   > "$OUT/results.subunit" 2> "$OUT/tempest.stderr") || true
cp "$WORK/etc/tempest.conf" "$OUT/"
cp "$STATE/server.log" "$OUT/" 2>/dev/null || true
echo "ran in $(( $(date +%s) - start )) s; subunit stream, tempest.conf and server log in $OUT"
"$VENV/bin/python" scripts/conformance_report.py "$OUT/results.subunit"
