"""The API's memory after bursts of large uploads returns to its baseline.

Audio queries are decoded in Starlette's worker threads. glibc's malloc gives each new thread an arena of its own
(up to 8 per core), and the hundreds of MB a large upload's decoding frees stay mapped in those arenas: resident
memory climbed after every burst (benchmarks/bench_api_memory.py). Two glibc calls bound it: ``mallopt`` caps the
arenas at :data:`ARENAS` (the audio slots run at once anyway), and ``malloc_trim`` hands the freed pages back to
the system when an audio query ends. Elsewhere (macOS, musl) both are skipped.

``TIMBRE_API_MALLOC=default`` leaves glibc as it is (the benchmark's reference).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading

M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h
ARENAS = 2  # decoding threads share two arenas: the audio slots (2 by default) bound how many decode at once
ENV = "TIMBRE_API_MALLOC"

_trim_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _glibc():
    """glibc, when this process runs on it and tuning is not switched off; else None."""
    if os.environ.get(ENV, "").strip().lower() == "default":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def bound_arenas(arenas: int = ARENAS) -> bool:
    """Cap malloc's arenas for the threads made from now on (call it at start-up); True when done."""
    libc = _glibc()
    return bool(libc and libc.mallopt(M_ARENA_MAX, arenas))


def trim() -> bool:
    """Return freed heap pages to the system (a few ms); one thread at a time. True when done."""
    libc = _glibc()
    if libc is None or not _trim_lock.acquire(blocking=False):  # another thread is trimming already
        return False
    try:
        libc.malloc_trim(0)
        return True
    finally:
        _trim_lock.release()
