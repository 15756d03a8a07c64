"""How a background job runs: a detached process per job, its folder, its status, its cancellation. What a job
does is the registry's (:mod:`core.jobs.registry`); how one is checked and started, :mod:`core.jobs.start`.

A job is a folder ``artifacts/jobs/<job_id>/``::

    spec.json     kind (a registered kind, or kinds joined by "+": "ingest+train") and its arguments
    status.json   state (queued / running / done / failed / cancelled), pid, created / started / finished,
                  stage, done / total / message / values of the last progress call, losses (one per epoch),
                  result (what the kinds' work returned, gathered) or error
    log.txt       the process's own output (tracebacks land here)

:func:`launch` writes the spec and starts ``python -m core.jobs run <job_dir>`` in its own session, so a page
reload or a restart of the server leaves it running. The process (:func:`run_job`) builds each kind's config from
the spec, calls the kind's work and rewrites ``status.json`` atomically, at most a few times a second.
:func:`cancel_job` sends SIGTERM to the process group (SIGKILL after a grace period); runs, analysis results and
tag caches are written under hidden names first, so a cancelled job never leaves half of one. A job whose process
died without writing a final state is reported as failed.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Optional

from core.base.errors import TimbreError
from core.base.io import atomic_write_bytes, atomic_write_json
from core.base.locks import file_lock
from core.base.paths import REPO_ROOT, artifacts_dir
from core.jobs.processes import process_alive, start_time
from core.jobs.registry import job_kind, spec_kinds

ACTIVE = ("queued", "running")


FINAL = ("done", "failed", "cancelled")


WRITE_INTERVAL_S = 0.25  # status.json is rewritten at most 4 times a second (the page polls about once a second)


JOB_ID_RULE = re.compile(r"^[0-9]{8}-[0-9]{6}-[A-Za-z0-9][A-Za-z0-9_-]{0,63}-[0-9a-f]{4}$")  # stamp-name-hex


_children: dict[int, subprocess.Popen] = {}  # held so Python does not warn that a running child was dropped


class JobCancelled(BaseException):
    """Raised in the job process by SIGTERM. A BaseException, so ``except Exception`` in core cannot swallow it."""


def jobs_dir() -> Path:
    return artifacts_dir() / "jobs"


def _now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")


def _job_dir(job_id: str) -> Path:
    if not JOB_ID_RULE.match(job_id or ""):
        raise TimbreError(f"invalid job id {job_id!r}")
    return jobs_dir() / job_id


def launch(spec: dict, *, name: str) -> str:
    """Write the job folder for ``spec`` and start its process; returns the job id (``stamp-name-hex``)."""
    job_id = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{name}-{secrets.token_hex(2)}"
    folder = _job_dir(job_id)
    folder.mkdir(parents=True)
    atomic_write_json(folder / "spec.json", {**spec, "created": _now()})
    with _locked(folder), open(folder / "log.txt", "ab") as log:
        process = subprocess.Popen(  # the job must outlive this process: its own session, no pipes to us
            [sys.executable, "-m", "core.jobs", "run", str(folder)], cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        atomic_write_json(folder / "status.json", {
            "state": "queued", "pid": process.pid, "pid_start": start_time(process.pid), "created": _now(),
            "started": None, "finished": None, "stage": "starting", "done": 0, "total": 0, "message": "",
            "values": {}, "losses": [], "result": {}, "error": None})
    _children[process.pid] = process
    return job_id


def _locked(folder: Path):
    """Serialise read-modify-write of status.json between the job process and the pages (released on death)."""
    return file_lock(folder / ".lock", what="status.json", wait=True)


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _alive(pid: Optional[int], start: Optional[int]) -> bool:
    """True while the job's process runs (:func:`core.base.processes.process_alive`)."""
    if process_alive(pid, start):
        return True
    _children.pop(pid, None)  # reaped, or never ours
    return False


def _settle(folder: Path) -> dict:
    """status.json, first marking a job whose process is gone without a final state as failed (or cancelled)."""
    status = _read(folder / "status.json")
    if status.get("state") not in ACTIVE or _alive(status.get("pid"), status.get("pid_start")):
        return status
    with _locked(folder):
        status = _read(folder / "status.json")
        if status.get("state") in ACTIVE and not _alive(status.get("pid"), status.get("pid_start")):
            if (folder / "cancel").exists():
                status.update(state="cancelled", message="cancelled")
            else:
                status.update(state="failed", error=f"process {status.get('pid')} ended unexpectedly "
                                                    f"(see {folder / 'log.txt'})")
            status["finished"] = _now()
            atomic_write_json(folder / "status.json", status)
    return status


def job_status(job_id: str) -> dict:
    """Spec and status of one job: ``job_id``, ``spec``, ``state``, ``done``, ``total``, ``losses``, ``result``, ...

    Raises :class:`TimbreError` when there is no such job.
    """
    folder = _job_dir(job_id)
    spec = _read(folder / "spec.json")
    if not spec:
        raise TimbreError(f"no job named {job_id!r} in {jobs_dir()}")
    status = _settle(folder) or {"state": "queued", "done": 0, "total": 0, "losses": [], "result": {}}
    return {**status, "job_id": job_id, "kind": spec.get("kind"), "spec": spec, "path": str(folder)}


