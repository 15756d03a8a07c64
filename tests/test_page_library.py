"""The Library page through Streamlit's AppTest: the form, refusals, a running job (cancelled from
the page), finished and failed jobs, and a job started from the page."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import jobs
from core.base.io import atomic_write_json
from core.data import library
from core.jobs.processes import start_time
from core.training.config import TrainConfig
from ui import nav

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "library.py")

@pytest.fixture(autouse=True)
def own_jobs_folder(tmp_path, tmp_path_factory, monkeypatch):
    """Each test sees only the jobs it makes (the page follows the newest job when it has none of its own); the
    session's temp folders are the library roots."""
    monkeypatch.setattr(jobs.runner, "jobs_dir", lambda: tmp_path / "jobs")
    monkeypatch.setenv("TIMBRE_UPLOADS", str(tmp_path / "uploads"))
    monkeypatch.setenv("TIMBRE_LIBRARY_ROOTS", str(tmp_path_factory.getbasetemp()))


@pytest.fixture(autouse=True)
def page_alone(monkeypatch):
    """The page runs as its own script here. ui.nav.require_router would rerun it through the router, and a
    rerun drops a button's click (AppTest runs every script run outside the router first)."""
    monkeypatch.setattr(nav, "require_router", lambda page_file: None)


def open_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def fill(at: AppTest, *, source: str = "folder", folder: str = "", name: str = "", train: bool = False) -> AppTest:
    at.radio(key="library_source").set_value(source).run()
    if source == "folder":
        at.text_input(key="library_folder").set_value(folder)
    at.text_input(key="library_name").set_value(name)
    at.toggle(key="library_train").set_value(train)
    at.button(key="library_start").click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def fake_job(job_id: str, *, pid: int | None = None, **status) -> str:
    """A job folder as core.jobs writes it (spec.json + status.json), for states a test cannot wait for."""
    folder = jobs.runner.jobs_dir() / job_id
    folder.mkdir(parents=True)
    atomic_write_json(folder / "spec.json", {"kind": "ingest+train", "dataset": "mine", "source": "/music/mine",
                                             "labels": True, "ingest": {}, "train": {"epochs": 3}})
    atomic_write_json(folder / "status.json", {
        "state": "running", "pid": pid, "pid_start": start_time(pid) if pid else None, "stage": "training",
        "done": 0, "total": 0, "message": "", "values": {}, "losses": [], "result": {}, "error": None,
        "created": "2026-01-01T10:00:00", "started": "2026-01-01T10:00:01", "finished": None, **status})
    return job_id


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_the_form_has_the_main_settings():
    at = open_page()
    assert at.title[0].value == "Library"
    assert [o for o in at.radio(key="library_source").options] == list(
        ("A folder on the server", "Upload files", "A dataset already ingested"))
    assert at.text_input(key="library_folder") is not None and at.text_input(key="library_name") is not None
    defaults = TrainConfig()
    numbers = {n.label: n.value for n in at.number_input}
    assert numbers == {"Epochs": defaults.epochs, "Chunk length (s)": defaults.chunk_seconds, "Seed": defaults.seed}
    at.toggle(key="library_train").set_value(False).run()
    assert not at.number_input  # no training settings when only ingesting
    assert not at.error


def test_a_missing_folder_is_refused_clearly(tmp_path):
    at = fill(open_page(), folder=str(tmp_path / "nowhere"), name="mine")
    assert "no such folder on the server" in texts(at.error) and "nowhere" in texts(at.error)
    assert jobs.list_jobs() == []


@pytest.mark.parametrize("folder", ["~nosuchuser123", "mine\0x", "a" * 5000, "../core"])
def test_a_folder_box_never_crashes_and_names_no_server_path(folder):
    at = fill(open_page(), folder=folder, name="mine")
    shown = texts(at.error)
    assert "not a folder path" in shown or "not inside a library folder" in shown, shown
    assert len(shown) < 600  # the input is not echoed whole
    assert jobs.list_jobs() == []


def test_a_folder_without_audio_and_a_bad_name_are_refused(tmp_path, tiny_library):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("no music")
    at = fill(open_page(), folder=str(tmp_path / "docs"), name="mine")
    assert "no audio files found" in texts(at.error)
    at = fill(open_page(), folder=str(tiny_library), name="../../etc")
    assert "invalid dataset name" in texts(at.error)
    at = fill(open_page(), source="upload", name="mine")
    assert "choose at least one audio file" in texts(at.error)
    assert jobs.list_jobs() == []


