#!/usr/bin/env bash
# The whole suite, inside scripts/throwaway_kafka.sh (`make test`): first
# every test but the time-bound ones in parallel processes (most tests wait
# on Kafka and workers, not on the CPU), then the time-bound ones (marker
# `alone`) one at a time, with the machine to themselves, and last the tests
# without a broker again on the interpreted core (HUMIDITY_CORE=interpreted),
# so that the compiled and the interpreted builds pass alike. Each part
# prints its 15 slowest tests. Exit status: the first part that failed.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$root/.venv/bin/python"
workers="${TEST_WORKERS:-4}"
"$python" -m pytest -n "$workers" --dist loadgroup --durations=15 -m "not alone" "$@"
parallel=$?
"$python" -m pytest --durations=15 -m alone "$@"
alone=$?
HUMIDITY_CORE=interpreted "$python" -m pytest -n "$workers" --durations=15 -m "not kafka and not alone" "$@"
interpreted=$?
for part in parallel alone interpreted; do
  status="${!part}"
  [ "$status" -eq 5 ] && continue  # no test of this part among those asked for
  [ "$status" -ne 0 ] && exit "$status"
done
exit 0
