#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: virtualenv, pinned dependencies, redis-server, lint, tests.
# Usage: ./run_tests.sh [extra pytest arguments]   (e.g. -n 0: one process, no workers)
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
bootstrap_venv dev
bootstrap_redis_binary
bootstrap_sentinel_binary
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
echo "[tests] ruff check"
"$VENV_PY" -m ruff check .
echo "[tests] pytest"
# Most tests wait on events and timers rather than use the CPU, so several workers (pytest-xdist) overlap
# those waits even on 2 cores. Every test starts its own redis-server, simulator and ports, so workers share
# nothing. worksteal: a worker that runs out takes tests from a busy one, so the few long tests do not
# leave the end to one worker. A -n given on the command line wins (the last one counts).
exec "$VENV_PY" -m pytest -q -n 4 --dist worksteal "$@"
