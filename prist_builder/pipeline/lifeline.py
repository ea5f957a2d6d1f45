"""Worker processes die with the build that started them, however it ends (even ``kill -9``).

On Linux the kernel does it: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` asks for SIGKILL when the
parent exits. Elsewhere (and as a second line on Linux) a daemon thread polls the parent
pid every :data:`WATCH_INTERVAL_S` seconds and ends the worker when it has changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
"""``prctl`` option: the signal a process gets when its parent dies (linux/prctl.h)."""
WATCH_INTERVAL_S = 0.5
"""Seconds between two checks of the parent pid by the watch thread."""


def _set_parent_death_signal() -> bool:
    """Ask the Linux kernel for SIGKILL on parent death; False where that is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)
        time.sleep(WATCH_INTERVAL_S)


def die_with_parent(parent_pid: int) -> None:
    """Make the calling (worker) process end when ``parent_pid`` ends.

    Call it first thing in a worker process. If the parent is already gone (it died
    between fork and this call), the worker exits at once.
    """
    _set_parent_death_signal()
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="prist-lifeline", daemon=True).start()
