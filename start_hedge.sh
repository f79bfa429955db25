#!/usr/bin/env bash
# Starts the hedge pair, from a fresh clone too: the virtualenv with pinned dependencies, Redis when the
# configured one is local and silent, the simulator when sim.enabled (keys generated on first run), then B and
# A together, then B's heartbeat. Writes pid files; running it again starts only what is missing (Redis, the
# simulator, B or A: whatever stopped), never a second copy of what runs.
#
# Usage: ./start_hedge.sh [--market BTC] [--quantity 0.0002] [--depth 1] [--config config.yaml] [--infra-only]
#   --market/--quantity/--depth   override strategy.market/quantity/depth (A gets all three, B the market)
#   --config FILE                 the configuration (default: config.yaml)
#   --infra-only                  start only Redis and the simulator (to run main_A.py/main_B.py by hand)
# Environment: HEDGE_RUN_DIR (pid files, default run/), HEDGE_HEARTBEAT_TIMEOUT_S (wait for B, default 60),
#              HEDGE_SIM_TIMEOUT_S (wait for the simulator, default 30), HEDGE_A_GRACE_S (A watched, 3)
# Exit codes: 0 started (or already running), 1 a step failed (the message names the log to read),
#             2 bad arguments or configuration. Stop everything with ./stop_hedge.sh.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

MARKET="" QUANTITY="" DEPTH="" CONFIG="config.yaml" INFRA_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --market | --quantity | --depth | --config)
            [ $# -ge 2 ] || { echo "start_hedge.sh: $1 needs a value" >&2; exit 2; }
            case "$1" in
                --market) MARKET="$2" ;; --quantity) QUANTITY="$2" ;;
                --depth) DEPTH="$2" ;; --config) CONFIG="$2" ;;
            esac
            shift 2 ;;
        --market=*) MARKET="${1#*=}"; shift ;;
        --quantity=*) QUANTITY="${1#*=}"; shift ;;
        --depth=*) DEPTH="${1#*=}"; shift ;;
        --config=*) CONFIG="${1#*=}"; shift ;;
        --infra-only) INFRA_ONLY=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "start_hedge.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if ! [[ "${HEDGE_SIM_TIMEOUT_S:-30}" =~ ^[0-9]+$ ]]; then
    echo "start_hedge.sh: HEDGE_SIM_TIMEOUT_S must be whole seconds, got '$HEDGE_SIM_TIMEOUT_S'" >&2
    exit 2
