"""Is a job's process still running? :mod:`core.jobs.runner` starts each job in a detached process and asks this
module whether it lives (a job whose process is gone without a final state is failed). Linux's /proc tells a pid
reused by another process and a zombie from a live process; elsewhere a pid that answers signal 0 counts."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Optional


def proc_stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (Linux): [0] state, [2] process group, [19] start time;
    [] elsewhere or when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def start_time(pid: int) -> Optional[int]:
    """The process's start time in clock ticks (Linux), which tells a reused pid from ours; None elsewhere."""
    fields = proc_stat(pid)
    return int(fields[19]) if len(fields) > 19 else None


def process_alive(pid: Optional[int], start: Optional[int]) -> bool:
    """True while process ``pid`` (started at ``start``, :func:`start_time`; None: any) runs. A finished child
    of this process is reaped here; a zombie whose parent never reaps it (that parent is gone, or init does not
    reap) counts as ended, and so does a pid now used by another process."""
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: exists
    fields = proc_stat(pid)
    if fields and fields[0] in ("Z", "X"):
        return False
    return start is None or not fields or int(fields[19]) == start
