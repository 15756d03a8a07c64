import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from core.base.errors import RunError
from core.base.paths import runs_dir
from core.runs.build import train_run
from core.runs.folder import REQUIRED_FILES, list_runs, load_run, run_folder, run_summary
from core.training.config import TrainConfig


def test_run_folder_holds_every_contract_file_with_consistent_rows(tiny_run_id):
    run = load_run(tiny_run_id)
    for name in REQUIRED_FILES:
        assert (run.path / name).is_file(), name
    n = len(run.tracks)
    assert n == 12
    assert run.embeddings.shape == (n, 128) and run.embeddings.dtype == np.float32
    assert np.allclose(np.linalg.norm(run.embeddings, axis=1), 1.0, atol=1e-5)
    assert list(run.projections["track_id"]) == list(run.tracks["track_id"])
    for col in ("pca_x", "pca_y", "tsne_x", "tsne_y", "umap_x", "umap_y"):
        assert np.isfinite(run.projections[col]).all()
    assert {"track_id", "path", "label", "duration_s"} <= set(run.tracks.columns)


def test_config_and_metrics_describe_the_run(tiny_run_id):
    run = load_run(tiny_run_id)
    cfg = json.loads((run.path / "config.json").read_text())
    assert cfg["dataset"] == "tiny" and cfg["seed"] == 0 and cfg["train"]["epochs"] == 3
    assert cfg["mel_params"]["n_mels"] == 96 and "torch" in cfg["versions"]
    metrics = run.metrics
    assert len(metrics["loss"]) == 3
    for key in ("knn_eval", "baseline_mfcc_knn_eval"):
        assert 0.0 <= metrics[key]["knn_accuracy"] <= 1.0 and metrics[key]["n_classes"] == 3


def test_model_rebuilds_from_the_folder_alone(tiny_run_id):
    run = load_run(tiny_run_id)
    blob = torch.load(run.path / "model.pt", weights_only=True)
    assert blob["model_args"]["widths"] == [8, 16, 32, 64]
    assert run.model(torch.zeros(1, 96, run.config["chunk_frames"]) - 50).shape == (1, 128)


def test_crash_mid_run_leaves_no_folder_that_looks_complete(tiny_run_id, monkeypatch):
    before = set(list_runs())

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash while computing maps")

    monkeypatch.setattr("core.runs.build.fit_projections", boom)
    with pytest.raises(RuntimeError):
        train_run("tiny", cfg=TrainConfig(epochs=1, batch_size=12, widths=(4, 8), embed_chunks=2))
    assert set(list_runs()) == before
    assert not [p for p in runs_dir().iterdir() if p.name.startswith(".partial")]


def test_incomplete_folders_are_not_runs(tmp_path):
    with pytest.raises(RunError, match="not written completely"):
        with run_folder("half-done") as folder:
            (folder / "config.json").write_text("{}")
    (runs_dir() / "by-hand").mkdir()
    (runs_dir() / "by-hand" / "config.json").write_text("{}")
    assert "by-hand" not in list_runs()
    with pytest.raises(RunError, match="incomplete"):
        load_run("by-hand")


def test_summary_row(tiny_run_id):
    row = run_summary(tiny_run_id)
    assert row["dataset"] == "tiny" and row["tracks"] == 12 and row["labelled"] == 12
    assert row["size_mb"] > 0 and 0 <= row["knn5_acc"] <= 1 and 0 <= row["mfcc_knn5_acc"] <= 1


def test_an_unlabelled_library_trains_and_skips_the_evaluation(tiny_library, tmp_path):
    import shutil

    from core.data.ingest import IngestConfig, ingest

    flat = tmp_path / "flat"
    flat.mkdir()
    for wav in sorted(tiny_library.rglob("*.wav"))[::2]:
        shutil.copy(wav, flat / wav.name)
    ingest(flat, "tiny_unlabelled", config=IngestConfig(workers=1))
    run = load_run(train_run("tiny_unlabelled", cfg=TrainConfig(epochs=1, batch_size=6, widths=(4, 8), embed_chunks=2)))
    assert run.tracks["label"].isna().all()
    assert run.metrics["knn_eval"] is None and run.metrics["baseline_mfcc_knn_eval"] is None
    assert run_summary(run.run_id)["knn5_acc"] is None


