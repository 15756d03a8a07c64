"""Recommend shows the query's genre when the run has a classifier, through the query service, as the API and
the bot do: for an upload, a recording and a library track; nothing at all when the run has no classifier."""
from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from core.analysis.genre import predict_genre
from core.runs.folder import load_run
from tests.pagetest import markdown_text, open_page, ranked_items
from tests.run_copies import classified_run


@pytest.fixture(autouse=True)
def webrtc_without_server(monkeypatch):
    """streamlit-webrtc asks the live server for session info, which AppTest lacks (as in tests/test_pages.py)."""
    import streamlit_webrtc.component

    monkeypatch.setattr(streamlit_webrtc.component, "get_this_session_info", lambda: None)


def upload(at, path: str) -> None:
    y, sr = sf.read(path, dtype="float32")
    buffer = io.BytesIO()
    sf.write(buffer, y, sr, format="WAV")
    at.file_uploader[0].set_value(("q.wav", buffer.getvalue(), "audio/wav")).run()


def genre_lines(at) -> list[str]:
    return [line for line in markdown_text(at).splitlines() if line.startswith("Predicted genre:")]


def test_an_upload_gets_the_genre_the_run_predicts(tiny_run_id):
    run = load_run(classified_run(tiny_run_id, "features"))
    at = open_page("pages/recommend.py", active_run_id=run.run_id)
    path = run.tracks["path"].iloc[6]
    upload(at, path)
    assert not at.exception and not at.error
    expected = predict_genre(run, y=sf.read(path, dtype="float32")[0])
    [line] = genre_lines(at)
    assert line.startswith(f"Predicted genre: **{expected.label}** ({expected.probabilities[expected.label]:.0%}")
    assert "Logistic regression on features" in line
    assert expected.label == run.tracks["label"].iloc[6] and len(ranked_items(at)) == 5


def test_a_library_track_gets_its_genre_too(tiny_run_id):
    run = load_run(classified_run(tiny_run_id, "embeddings"))
    at = open_page("pages/recommend.py", active_run_id=run.run_id)
    at.text_input(key="recommend_search").input("strings_2").run()
    assert not at.exception and not at.error
    [line] = genre_lines(at)
    row = int(np.flatnonzero(run.tracks["path"].str.endswith("strings_2.wav"))[0])
    assert line.startswith(f"Predicted genre: **{predict_genre(run, embedding=run.embeddings[row]).label}**")


def test_a_run_without_a_classifier_shows_no_genre(tiny_run_id):
    at = open_page("pages/recommend.py", active_run_id=tiny_run_id)
    upload(at, load_run(tiny_run_id).tracks["path"].iloc[0])
    assert not at.exception and not at.error and ranked_items(at)
    assert genre_lines(at) == [] and "No genre prediction" not in " ".join(c.value for c in at.caption)
