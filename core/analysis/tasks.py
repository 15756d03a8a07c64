"""The pages' long analysis work as background tasks: classify, cluster, musicnn tags, neighbour agreement. A
spec says what to compute on which data (plain JSON, checked before a job starts); :func:`classify_task`,
:func:`cluster_task`, :func:`tags_task` and :func:`agreement_task` compute it in the job's process (the job
registry, :mod:`core.jobs.registry`, names them). An agreement spec is ``{"kind": "agreement", "run": RUN_ID,
"other": RUN_ID, "config": {AgreementConfig fields}}`` (:func:`agreement_spec`).

A spec::

    {"kind": "classify" | "cluster" | "tags", "run": RUN_ID | None, "features": DATASET | None,
     "collection": COLLECTION_ID | None, "config": {ClassifyConfig, ClusterConfig or TagsConfig fields}}

plus, for tags, ``"dataset"``: the run's dataset. Exactly one of ``run`` and ``features`` names the source
(:func:`core.analysis.sources.load_source`; tags need a run); ``collection`` relabels it as "collection vs the
rest" (classify only). Results land where :func:`core.analysis.classify.run_classifiers`,
:func:`core.analysis.clusters.run_clusters` and :func:`core.analysis.tags.compute_dataset_tags` write them.

Two jobs with the same target (:func:`job_target`) must not run at once: classify and cluster work on one kind of
results of a source, tags on a dataset (the tags of every run of it, whichever run asked).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Optional

from core.analysis.collections import collection_source, load_collection
from core.analysis.config import AgreementConfig, ClassifyConfig, ClusterConfig, TagsConfig
from core.analysis.sources import Source, load_source
from core.analysis.tags import TAGS, compute_dataset_tags, tags_computable, tags_reason
from core.base.errors import TagError, TimbreError
from core.base.progress import Progress
from core.data.dataset import list_datasets


def _tags_dataset(run: str) -> str:
    """The dataset whose tags a tags job on ``run`` computes; :class:`TagError` with the reason when it cannot."""
    from core.runs.folder import load_run

    loaded = load_run(run)
    if not tags_computable(loaded):
        raise TagError(tags_reason(loaded) or f"run {run}'s dataset cannot have musicnn tags computed here")
    return loaded.config["dataset"]


def analysis_spec(kind: str, cfg, *, run: Optional[str] = None, features: Optional[str] = None,
                  collection: Optional[str] = None) -> dict:
    """A checked spec (see the module docstring) of a ``kind`` job with settings ``cfg`` (its config, already
    built and bounded): one source is named and exists (tags: a run whose dataset has audio, with musicnn's weights
    here). What only the data can tell (an input the source lacks, too few tracks) is the job's error.

    Raises
    ------
    TimbreError
        With what is wrong.
    """
    from core.runs.folder import list_runs

    if (run is None) == (features is None):
        raise TimbreError("an analysis job needs either a run or a feature table, not both")
    if kind == "tags" and run is None:
        raise TimbreError("musicnn tags are computed for a run's dataset: name the run, not a feature table")
    if collection is not None and kind != "classify":
        raise TimbreError("only classifiers can use a collection as their labels")
    if run is not None and run not in list_runs():
        raise TimbreError(f"no run named {run!r}")
    if features is not None and features not in list_datasets():
        raise TimbreError(f"no dataset named {features!r}")
    spec = {"kind": kind, "run": run, "features": features, "collection": collection,
            "config": dataclasses.asdict(cfg)}
    if kind == "tags":
        spec["dataset"] = _tags_dataset(run)
    return spec


def job_target(kind: str, *, run: Optional[str] = None, features: Optional[str] = None,
               collection: Optional[str] = None) -> dict:
    """The fields of a spec that say what a ``kind`` job works on: the run's dataset for tags, else the source and
    the collection. Two jobs whose specs agree on them must not run at once."""
    if kind == "tags":
        from core.runs.folder import load_run

        return {"kind": kind, "dataset": load_run(run).config.get("dataset")}
    return {"kind": kind, "run": run, "features": features, "collection": collection}


def spec_source(spec: dict) -> Source:
    """The data a classify or cluster spec works on: its run or feature table, relabelled by its collection."""
    source = load_source(run=spec.get("run"), features=spec.get("features"))
    if spec.get("collection"):
        source = collection_source(source, load_collection(source.dataset, spec["collection"]))
    return source


def classify_task(spec: dict, cfg: ClassifyConfig, *, progress: Progress) -> dict:
    """Classifiers on the spec's source; returns the job's result: ``results_dir``, ``n_results``, ``seconds``,
    ``warnings``."""
    from core.analysis.classify import run_classifiers

    report = run_classifiers(spec_source(spec), cfg=cfg, progress=progress)
    return {"results_dir": str(report.results_dir), "n_results": len(report.summary),
            "seconds": round(report.seconds, 2), "warnings": list(report.warnings)}


def cluster_task(spec: dict, cfg: ClusterConfig, *, progress: Progress) -> dict:
    """Clusters of the spec's source; returns the job's result as :func:`classify_task` does."""
    from core.analysis.clusters import run_clusters

    report = run_clusters(spec_source(spec), cfg=cfg, progress=progress)
    return {"results_dir": str(report.results_dir), "n_results": len(report.summaries),
            "seconds": round(report.seconds, 2), "warnings": []}


def tags_task(spec: dict, cfg: TagsConfig, *, progress: Progress) -> dict:
    """musicnn tags of every track of the spec's dataset; returns the job's result: ``dataset``, ``n_tracks``,
    ``n_tagged`` (tracks whose audio could be read), ``seconds``, ``warnings``."""
    dataset = spec["dataset"]
    started = time.perf_counter()
    table = compute_dataset_tags(dataset, max_patches=cfg.max_patches, progress=progress)
    n_tagged = int(table[list(TAGS)].notna().any(axis=1).sum())
    unread = len(table) - n_tagged
    return {"dataset": dataset, "n_tracks": len(table), "n_tagged": n_tagged,
            "seconds": round(time.perf_counter() - started, 2),
            "warnings": [f"{unread} track(s) could not be read: they have no tags"] if unread else []}


def agreement_spec(run: str, other: str, cfg: AgreementConfig) -> dict:
    """A checked spec of an agreement job: two different runs that exist (whether they share tracks is the job's
    error, :class:`core.base.errors.CompareError`)."""
    from core.runs.folder import list_runs

    missing = [r for r in (run, other) if r not in list_runs()]
    if missing:
        raise TimbreError(f"no run named {missing[0]!r}")
    if run == other:
        raise TimbreError(f"neighbour agreement needs two different runs, not {run} twice")
    return {"kind": "agreement", "run": run, "other": other, "config": dataclasses.asdict(cfg)}


def agreement_task(spec: dict, cfg: AgreementConfig, *, progress: Progress) -> dict:
    """Each track's neighbour agreement between the spec's ``run`` and ``other`` (cached in ``run``'s folder,
    where the Map page reads it); returns ``n_shared``, ``mean`` (over the shared tracks), ``seconds``."""
    import numpy as np

    from core.analysis.agreement import track_agreement

    started = time.perf_counter()
    values = track_agreement(spec["run"], spec["other"], k=cfg.k, progress=progress)
    shared = np.isfinite(values)
    return {"run": spec["run"], "other": spec["other"], "n_shared": int(shared.sum()),
            "mean": round(float(values[shared].mean()), 3) if shared.any() else None,
            "seconds": round(time.perf_counter() - started, 2), "warnings": []}
