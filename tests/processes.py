"""Servers that tests start as real processes: a free loopback port, and a stop that never leaves one behind."""
from __future__ import annotations

import socket
import subprocess


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process: subprocess.Popen, *, grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL when ``process`` has not ended within ``grace`` seconds; waits for it either way."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