def test_results_added_to_a_run_do_not_reorder_the_runs(tiny_run_id):
    order = list_runs()
    oldest = order[-1]
    (runs_dir() / oldest / "classifiers").mkdir(exist_ok=True)
    (runs_dir() / oldest / "classifiers" / "x.json").write_text("{}")
    assert list_runs() == order


def test_a_dead_writers_partial_folder_is_removed_and_a_live_ones_kept():
    from core.base.locks import file_lock
    from core.runs.folder import remove_stale_partials

    dead = runs_dir() / ".partial-killed-run"
    (dead / "sub").mkdir(parents=True)
    (dead / "model.pt").write_bytes(b"half")
    live = runs_dir() / ".partial-being-written"
    live.mkdir()
    with file_lock(runs_dir() / ".being-written.lock", what="writing run"):  # its writer is alive
        assert remove_stale_partials() == [".partial-killed-run"]
    assert not dead.exists() and live.exists()
    assert remove_stale_partials() == [".partial-being-written"]  # its writer has gone


def test_load_run_accepts_a_path_to_any_complete_run_folder(tiny_run_id, tmp_path):
    import shutil

    from core.runs.folder import run_path

    assert load_run(str(runs_dir() / tiny_run_id) + "/").path == runs_dir() / tiny_run_id
    assert run_path(f"{tiny_run_id}/") == runs_dir() / tiny_run_id
    copy = shutil.copytree(runs_dir() / tiny_run_id, tmp_path / "elsewhere" / "my-run")
    run = load_run(copy)
    assert run.run_id == "my-run" and run.path == copy and len(run.tracks) == 12
    with pytest.raises(RunError, match="no run named"):
        load_run(tmp_path / "nowhere")
    (copy / "embeddings.npy").unlink()
    with pytest.raises(RunError, match="incomplete: missing embeddings.npy"):
        load_run(copy)


def test_one_broken_run_is_listed_with_its_reason_and_the_others_keep_working(tiny_run_id, capsys):
    from core.cli import main
    from core.runs.folder import first_healthy_run, resolve_run, runs_table
    from tests.run_copies import broken_copies

    damaged = broken_copies(tiny_run_id, runs_dir())
    try:
        assert set(damaged) <= set(list_runs())
        for run_id, name in damaged.items():
            with pytest.raises(RunError, match=rf"run '{run_id}' is broken: {name} cannot be read"):
                load_run(run_id)
        table = runs_table().set_index("run_id")
        assert pd.isna(table.loc[tiny_run_id, "broken"]) and table.loc[tiny_run_id, "tracks"] == 12
        for run_id, name in damaged.items():
            assert f"{name} cannot be read" in table.loc[run_id, "broken"] and pd.isna(table.loc[run_id, "tracks"])
            assert str(runs_dir()) not in table.loc[run_id, "broken"]
        newest_whole = next(r for r in list_runs() if r not in damaged)  # the damaged copies are newer still
        assert first_healthy_run() == newest_whole and resolve_run().run_id == newest_whole
        assert main(["runs"]) == 0
        out = capsys.readouterr().out
        assert tiny_run_id in out and "cannot be opened: run 'zz-truncated' is broken: embeddings.npy" in out
    finally:
        for run_id in damaged:
            shutil.rmtree(runs_dir() / run_id)


def test_the_teacher_pass_runs_on_the_trainings_threads(tiny_run_id, monkeypatch):
    """The musicnn pass before training takes the training's threads (the demo's one: 1.1 s a track against
    4.2 s on two threads of a busy 2-core machine), not torch's default of every core."""
    seen = []

    def teacher(*args, **kwargs):
        seen.append(torch.get_num_threads())
        raise RuntimeError("stop after the teacher")

    monkeypatch.setattr("core.runs.build.teacher_targets", teacher)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError, match="stop after the teacher"):
            train_run("tiny", cfg=TrainConfig(epochs=1, batch_size=12, widths=(4, 8), embed_chunks=2, threads=1))
    finally:
        torch.set_num_threads(before)
    assert seen == [1]
