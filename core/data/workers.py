"""Process pools that notice crashed workers, and numba compiled once before any worker starts.

``multiprocessing.Pool`` never notices a worker that dies (a segfault in native code, the OOM killer): the
parent waits for its result forever. :func:`supervised_map` uses ``concurrent.futures.ProcessPoolExecutor``,
which does notice (``BrokenProcessPool``); the jobs in flight are then retried once, each alone in a fresh
process, so the one that crashes is known, and the rest of the jobs go on in a fresh pool.

numba (inside librosa) compiles on first use and caches the machine code on disk. Two processes compiling at
once can leave an index that points at another function's code, and loading that crashes. So the parent
compiles what the workers need before forking them (:func:`warm_up`, under a lock, after a forked probe has
shown the on-disk cache does not crash), workers inherit the compiled code and never write the cache, and the
cache lives in a project folder (:func:`numba_cache_dir`) rather than in the virtualenv's ``site-packages``.
"""
from __future__ import annotations

import collections
import concurrent.futures as cf
import json
import logging
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from core.base.locks import file_lock

log = logging.getLogger(__name__)


_FORK = multiprocessing.get_context("fork")  # cheap start: numpy, torch and librosa are already imported


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def crash_reason(exitcode: int | None) -> str:
    """"worker crashed: signal 11 (SIGSEGV)" from a process exit code."""
    if exitcode is not None and exitcode < 0:
        try:
            name = f" ({signal.Signals(-exitcode).name})"
        except ValueError:
            name = ""
        return f"worker crashed: signal {-exitcode}{name}"
    return f"worker crashed: exit code {exitcode}"


_in_worker = False  # set in a process that runs jobs for a parent (a pool child, a Ray worker)


def enter_worker() -> None:
    """Mark this process as a worker: it reads numba's cache (compiled by the parent) but never writes it."""
    global _in_worker
    _in_worker = True
    caching = sys.modules.get("numba.core.caching")
    if caching is not None and hasattr(caching, "IndexDataCacheFile"):
        caching.IndexDataCacheFile.save = lambda self, key, data: None  # workers never write the shared cache


