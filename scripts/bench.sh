#!/usr/bin/env bash
# `make bench`: the local broker (started here only if nothing answers on
# KAFKA_PORT, and then stopped again), and bench/run.py against it.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
port="${KAFKA_PORT:-9092}"
started=0
if ! .venv/bin/python scripts/kafka_ready.py --bootstrap "127.0.0.1:$port" --timeout 3; then
  scripts/kafka.sh up || exit 1
  started=1
fi
cleanup() { [ "$started" = 1 ] && scripts/kafka.sh down; }
trap cleanup EXIT
trap 'exit 130' INT TERM
script=bench/run.py
if [ "${1:-}" = "--profile" ]; then script=bench/profile.py; shift; fi
.venv/bin/python "$script" --bootstrap "127.0.0.1:$port" "$@"
