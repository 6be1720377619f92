#!/usr/bin/env bash
# Run a command against a throwaway broker on its own port and data
# directory (`make test`, `make soak`), or a cluster of KAFKA_BROKERS; the
# brokers are stopped whatever happens, and the command's exit status is
# returned.
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
brokers="${KAFKA_BROKERS:-1}"
if [ "$brokers" -gt 1 ]; then  # a cluster (KAFKA_BROKERS=3 make soak): every broker is a bootstrap server
  export HUMIDITY_TEST_KAFKA_BROKERS="$brokers"
  HUMIDITY_TEST_KAFKA_BOOTSTRAP="$(for n in $(seq 0 $((brokers - 1))); do printf '127.0.0.1:%s,' $((port + n)); done)"
  export HUMIDITY_TEST_KAFKA_BOOTSTRAP="${HUMIDITY_TEST_KAFKA_BOOTSTRAP%,}"
fi
"$@"