def test_a_finished_job_shows_its_dataset_skipped_files_and_run():
    run_id = "20260101-100500-mine-abcd"
    fake_job("20260101-100000-mine-0001", state="done", finished="2026-01-01T10:05:00", losses=[3.1, 2.6, 2.4],
             result={"dataset": "mine", "n_tracks": 12, "n_analysed": 12, "n_cached": 0, "run_id": run_id,
                     "skipped": [{"path": "/music/mine/broken.mp3", "reason": "not an audio file (corrupt)"}]})
    at = open_page()
    shown = texts(at.success)
    assert "Dataset **mine**: 12 tracks" in shown and run_id in shown
    skipped = at.dataframe[0].value
    assert skipped.to_dict("records") == [{"path": "broken.mp3", "reason": "not an audio file (corrupt)"}]
    assert "/music" not in at.markdown[0].value  # the job line names no server path either
    assert len(at.get("plotly_chart")) == 1  # the loss curve
    next(b for b in at.button if b.label == "Make it the active run").click().run()
    assert at.session_state["active_run_id"] == run_id
    next(b for b in at.button if b.label == "Close").click().run()
    assert not at.success and at.button(key="library_start")  # back to the form


def test_a_failed_job_shows_why_and_its_log():
    job_id = fake_job("20260101-100000-mine-0002", state="failed", error="dataset 'mine': no usable file")
    (jobs.runner.jobs_dir() / job_id / "log.txt").write_text("Traceback: something broke\n")
    at = open_page()
    assert "The job failed: dataset 'mine': no usable file" in texts(at.error)
    assert "something broke" in texts(at.code)


def test_a_running_job_shows_progress_and_is_cancelled_from_the_page():
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)  # stands in for the job process
    try:
        at = open_page()
        at.radio(key="library_source").set_value("upload").run()  # the user's choice, before the job starts
        job_id = fake_job("20260101-100000-mine-0003", pid=sleeper.pid, done=2, total=3, message="epoch 2",
                          losses=[3.0, 2.5], values={"loss": 2.5})
        at.run()
        assert "Training the encoder: 2 / 3 · epoch 2" in at.get("progress")[0].proto.text
        assert len(at.get("plotly_chart")) == 1
        assert at.button(key="library_start").disabled  # no second job from this page while this one runs
        assert at.radio(key="library_source").disabled
        next(b for b in at.button if b.label == "Cancel").click().run()
        sleeper.wait(timeout=10)  # ended (a 60 s sleep), whoever reaped it: the page or Popen
        assert jobs.job_status(job_id)["state"] == "cancelled"
        assert "The job was cancelled" in texts(at.warning)
        # the form is back, with the values it had (widgets drawn disabled keep them)
        assert at.radio(key="library_source").value == "upload" and not at.button(key="library_start").disabled
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


def test_start_from_the_page_runs_a_job_that_is_found_again_after_a_reload(tiny_library):
    at = fill(open_page(), folder=str(tiny_library), name="page-lib")
    job_id = at.session_state["library_job"]
    try:
        job = jobs.job_status(job_id)
        assert job["kind"] == "ingest" and job["spec"]["source"] == str(tiny_library.resolve())
        assert job["spec"]["train"] is None
        reloaded = open_page()  # a new session: it finds the running (or by now finished) job by itself
        assert reloaded.session_state["library_job"] == job_id
    finally:
        jobs.cancel_job(job_id)
    assert jobs.job_status(job_id)["state"] in ("cancelled", "done")


def test_a_folder_uploaded_from_the_page_keeps_its_sub_folders_as_labels(tiny_library):
    at = open_page()
    at.radio(key="library_source").set_value("upload").run()
    at.toggle(key="library_upload_folder").set_value(True).run()
    files = sorted(tiny_library.rglob("*_0.wav"))
    at.get("file_uploader")[0].set_value([(f"picked/{f.parent.name}/{f.name}", f.read_bytes(), "audio/wav")
                                          for f in files]).run()
    at.text_input(key="library_name").set_value("uploaded-folder")
    at.toggle(key="library_train").set_value(False)
    at.button(key="library_start").click().run()
    assert not at.exception, [e.message for e in at.exception]
    job_id = at.session_state["library_job"]
    try:
        source = Path(jobs.job_status(job_id)["spec"]["source"])
        assert source == (library.uploads_dir() / "uploaded-folder").resolve()
        assert sorted(p.relative_to(source).as_posix() for p in source.rglob("*.wav")) == sorted(
            f"{f.parent.name}/{f.name}" for f in files)
        assert jobs.job_status(job_id)["spec"]["labels"] is True
    finally:
        jobs.cancel_job(job_id)
