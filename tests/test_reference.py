"""The frozen musicnn reference as a run: built from a dataset, queried like any run, shown on every page."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.base.errors import DatasetError
from core.model.reference import ReferenceEncoder
from core.runs.folder import load_run, run_summary
from core.runs.reference import ReferenceConfig, reference_run
from core.service.query import recommend_file
from tests.pagetest import open_page, ranked_items


@pytest.fixture(scope="module")
def reference_id(tiny_run_id) -> str:
    return reference_run("tiny", cfg=ReferenceConfig(max_patches=4))


def test_reference_run_folder_is_complete_and_describes_itself(reference_id):
    run = load_run(reference_id)
    assert run.config["kind"] == "reference" and run.config["model_args"]["kind"] == "musicnn-msd"
    assert run.embeddings.shape == (12, 753)
    assert np.allclose(np.linalg.norm(run.embeddings, axis=1), 1.0, atol=1e-5)
    assert isinstance(run.model, ReferenceEncoder)
    met = run.metrics
    assert {"knn_eval", "baseline_mfcc_knn_eval", "recording_eval"} <= set(met)
    assert met["recording_eval"]["n_queries"] == 12
    assert set(run.projections["method"]) == {"pca", "tsne", "umap"} if "method" in run.projections else True
    assert run_summary(reference_id)["kind"] == "reference"


def test_the_reference_separates_the_tiny_styles(reference_id):
    """Three synthetic styles (electronic, strings, piano): a pretrained tagger tells them apart."""
    assert load_run(reference_id).metrics["knn_eval"]["knn_accuracy"] >= 0.75


def test_a_library_track_finds_itself_through_the_reference(reference_id):
    run = load_run(reference_id)
    path = Path(run.tracks["path"].iloc[5])
    rec = recommend_file(run, path, k=3)
    assert rec.neighbours["track_id"].iloc[0] == run.tracks["track_id"].iloc[5]
    assert rec.neighbours["score"].iloc[0] > 0.99


def test_the_teacher_cache_is_reused(reference_id, monkeypatch):
    """A second reference run (another layer) reads the dataset's cached activations instead of the audio."""
    import core.model.reference as reference

    monkeypatch.setattr(reference, "_decode16", lambda path: pytest.fail(f"decoded {path} again"))
    other = reference_run("tiny", cfg=ReferenceConfig(max_patches=4, layer="penultimate"))
    assert load_run(other).embeddings.shape == (12, 200)


def test_a_dataset_whose_audio_is_gone_says_so(reference_id, tmp_path, monkeypatch):
    import core.runs.reference as reference

    monkeypatch.setattr(reference, "library_patch_features", lambda *a, **k: [None] * 12)
    with pytest.raises(DatasetError, match="none of its audio files can be read"):
        reference_run("tiny", cfg=ReferenceConfig(max_patches=4))


@pytest.mark.parametrize("page", ["pages/runs.py", "pages/map.py", "pages/recommend.py", "pages/compare.py",
                                  "pages/clusters.py", "pages/classifiers.py", "pages/features.py"])
def test_every_page_opens_on_the_reference_run(reference_id, page, monkeypatch):
    import streamlit_webrtc.component

    monkeypatch.setattr(streamlit_webrtc.component, "get_this_session_info", lambda: None)
    at = open_page(page, active_run_id=reference_id)
    assert not at.exception and not at.error


def test_runs_page_shows_the_recording_figure_and_the_kind(reference_id):
    at = open_page("pages/runs.py", active_run_id=reference_id)
    metrics = {m.label: m.value for m in at.metric}
    top1 = load_run(reference_id).metrics["recording_eval"]["top1"]
    assert metrics["query by recording"] == f"{top1:.3f}"
    assert metrics["encoder"] == "musicnn"


def test_uploading_to_the_reference_run_recommends(reference_id, monkeypatch):
    import streamlit_webrtc.component

    monkeypatch.setattr(streamlit_webrtc.component, "get_this_session_info", lambda: None)
    run = load_run(reference_id)
    path = Path(run.tracks["path"].iloc[2])
    y, sr = sf.read(path, dtype="float32")
    buffer = io.BytesIO()
    sf.write(buffer, y, sr, format="WAV")
    at = open_page("pages/recommend.py", active_run_id=reference_id)
    at.file_uploader[0].set_value((path.name, buffer.getvalue(), "audio/wav")).run()
    assert not at.exception and not at.error
    assert ranked_items(at)[0].startswith(f"**1. {path.stem}**")


def test_cli_reference_and_evaluate(reference_id, capsys):
    from core.cli import main

    main(["evaluate", "--run", reference_id])
    out = capsys.readouterr().out
    assert "query by recording" in out and "source first" in out
    assert json.loads((load_run(reference_id).path / "metrics.json").read_text())["recording_eval"]["n_queries"] == 12
