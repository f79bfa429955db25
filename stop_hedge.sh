#!/usr/bin/env bash
# Stops what start_hedge.sh started, in order: A (maker), then B (hedger), each with SIGTERM and a bounded
# wait before SIGKILL; then the simulator and the redis-server that start_hedge.sh started. A Redis it did not
# start has no pid file and is never touched. Idempotent: with nothing running it says so and exits 0.
#
# Usage: ./stop_hedge.sh [--keep-infra]
#   --keep-infra   stop only A and B; leave the simulator and Redis running (keeps Redis's in-memory state)
# Environment: HEDGE_RUN_DIR   pid files (default: run/ next to this script)
#              HEDGE_STOP_TIMEOUT_S   seconds A and B get to exit after SIGTERM (default 30)
#
# start_hedge.sh sources this file for its pid-file helpers; nothing runs when it is sourced.

HEDGE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The word each component's command line contains, so that a pid reused by another process after a crash is
# not taken for ours. Keep in line with hedge_strategy/ops/runfiles.py (COMPONENTS).
component_marker() {
    case "$1" in
        a) echo "main_A.py" ;;
        b) echo "main_B.py" ;;
        sim) echo "lighter_sim" ;;
        redis) echo "redis-server" ;;
        *) echo "?$1?" ;;
    esac
}

component_label() {
    case "$1" in
        a) echo "A (maker)" ;;
        b) echo "B (hedger)" ;;
        sim) echo "simulator" ;;
        redis) echo "redis-server" ;;
        *) echo "$1" ;;
    esac
}

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
    [[ "$state" != Z* ]]
}

# pid_is PID MARKER: alive, and its command line contains MARKER.
pid_is() {
    local args
    pid_alive "$1" || return 1
    # -ww: the whole command line, whatever COLUMNS says (ps cuts it to COLUMNS when that is set, and the
    # marker, main_A.py after a long interpreter path, would be cut off: a live process taken for stale).
    args="$(ps -ww -o args= -p "$1" 2>/dev/null)" || return 1
    [[ "$args" == *"$2"* ]]
}

# running_pid NAME: prints the pid in $RUN_DIR/NAME.pid when that process is alive and is ours; otherwise
# removes the stale pid file (saying so on stderr) and fails.
running_pid() {
    local file="$RUN_DIR/$1.pid" pid
    [ -f "$file" ] || return 1
    pid="$(tr -dc '0-9' <"$file")"
    if [ -n "$pid" ] && pid_is "$pid" "$(component_marker "$1")"; then
        echo "$pid"
        return 0
    fi
    echo "[hedge] removing stale pid file $file (pid ${pid:-none} is not a running $(component_label "$1"))" >&2
    rm -f "$file"
    return 1
}

# wait_gone PID SECONDS: waits (checking every 0.1 s) until PID has exited; fails after SECONDS.
wait_gone() {
    local tries=$(($2 * 10))
    while pid_alive "$1"; do
        ((tries-- > 0)) || return 1
        sleep 0.1
    done
}

# stop_component NAME SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL. Returns 0 when nothing of NAME
# runs any more (including when it was not running), 1 when even SIGKILL did not end it.
stop_component() {
    local name="$1" timeout="$2" pid label
    label="$(component_label "$name")"
    pid="$(running_pid "$name")" || return 0
    STOPPED_ANY=1
    echo "[stop] $label (pid $pid): SIGTERM, waiting up to ${timeout} s"
    kill -TERM "$pid" 2>/dev/null || true
    if wait_gone "$pid" "$timeout"; then
        echo "[stop] $label stopped"
    else
        echo "[stop] $label still running after ${timeout} s: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        if ! wait_gone "$pid" 5; then
            echo "[stop] $label (pid $pid) survived SIGKILL; pid file kept" >&2
            return 1
        fi
        echo "[stop] $label killed"
    fi
    rm -f "$RUN_DIR/$name.pid"
}

stop_main() {
    local keep_infra=0 failed=0 timeout="${HEDGE_STOP_TIMEOUT_S:-30}"
    while [ $# -gt 0 ]; do
        case "$1" in
            --keep-infra) keep_infra=1 ;;
            -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; return 0 ;;
            *) echo "stop_hedge.sh: unknown argument '$1' (see --help)" >&2; return 2 ;;
        esac
        shift
    done
    if ! [[ "$timeout" =~ ^[0-9]+$ ]]; then
        echo "stop_hedge.sh: HEDGE_STOP_TIMEOUT_S must be whole seconds, got '$timeout'" >&2
        return 2
    fi
    RUN_DIR="${HEDGE_RUN_DIR:-$HEDGE_ROOT/run}"
    STOPPED_ANY=0
    # A first: on SIGTERM it cancels its resting order and waits for its in-flight hedges, which need B.
    stop_component a "$timeout" || failed=1
    stop_component b "$timeout" || failed=1
    if [ "$keep_infra" = 0 ]; then
        stop_component sim 10 || failed=1
        stop_component redis 10 || failed=1
    fi
    if [ "$STOPPED_ANY" = 0 ]; then
        echo "[stop] nothing to stop (no running process in $RUN_DIR/*.pid)"
    fi
    return "$failed"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -uo pipefail
    stop_main "$@"
fi
