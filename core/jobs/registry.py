"""The one registry of background jobs: every kind of long work the pages start, with the config class of its
settings and the function that does it in the job's process. :mod:`core.jobs.runner` runs only what is named
here; :mod:`core.jobs.start` checks a kind's settings with its config class before a job starts.

Each kind, the spec key that holds its settings and their config class, and its work:

- ``ingest``: ``ingest``, :class:`core.data.config.IngestConfig`; :func:`core.data.ingest.ingest`
- ``train``: ``train``, :class:`core.training.config.TrainConfig`; :func:`core.runs.build.train_run`
- ``demo``: ``config``, :class:`core.demo.DemoConfig`; :func:`core.demo.build_demo`
- ``classify``: ``config``, :class:`core.analysis.config.ClassifyConfig`; :func:`core.analysis.tasks.classify_task`
- ``cluster``: ``config``, :class:`core.analysis.config.ClusterConfig`; :func:`core.analysis.tasks.cluster_task`
- ``tags``: ``config``, :class:`core.analysis.config.TagsConfig`; :func:`core.analysis.tasks.tags_task`
- ``agreement``: ``config``, :class:`core.analysis.config.AgreementConfig`; :func:`core.analysis.tasks.agreement_task`
- ``fingerprints``: ``config``, :class:`core.search.fingerprints.FingerprintConfig`;
  :func:`core.search.fingerprint_store.build_fingerprints`

A job's spec may chain kinds with ``+`` (``"ingest+train"``: the Library page ingests a folder, then trains on
it): each runs in turn, in one process, and the result gathers what each returned. The config classes live in
light modules, so naming them here imports no torch, pandas or scikit-learn; the work is imported in the job's
process only.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Protocol

from core.analysis.config import AgreementConfig, ClassifyConfig, ClusterConfig, TagsConfig
from core.base.config import config_from_dict
from core.base.errors import TimbreError
from core.data.config import IngestConfig
from core.demo import DemoConfig
from core.search.fingerprints import FingerprintConfig
from core.training.config import TrainConfig


class Writer(Protocol):
    """What a job's work reports through (:class:`core.jobs.runner.StatusWriter`)."""

    def stage(self, name: str, message: str = "") -> None: ...

    def progress(self, done: int, total: int, message: str = "", **values: float) -> None: ...


@dataclasses.dataclass(frozen=True)
class JobKind:
    """One kind of background job."""

    name: str
    config: type  # the dataclass of its settings
    settings: str  # the spec's key that holds the config's fields
    doing: str  # what a running job of this kind is doing ("training classifiers"): the stage it starts with
    work: Callable[[dict, Any, Writer], dict]  # (spec, config, writer) -> the job's result, in the job's process
    about: Callable[[dict, Any], str] = lambda spec, cfg: str(  # the stage's message: what it works on
        spec.get("source") or spec.get("dataset") or spec.get("run") or spec.get("features") or "")

    def build(self, values: dict | None):
        """The kind's config from JSON values (unknown keys and bad values: a TimbreError naming them)."""
        return config_from_dict(self.config, values or {}, what=f"{self.name} setting")

    def config_of(self, spec: dict):
        """The kind's config from a job's spec."""
        return self.build(spec.get(self.settings))


def _ingest(spec: dict, cfg: IngestConfig, writer: Writer) -> dict:
    from core.data.ingest import ingest

    report = ingest(spec["source"], spec["dataset"], labels=spec.get("labels", True), config=cfg,
                    progress=writer.progress)
    return {"dataset": spec["dataset"], "n_tracks": report.n_tracks, "n_analysed": report.n_analysed,
            "n_cached": report.n_cached, "n_rejected": report.n_rejected, "skipped": report.skipped,
            "ingest_seconds": round(report.seconds, 2)}


def _train(spec: dict, cfg: TrainConfig, writer: Writer) -> dict:
    from core.runs.build import train_run

    return {"dataset": spec["dataset"],
            "run_id": train_run(spec["dataset"], cfg=cfg, progress=writer.progress, stage=writer.stage)}


def _demo(spec: dict, cfg: DemoConfig, writer: Writer) -> dict:
    from core.demo import DEMO_DATASET, build_demo

    return {"dataset": DEMO_DATASET, "run_id": build_demo(cfg=cfg, progress=writer.progress)}


def _fingerprints(spec: dict, cfg: FingerprintConfig, writer: Writer) -> dict:
    from core.runs.folder import load_run
    from core.search.fingerprint_store import build_fingerprints

    run = load_run(spec["run"])
    index = build_fingerprints(run.path, run.tracks["path"].astype(str).tolist(), sr=run.mel_params.sr, cfg=cfg,
                               progress=writer.progress)
    return {"run": run.run_id, "landmarks": int(len(index.rows))}


def _analysis(task: str) -> Callable[[dict, Any, Writer], dict]:
    """The work of an analysis kind: ``core.analysis.tasks.<task>``."""
    def work(spec: dict, cfg, writer: Writer) -> dict:
        from core.analysis import tasks

        return getattr(tasks, task)(spec, cfg, progress=writer.progress)

    return work


KINDS: dict[str, JobKind] = {kind.name: kind for kind in (
    JobKind("ingest", IngestConfig, "ingest", "ingesting", _ingest),
    JobKind("train", TrainConfig, "train", "training", _train, about=lambda spec, cfg: f"{cfg.epochs} epochs"),
    JobKind("demo", DemoConfig, "config", "building the demo", _demo,
            about=lambda spec, cfg: f"{cfg.tracks_per_style} tracks per style, {cfg.epochs} epochs"),
    JobKind("classify", ClassifyConfig, "config", "training classifiers", _analysis("classify_task")),
    JobKind("cluster", ClusterConfig, "config", "clustering", _analysis("cluster_task")),
    JobKind("tags", TagsConfig, "config", "computing musicnn tags", _analysis("tags_task")),
    JobKind("agreement", AgreementConfig, "config", "comparing neighbourhoods", _analysis("agreement_task"),
            about=lambda spec, cfg: f"{spec['run']} with {spec['other']}"),
    JobKind("fingerprints", FingerprintConfig, "config", "fingerprinting", _fingerprints),
)}


LIBRARY_KINDS = ("ingest", "train", "ingest+train")  # what the Library page starts and follows


ANALYSIS_KINDS = ("classify", "cluster", "tags")  # started from the analysis pages on a run or a feature table


MAP_KINDS = ("agreement",)  # started from the Map page on two runs


LISTEN_KINDS = ("fingerprints",)  # started by a live stream (Recommend, the API) on a run without fingerprints


def job_kind(name: str) -> JobKind:
    """The registered kind ``name``; :class:`TimbreError` naming the kinds there are."""
    if name not in KINDS:
        raise TimbreError(f"no kind of job {name!r} (kinds: {', '.join(KINDS)})")
    return KINDS[name]


def spec_kinds(spec: dict) -> list[str]:
    """The registered kinds a spec runs, in order (``"ingest+train"`` -> ``["ingest", "train"]``)."""
    names = str(spec.get("kind") or "").split("+")
    for name in names:
        job_kind(name)
    return names
