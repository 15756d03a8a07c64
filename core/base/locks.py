"""Advisory file locks (``fcntl.flock``) that the kernel releases when their process dies, even by kill -9.

The lock file also records who holds it (process id, since when, what for), so a second process can say
exactly what it is waiting for instead of failing obscurely.

A flock belongs to the open file, and a forked child shares its parent's open files: a pool worker forked while
an ingest holds the dataset lock would keep it after the ingest is killed. So a forked child closes its copies
of the descriptors of every lock held at the fork (:func:`_forget_in_child`): the lock stays its holder's alone.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Iterator, Optional

_held: set[int] = set()  # descriptors of the locks this process holds


def _forget_in_child() -> None:
    for fd in _held:
        try:
            os.close(fd)  # the child's copy only: the parent keeps its lock
        except OSError:
            pass
    _held.clear()


os.register_at_fork(after_in_child=_forget_in_child)


class Busy(Exception):
    """The lock is held by another process; ``holder`` is what that process wrote ({} when unknown)."""

    def __init__(self, path: Path, holder: dict):
        self.path, self.holder = path, holder
        super().__init__(f"{path} is held by {describe(holder)}")


def describe(holder: dict) -> str:
    """"process 1234 since 2024-05-01 12:00:00" (or "another process" when the file says nothing)."""
    if not holder.get("pid"):
        return "another process"
    return f"process {holder['pid']} since {holder.get('since', '?')}"


def read_holder(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def file_lock(path, *, what: str = "", wait: bool = False) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` for the block.

    Parameters
    ----------
    path : path
        The lock file (created; left in place afterwards, so the next holder locks the same inode).
    what : str
        Recorded for whoever finds the lock taken ("ingest", "train ...").
    wait : bool
        Block until the lock is free; otherwise raise :class:`Busy` at once.

    Raises
    ------
    Busy
        ``wait=False`` and another process holds the lock.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Busy(path, read_holder(path)) from None
        holder = {"pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S"), "what": what}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        _held.add(fd)
        try:
            yield path
        finally:
            _held.discard(fd)
            os.ftruncate(fd, 0)  # a later reader must not name a process that has finished
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def is_locked(path) -> Optional[dict]:
    """The holder of ``path`` when another process holds it, else None (never blocks, never creates it)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with file_lock(path, wait=False):
            return None
    except Busy as busy:
        return busy.holder
