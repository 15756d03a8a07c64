"""Background jobs: the long work of the pages (ingest a library folder, train a run, train classifiers,
compute clusters, compute musicnn tags) in a detached process that outlives the page.

A job is a folder ``artifacts/jobs/<job_id>/``::

    spec.json     kind ("ingest", "train", "ingest+train", "classify", "cluster" or "tags") and its arguments
    status.json   state (queued / running / done / failed / cancelled), pid, created / started / finished,
                  stage, done / total / message / values of the last progress call, losses (one per epoch),
                  result ({"dataset", "n_tracks", "skipped", "run_id", ...}, or for classify, cluster and tags
                  what :func:`core.analysis.tasks.run_analysis` returns) or error
    log.txt       the process's own output (tracebacks land here)

:func:`start_job` (ingest, train) and :func:`start_analysis_job` (classify, cluster, tags: the spec of
:mod:`core.analysis.tasks`) write the spec and start ``python -m core.jobs run <job_dir>`` in its own session, so a
page reload or a restart of the server leaves it running. The process calls :func:`core.data.ingest.ingest`,
:func:`core.runs.build.train_run` or :func:`core.analysis.tasks.run_analysis` directly and rewrites
``status.json`` atomically, at most a few times a second. One job at a time works on a dataset (ingest, train;
tags) or on one kind of results of a source (classify, cluster): a second is refused. ``cancel_job`` sends SIGTERM
to the process group (SIGKILL after a grace period); runs, analysis results and tag caches are written under
hidden names first, so a cancelled job never leaves half of one. A job whose process died without writing a final
state is reported as failed.
"""
from __future__ import annotations

import contextlib
import dataclasses
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
from core.base.processes import process_alive, start_time
from core.data.library import check_name, check_source

LIBRARY_KINDS = ("ingest", "train", "ingest+train")  # what the Library page starts and follows


KINDS = LIBRARY_KINDS + ("classify", "cluster", "tags")  # the last three: core.analysis.tasks.ANALYSIS_KINDS


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


def _check_train(train: dict) -> dict:
    """Every value of the training ``train`` asks for: its ``recipe`` (default: the default recipe) with the
    other keys in place of the recipe's values (unknown keys and bad values: a TimbreError naming them)."""
    from core.training.config import DEFAULT_RECIPE, load_recipe

    settings = dict(train)
    return dataclasses.asdict(load_recipe(settings.pop("recipe", DEFAULT_RECIPE), settings))


def start_job(*, dataset: str, source: str | Path | None = None, train: Optional[dict] = None,
              ingest: Optional[dict] = None, labels: bool = True) -> str:
    """Check the arguments, write the job folder and start its detached process.

    Parameters
    ----------
    dataset : str
        Dataset to write (with ``source``) or to train on (without).
    source : path or None
        Library folder to ingest; None trains on the already ingested ``dataset``.
    train : dict or None
        ``recipe`` (a name in ``configs/``; default: the default recipe) and the
        :class:`core.training.config.TrainConfig` fields that differ from it; None: ingest only.
    ingest : dict or None
        :class:`core.data.ingest.IngestConfig` fields that differ from the defaults.
    labels : bool
        False: ignore folder names and manifests.

    Returns
    -------
    str
        The job id.
    """
    from core.data.dataset import load_dataset
    from core.data.ingest import IngestConfig

    dataset = check_name(dataset)
    if source is None and train is None:
        raise TimbreError("a job needs a folder to ingest, training settings, or both")
    spec = {"dataset": dataset, "labels": bool(labels), "source": None, "ingest": None, "train": None}
    if source is not None:
        spec["source"] = check_source(source)
        spec["ingest"] = dataclasses.asdict(IngestConfig(**(ingest or {})))
    else:
        load_dataset(dataset)  # a clear error now, not in the job's log
    if train is not None:
        spec["train"] = _check_train(train)
    spec["kind"] = "+".join(k for k in ("ingest", "train") if spec[k] is not None)
    busy = [j["job_id"] for j in list_jobs(kinds=LIBRARY_KINDS)
            if j["state"] in ACTIVE and j["spec"].get("dataset") == dataset]
    if busy:
        raise TimbreError(f"job {busy[0]} is still working on dataset {dataset!r}: wait for it or cancel it")
    return _launch(spec, name=dataset)


