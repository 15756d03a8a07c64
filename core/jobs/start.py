"""Starting a background job: the arguments checked with the kind's config class (:mod:`core.jobs.registry`),
clear errors before any process starts, and one job at a time on the same data: a dataset (ingest, train, demo;
tags) or one kind of results of a source (classify, cluster)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from core.base.errors import TimbreError
from core.jobs.registry import LIBRARY_KINDS, job_kind
from core.jobs.runner import ACTIVE, launch, list_jobs


def check_train(train: dict) -> dict:
    """Every value of the training ``train`` asks for: its ``recipe`` (default: the default recipe) with the
    other keys in place of the recipe's values (unknown keys and bad values: a TimbreError naming them)."""
    from core.training.config import DEFAULT_RECIPE, load_recipe

    settings = dict(train)
    return dataclasses.asdict(load_recipe(settings.pop("recipe", DEFAULT_RECIPE), settings))


def _settings(kind: str, values: Optional[dict]) -> dict:
    """The fields of ``kind``'s config with ``values`` in place of its defaults, checked, as JSON."""
    return dataclasses.asdict(job_kind(kind).build(values))


def _newest(kind: str, /, **wanted) -> Optional[dict]:
    """The newest ``kind`` job whose spec holds every ``wanted`` value (a running one when there is one), or None."""
    return next((j for j in list_jobs(kinds=(kind,)) if all(j["spec"].get(k) == v for k, v in wanted.items())), None)


def _refuse_running(job: Optional[dict], doing: str) -> None:
    """A :class:`TimbreError` when ``job`` is still running (it is ``doing`` what another would do again)."""
    if job is not None and job["state"] in ACTIVE:
        raise TimbreError(f"job {job['job_id']} is still {doing}: wait for it or cancel it")


def _refuse_when_busy(dataset: str) -> None:
    """A :class:`TimbreError` when a job is still writing ``dataset`` (ingest, train, demo)."""
    busy = [j["job_id"] for j in list_jobs(kinds=LIBRARY_KINDS + ("demo",))
            if j["state"] in ACTIVE and j["spec"].get("dataset") == dataset]
    if busy:
        raise TimbreError(f"job {busy[0]} is still working on dataset {dataset!r}: wait for it or cancel it")


def start_job(*, dataset: str, source: str | Path | None = None, train: Optional[dict] = None,
              ingest: Optional[dict] = None, labels: bool = True) -> str:
    """Check the arguments, write the job folder and start its detached process: ingest, train, or both.

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
        :class:`core.data.config.IngestConfig` fields that differ from the defaults.
    labels : bool
        False: ignore folder names and manifests.

    Returns
    -------
    str
        The job id.
    """
    from core.data.dataset import load_dataset
    from core.data.library import check_name, check_source

    dataset = check_name(dataset)
    if source is None and train is None:
        raise TimbreError("a job needs a folder to ingest, training settings, or both")
    spec = {"dataset": dataset, "labels": bool(labels), "source": None, "ingest": None, "train": None}
    if source is not None:
        spec["source"] = check_source(source)
        spec["ingest"] = _settings("ingest", ingest)
    else:
        load_dataset(dataset)  # a clear error now, not in the job's log
    if train is not None:
        spec["train"] = check_train(train)
    spec["kind"] = "+".join(k for k in ("ingest", "train") if spec[k] is not None)
    _refuse_when_busy(dataset)
    return launch(spec, name=dataset)


def start_demo_job(config: Optional[dict] = None) -> str:
    """Start building the demo run (:func:`core.demo.build_demo`) in a background job: the web server never
    builds it in its own process.

    Parameters
    ----------
    config : dict or None
        :class:`core.demo.DemoConfig` fields that differ from the defaults.

    Returns
    -------
    str
        The job id; its result holds the new ``run_id``.
    """
    from core.demo import DEMO_DATASET

    spec = {"kind": "demo", "dataset": DEMO_DATASET, "config": _settings("demo", config)}
    _refuse_when_busy(DEMO_DATASET)
    return launch(spec, name="demo")


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
        :class:`core.analysis.config.ClassifyConfig`, :class:`core.analysis.config.ClusterConfig` or
        :class:`core.analysis.config.TagsConfig` fields that differ from the defaults.

    Returns
    -------
    str
        The job id.
    """
    from core.analysis.tasks import analysis_spec
    from core.jobs.registry import ANALYSIS_KINDS

    if kind not in ANALYSIS_KINDS:
        raise TimbreError(f"no analysis task {kind!r} (tasks: {', '.join(ANALYSIS_KINDS)})")
    cfg = job_kind(kind).build(config)
    spec = analysis_spec(kind, cfg, run=run, features=features, collection=collection)
    _refuse_running(find_analysis_job(kind, run=run, features=features, collection=collection),
                    f"{job_kind(kind).doing} for this data")
    return launch(spec, name=kind)


def find_analysis_job(kind: str, *, run: Optional[str] = None, features: Optional[str] = None,
                      collection: Optional[str] = None) -> Optional[dict]:
    """The newest ``kind`` job on this source (tags: on the run's dataset, whichever run started it) as its
    :func:`core.jobs.runner.job_status` (a running one when there is one), or None."""
    from core.analysis.tasks import job_target

    return _newest(kind, **job_target(kind, run=run, features=features, collection=collection))


def start_agreement_job(run: str, other: str, *, config: Optional[dict] = None) -> str:
    """Start computing each track's neighbour agreement between ``run`` and ``other``
    (:func:`core.analysis.agreement.track_agreement`, cached in ``run``'s folder) in a background job: minutes at
    100,000 tracks. One job at a time on the same pair.

    Returns
    -------
    str
        The job id.
    """
    from core.analysis.tasks import agreement_spec

    spec = agreement_spec(run, other, job_kind("agreement").build(config))
    _refuse_running(find_agreement_job(run, other), f"comparing {run} with {other}")
    return launch(spec, name="agreement")


def find_agreement_job(run: str, other: str) -> Optional[dict]:
    """The newest agreement job on ``run`` with ``other`` (a running one when there is one), or None."""
    return _newest("agreement", run=run, other=other)


def start_fingerprint_job(run: str) -> str:
    """Build ``run``'s landmark fingerprints from its tracks' files in a background job (a run trained before
    them, on its first live stream); the job already doing it, when there is one. Returns the job id."""
    busy = find_fingerprint_job(run)
    if busy is not None and busy["state"] in ACTIVE:
        return busy["job_id"]
    return launch({"kind": "fingerprints", "run": run, "config": _settings("fingerprints", None)}, name="fingerprints")


def find_fingerprint_job(run: str) -> Optional[dict]:
    """The newest fingerprint job on ``run`` (a running one when there is one), or None."""
    return _newest("fingerprints", run=run)


def find_demo_job() -> Optional[dict]:
    """The newest demo job (a running one when there is one), or None."""
    return _newest("demo")
