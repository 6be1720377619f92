#!/usr/bin/env bash
# The whole suite, inside scripts/throwaway_kafka.sh (`make test`): first
# every test but the time-bound ones in parallel processes (most tests wait
# on Kafka and workers, not on the CPU), then the time-bound ones (marker
# `alone`) one at a time, with the machine to themselves. Each part prints
# its 15 slowest tests. Exit status: the first part that failed.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$root/.venv/bin/python"
workers="${TEST_WORKERS:-4}"
"$python" -m pytest -n "$workers" --dist loadgroup --durations=15 -m "not alone" "$@"
parallel=$?
"$python" -m pytest --durations=15 -m alone "$@"
alone=$?
[ "$alone" -eq 5 ] && alone=0  # no time-bound test among those asked for
[ "$parallel" -eq 5 ] && parallel=0
[ "$parallel" -ne 0 ] && exit "$parallel"
exit "$alone"
