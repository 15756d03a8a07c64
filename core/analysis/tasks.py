"""Classify and cluster as background tasks: a spec that says what to compute on which data (plain JSON, checked
before a job starts) and the body that computes it in the job's process (:mod:`core.jobs`).

A spec::

    {"kind": "classify" | "cluster", "run": RUN_ID | None, "features": DATASET | None,
     "collection": COLLECTION_ID | None, "config": {ClassifyConfig or ClusterConfig fields}}

Exactly one of ``run`` and ``features`` names the source (:func:`core.analysis.sources.load_source`);
``collection`` relabels it as "collection vs the rest" (classify only). Results land where
:func:`core.analysis.classify.run_classifiers` and :func:`core.analysis.clusters.run_clusters` write them.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from core.analysis.classify import ClassifyConfig, run_classifiers
from core.analysis.clusters import ClusterConfig, run_clusters
from core.analysis.collections import collection_source, load_collection
from core.analysis.sources import load_source
from core.base.errors import TimbreError
from core.base.progress import Progress
from core.data.dataset import list_datasets

CONFIGS = {"classify": ClassifyConfig, "cluster": ClusterConfig}


ANALYSIS_KINDS = tuple(CONFIGS)


def _config(kind: str, values: dict):
    """The kind's config dataclass from JSON values (lists back to the tuples the dataclasses hold)."""
    try:
        return CONFIGS[kind](**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    except TypeError as error:
        raise TimbreError(f"unknown {kind} setting: {error}") from error


def analysis_spec(kind: str, *, run: Optional[str] = None, features: Optional[str] = None,
                  collection: Optional[str] = None, config: Optional[dict] = None) -> dict:
    """A checked spec (see the module docstring): the kind is known, one source is named and exists, and the
    config's fields are the dataclass's. What only the data can tell (an input the source lacks, too few
    tracks) is the job's error.

    Raises
    ------
    TimbreError
        With what is wrong.
    """
    from core.runs.folder import list_runs

    if kind not in CONFIGS:
        raise TimbreError(f"no analysis task {kind!r} (tasks: {', '.join(ANALYSIS_KINDS)})")
    if (run is None) == (features is None):
        raise TimbreError("an analysis job needs either a run or a feature table, not both")
    if collection is not None and kind != "classify":
        raise TimbreError("only classifiers can use a collection as their labels")
    cfg = _config(kind, config or {})
    if run is not None and run not in list_runs():
        raise TimbreError(f"no run named {run!r}")
    if features is not None and features not in list_datasets():
        raise TimbreError(f"no dataset named {features!r}")
    return {"kind": kind, "run": run, "features": features, "collection": collection,
            "config": dataclasses.asdict(cfg)}


def same_target(spec: dict, other: dict) -> bool:
    """True when two specs compute the same kind of results for the same data (so one must wait)."""
    return all(spec.get(k) == other.get(k) for k in ("kind", "run", "features", "collection"))


def run_analysis(spec: dict, *, progress: Progress) -> dict:
    """Compute what ``spec`` asks for; returns the job's result: ``results_dir``, ``n_results``, ``seconds``,
    ``warnings``."""
    source = load_source(run=spec.get("run"), features=spec.get("features"))
    if spec.get("collection"):
        source = collection_source(source, load_collection(source.dataset, spec["collection"]))
    cfg = _config(spec["kind"], spec["config"])
    if spec["kind"] == "classify":
        report = run_classifiers(source, cfg=cfg, progress=progress)
        n_results, warnings = len(report.summary), list(report.warnings)
    else:
        report = run_clusters(source, cfg=cfg, progress=progress)
        n_results, warnings = len(report.summaries), []
    return {"results_dir": str(report.results_dir), "n_results": n_results, "seconds": round(report.seconds, 2),
            "warnings": warnings}
