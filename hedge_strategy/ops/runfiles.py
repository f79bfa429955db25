"""The pid files `start_hedge.sh` writes in the run directory, read the way the scripts read them.

A pid file counts only when its process is alive *and* its command line still names what was started there
(a pid reused by an unrelated process after a crash does not count). The markers are the same words the
scripts check.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hedge_strategy.ops.common import run_dir

# name of the pid file (without .pid) -> a word its process's command line contains
COMPONENTS: dict[str, str] = {
    "a": "main_A.py",
    "b": "main_B.py",
    "sim": "lighter_sim",
    "redis": "redis-server",
}


@dataclass(frozen=True)
class ProcessState:
    name: str
    pid: int | None  # from the pid file; None when there is no (readable) pid file
    running: bool

    def to_json(self) -> dict[str, object]:
        return {"pid": self.pid, "running": self.running}


def pid_file(name: str, directory: Path | None = None) -> Path:
    return (directory or run_dir()) / f"{name}.pid"


def read_pid(name: str, directory: Path | None = None) -> int | None:
    try:
        text = pid_file(name, directory).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def process_matches(pid: int, marker: str) -> bool:
    """True when `pid` is alive and (where /proc tells us) its command line contains `marker`."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        pass
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        words = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True  # no /proc (macOS) or gone meanwhile: trust the signal check
    if not words:  # a zombie has an empty command line
        return False
    return marker in words


def component_state(name: str, directory: Path | None = None) -> ProcessState:
    pid = read_pid(name, directory)
    running = pid is not None and process_matches(pid, COMPONENTS[name])
    return ProcessState(name=name, pid=pid, running=running)
