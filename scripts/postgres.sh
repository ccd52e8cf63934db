#!/usr/bin/env bash
# `postgres.sh start` starts Debian's PostgreSQL cluster by hand (no init system here) and prints an admin URL for
# the tests; `postgres.sh stop` stops it again.
set -euo pipefail
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
case "${1:-start}" in
  start)
    pg_lsclusters -h | grep -q . || pg_createcluster "$ver" main >/dev/null
    pg_lsclusters -h | awk '{print $4}' | grep -q online || pg_ctlcluster "$ver" main start
    su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='neutrino'\"" | grep -q 1 || \
      su postgres -c "psql -qc \"CREATE ROLE neutrino LOGIN SUPERUSER PASSWORD 'neutrino'\"" >/dev/null
    echo "postgresql://neutrino:neutrino@127.0.0.1:5432/postgres" ;;
  stop)
    pg_ctlcluster "$ver" main stop 2>/dev/null || true ;;
esac