def list_jobs(*, kinds: Optional[tuple[str, ...]] = None) -> list[dict]:
    """:func:`job_status` of every job (of ``kinds``; None: all), newest first."""
    root = jobs_dir()
    if not root.is_dir():
        return []
    ids = sorted((p.name for p in root.iterdir() if JOB_ID_RULE.match(p.name) and (p / "spec.json").exists()),
                 reverse=True)
    every = (job_status(i) for i in ids)
    return [j for j in every if kinds is None or j["kind"] in kinds]


def job_log(job_id: str, *, tail: int = 4000) -> str:
    """The last ``tail`` characters of the job's log."""
    path = _job_dir(job_id) / "log.txt"
    return path.read_text(encoding="utf-8", errors="replace")[-tail:] if path.exists() else ""


def cancel_job(job_id: str, *, grace_s: float = 5.0) -> dict:
    """Stop a job: SIGTERM to its process group, SIGKILL after ``grace_s``; its state becomes cancelled.

    Returns the job's :func:`job_status` (unchanged when it had already finished).
    """
    folder = _job_dir(job_id)
    status = job_status(job_id)
    if status["state"] not in ACTIVE:
        return status
    atomic_write_bytes(folder / "cancel", b"")
    pid, start = status.get("pid"), status.get("pid_start")
    if _alive(pid, start):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _alive(pid, start) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid, start):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            while _alive(pid, start):
                time.sleep(0.02)
    return job_status(job_id)  # the process wrote "cancelled", or _settle does now


class StatusWriter:
    """The job's side of status.json: a progress callback that rewrites it at most every ``interval_s``."""

    def __init__(self, folder: Path, *, interval_s: float = WRITE_INTERVAL_S):
        self.folder, self.interval_s, self.last = folder, interval_s, 0.0
        self.status = _read(folder / "status.json")

    def update(self, *, force: bool = False, **changes) -> None:
        self.status.update(changes)
        now = time.monotonic()
        if force or now - self.last >= self.interval_s:
            with _locked(self.folder):
                if (self.folder / "cancel").exists() and changes.get("state") != "cancelled":
                    self.status["message"] = "cancelling"
                atomic_write_json(self.folder / "status.json", self.status)
            self.last = now

    def stage(self, name: str, message: str = "") -> None:
        """A new stage starts: counters reset, written at once."""
        print(f"{_now()} {name}: {message}", flush=True)
        self.update(force=True, stage=name, done=0, total=0, message=message, values={})

    def progress(self, done: int, total: int, message: str = "", **values: float) -> None:
        """:class:`core.base.progress.Progress`; a training epoch's ``loss`` is also kept in ``losses[epoch - 1]``
        (epochs done before a resumed checkpoint are None until then).
        """
        if "loss" in values and done >= 1:
            before = self.status.get("losses", [])[:done - 1]
            self.status["losses"] = before + [None] * (done - 1 - len(before)) + [float(values["loss"])]
        self.update(force=done >= total, done=int(done), total=int(total), message=str(message),
                    values={k: float(v) for k, v in values.items()})

    def finish(self, state: str, **changes) -> None:
        print(f"{_now()} {state} {changes.get('error') or ''}".rstrip(), flush=True)
        self.update(force=True, state=state, finished=_now(), **changes)


def _on_sigterm(runner_pid: int):
    def handler(signum, frame):
        if os.getpid() != runner_pid:  # a forked ingest worker: leave quietly, the runner cleans up
            os._exit(1)
        raise JobCancelled()
    return handler


def run_job(folder: str | Path) -> int:
    """Body of the job process: each registered kind its spec names, in turn, keeping status.json current."""
    folder = Path(folder)
    signal.signal(signal.SIGTERM, _on_sigterm(os.getpid()))
    spec = _read(folder / "spec.json")
    writer = StatusWriter(folder)
    writer.update(force=True, state="running", started=_now(), pid=os.getpid(), pid_start=start_time(os.getpid()))
    result: dict = {}
    try:
        for name in spec_kinds(spec):
            kind = job_kind(name)
            cfg = kind.config_of(spec)
            writer.stage(kind.doing, kind.about(spec, cfg))
            result.update(kind.work(spec, cfg, writer))
            writer.update(force=True, result=dict(result))
        writer.finish("done", result=result, message="done")
        return 0
    except JobCancelled:
        writer.finish("cancelled", result=result, message="cancelled")
        return 1
    except TimbreError as error:
        writer.finish("failed", result=result, error=str(error))
        return 1
    except Exception as error:  # noqa: BLE001 (the page must learn why, whatever it was)
        traceback.print_exc()
        writer.finish("failed", result=result, error=f"{type(error).__name__}: {error}")
        return 1


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "run":
        print("usage: python -m core.jobs run JOB_DIR", file=sys.stderr)
        return 2
    return run_job(argv[1])
