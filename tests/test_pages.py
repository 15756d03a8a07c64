"""The Runs, Map and Recommend pages through Streamlit's AppTest, against the tiny run the fixtures build."""
from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from streamlit.testing.v1.util import patch_config_options

from core.base.paths import runs_dir
from core.demo import DemoConfig
from core.runs.folder import load_run
from core.service.query import similar_tracks
from tests.pagetest import RUN_KEY, atlas_args, markdown_text, n_players, open_page, ranked_items


@pytest.fixture(autouse=True)
def webrtc_without_server(monkeypatch):
    """streamlit-webrtc asks the live server for session info, which AppTest's mock runtime lacks.

    The library returns None itself outside a server ("callers can no-op"); make AppTest take that path.
    """
    import streamlit_webrtc.component

    monkeypatch.setattr(streamlit_webrtc.component, "get_this_session_info", lambda: None)


def wav_bytes(y: np.ndarray, sr: int = 22_050, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, y, sr, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def two_runs(monkeypatch, tmp_path, tiny_run_id) -> tuple[str, str]:
    """A private artifacts folder holding the tiny run and a copy of it (the copy is newer)."""
    source = runs_dir() / tiny_run_id
    monkeypatch.setenv("TIMBRE_ARTIFACTS", str(tmp_path))
    (tmp_path / "runs").mkdir()
    copy = f"{tiny_run_id}-copy"
    for age, name in enumerate((copy, tiny_run_id)):
        shutil.copytree(source, tmp_path / "runs" / name)
        stamp = time.time() - 60 * age
        os.utime(tmp_path / "runs" / name / "config.json", (stamp, stamp))
    return tiny_run_id, copy


# --------------------------------------------------------------------------------------------------- Runs


def test_runs_page_lists_the_run_with_learned_and_baseline_scores(tiny_run_id):
    at = open_page()
    assert at.title[0].value == "Runs"
    assert tiny_run_id in at.selectbox(key="runs_pick").options
    table = at.dataframe[0].value
    row = table.set_index("run_id").loc[tiny_run_id]
    metrics = load_run(tiny_run_id).metrics
    assert row["knn5_acc"] == pytest.approx(metrics["knn_eval"]["knn_accuracy"])
    assert row["mfcc_p_at_5"] == pytest.approx(metrics["baseline_mfcc_knn_eval"]["precision_at_k"])
    assert row["tracks"] == 12 and row["dataset"] == "tiny"
    assert [m.label for m in at.metric][:2] == ["5-NN accuracy", "precision@5"]
    assert "MFCC" in at.metric[0].delta  # "+0.083 vs MFCC" or "same as MFCC"
    shown = "\n".join(e.value for e in [*at.caption, *at.markdown])
    assert str(runs_dir()) not in shown and f"<artifacts>/runs/{tiny_run_id}" in shown  # no server path
    columns = list(at.dataframe[0].proto.column_order)
    assert "broken" not in columns and {"recipe", "distill"} <= set(columns)  # no column of "None" for healthy runs
    assert row["recipe"] == load_run(tiny_run_id).config["train"].get("recipe", "(before recipes)")


def test_choosing_a_run_is_kept_across_pages(two_runs):
    older, newer = two_runs
    at = open_page()
    assert at.session_state[RUN_KEY] == newer  # newest first by default
    at.selectbox(key="runs_pick").set_value(older).run()
    assert not at.exception
    assert at.session_state[RUN_KEY] == older
    assert at.dataframe[0].value.set_index("run_id").loc[older, "active"]
    at.switch_page("pages/map.py").run()
    assert any(older in c.value for c in at.caption)
    at.switch_page("pages/runs.py").run()
    assert at.selectbox(key="runs_pick").value == older


def test_without_runs_the_page_starts_the_demo_as_a_background_job_with_progress(monkeypatch, tmp_path):
    """The button starts a registered demo job in its own process (the server never builds the demo itself); the
    page shows its progress and a Cancel button while it runs."""
    from core import jobs

    monkeypatch.setenv("TIMBRE_ARTIFACTS", str(tmp_path))
    at = open_page()
    assert "There is no run yet" in at.info[0].value
    at.button(key="demo_first_start").click().run()
    assert not at.exception, [e.message for e in at.exception]
    (job,) = jobs.list_jobs()
    try:
        assert job["kind"] == "demo" and jobs.job_kind("demo").config_of(job["spec"]) == DemoConfig()
        assert job["state"] in jobs.ACTIVE and job["pid"] != os.getpid()
        assert at.session_state["runs_demo_job"] == job["job_id"] and at.get("progress")
        assert [b.label for b in at.button] == ["Cancel"]  # no second demo job while one runs
    finally:
        assert jobs.cancel_job(job["job_id"], grace_s=10.0)["state"] == "cancelled"


def test_a_finished_demo_job_makes_its_run_the_active_run(monkeypatch, tmp_path, tiny_run_id):
    from core import jobs
    from core.base.io import atomic_write_json

    source = runs_dir() / tiny_run_id
    monkeypatch.setenv("TIMBRE_ARTIFACTS", str(tmp_path))
    shutil.copytree(source, tmp_path / "runs" / "demo-run")
    job_id = "20261206-000000-demo-abcd"  # a job folder as core.jobs leaves it when the demo is built
    folder = jobs.jobs_dir() / job_id
    folder.mkdir(parents=True)
    atomic_write_json(folder / "spec.json", {"kind": "demo", "dataset": "demo", "config": {}})
    atomic_write_json(folder / "status.json", {"state": "done", "result": {"run_id": "demo-run"}, "done": 1,
                                               "total": 1, "losses": []})
    at = open_page(runs_demo_job=job_id)
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state[RUN_KEY] == "demo-run" and "runs_demo_job" not in at.session_state
    assert at.selectbox(key="runs_pick").value == "demo-run"
    # the other pages stop with a pointer to the Runs page when there is no run
    monkeypatch.setenv("TIMBRE_ARTIFACTS", str(tmp_path / "empty"))
    for page in ("pages/map.py", "pages/recommend.py"):
        at.switch_page(page).run()
        assert not at.exception and "There is no run yet" in at.info[0].value


def test_a_page_opened_first_gets_the_router_frame_once(tiny_run_id):
    """AppTest starts each run as Streamlit's old pages/-folder mode does after a server start (the page without
    app.py); the page must still get the router's frame (the sidebar's run picker), once, and its buttons work."""
    at = open_page("pages/map.py", active_run_id=tiny_run_id)
    assert [s.label for s in at.sidebar.selectbox] == ["Active run", "Listener"]
    assert [t.value for t in at.title] == ["Map"]
    at.text_input(key=f"map_search_{tiny_run_id}").set_value("piano").run()
    at.selectbox(key=f"map_search_pick_{tiny_run_id}").set_value(1).run()
    assert [s.label for s in at.sidebar.selectbox] == ["Active run", "Listener"] and not at.exception
    piano = load_run(tiny_run_id).tracks["path"].str.contains("piano")
    assert at.session_state["atlas_focus"]["track_id"] in set(load_run(tiny_run_id).tracks["track_id"][piano])


# ---------------------------------------------------------------------------------------------------- Map


def test_a_run_this_version_cannot_open_gets_a_plain_message_on_every_page(monkeypatch, tmp_path, tiny_run_id):
    import torch

    shutil.copytree(runs_dir() / tiny_run_id, tmp_path / "runs" / "from-a-newer-version")
    model_file = tmp_path / "runs" / "from-a-newer-version" / "model.pt"
    blob = torch.load(model_file, weights_only=True)
    blob["model_args"]["pooling"] = "attention"  # a model kind this version does not know
    torch.save(blob, model_file)
    monkeypatch.setenv("TIMBRE_ARTIFACTS", str(tmp_path))
    at = open_page()
    assert "from-a-newer-version" in at.dataframe[0].value["run_id"].tolist()  # the table still lists it
    assert "cannot be opened" in at.error[0].value and "pooling" in at.error[0].value
    for page in ("pages/map.py", "pages/recommend.py"):
        at.switch_page(page).run()
        assert not at.exception and "from-a-newer-version cannot be opened" in at.error[0].value
        assert [t.value for t in at.title] == [page.removeprefix("pages/").removesuffix(".py").title()]


# ---------------------------------------------------------------------------------------------- Recommend


def test_recommend_page_renders_the_three_ways_in(tiny_run_id):
    at = open_page("pages/recommend.py", active_run_id=tiny_run_id)
    assert [t.label for t in at.tabs] == ["Upload a file", "Start from a library track", "Start from several tracks",
                                         "For you", "Record from the microphone"]
    assert at.file_uploader[0].allowed_type == [".mp3", ".wav", ".ogg", ".flac", ".m4a"]
    recorders = at.get("component_instance")
    assert len(recorders) == 1 and "webrtc" in recorders[0].proto.component_name


@pytest.mark.parametrize("fmt,ext", [("WAV", "wav"), ("FLAC", "flac")])
def test_uploading_a_library_track_finds_itself_first(tiny_run_id, fmt, ext):
    run = load_run(tiny_run_id)
    path = Path(run.tracks["path"].iloc[4])
    y, sr = sf.read(path, dtype="float32")
    at = open_page("pages/recommend.py", active_run_id=tiny_run_id)
    at.file_uploader[0].set_value((f"{path.stem}.{ext}", wav_bytes(y, sr, fmt), f"audio/{ext}")).run()
    assert not at.exception and not at.error
    items = ranked_items(at)
    assert items and items[0].startswith(f"**1. {path.stem}**")
    score = float(items[0].split("similarity **")[1].split("**")[0])
    assert score > 0.99
    assert all("[Spotify](https://open.spotify.com/search/" in i and "[YouTube](https://www.youtube.com/" in i
               for i in items)
    assert n_players(at) == 1 + 5  # the query, then 5 neighbours
    drawn = atlas_args(at, "upload_map")  # the query on the atlas map, with lines to its 5 neighbours
    assert drawn["query"] is not None and drawn["focus"] is None and len(drawn["linked"]) == 4 * 5


def test_k_changes_the_number_of_recommendations(tiny_run_id):
    run = load_run(tiny_run_id)
    y, sr = sf.read(run.tracks["path"].iloc[0], dtype="float32")
    at = open_page("pages/recommend.py", active_run_id=tiny_run_id)
    at.slider(key="recommend_k").set_value(8)
    at.file_uploader[0].set_value(("q.wav", wav_bytes(y, sr), "audio/wav")).run()
    assert n_players(at) == 1 + 8


@pytest.mark.parametrize("name,content,message", [
    ("notes.wav", b"this is not audio at all" * 100, "not a readable audio file"),
    ("empty.mp3", b"", "empty"),
    ("blip.wav", None, "too short"),
])
def test_a_bad_upload_shows_an_error_and_the_app_keeps_working(tiny_run_id, name, content, message):
    if content is None:
        content = wav_bytes(0.3 * np.sin(np.linspace(0, 400, 22_050)).astype(np.float32))  # 1 s
    at = open_page("pages/recommend.py", active_run_id=tiny_run_id)
    at.file_uploader[0].set_value((name, content, "audio/wav")).run()
    assert not at.exception
    assert name in at.error[0].value and message in at.error[0].value
    good, sr = sf.read(load_run(tiny_run_id).tracks["path"].iloc[0], dtype="float32")
    at.file_uploader[0].set_value(("good.wav", wav_bytes(good, sr), "audio/wav")).run()
    assert not at.exception and not at.error
    assert any(m.value.startswith("**1.") for m in at.markdown)


def test_an_upload_over_the_size_limit_is_refused(tiny_run_id):
    y = (0.1 * np.random.default_rng(0).standard_normal(22_050 * 30)).astype(np.float32)
    data = wav_bytes(y)  # about 1.3 MB
    with patch_config_options({"server.maxUploadSize": 1}):  # the widget itself changes with the limit
        at = open_page("pages/recommend.py", active_run_id=tiny_run_id)
        at.file_uploader[0].set_value(("long.wav", data, "audio/wav")).run()
    assert not at.exception
    assert "too large" in at.error[0].value and "limit is 1 MB" in at.error[0].value


def _recording(y: np.ndarray, sr: int):
    """A finished MicRecording holding ``y``, as 48 kHz stereo browser frames would leave it."""
    import soxr

    from core.audio.live import MicRecording
    from tests.test_live import make_frames

    rec = MicRecording()
    rec.add_frames(make_frames(soxr.resample(y, sr, 48_000), rate=48_000))
    return rec


def test_a_finished_microphone_recording_gives_recommendations(tiny_run_id):
    run = load_run(tiny_run_id)
    path = Path(run.tracks["path"].iloc[8])
    y, sr = sf.read(path, dtype="float32")
    at = open_page("pages/recommend.py", active_run_id=tiny_run_id, mic_recording=_recording(y[:5 * sr], sr))
    assert not at.exception and not at.error
    assert "your recording (5.0 s)" in markdown_text(at)
    items = ranked_items(at)
    assert run.tracks["label"].iloc[8] in items[0]
    assert n_players(at) == 1 + 5
    assert atlas_args(at, "mic_map")["query"] is not None
    assert at.session_state["mic_recording"] is None  # analysed once; the audio is kept for other k
    at.slider(key="recommend_k").set_value(3).run()
    assert n_players(at) == 1 + 3


@pytest.mark.parametrize("audio,message", [(None, "no audio arrived from the microphone"),
                                           (np.zeros(22_050 * 4, np.float32), "is silent"),
                                           ("tone", "too short")])
def test_an_unusable_recording_gives_a_plain_message(tiny_run_id, audio, message):
    from core.audio.live import MicRecording

    if audio is None:
        rec = MicRecording()
    elif isinstance(audio, str):
        rec = _recording((0.3 * np.sin(np.arange(22_050) / 5)).astype(np.float32), 22_050)
    else:
        rec = _recording(audio, 22_050)
    at = open_page("pages/recommend.py", active_run_id=tiny_run_id, mic_recording=rec)
    assert not at.exception
    assert message in at.error[0].value and "microphone recording" in at.error[0].value


# ------------------------------------------------------------------------------- Recommend: by a track's name


def test_a_named_track_gives_its_neighbours_and_is_highlighted_on_the_map(tiny_run_id):
    run = load_run(tiny_run_id)
    at = open_page("pages/recommend.py", active_run_id=tiny_run_id)
    at.text_input(key="recommend_search").input("PIANO_").run()  # part of a file name, any case
    assert not at.exception
    pick = at.selectbox(key="recommend_pick")
    stems = [Path(p).stem for p in run.tracks["path"]]
    piano = [i for i, s in enumerate(stems) if s.startswith("piano_")]
    assert sorted(pick.options) == sorted(f"{stems[i]} · piano" for i in piano) and len(piano) == 4
    row = piano[2]
    pick.set_value(row).run()
    assert not at.exception and not at.error
    expected = similar_tracks(run, row, k=6)
    items = ranked_items(at)
    assert [i.split("**")[1] for i in items] == [f"{n + 1}. {Path(p).stem}" for n, p in enumerate(expected["path"])]
    assert "this track" in items[0] and "similarity **1.000**" in items[0]
    assert "Top 5 most similar tracks" in markdown_text(at)
    assert all("[Spotify](" in i and "[YouTube](" in i for i in items)
    assert n_players(at) == 1 + 5  # the chosen track, then its 5 neighbours
    drawn = atlas_args(at, "search_map")  # the track starred on the atlas map, lines to its neighbours
    assert drawn["focus"] == row and drawn["query"] is None
    assert sorted(np.frombuffer(drawn["linked"], dtype="<u4").tolist()) == sorted(expected["row"][1:])
    at.slider(key="recommend_k").set_value(3).run()
    assert len(ranked_items(at)) == 1 + 3


def test_a_name_that_matches_nothing_says_so(tiny_run_id):
    at = open_page("pages/recommend.py", active_run_id=tiny_run_id)
    at.text_input(key="recommend_search").input("no such song").run()
    assert not at.exception and "No track of this run matches 'no such song'" in at.info[0].value
    assert not ranked_items(at) and not at.get("plotly_chart")


def test_a_damaged_newer_run_is_listed_with_its_reason_and_every_page_still_opens(monkeypatch, tmp_path, tiny_run_id):
    from tests.run_copies import broken_copies

    shutil.copytree(runs_dir() / tiny_run_id, tmp_path / "runs" / tiny_run_id)
    monkeypatch.setenv("TIMBRE_ARTIFACTS", str(tmp_path))
    damaged = broken_copies(tiny_run_id, tmp_path / "runs")
    at = open_page()
    assert at.session_state[RUN_KEY] == tiny_run_id  # the newest run that opens is the default
    table = at.dataframe[0].value.set_index("run_id")
    for run_id, name in damaged.items():
        assert f"{name} cannot be read" in table.loc[run_id, "broken"]
    assert table.loc[tiny_run_id, "broken"] == "" and "broken" in at.dataframe[0].proto.column_order
    for page in ("pages/map.py", "pages/recommend.py", "pages/compare.py", "pages/clusters.py",
                 "pages/classifiers.py", "pages/features.py", "pages/library.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.message for e in at.exception])
    at.session_state[RUN_KEY] = "zz-truncated"
    for page in ("pages/map.py", "pages/classifiers.py", "pages/features.py", "pages/clusters.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.message for e in at.exception])
        assert "zz-truncated cannot be opened" in at.error[0].value, page
        assert "embeddings.npy cannot be read" in at.error[0].value and str(tmp_path) not in at.error[0].value
    shutil.copytree(tmp_path / "runs" / tiny_run_id, tmp_path / "runs" / "healthy-copy")
    at.switch_page("pages/compare.py").run()  # the broken runs are not offered, the active one not pre-selected
    assert not at.exception and not at.error
    assert sorted(at.multiselect(key="compare_runs").value) == sorted([tiny_run_id, "healthy-copy"])
    assert set(at.multiselect(key="compare_runs").options) == {tiny_run_id, "healthy-copy"}
    assert "2 run(s) that cannot be opened are left out" in at.caption[0].value


def test_the_dashboard_listens_on_this_machine_only_unless_told_otherwise(monkeypatch):
    """It has no login: .streamlit/config.toml binds it to 127.0.0.1 (the README says how to serve a network)."""
    from streamlit import config

    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    try:
        assert config.get_config_options(force_reparse=True)["server.address"].value == "127.0.0.1"
    finally:
        config.get_config_options(force_reparse=True)


def test_a_projection_switch_that_answers_none_keeps_the_shared_projection(tiny_run_id):
    """A server's first request straight to /map runs the page outside the router; the next click then reached a
    switch of another id, which answered None, and the page raised 'unknown projection None'."""
    at = open_page("pages/map.py", active_run_id=tiny_run_id, active_projection="tsne", map_projection=None)
    assert not at.exception, [e.message for e in at.exception]
    assert at.session_state["active_projection"] == "tsne"
    assert atlas_args(at)["points_key"].split("/")[1] == "tsne"