def die_with_parent(parent_pid: int) -> None:
    """End this process as soon as ``parent_pid`` (its parent) dies, by kill -9 too: an orphaned worker would
    go on decoding for nobody. Linux's parent-death signal where there is one, else a thread that polls."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError):
        import threading

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, daemon=True, name="parent-watch").start()
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)


def _worker_init(parent_pid: int) -> None:
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's SIGTERM handler is the parent's
    enter_worker()


def _child(fn, job, conn, parent_pid: int) -> None:
    _worker_init(parent_pid)
    try:
        conn.send((True, fn(job)))
    except BaseException as error:  # noqa: BLE001 - handed to the parent, which re-raises it
        conn.send((False, error))
    conn.close()


def run_alone(fn: Callable, job, *, on_crash: Callable[[Any, str], Any]):
    """``fn(job)`` in a fresh forked process; ``on_crash(job, reason)`` when that process dies instead.

    An exception raised by ``fn`` is re-raised here, as a pool would.
    """
    recv, send = _FORK.Pipe(duplex=False)
    proc = _FORK.Process(target=_child, args=(fn, job, send, os.getpid()), daemon=True)
    proc.start()
    send.close()
    try:
        try:
            ok, value = recv.recv()  # before join: a large result must not block the child's exit
        except EOFError:  # died without answering
            ok, value = None, None
        proc.join()
    finally:
        if proc.is_alive():  # Ctrl-C while waiting
            proc.terminate()
            proc.join()
        recv.close()
    if ok is None or (ok and proc.exitcode not in (0, None)):
        return on_crash(job, crash_reason(proc.exitcode))
    if not ok:
        raise value
    return value


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers now (their jobs are abandoned, not awaited)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=10)


def supervised_map(fn: Callable, jobs: Iterable, *, workers: int,
                   on_crash: Callable[[Any, str], Any]) -> Iterator:
    """Yield ``fn(job)`` for every job, in the order they finish, in ``workers`` forked processes.

    A job whose process dies (a signal, ``os._exit``) is retried once alone in a fresh process; if that one
    dies too, ``on_crash(job, reason)`` is yielded in its place and the other jobs go on.

    Parameters
    ----------
    fn : callable(job) -> result
        A module-level function (it runs in a forked child).
    jobs : iterable
    workers : int
        Processes at once; 1 or less runs every job in this process.
    on_crash : callable(job, reason) -> result
    """
    pending = collections.deque(jobs)
    if workers <= 1:
        yield from map(fn, pending)
        return
    while pending:
        suspects = []
        pool = cf.ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=_FORK,
                                      initializer=_worker_init, initargs=(os.getpid(),))
        running: dict[cf.Future, Any] = {}
        try:
            while (pending or running) and not suspects:
                while pending and len(running) < 2 * workers:  # a bounded queue: a crash concerns few jobs
                    job = pending.popleft()
                    try:
                        running[pool.submit(fn, job)] = job
                    except BrokenProcessPool:
                        pending.appendleft(job)
                        break
                done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    job = running.pop(future)
                    if isinstance(future.exception(), BrokenProcessPool):
                        suspects.append(job)
                    else:
                        yield future.result()
                if suspects:  # the pool is broken: every job still in flight shares the blame
                    for future, job in running.items():
                        if future.done() and future.exception() is None:
                            yield future.result()
                        else:
                            suspects.append(job)
                    running.clear()
        finally:
            _stop(pool)
        if suspects:
            log.warning("a worker process died; retrying %d job(s) one at a time", len(suspects))
        for job in suspects:
            yield run_alone(fn, job, on_crash=on_crash)


_warmed: set[str] = set()


def _listing(folder: Path) -> dict[str, list[int]]:
    """Every numba cache file with its size and modification time (what a later process compares)."""
    return {str(p.relative_to(folder)): [p.stat().st_size, p.stat().st_mtime_ns]
            for p in sorted(folder.rglob("*")) if p.suffix in (".nbi", ".nbc")}


def _remove(folder: Path, names) -> None:
    for name in names:
        (folder / name).unlink(missing_ok=True)


def _probe(exercise: Callable[[], None]) -> str | None:
    """Run ``exercise`` in a forked child; None when it finished, else why not."""
    def call(_):
        exercise()

    def crashed(_, reason):
        return reason

    try:
        return run_alone(call, None, on_crash=crashed)
    except Exception as error:  # a cache that cannot be unpickled raises instead of crashing
        return f"{type(error).__name__}: {error}"


def warm_up(name: str, exercise: Callable[[], None]) -> None:
    """Compile (or load from numba's cache) what ``exercise`` uses, once per process, before forking workers.

    Runs under a lock on the cache folder, so one process at a time compiles and writes it. When the cache
    holds files this code has not seen working (written since the last successful warm-up, by anyone), a
    forked child runs ``exercise`` first: if that crashes or raises (numba raises ``UnpicklingError`` on a
    garbled or truncated file and can crash with SIGSEGV when an index names another signature's code, the
    trace of two processes writing at once), the unverified files are removed, then everything if the
    child still fails, and this process compiles afresh.
    """
    if name in _warmed:
        return
    import numba

    if not numba.config.CACHE_DIR:  # numba was imported before core: it caches beside librosa; just compile
        exercise()
        _warmed.add(name)
        return
    folder = Path(numba.config.CACHE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / ".verified"
    with file_lock(folder / ".lock", what="numba warm-up", wait=True):
        try:
            trusted = json.loads(stamp.read_text())
        except (OSError, ValueError):
            trusted = {}
        now = _listing(folder)
        if now and now != trusted:
            problem = _probe(exercise)
            if problem:
                unverified = [n for n, v in now.items() if trusted.get(n) != v]
                log.warning("numba cache %s does not work (%s): removing %d unverified file(s)",
                            folder, problem, len(unverified))
                _remove(folder, unverified)
                if _probe(exercise):
                    log.warning("numba cache %s still does not work: removing all of it", folder)
                    _remove(folder, _listing(folder))
        exercise()
        stamp.write_text(json.dumps(_listing(folder)))
    _warmed.add(name)