def start_analysis_job(kind: str, *, run: Optional[str] = None, features: Optional[str] = None,
                       collection: Optional[str] = None, config: Optional[dict] = None) -> str:
    """Check the arguments (:func:`core.analysis.tasks.analysis_spec`), write the job folder and start its
    detached process: classifiers (``kind="classify"``), clusters (``"cluster"``) or musicnn tags (``"tags"``).

    Parameters
    ----------
    kind : "classify", "cluster" or "tags"
    run, features : str or None
        The source: a run id, or a dataset's feature table (exactly one; tags: the run).
    collection : str or None
        classify only: a collection of the source's dataset as the class, against the rest.
    config : dict or None
        :class:`core.analysis.classify.ClassifyConfig`, :class:`core.analysis.clusters.ClusterConfig` or
        :class:`core.analysis.tasks.TagsConfig` fields that differ from the defaults.

    Returns
    -------
    str
        The job id.
    """
    from core.analysis.tasks import analysis_spec

    spec = analysis_spec(kind, run=run, features=features, collection=collection, config=config)
    busy = find_analysis_job(kind, run=run, features=features, collection=collection)
    if busy is not None and busy["state"] in ACTIVE:
        raise TimbreError(f"job {busy['job_id']} is still {STAGES[kind]} for this data: wait for it or cancel it")
    return _launch(spec, name=kind)


def find_analysis_job(kind: str, *, run: Optional[str] = None, features: Optional[str] = None,
                      collection: Optional[str] = None) -> Optional[dict]:
    """The newest ``kind`` job on this source (tags: on the run's dataset, whichever run started it) as its
    :func:`job_status` (a running one when there is one), or None."""
    from core.analysis.tasks import job_target, same_target

    wanted = job_target(kind, run=run, features=features, collection=collection)
    return next((j for j in list_jobs(kinds=(kind,)) if same_target(j["spec"], wanted)), None)


def _launch(spec: dict, *, name: str) -> str:
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


STAGES = {"classify": "training classifiers", "cluster": "clustering", "tags": "computing musicnn tags"}


def _library_work(spec: dict, writer: StatusWriter, result: dict) -> None:
    """Ingest and/or train as the spec says, filling ``result`` as each part ends."""
    from core.data.ingest import IngestConfig, ingest
    from core.runs.build import train_run
    from core.training.config import TrainConfig

    result["dataset"] = spec["dataset"]
    if spec.get("source"):
        writer.stage("ingesting", spec["source"])
        report = ingest(spec["source"], spec["dataset"], labels=spec.get("labels", True),
                        config=IngestConfig(**spec["ingest"]), progress=writer.progress)
        result.update(n_tracks=report.n_tracks, n_analysed=report.n_analysed, n_cached=report.n_cached,
                      n_rejected=report.n_rejected,
                      skipped=report.skipped, ingest_seconds=round(report.seconds, 2))
        writer.update(force=True, result=dict(result))
    if spec.get("train"):
        writer.stage("training", f"{spec['train']['epochs']} epochs")
        cfg = TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["train"].items()})
        result["run_id"] = train_run(spec["dataset"], cfg=cfg, progress=writer.progress,
                                     stage=lambda message: writer.stage(message))


def run_job(folder: str | Path) -> int:
    """Body of the job process: the work its spec names, keeping status.json current."""
    from core.analysis.tasks import ANALYSIS_KINDS, run_analysis

    folder = Path(folder)
    signal.signal(signal.SIGTERM, _on_sigterm(os.getpid()))
    spec = _read(folder / "spec.json")
    writer = StatusWriter(folder)
    writer.update(force=True, state="running", started=_now(), pid=os.getpid(), pid_start=start_time(os.getpid()))
    result: dict = {}
    try:
        if spec.get("kind") in ANALYSIS_KINDS:
            writer.stage(STAGES[spec["kind"]], spec.get("dataset") or spec.get("run") or spec.get("features") or "")
            result.update(run_analysis(spec, progress=writer.progress))
        else:
            _library_work(spec, writer, result)
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


if __name__ == "__main__":
    sys.exit(main())
