"""Where per-file work runs: supervised processes on this machine (``pool``) or Ray tasks (``ray``).

Both yield results in the order they finish, to the one parent that writes them; a job whose worker dies
becomes ``on_crash(job, reason)`` (a skipped file), never a failed ingest.

Ray: by default a local Ray is started with ``num_cpus=workers`` (and stopped at the end); ``address`` joins a
running cluster (``ray start --head`` on one machine, ``ray start --address HEAD:6379`` on the others; then
``--ray-address HEAD:6379``, or ``ray://HEAD:10001`` through Ray Client). Every node needs this project's
Python environment and the audio files under the same path (a shared file system); the code itself is shipped
with the job (``runtime_env.working_dir``). At most ``2 x CPUs`` tasks are in flight, so a crash loses few.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Callable, Iterable, Iterator

from core.base.errors import TimbreError
from core.base.numba_cache import numba_cache_dir
from core.base.paths import REPO_ROOT
from core.data.config import ENGINES
from core.data.workers import enter_worker, supervised_map

log = logging.getLogger(__name__)


ROOT = REPO_ROOT  # what Ray ships to its workers: the repository, so they import core as this process does


# Shipped to a remote cluster with the job: the code, not the data, the environment or the caches.
SHIP_EXCLUDES = [".git", ".venv", "artifacts", ".cache", "data", "test-output", "node_modules", "**/__pycache__"]


def engine_map(fn: Callable, jobs: Iterable, *, engine: str = "pool", workers: int = 0, address: str = "",
               on_crash: Callable[[Any, str], Any], num_gpus: float | None = 0.0) -> Iterator:
    """Yield ``fn(job)`` for every job, in the order they finish.

    Parameters
    ----------
    fn : callable(job) -> result
        A module-level function of this project (a Ray worker imports it by name).
    jobs : iterable
    engine : {"pool", "ray"}
    workers : int
        Processes (pool) or CPUs of a local Ray; 0 = one per core of this machine (pool) or the whole
        cluster (Ray).
    address : str
        Ray only: the cluster to join; empty = start a local Ray.
    on_crash : callable(job, reason) -> result
        What a job whose worker process died yields instead.
    num_gpus : float or None
        Ray only: GPUs each task asks for (0 = none; None = one when the cluster has GPUs, else none).
    """
    jobs = list(jobs)
    if not jobs:
        return
    if engine == "pool":
        yield from supervised_map(fn, jobs, workers=min(workers or os.cpu_count() or 1, len(jobs)), on_crash=on_crash)
    elif engine == "ray":
        with ray_session(address=address, num_cpus=workers or None) as ray:
            yield from _ray_map(ray, fn, jobs, on_crash=on_crash, num_gpus=num_gpus)
    else:
        raise TimbreError(f"engine {engine!r}: use one of {', '.join(ENGINES)}")


@contextlib.contextmanager
def ray_session(*, address: str = "", num_cpus: int | None = None):
    """The ``ray`` module, connected: joins ``address`` or starts a local Ray (stopped on exit if started here).

    A Ray already initialised in this process (a test module's, a notebook's) is used as it is.
    """
    try:
        import ray
    except ImportError:
        raise TimbreError("--engine ray needs the 'ray' package (pip install 'ray[default]')") from None
    if ray.is_initialized():
        yield ray
        return
    if address:  # remote workers get the code; they compile numba's code themselves (never writing a cache)
        env = {"working_dir": str(ROOT), "excludes": SHIP_EXCLUDES}
    else:  # local workers see this checkout and load the numba cache the parent compiled (core.data.workers.warm_up)
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        env = {"env_vars": {"PYTHONPATH": path,
                            "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(numba_cache_dir()))}}
    try:
        ray.init(address=address or None, num_cpus=None if address else num_cpus, runtime_env=env,
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
    except Exception as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise TimbreError(f"cannot start {where}: {type(error).__name__}: {error}") from error
    try:
        yield ray
    finally:
        ray.shutdown()


def _ray_call(fn: Callable, job):
    enter_worker()
    return fn(job)


def _ray_map(ray, fn: Callable, jobs: list, *, on_crash: Callable, num_gpus: float) -> Iterator:
    from ray.exceptions import RayTaskError, WorkerCrashedError

    if num_gpus is None:
        num_gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    task = ray.remote(_ray_call).options(max_retries=1, num_gpus=num_gpus)  # a crash is retried once, as the pool does
    limit = 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
    pending, running = list(reversed(jobs)), {}
    try:
        while pending or running:
            while pending and len(running) < limit:
                job = pending.pop()
                running[task.remote(fn, job)] = job
            done, _ = ray.wait(list(running), num_returns=1)
            job = running.pop(done[0])
            try:
                yield ray.get(done[0])
            except WorkerCrashedError as error:
                log.warning("a Ray worker died twice on %r: %s", job, error)
                yield on_crash(job, "worker crashed (Ray worker process died)")
            except RayTaskError as error:  # fn raised: the caller sees fn's own exception, as with the pool
                raise error.as_instanceof_cause() from None
    finally:
        for ref in running:
            ray.cancel(ref, force=True)
