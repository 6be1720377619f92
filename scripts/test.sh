#!/usr/bin/env bash
# `make test`: a throwaway broker on its own port and data directory, the
# whole pytest suite against it, and the broker stopped whatever happens.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
port="${TEST_KAFKA_PORT:-19092}"
data="$(mktemp -d "${TMPDIR:-/tmp}/humidity-test-kafka.XXXXXX")"
export KAFKA_PORT="$port" KAFKA_DATA_DIR="$data"
cleanup() {
  scripts/kafka.sh down >/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
scripts/kafka.sh up || exit 1
export HUMIDITY_TEST_KAFKA_PORT="$port" HUMIDITY_TEST_KAFKA_DATA_DIR="$data"
"$root/.venv/bin/python" -m pytest "$@"
status=$?
exit $status
