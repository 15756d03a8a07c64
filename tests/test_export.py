"""Export of a run to TensorBoard's embedding projector and to MLflow (a temporary local store)."""
from __future__ import annotations

import builtins
import csv
import re

import numpy as np
import pandas as pd
import pytest

from core.analysis.export import (
    METADATA,
    TENSORS,
    export_mlflow,
    export_tensorboard,
    run_counts,
    run_metrics,
    run_params,
)
from core.analysis.quality import projection_quality
from core.base.errors import ExportError
from core.cli import main
from core.runs.folder import load_run
from tests.run_copies import copy_run


def projector(folder):
    """TensorBoard's own projector plugin on ``folder`` (a logdir without event files), as the server runs it:
    ``get(route, **query) -> werkzeug response``."""
    from tensorboard.plugins.base_plugin import TBContext
    from tensorboard.plugins.projector.projector_plugin import ProjectorPlugin
    from werkzeug.test import Client

    class NoRuns:  # a logdir of projector files only: the plugin falls back to the logdir itself, run "."
        def list_runs(self, ctx=None, *, experiment_id):
            return []

    apps = ProjectorPlugin(TBContext(logdir=str(folder), data_provider=NoRuns())).get_plugin_apps()
    return lambda route, **query: Client(apps[route]).get("/", query_string=query)


def _metadata(folder) -> list[list[str]]:
    # the projector splits lines on "\n" and cells on "\t", with no quoting
    return [line.split("\t") for line in (folder / METADATA).read_text().rstrip("\n").split("\n")]


def test_tensorboard_files_are_what_the_projector_reads(tiny_run_id, tmp_path, capsys):
    run = load_run(tiny_run_id)
    assert main(["export", "--run", tiny_run_id, "--to", "tensorboard", "--out", str(tmp_path / "tb")]) == 0
    folder = tmp_path / "tb"
    get = projector(folder)
    assert get("/runs").json == ["."]
    (embedding,) = get("/info", run=".").json["embeddings"]
    assert embedding["tensorName"] == tiny_run_id and embedding["tensorShape"] == list(run.embeddings.shape)
    assert (embedding["tensorPath"], embedding["metadataPath"]) == (TENSORS, METADATA)
    tensor = get("/tensor", run=".", name=tiny_run_id)
    assert tensor.status_code == 200
    np.testing.assert_allclose(np.frombuffer(tensor.data, np.float32).reshape(run.embeddings.shape), run.embeddings,
                               rtol=1e-5, atol=1e-6)
    assert get("/metadata", run=".", name=tiny_run_id).get_data(as_text=True) == (folder / METADATA).read_text()
    header, *rows = _metadata(folder)
    assert header == ["name", "label", "top_tags", "cluster", "track_id"]
    assert len(rows) == len(run.tracks) and all(len(r) == len(header) for r in rows)
    assert [r[4] for r in rows] == list(run.tracks["track_id"]) and [r[1] for r in rows] == list(run.tracks["label"])
    # training computed the tiny dataset's musicnn cache, so it has tags; no clusters were saved: k-means now
    assert all(re.fullmatch(r"[^,]+ 0\.\d\d, [^,]+ 0\.\d\d, [^,]+ 0\.\d\d", r[2]) for r in rows)
    assert all(re.fullmatch(r"cluster \d+", r[3]) for r in rows) and len({r[3] for r in rows}) >= 2
    assert "k-means on the embeddings computed now" in capsys.readouterr().out


def test_a_large_run_without_saved_clusters_is_exported_unclustered(tiny_run_id, tmp_path, monkeypatch):
    import core.analysis.export

    monkeypatch.setattr(core.analysis.export, "KMEANS_NOW_MAX", 5)  # the tiny run's 12 tracks count as "large"
    done = export_tensorboard(load_run(tiny_run_id), tmp_path)
    assert {r[3] for r in _metadata(tmp_path)[1:]} == {"not clustered"}
    assert any(n.startswith("no clusters: `python -m core cluster --run") for n in done.notes)


def test_tensorboard_metadata_with_clusters_and_without_tags(tiny_run_id, tmp_path, monkeypatch):
    from core.analysis import clusters, tags

    run = load_run(copy_run(tiny_run_id, "tiny-export"))
    run.tracks.loc[0, "title"] = "tab\there\nnew line"
    monkeypatch.setattr(tags, "run_tags", lambda r: None)  # a run whose dataset has no musicnn tags
    monkeypatch.setattr(clusters, "run_cluster_labels",
                        lambda r, method: pd.Series([f"cluster {i % 2 + 1}" for i in range(len(r.tracks))]))
    done = export_tensorboard(run, tmp_path)
    header, *rows = _metadata(tmp_path)
    assert len(rows) == len(run.tracks) and all(len(r) == len(header) for r in rows)
    assert rows[0][0] == "tab here new line"  # no tab or line break inside a cell
    assert {r[2] for r in rows} == {""} and [r[3] for r in rows[:2]] == ["cluster 1", "cluster 2"]
    assert len(done.notes) == 1 and done.notes[0].startswith("no top tags")


