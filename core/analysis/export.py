"""A run exported to where researchers already keep runs: TensorBoard's embedding projector and MLflow.

``python -m core export --run RUN --to tensorboard --out DIR`` writes, into ``DIR``::

    tensors.tsv            the embeddings, one track a line, tab-separated floats
    metadata.tsv           a header, then name, label, top tags, cluster, track_id per track (same order)
    projector_config.pbtxt the projector's config (text protobuf) naming both files, relative to DIR

so ``tensorboard --logdir DIR`` shows the run in its Projector tab as it is (no event files needed: with no
runs in a logdir the projector reads the logdir's own config).

``python -m core export --run RUN --to mlflow`` logs one MLflow run (experiment "timbre-atlas") through
MLflow's own client to ``MLFLOW_TRACKING_URI``, by default a local file store ``./mlruns``: the run's settings
(flattened config) as params, loss per epoch (step = epoch) and every evaluation figure as metrics, the run folder
as artifacts. MLflow is an optional extra: ``pip install -e ".[mlflow]"``. MLflow 3 refuses a file store unless
``MLFLOW_ALLOW_FILE_STORE`` is true; the export sets it for a ``file:`` store when it is unset.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import re
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from core.analysis.config import EXPERIMENT
from core.analysis.maps import UNLABELLED
from core.analysis.quality import stored_qualities
from core.base.errors import ExportError
from core.base.io import atomic_write_bytes
from core.data.tracks import display_names
from core.runs.folder import Run, flat_config

TENSORS, METADATA, PROJECTOR_CONFIG = "tensors.tsv", "metadata.tsv", "projector_config.pbtxt"


ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"


KMEANS_NOW_MAX = 20_000  # clusters computed at export time up to this many tracks (silhouette is quadratic)


NO_TAGS = ""  # metadata value of a track without musicnn tags


MLFLOW_MISSING = 'MLflow is not installed: install the "mlflow" extra (pip install -e ".[mlflow]", the lightweight mlflow-skinny)'


def _cell(values: pd.Series) -> pd.Series:
    """Text safe inside a TSV cell: tabs and line breaks become spaces (the projector splits on them)."""
    return values.astype(str).str.replace(r"[\t\r\n]+", " ", regex=True).str.strip()


def projector_metadata(run: Run, *, cluster_method: str = "kmeans") -> tuple[pd.DataFrame, list[str]]:
    """The projector's metadata table of a run, one row per track (``run.tracks`` order).

    Returns
    -------
    table : pd.DataFrame [shape=(n_tracks, 5)]
        ``name``, ``label`` (:data:`core.analysis.maps.UNLABELLED` when unknown), ``top_tags`` (musicnn's top 3 with
        their likelihoods, "" without tags), ``cluster`` (the saved k-means results,
        :func:`core.analysis.clusters.run_cluster_labels`, else k-means computed now), ``track_id``.
    notes : list of str
        What is missing and why (no tags), and where the clusters come from when none were saved.
    """
    from core.analysis.clusters import run_cluster_labels
    from core.analysis.tags import run_tags, tags_reason, top_tag_text

    notes = []
    tags = run_tags(run)
    if tags is None:
        top = pd.Series(NO_TAGS, index=run.tracks.index)
        notes.append(f"no top tags: {tags_reason(run)}")
    else:
        top = top_tag_text(tags, n=3)
    clusters = run_cluster_labels(run, method=cluster_method)
    if clusters is None:
        clusters, note = _kmeans_now(run)
        notes.append(note)
    table = pd.DataFrame({"name": display_names(run.tracks).to_numpy(),
                          "label": run.tracks["label"].astype("string").fillna(UNLABELLED).to_numpy(),
                          "top_tags": top.to_numpy(), "cluster": clusters.to_numpy(),
                          "track_id": run.tracks["track_id"].to_numpy()})
    return table.apply(_cell), notes


def _kmeans_now(run: Run) -> tuple[pd.Series, str]:
    """Clusters for a run without saved cluster results: k-means on its L2-normalised embeddings, k by silhouette
    (as ``python -m core cluster`` finds them, not saved); above :data:`KMEANS_NOW_MAX` tracks none."""
    from core.analysis.cluster_methods import best_k, kmeans_curves
    from core.analysis.clusters import NOT_CLUSTERED, cluster_name
    from core.search.exact import l2_normalise

    saves = f"`python -m core cluster --run {run.run_id}` saves clusters the export then uses"
    if not 3 <= len(run.embeddings) <= KMEANS_NOW_MAX:
        return pd.Series(NOT_CLUSTERED, index=run.tracks.index), f"no clusters: {saves}"
    curves, labels = kmeans_curves(l2_normalise(run.embeddings, dtype=np.float64), seed=run.config.get("seed", 0))
    k = best_k(curves)
    return (pd.Series([cluster_name(c) for c in labels[k]], index=run.tracks.index),
            f"clusters: k-means on the embeddings computed now, k={k} by silhouette (not saved; {saves})")


def projector_config_text(tensor_name: str) -> str:
    """``projector_config.pbtxt`` for one embedding (text format of TensorBoard's ``ProjectorConfig``)."""
    name = json.dumps(str(tensor_name))  # a quoted, escaped string is valid in protobuf text format
    return (f"embeddings {{\n  tensor_name: {name}\n  tensor_path: \"{TENSORS}\"\n"
            f"  metadata_path: \"{METADATA}\"\n}}\n")


@dataclasses.dataclass(frozen=True)
class TensorBoardExport:
    folder: Path
    n_tracks: int
    dim: int
    notes: list[str]


def export_tensorboard(run: Run, out: str | Path, *, cluster_method: str = "kmeans") -> TensorBoardExport:
    """Write the run's embeddings, metadata and projector config into folder ``out`` (created; files of an
    earlier export there are replaced, atomically, and nothing else in it is touched).

    Raises
    ------
    ExportError
        ``out`` is a file.
    """
    folder = Path(out).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder} is a file; --out names a folder (TensorBoard's --logdir)")
    folder.mkdir(parents=True, exist_ok=True)
    table, notes = projector_metadata(run, cluster_method=cluster_method)
    buffer = io.StringIO()
    np.savetxt(buffer, np.asarray(run.embeddings, dtype=np.float32), fmt="%.6g", delimiter="\t")
    atomic_write_bytes(folder / TENSORS, buffer.getvalue().encode())
    atomic_write_bytes(folder / METADATA, table.to_csv(sep="\t", index=False, lineterminator="\n").encode())
    atomic_write_bytes(folder / PROJECTOR_CONFIG, projector_config_text(run.run_id).encode())
    return TensorBoardExport(folder=folder, n_tracks=len(table), dim=int(run.embeddings.shape[1]), notes=notes)


def tracking_uri(uri: Optional[str] = None) -> str:
    """``uri``, else ``MLFLOW_TRACKING_URI``, else a local file store ``./mlruns`` (as a file: URI)."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns").resolve().as_uri()


def _client(uri: str):
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ExportError(MLFLOW_MISSING) from None
    if uri.startswith("file:") and not os.environ.get(ALLOW_FILE_STORE):
        # MLflow 3 keeps its file store in maintenance mode and refuses it unless this is set; a local ./mlruns
        # folder is what this export promises (a user who sets the variable to false gets MLflow's refusal)
        os.environ[ALLOW_FILE_STORE] = "true"
    return MlflowClient(tracking_uri=uri)


def run_params(run: Run, *, max_length: int = 6000) -> dict[str, str]:
    """The run's settings as MLflow params: flattened config (ids, dates and paths left out), values as text cut
    to ``max_length`` characters (MLflow's limit)."""
    config = {k: v for k, v in run.config.items() if k not in ("run_id", "created", "dataset_path")}
    return {_metric_key(k): ("" if v is None else str(v))[:max_length] for k, v in flat_config(config).items()}


def _metric_key(key: str) -> str:
    """MLflow keys allow letters, digits, ``_ - . / :`` and spaces; anything else becomes ``_``."""
    return re.sub(r"[^\w\-./: ]", "_", key)


def _numbers(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key != "config":  # an evaluation's settings, not a result
                _numbers(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
        out[_metric_key(prefix)] = float(value)


def run_metrics(run: Run) -> tuple[dict[str, list[float]], dict[str, float]]:
    """The run's metrics for MLflow.

    Returns
    -------
    per_epoch : dict of name -> list of float
        ``loss`` and every other list of numbers as long as it (step = epoch, from 1).
    summary : dict of name -> float
        Every other number of ``metrics.json``, nested keys joined by dots (``knn_eval.knn_accuracy``).
    """
    metrics = run.metrics
    epochs = len(metrics.get("loss") or [])
    per_epoch = {_metric_key(k): [float(x) for x in v] for k, v in metrics.items()
                 if isinstance(v, list) and epochs and len(v) == epochs and all(isinstance(x, (int, float)) for x in v)}
    return per_epoch, {k: v for k, v in _figures(run).items() if not _is_count(k)}


def run_counts(run: Run) -> dict[str, str]:
    """The counts among the run's figures (tracks, queries, clusters: ``n_*`` and ``k``), as MLflow params: a
    count describes the run, it is not a result to compare."""
    return {k: f"{v:g}" for k, v in _figures(run).items() if _is_count(k)}


def _figures(run: Run) -> dict[str, float]:
    """Every number of ``metrics.json`` (lists aside), of each clustering's summary (ARI, NMI, silhouette, noise,
    k) and of the maps' trustworthiness where it was computed, by dotted key."""
    figures: dict[str, float] = {}
    _numbers("", {k: v for k, v in run.metrics.items() if not isinstance(v, list)}, figures)
    for path in sorted(run.path.glob("clusters/*/summary.json")):
        _numbers(f"clusters.{path.parent.name}", _json(path), figures)
    for method, quality in stored_qualities(run).items():  # the figure itself, not its cache key
        figures.update({f"maps.{method}.trustworthiness": quality["value"], f"maps.{method}.n_tracks": quality["n"],
                        f"maps.{method}.k": quality["k"]})
    return figures


def _is_count(key: str) -> bool:
    leaf = key.rpartition(".")[2]
    return leaf.startswith("n_") or leaf == "k" or ".sizes." in f".{key}"  # sizes: tracks per cluster


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # a result being written: left out
        return {}


@dataclasses.dataclass(frozen=True)
class MlflowExport:
    tracking_uri: str
    experiment_id: str
    mlflow_run_id: str
    n_params: int
    n_metrics: int
    reused: bool = False  # the run had been exported already: that MLflow run is the answer


def export_mlflow(run: Run, *, uri: Optional[str] = None, experiment: str = EXPERIMENT) -> MlflowExport:
    """Log ``run`` as one MLflow run of ``experiment`` (created when missing) at :func:`tracking_uri`.

    Raises
    ------
    ExportError
        MLflow is not installed (the message names the extra), or the store refuses the run.
    """
    uri = tracking_uri(uri)
    client = _client(uri)
    from mlflow.entities import Metric, Param

    try:
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        done = client.search_runs([experiment_id], max_results=1, filter_string=(
            f"tags.`timbre.run_id` = '{run.run_id}' and attributes.status = 'FINISHED'"))
        if done:  # exported before: one MLflow run per run, never a duplicate
            return MlflowExport(tracking_uri=uri, experiment_id=experiment_id, mlflow_run_id=done[0].info.run_id,
                                n_params=len(done[0].data.params), n_metrics=len(done[0].data.metrics), reused=True)
        tags = {"timbre.run_id": run.run_id, "timbre.dataset": str(run.config.get("dataset")),
                "timbre.kind": str(run.config.get("kind", "trained"))}
        mlflow_run = client.create_run(experiment_id, run_name=run.run_id, tags=tags)
    except Exception as error:  # MLflow raises its own MlflowException and OSError for an unusable store
        raise ExportError(f"MLflow store {uri} cannot take the run: {error}") from error
    run_id = mlflow_run.info.run_id
    try:
        params = {**run_params(run), **{f"counts.{k}": v for k, v in run_counts(run).items()}}
        per_epoch, summary = run_metrics(run)
        stamp = mlflow_run.info.start_time
        metrics = [Metric(key, value, stamp, epoch) for key, values in per_epoch.items()
                   for epoch, value in enumerate(values, start=1)]
        metrics += [Metric(key, value, stamp, 0) for key, value in summary.items()]
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), 100):  # MLflow's batch limits: 100 params, 1000 metrics
            client.log_batch(run_id, params=items[start:start + 100])
        for start in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[start:start + 1000])
        client.log_artifacts(run_id, str(run.path), artifact_path=run.run_id)
    except Exception as error:
        client.set_terminated(run_id, status="FAILED")
        raise ExportError(f"MLflow export of run {run.run_id} failed: {error}") from error
    client.set_terminated(run_id, status="FINISHED")
    return MlflowExport(tracking_uri=uri, experiment_id=experiment_id, mlflow_run_id=run_id, n_params=len(params),
                        n_metrics=len(per_epoch) + len(summary))
