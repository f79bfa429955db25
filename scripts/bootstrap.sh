#!/usr/bin/env bash
# Shared set-up for start_hedge.sh and run_tests.sh: a virtualenv with the pinned dependencies,
# and a redis-server binary. Sourced, not executed: it sets VENV_PY for the caller.
# Re-running it is cheap: the install is skipped while requirements.lock and pyproject.toml are unchanged.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
VENV_PY="$VENV/bin/python"

# bootstrap_venv [dev]: the virtualenv with every pinned dependency and this package (editable).
# requirements.lock holds the test tools too, so "dev" installs the same set; the argument is accepted for
# callers that say what they need. One stamp for both, so start_hedge.sh after run_tests.sh installs nothing.
bootstrap_venv() {
    if [ ! -x "$VENV_PY" ]; then
        echo "[bootstrap] creating virtualenv in $VENV"
        python3 -m venv "$VENV" || { echo "[bootstrap] python3 -m venv failed: install python3-venv (apt-get install -y python3-venv)" >&2; return 1; }
    fi
    local stamp="$VENV/.installed" log="$VENV/install.log"
    local digest
    digest="$(cat "$ROOT/requirements.lock" "$ROOT/pyproject.toml" | _bootstrap_sha256)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
        echo "[bootstrap] installing pinned dependencies (requirements.lock; pip output in $log)"
        # pip's own chatter (build backend warnings, index notices) goes to the log; shown when it fails.
        if ! { "$VENV_PY" -m pip install --disable-pip-version-check -r "$ROOT/requirements.lock" &&
            "$VENV_PY" -m pip install --disable-pip-version-check --no-deps -e "$ROOT"; } >"$log" 2>&1; then
            tail -n 20 "$log" >&2
            echo "[bootstrap] pip install failed; the whole output is in $log" >&2
            return 1
        fi
        echo "$digest" > "$stamp"
    fi
}

# The SHA-256 of stdin, in hex: sha256sum (GNU) or shasum (macOS).
_bootstrap_sha256() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum | cut -d' ' -f1
    else
        shasum -a 256 | cut -d' ' -f1
    fi
}

# _apt_install PACKAGE: installs Debian's PACKAGE when we are root with apt (0; 1 when apt-get failed);
# 2 when we cannot install here. The packages start a system service of their own; we run our own
# instances, so it is left alone.
_apt_install() {
    if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
        return 2
    fi
    echo "[bootstrap] $1 not found: installing Debian package $1"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1") >/dev/null || {
        echo "[bootstrap] apt-get install $1 failed" >&2; return 1; }
}

# Makes sure a redis-server binary exists: installs Debian's package when we are root with apt,
# otherwise says exactly what to install.
bootstrap_redis_binary() {
    local rc
    if command -v redis-server >/dev/null 2>&1; then
        return 0
    fi
    _apt_install redis-server
    rc=$?
    [ "$rc" = 2 ] || return "$rc"
    echo "[bootstrap] redis-server is not installed and cannot be installed automatically here." >&2
    echo "[bootstrap] Install it with:  sudo apt-get install -y redis-server   (Debian/Ubuntu)" >&2
    echo "[bootstrap]               or:  brew install redis                      (macOS)" >&2
    return 1
}

# Redis Sentinel, for the tests of `redis.sentinels` (Debian ships it as a package of its own,
# redis-sentinel): installed when we are root with apt. Optional: without it the tests run
# `redis-server --sentinel`, the same program.
bootstrap_sentinel_binary() {
    command -v redis-sentinel >/dev/null 2>&1 || _apt_install redis-sentinel || true
}