def test_tensorboard_out_must_be_a_folder(tiny_run_id, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="is a file"):
        export_tensorboard(load_run(tiny_run_id), tmp_path / "file")
    assert main(["export", "--run", tiny_run_id, "--to", "tensorboard"]) == 2
    assert "needs --out DIR" in capsys.readouterr().err


def test_mlflow_export_reads_back_with_mlflows_client(tiny_run_id, tmp_path, monkeypatch, capsys):
    from mlflow.tracking import MlflowClient

    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "")  # unset: the export allows MLflow's file store itself
    run = load_run(tiny_run_id)
    assert main(["export", "--run", tiny_run_id, "--to", "mlflow"]) == 0
    assert store in capsys.readouterr().out
    client = MlflowClient(tracking_uri=store)
    (found,) = client.search_runs([client.get_experiment_by_name("timbre-atlas").experiment_id])
    assert found.info.status == "FINISHED" and found.info.run_name == tiny_run_id
    assert found.data.tags["timbre.run_id"] == tiny_run_id
    assert found.data.params["train.epochs"] == str(run.config["train"]["epochs"])
    assert found.data.params["mel_params.n_mels"] == str(run.config["mel_params"]["n_mels"])
    assert "run_id" not in found.data.params and "dataset_path" not in found.data.params
    history = client.get_metric_history(found.info.run_id, "loss")
    assert [m.step for m in history] == list(range(1, len(run.metrics["loss"]) + 1))
    np.testing.assert_allclose([m.value for m in history], run.metrics["loss"])
    assert found.data.metrics["knn_eval.knn_accuracy"] == pytest.approx(run.metrics["knn_eval"]["knn_accuracy"])
    assert found.data.metrics["recording_eval.top5"] == pytest.approx(run.metrics["recording_eval"]["top5"])
    logged = {a.path.split("/")[-1] for a in client.list_artifacts(found.info.run_id, tiny_run_id)}
    assert {"config.json", "metrics.json", "embeddings.npy", "tracks.parquet"} <= logged
    assert found.data.params["counts.n_tracks"] == str(len(run.tracks)) and "n_tracks" not in found.data.metrics
    assert main(["export", "--run", tiny_run_id, "--to", "mlflow"]) == 0  # again: the same MLflow run
    assert f"already exported: MLflow run {found.info.run_id}" in capsys.readouterr().out
    assert len(client.search_runs([found.info.experiment_id])) == 1


def test_mlflow_params_and_metrics_of_a_run(tiny_run_id):
    run = load_run(tiny_run_id)
    params = run_params(run, max_length=5)
    assert all(len(v) <= 5 for v in params.values()) and "created" not in params
    per_epoch, summary = run_metrics(run)
    assert list(per_epoch) == ["loss"] and "recording_eval.config.seed" not in summary
    assert "n_tracks" not in summary and run_counts(run)["n_tracks"] == str(len(run.tracks))  # a count: a param


def test_mlflow_metrics_hold_cluster_agreement_and_map_trustworthiness(tiny_run_id):
    from tests.run_copies import copy_run

    run = load_run(copy_run(tiny_run_id, "tiny-export-figures"))
    (run.path / "clusters" / "hdbscan-embeddings").mkdir(parents=True)
    (run.path / "clusters" / "hdbscan-embeddings" / "summary.json").write_text(
        '{"k": 3, "ari": 0.41, "nmi": 0.52, "noise_share": 0.05, "sizes": {"0": 5}}')
    value = projection_quality(run, "umap")["value"]  # as the Map page stores it
    _, summary = run_metrics(run)
    assert summary["clusters.hdbscan-embeddings.ari"] == 0.41 and summary["clusters.hdbscan-embeddings.nmi"] == 0.52
    assert summary["maps.umap.trustworthiness"] == value and "clusters.hdbscan-embeddings.k" not in summary
    assert not [k for k in summary if k.startswith("maps.") and k != "maps.umap.trustworthiness"], summary  # no cache key
    assert run_counts(run)["maps.umap.n_tracks"] == "12"
    assert run_counts(run)["clusters.hdbscan-embeddings.k"] == "3" and "clusters.hdbscan-embeddings.sizes.0" not in summary


def test_mlflow_missing_names_the_extra(tiny_run_id, tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name.startswith("mlflow"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    with pytest.raises(ExportError, match=r'install the "mlflow" extra \(pip install -e "\.\[mlflow\]"'):
        export_mlflow(load_run(tiny_run_id), uri=(tmp_path / "store").as_uri())
    assert not (tmp_path / "store").exists()


def test_export_to_an_unknown_target_is_refused(tiny_run_id, capsys):
    with pytest.raises(SystemExit):
        main(["export", "--run", tiny_run_id, "--to", "wandb"])
    assert "invalid choice" in capsys.readouterr().err


def test_metadata_file_is_plain_tsv_for_other_tools_too(tiny_run_id, tmp_path):
    export_tensorboard(load_run(tiny_run_id), tmp_path)
    with open(tmp_path / METADATA, newline="") as f:
        table = list(csv.DictReader(f, delimiter="\t"))
    assert table[0].keys() == {"name", "label", "top_tags", "cluster", "track_id"}