fi
# The config path is the caller's; everything else runs from the repository root (the config's relative
# paths are relative to it).
case "$CONFIG" in /*) ;; *) CONFIG="$PWD/$CONFIG" ;; esac
cd "$ROOT" || exit 1

# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh
# shellcheck source=stop_hedge.sh
source ./stop_hedge.sh

say() { echo "[start] $*"; }
ctl() { "$VENV_PY" -m hedge_strategy.ctl "$@" --config "$HEDGE_CONFIG"; }

STARTED=() # what this run started, in order; stopped in reverse when a later step fails

rollback() {
    local i
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        stop_component "${STARTED[i]}" 10 || true
    done
    STARTED=()
}

drop_redis_probe() {  # before an early exit: the Redis probe (step 1) is not left running behind the script
    [ -n "${REDIS_PROBE:-}" ] || return 0
    kill "$REDIS_PROBE" 2>/dev/null; wait "$REDIS_PROBE" 2>/dev/null; REDIS_PROBE=""
}

# fail WHAT [LOG...]: says what failed and which logs to read, stops what this run started, exits 1.
fail() {
    drop_redis_probe
    echo "[start] FAILED: $1" >&2
    shift
    [ $# -gt 0 ] && echo "[start] read: $*" >&2
    if [ ${#STARTED[@]} -gt 0 ]; then
        echo "[start] stopping what this run started: ${STARTED[*]}" >&2
        rollback
    fi
    exit 1
}

trap 'echo "[start] interrupted" >&2; rollback; exit 130' INT TERM

# record NAME PID: pid file, and remember it for a rollback.
record() {
    echo "$2" >"$RUN_DIR/$1.pid"
    STARTED+=("$1")
}

# launch NAME LOGFILE COMMAND...: COMMAND in the background, immune to the terminal's hangup, output appended
# to LOGFILE, without the start lock's descriptor (a child holding it would block every later start).
launch() {
    local name="$1" log="$2"
    shift 2
    PYTHONUNBUFFERED=1 nohup "$@" >>"$log" 2>&1 9>&- &
    record "$name" "$!"
}

# A and B log through loguru to their rotated main_X.log *and* to stderr. Their .out file is for what
# bypasses the log (a failure before logging is set up, native library output, a traceback's body), so the
# log lines themselves are filtered out of it: otherwise it would grow, unrotated, as fast as the log.
LOGURU_LINE='^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} \| '

# launch_bot NAME OUTFILE COMMAND...: like launch, keeping only the non-log output in OUTFILE.
launch_bot() {
    local name="$1" out="$2"
    shift 2
    PYTHONUNBUFFERED=1 nohup "$@" > >(exec 9>&- grep --line-buffered -v -E "$LOGURU_LINE" >>"$out" 2>&1) 2>&1 9>&- &
    record "$name" "$!"
}

now_ms() { "$VENV_PY" -c 'import time; print(time.time_ns() // 1_000_000)'; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_for_line FILE OFFSET TEXT PID SECONDS: waits until TEXT appears in FILE after byte OFFSET.
# Returns 0 when it does, 4 when PID exited first, 3 on timeout. Checks every 0.2 s.
wait_for_line() {
    local tries=$(($5 * 5))
    while :; do
        tail -c +"$(($2 + 1))" "$1" 2>/dev/null | grep -qF "$3" && return 0
        pid_alive "$4" || return 4
        ((tries-- > 0)) || return 3
        sleep 0.2
    done
}

file_size() { if [ -f "$1" ]; then wc -c <"$1" | tr -d ' '; else echo 0; fi; }

# ----- 1. virtualenv and configuration ----------------------------------------------------------------

bootstrap_venv || fail "could not prepare the virtualenv in $ROOT/.venv (see above)"
HEDGE_CONFIG="$CONFIG"
# Whether Redis answers is asked now, beside the config check, and read in step 3: each is a Python start-up
# (a second or more on a busy machine), and a restart of A or B waits for both.
# Started directly, not through `ctl`: $! is then the probe itself, which an early exit can end.
"$VENV_PY" -m hedge_strategy.ctl wait-redis --timeout 0 --config "$HEDGE_CONFIG" >/dev/null 2>&1 &
REDIS_PROBE=$!
# A bad config printed the problem, naming the key (exit 2): nothing started, nothing left running.
ENV_TEXT="$(ctl launch-env)" || { rc=$?; drop_redis_probe; exit "$rc"; }
eval "$ENV_TEXT"
mkdir -p "$RUN_DIR" "$LOG_DIR" || fail "cannot create $RUN_DIR or $LOG_DIR"

if command -v flock >/dev/null 2>&1; then
    exec 9>"$RUN_DIR/start.lock"
    flock -n 9 || { echo "[start] another start_hedge.sh is running for $RUN_DIR; not starting a second" >&2
                    drop_redis_probe; exit 1; }
fi

# ----- 2. what runs already ------------------------------------------------------------------------------
# Each step below starts its component only when it is missing, so a second run brings back whatever stopped
# (Redis included) while the rest keeps running.

A_PID="$(running_pid a)" || A_PID=""
B_PID="$(running_pid b)" || B_PID=""

# ----- 3. Redis ----------------------------------------------------------------------------------------------

start_redis() {
    local pid args probe="$REDIS_PROBE"
    REDIS_PROBE=""  # waited for here: no early exit kills it after this
    if wait "$probe"; then
        if pid="$(running_pid redis)"; then
            say "redis: already running (pid $pid, started by start_hedge.sh)"
        else
            say "redis: using the Redis already answering at $REDIS_URL (not started here; stop_hedge.sh leaves it alone)"
        fi
        return 0
    fi
    [ "$REDIS_LOCAL" = 1 ] ||
        fail "Redis at $REDIS_URL does not answer and is not on this machine: start it, or fix redis.url in $HEDGE_CONFIG"
    [ "$REDIS_START_LOCAL" = 1 ] ||
        fail "Redis at $REDIS_URL does not answer and redis.start_local is false: start it yourself"
    bootstrap_redis_binary || fail "redis-server is needed to run a local Redis (see above)"
    # Our own instance: no persistence (A and B re-read positions from the exchange at start), its own port.
    args=(--save "" --appendonly no --dir "$RUN_DIR")
    if [ -n "$REDIS_SOCKET" ]; then
        args+=(--port 0 --unixsocket "$REDIS_SOCKET" --unixsocketperm 700)
    else
        args+=(--port "$REDIS_PORT" --bind "$REDIS_HOST")
    fi
    say "redis: starting redis-server for $REDIS_URL (log $LOG_DIR/redis.log)"
    launch redis "$LOG_DIR/redis.log" redis-server "${args[@]}"
    pid=$!
    ctl wait-redis --timeout 10 --pid "$pid" >/dev/null ||
        fail "redis-server did not start answering at $REDIS_URL" "$LOG_DIR/redis.log"
    say "redis: ready (pid $pid)"
}

# ----- 4. simulator --------------------------------------------------------------------------------------------

start_sim() {
    local pid key offset rc
    if [ "$SIM_ENABLED" != 1 ]; then
        say "simulator: disabled (sim.enabled: false); trading on $EXCHANGE_URL"
        return 0
    fi
    if pid="$(running_pid sim)"; then
        say "simulator: already running (pid $pid) at $SIM_URL"
        return 0
    fi
    if port_open "$SIM_HOST" "$SIM_PORT"; then
        fail "$SIM_HOST:$SIM_PORT (sim.port) is taken by a process start_hedge.sh did not start: stop it, or change sim.port and exchange.url/ws_url in $HEDGE_CONFIG"
    fi
    for key in $SIM_KEYS_MISSING; do
        say "simulator: generating the API key of account ${key%%:*} (key index ${key##*:}) into $SECRETS_FILE"
        "$VENV_PY" -m lighter_sim keygen --config "$HEDGE_CONFIG" --accounts "${key%%:*}" \
            --api-key-index "${key##*:}" --secrets "$SECRETS_FILE" >>"$LOG_DIR/sim.log" 2>&1 ||
            fail "keygen failed for account ${key%%:*}" "$LOG_DIR/sim.log"
    done
    offset="$(file_size "$LOG_DIR/sim.log")"
    say "simulator: starting at $SIM_URL (log $LOG_DIR/sim.log)"
    launch sim "$LOG_DIR/sim.log" "$VENV_PY" -m lighter_sim --config "$HEDGE_CONFIG"
    pid=$!
    wait_for_line "$LOG_DIR/sim.log" "$offset" "sim listening on http://" "$pid" "${HEDGE_SIM_TIMEOUT_S:-30}"
    rc=$?
    [ "$rc" = 4 ] && fail "the simulator exited during start-up" "$LOG_DIR/sim.log"
    [ "$rc" = 0 ] || fail "the simulator did not say it was listening within ${HEDGE_SIM_TIMEOUT_S:-30} s" "$LOG_DIR/sim.log"
    say "simulator: ready (pid $pid)"
}

# ----- 5. B, then A ---------------------------------------------------------------------------------------------

# B and A are launched together and checked afterwards: A places nothing until B's heartbeat is there (it
# checks at every cycle), so waiting for B before launching A only delayed A by B's whole start-up (imports
# of lighter-sdk: seconds on a busy machine). After a crash of both, A must be back soon: its resting order
# may have filled while it was dead, and only A can find that fill and ask B to hedge it.
B_LAUNCHED="" B_SINCE="" A_LAUNCHED="" A_SINCE=""

launch_b() {
    local args=()
    if [ -n "$B_PID" ]; then
        say "B: already running (pid $B_PID)"
        return 0
    fi
    [ -f main_B.py ] || fail "main_B.py not found in $ROOT"
    [ -n "$MARKET" ] && args+=(--market "$MARKET")
    B_SINCE="$(now_ms)"
    say "B: starting (log $LOG_DIR/main_B.log, output $LOG_DIR/main_B.out)"
    launch_bot b "$LOG_DIR/main_B.out" "$VENV_PY" main_B.py ${args[@]+"${args[@]}"} --config "$HEDGE_CONFIG"
    B_LAUNCHED=$!
}

launch_a() {
    local args=()
    if [ -n "$A_PID" ]; then
        say "A: already running (pid $A_PID)"
        return 0
    fi
    [ -f main_A.py ] || fail "main_A.py not found in $ROOT"
    [ -n "$MARKET" ] && args+=(--market "$MARKET")
    [ -n "$QUANTITY" ] && args+=(--quantity "$QUANTITY")
    [ -n "$DEPTH" ] && args+=(--depth "$DEPTH")
    A_SINCE="$(now_ms)"
    say "A: starting (log $LOG_DIR/main_A.log, output $LOG_DIR/main_A.out)"
    launch_bot a "$LOG_DIR/main_A.out" "$VENV_PY" main_A.py ${args[@]+"${args[@]}"} --config "$HEDGE_CONFIG"
    A_LAUNCHED=$!
}

# check_b: the B launched here writes a heartbeat (60 s at most).
check_b() {
    local rc
    [ -n "$B_LAUNCHED" ] || return 0
    ctl wait-heartbeat b --timeout "${HEDGE_HEARTBEAT_TIMEOUT_S:-60}" --pid "$B_LAUNCHED" --since-ms "$B_SINCE" >/dev/null 2>&1
    rc=$?
    [ "$rc" = 4 ] && fail "B exited during start-up" "$LOG_DIR/main_B.log" "$LOG_DIR/main_B.out"
    [ "$rc" = 3 ] && fail "B wrote no heartbeat within ${HEDGE_HEARTBEAT_TIMEOUT_S:-60} s" "$LOG_DIR/main_B.log" "$LOG_DIR/main_B.out"
    [ "$rc" = 0 ] || fail "could not read B's heartbeat from Redis (hedgectl exit $rc)" "$LOG_DIR/redis.log"
    say "B: heartbeat seen (pid $B_LAUNCHED)"
}

# check_a: A has no start-up handshake of its own: watch it for a short grace period, so that a bad argument,
# a missing key or an unreachable exchange is reported here rather than found later in its log. A heartbeat
# of A, if it writes one, ends the wait early.
check_a() {
    local rc
    [ -n "$A_LAUNCHED" ] || return 0
    ctl wait-heartbeat a --timeout "${HEDGE_A_GRACE_S:-3}" --pid "$A_LAUNCHED" --since-ms "$A_SINCE" >/dev/null 2>&1
    rc=$?
    [ "$rc" = 4 ] && fail "A exited during start-up" "$LOG_DIR/main_A.log" "$LOG_DIR/main_A.out"
    [ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "could not read Redis while starting A (hedgectl exit $rc)"
    say "A: running (pid $A_LAUNCHED)"
}

start_redis
start_sim
if [ "$INFRA_ONLY" = 1 ]; then
    say "infrastructure ready (--infra-only): run main_B.py, then main_A.py, with --config $HEDGE_CONFIG"
else
    launch_b
    launch_a
    check_b
    check_a
fi

if [ "$INFRA_ONLY" = 0 ] && [ ${#STARTED[@]} -eq 0 ]; then
    say "already running: A pid $A_PID, B pid $B_PID (pair $HEDGE_PAIR); nothing started"
    if [ -n "$MARKET$QUANTITY$DEPTH" ]; then
        say "the running processes keep their arguments: ./stop_hedge.sh first to change them"
    fi
    say "status: $VENV_PY -m hedge_strategy.ctl status --config $HEDGE_CONFIG   stop: ./stop_hedge.sh"
    exit 0
fi
if [ -n "$A_PID$B_PID" ] && [ ${#STARTED[@]} -gt 0 ]; then
    say "brought back: ${STARTED[*]} (what kept running was left as it is)"
fi
say "running; pid files in $RUN_DIR"
say "logs: $LOG_DIR/ (main_A.log, main_B.log, main_A.out, main_B.out, sim.log, redis.log)"
say "status: $VENV_PY -m hedge_strategy.ctl status --config $HEDGE_CONFIG"
say "stop:   ./stop_hedge.sh"
