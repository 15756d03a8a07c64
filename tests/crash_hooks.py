"""Test-only: make ingest's worker die with SIGSEGV on one file, as a decoder bug would.

Tests patch ``core.data.ingest._analyse`` with :func:`analyse_or_crash` and set :data:`CRASH_ON_ENV` to a file
name. Pool workers are forked after the patch, so they run it; a Ray worker unpickles the patched function by
its name here (it imports this module from the checkout on its ``PYTHONPATH``) and inherits the environment of
the Ray it belongs to. The crash happens in worker processes only, never in the test's own process.
"""
from __future__ import annotations

import faulthandler
import multiprocessing
import os
import signal
from pathlib import Path

from core.data import workers
from core.data.ingest import _analyse

CRASH_ON_ENV = "TIMBRE_TEST_CRASH_ON"


def analyse_or_crash(job: tuple[str, str, dict, dict]) -> dict:
    """:func:`core.data.ingest._analyse`, except that a worker given the file named by :data:`CRASH_ON_ENV`
    kills itself."""
    in_worker = workers._in_worker or multiprocessing.parent_process() is not None
    if in_worker and os.environ.get(CRASH_ON_ENV) == Path(job[0]).name:
        faulthandler.disable()  # a deliberate crash needs no traceback on the terminal
        os.kill(os.getpid(), signal.SIGSEGV)
    return _analyse(job)


def crash_on(monkeypatch, name: str) -> None:
    """Make ingest workers crash on files called ``name`` for the rest of the test."""
    monkeypatch.setenv(CRASH_ON_ENV, name)
    monkeypatch.setattr("core.data.ingest._analyse", analyse_or_crash)
