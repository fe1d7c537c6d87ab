"""Killing a subprocess at the right moment, for resume-after-kill tests."""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Callable


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float) -> bool:
    """SIGKILL ``proc`` as soon as ``ready()`` holds; True if it was killed, False if it ended (or timed out) first."""
    deadline = time.monotonic() + timeout
    killed = False
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if ready():
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None and not killed:
            proc.kill()
        proc.wait(timeout=30)
    return killed
