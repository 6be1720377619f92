#!/usr/bin/env bash
# `make test`: the whole pytest suite against a throwaway broker.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$root/scripts/throwaway_kafka.sh" "$root/.venv/bin/python" -m pytest "$@"
