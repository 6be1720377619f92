#!/usr/bin/env bash
# `make run`: Kafka (started here only if nothing answers at HUMIDITY_BROKER),
# one worker in the foreground and the simulator beside it. Ctrl-C stops what
# this script started, and nothing else.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
faust="$root/.venv/bin/faust"
broker="${HUMIDITY_BROKER:-kafka://127.0.0.1:${KAFKA_PORT:-9092}}"
export HUMIDITY_BROKER="$broker"
first="${broker%%,*}"; first="${first#kafka://}"
started_kafka=0
if ! "$root/.venv/bin/python" scripts/kafka_ready.py --bootstrap "$first" --timeout 3; then
  case "$first" in
    127.0.0.1:*|localhost:*)
      export KAFKA_PORT="${first##*:}"
      scripts/kafka.sh up || exit 1
      started_kafka=1 ;;
    *) echo "run: no Kafka answers at $broker" >&2; exit 1 ;;
  esac
fi
worker_pid=""; sim_pid=""
stop() {
  trap - INT TERM EXIT
  [ -n "$sim_pid" ] && kill -TERM "$sim_pid" 2>/dev/null
  [ -n "$worker_pid" ] && kill -TERM "$worker_pid" 2>/dev/null
  for pid in $sim_pid $worker_pid; do
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null
  done
  [ "$started_kafka" = 1 ] && scripts/kafka.sh down
  exit 0
}
trap stop INT TERM EXIT
# A first run (no data directory yet) starts with 6 hours of history, so the
# page shows trends at once; later runs only add live readings.
backfill=()
[ -d "${HUMIDITY_DATA_DIR:-./data}" ] || backfill=(--backfill 6)
"$faust" -A app worker -l info &
worker_pid=$!
"$faust" -A app simulate "${backfill[@]}" >/dev/null 2>"${TMPDIR:-/tmp}/humidity-simulate.log" &
sim_pid=$!
port="${HUMIDITY_WEB_PORT:-6066}"; bind="${HUMIDITY_WEB_BIND:-127.0.0.1}"
cat <<MSG

  humidity service running (worker pid $worker_pid, simulator pid $sim_pid)
  summaries every ${HUMIDITY_INTERVAL:-3.0} s: in this log and on topic ${HUMIDITY_RESULTS_TOPIC:-humidity-summaries} at $broker
  web page: http://$bind:$port/   (latest summary as JSON: /api/summary)
  Ctrl-C stops everything started here.

MSG
wait "$worker_pid"
