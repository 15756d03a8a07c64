"""Background jobs (core.jobs): real job processes on a tiny synthetic library, cancelled, killed, and refused."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import jobs
from core.base.errors import DatasetError, TimbreError
from core.base.paths import LIBRARY_ROOTS_ENV, runs_dir
from core.data import library, uploads
from core.data.dataset import load_dataset
from core.jobs import runner
from core.jobs.processes import proc_stat
from core.runs.folder import list_runs, load_run

# small enough that a job takes seconds: 6 tracks (fewer than 8: no t-SNE/UMAP fit), no audio features
SMALL_TRAIN = {"batch_size": 6, "widths": (8, 16, 32, 64), "embed_chunks": 2, "seed": 3}
FAST_INGEST = {"workers": 1, "features": False}
ROOT = Path(__file__).resolve().parent.parent


def wait_for(job_id: str, states, *, timeout: float = 240.0, until=None) -> dict:
    """Poll the job until its state is one of ``states`` (and ``until(status)`` holds), bounded in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = jobs.job_status(job_id)
        if status["state"] in states and (until is None or until(status)):
            return status
        if status["state"] in jobs.FINAL and status["state"] not in states:
            pytest.fail(f"job ended {status['state']}: {status.get('error')}\n{jobs.job_log(job_id)}")
        time.sleep(0.1)
    pytest.fail(f"job {job_id} not {states} after {timeout} s: {jobs.job_status(job_id)}")


def group_gone(pgid: int, *, timeout: float = 15.0) -> bool:
    """True once no live process of the job's group is left (it exits just after writing its final state)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runner._alive(pgid, None)  # reaps the job process when it is a child of this test process
        members = [f[0] for f in map(proc_stat, pids()) if len(f) > 2 and f[2] == str(pgid)]
        if not [state for state in members if state not in ("Z", "X")]:
            return True
        time.sleep(0.05)
    return False


def pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


@pytest.fixture(scope="module", autouse=True)
def library_roots_here(tmp_path_factory):
    """The session's temp folders are this module's library roots (the dashboard ingests only below roots)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(LIBRARY_ROOTS_ENV, str(tmp_path_factory.getbasetemp()))
        yield


@pytest.fixture(scope="module")
def six_tracks(tiny_library, tmp_path_factory) -> Path:
    """Two tracks of each style of the tiny library, one of them not audio at all (it must be skipped)."""
    root = tmp_path_factory.mktemp("six_tracks")
    for style in ("electronic", "strings", "piano"):
        (root / style).mkdir()
        for i in range(2):
            shutil.copy(tiny_library / style / f"{style}_{i}.wav", root / style)
    (root / "piano" / "broken.mp3").write_bytes(b"this is not an mp3" * 100)
    return root


@pytest.fixture(scope="module")
def finished_job(six_tracks) -> dict:
    """Ingest + train as one background job, started by a process that exits at once (as a page reload or a
    server restart would), run to the end in its own process."""
    args = {"dataset": "jobs-six", "source": str(six_tracks), "ingest": FAST_INGEST,
            "train": {**SMALL_TRAIN, "epochs": 2}}
    starter = subprocess.run([sys.executable, "-c", "import json, sys; from core import jobs; "
                              "print(jobs.start_job(**json.loads(sys.argv[1])))", json.dumps(args)],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert starter.returncode == 0, starter.stderr
    return wait_for(starter.stdout.strip(), ("done",))


def test_job_ingests_trains_and_a_run_appears(finished_job, six_tracks):
    result = finished_job["result"]
    assert finished_job["kind"] == "ingest+train"
    assert result["dataset"] == "jobs-six" and result["n_tracks"] == 6
    assert [Path(s["path"]).name for s in result["skipped"]] == ["broken.mp3"]
    assert result["skipped"][0]["reason"]
    assert result["run_id"] in list_runs()
    run = load_run(result["run_id"])
    assert run.config["train"]["epochs"] == 2 and run.config["seed"] == 3
    # the loss of every epoch was kept in the status, and it is the loss the run recorded
    assert finished_job["losses"] == pytest.approx(run.metrics["loss"])
    assert finished_job["started"] and finished_job["finished"]
    assert group_gone(finished_job["pid"])  # the job process is not ours: it outlived the one that started it
    assert "training" in jobs.job_log(finished_job["job_id"])
    assert load_dataset("jobs-six").info["source"] == str(six_tracks.resolve())
    listed = {j["job_id"]: j for j in jobs.list_jobs()}
    assert listed[finished_job["job_id"]]["state"] == "done"


def test_cancel_ends_the_process_and_leaves_no_run(finished_job):
    before = set(list_runs())
    job_id = jobs.start_job(dataset="jobs-six", train={**SMALL_TRAIN, "epochs": 10_000})
    running = wait_for(job_id, ("running",), until=lambda s: s["stage"] == "training" and s["done"] >= 1)
    assert running["losses"] and running["total"] == 10_000
    with pytest.raises(TimbreError, match="still working"):  # one job per dataset at a time
        jobs.start_job(dataset="jobs-six", train=SMALL_TRAIN)

    status = jobs.cancel_job(job_id, grace_s=10.0)
    assert status["state"] == "cancelled"
    assert group_gone(running["pid"])
    assert set(list_runs()) == before
    assert not [p.name for p in runs_dir().iterdir() if p.name.startswith(".partial")]
    assert jobs.cancel_job(job_id)["state"] == "cancelled"  # cancelling again changes nothing


def test_a_killed_job_shows_failed(finished_job):
    job_id = jobs.start_job(dataset="jobs-six", train={**SMALL_TRAIN, "epochs": 10_000})
    running = wait_for(job_id, ("running",))
    os.killpg(running["pid"], signal.SIGKILL)
    status = wait_for(job_id, ("failed",), timeout=30)
    assert f"process {running['pid']} ended unexpectedly" in status["error"]
    assert status["finished"]


def test_status_writes_are_throttled(tmp_path, monkeypatch):
    writes = []
    monkeypatch.setattr(runner, "atomic_write_json", lambda path, obj: writes.append(dict(obj)))
    writer = jobs.StatusWriter(tmp_path, interval_s=10.0)
    writer.stage("training")
    for epoch in range(1, 101):
        writer.progress(epoch, 100, f"epoch {epoch}", loss=1.0 / epoch)
    assert len(writes) == 2  # the stage, then the last epoch; nothing in between within 10 s
    assert writes[-1]["done"] == 100 and writes[-1]["values"] == {"loss": 0.01}
    assert len(writes[-1]["losses"]) == 100
    writer.progress(1, 5, "epoch 1", loss=0.5)
    assert writer.status["values"] == {"loss": 0.5} and writer.status["message"] == "epoch 1"
    assert writer.status["losses"] == [0.5]
    writer.progress(4, 5, "epoch 4", loss=0.25)  # resumed from a checkpoint after epoch 3
    assert writer.status["losses"] == [0.5, None, None, 0.25]


def test_bad_requests_are_refused_before_a_process_starts(tmp_path, six_tracks):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no music here")
    with pytest.raises(DatasetError, match="no such folder"):
        jobs.start_job(dataset="x", source=tmp_path / "missing")
    with pytest.raises(DatasetError, match="no audio files"):
        jobs.start_job(dataset="x", source=tmp_path / "empty")
    for name in ("../up", "a/b", ".hidden", "", "x" * 65, "spaces in"):
        with pytest.raises(DatasetError, match="invalid dataset name"):
            jobs.start_job(dataset=name, source=six_tracks)
    with pytest.raises(DatasetError, match="no dataset named"):
        jobs.start_job(dataset="never-ingested", train=SMALL_TRAIN)
    with pytest.raises(TimbreError, match="unknown training setting"):
        jobs.start_job(dataset="x", source=six_tracks, train={"epochz": 3})
    with pytest.raises(TimbreError, match="epochs must be at least 1"):
        jobs.start_job(dataset="x", source=six_tracks, train={"epochs": 0})
    with pytest.raises(TimbreError, match="no job named"):
        jobs.job_status("20990101-000000-none-0000")
    with pytest.raises(TimbreError, match="invalid job id"):
        jobs.job_status("../../etc")
    with pytest.raises(TimbreError, match="no job named"):  # the longest dataset name still makes a valid id
        jobs.job_status(f"20990101-000000-{'a' * 64}-beef")
    assert not any(j["spec"]["dataset"] == "x" for j in jobs.list_jobs())


def test_uploads_get_safe_names_in_a_new_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TIMBRE_UPLOADS", str(tmp_path / "uploads"))
    wav = b"RIFF" + b"\0" * 100
    folder = uploads.save_uploads([("../../etc/evil.WAV", wav), ("C:\\music\\Björk - Jóga.mp3", wav),
                                ("...mp3", wav), (".hidden.wav", wav), ("evil.WAV", wav)], "mine", max_mb=1)
    assert folder == tmp_path / "uploads" / "mine"
    # folders of a client's path stay inside the library folder ('..' and drive colons dropped), never hidden
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        "C", "C/music", "C/music/Bj_rk_-_J_ga.mp3", "etc", "etc/evil.wav", "evil.wav", "hidden.wav", "track.mp3"]
    again = uploads.save_uploads([("a/x.wav", wav), ("a/x.wav", wav), ("b/x.wav", wav)], "twice", max_mb=1)
    assert sorted(p.relative_to(again).as_posix() for p in again.rglob("*.wav")) == ["a/x-2.wav", "a/x.wav", "b/x.wav"]
    with pytest.raises(DatasetError, match="exists already"):
        uploads.save_uploads([("a.wav", wav)], "mine", max_mb=1)
    with pytest.raises(DatasetError, match="not an audio file name"):
        uploads.save_uploads([("run.sh", wav)], "other", max_mb=1)
    with pytest.raises(TimbreError, match="too large"):
        uploads.save_uploads([("big.wav", b"\0" * (2 * 2**20))], "other", max_mb=1)
    with pytest.raises(TimbreError, match="empty"):
        uploads.save_uploads([("zero.wav", b"")], "other", max_mb=1)
    with pytest.raises(DatasetError, match="invalid library folder name"):
        uploads.save_uploads([("a.wav", wav)], "../escape", max_mb=1)
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == ["mine", "twice"]  # refusals wrote nothing


def test_only_folders_inside_the_library_roots_can_be_ingested(tmp_path, monkeypatch, six_tracks):
    import shutil

    root, outside = tmp_path / "music", tmp_path / "private"
    shutil.copytree(six_tracks, root / "mine")
    shutil.copytree(six_tracks, outside)
    (root / "escape").symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv(LIBRARY_ROOTS_ENV, str(root))
    assert library.check_source("mine") == str(root / "mine") == library.check_source(root / "mine")
    refusals = {}
    for asked in ("/", "..", "~", "/etc", str(outside), "mine/../..", "escape", str(root / "escape"),
                  "/no/such/folder", str(tmp_path / "also-missing"), "mine/../mine", "~root", "~nosuchuser123"):
        with pytest.raises(DatasetError, match="not inside a library folder of this server") as info:
            library.check_source(asked)
        refusals[asked] = str(info.value).removeprefix(asked)
    # the same words for a folder that exists and one that does not: a refusal reveals nothing of the server
    assert len(set(refusals.values())) == 1, refusals
    with pytest.raises(DatasetError, match="no such folder on the server"):
        library.check_source("missing-inside")


def test_a_folder_name_tells_nothing_of_what_exists_outside_the_roots(tmp_path, monkeypatch, six_tracks):
    """Neighbours of a root (the uploads root nested in the library root made ``..`` land inside), user
    accounts (``~name``) and symlinked components (``/bin/../x``) all get the one refusal, existing or not."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(six_tracks, root / "mine")
    (tmp_path / "core").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]")
    monkeypatch.setenv(LIBRARY_ROOTS_ENV, str(root))
    monkeypatch.setenv("TIMBRE_UPLOADS", str(root / "uploads"))
    refusals = {}
    for asked in ("../core", "../corexyz", "../.git/config", "../.git/nothing", "../../core", "~root",
                  "~nosuchuser123", "~", "~/", "/bin/../etc", "/usr/../nosuch", f"{root}/../core",
                  f"{root}/../corexyz", "uploads/../../core", "uploads/../../corexyz", "mine/.."):
        with pytest.raises(DatasetError) as info:
            library.check_source(asked)
        refusals[asked] = str(info.value).removeprefix(asked)
    assert len(set(refusals.values())) == 1, refusals
    assert "not inside a library folder of this server" in next(iter(refusals.values()))


@pytest.mark.parametrize("asked", ["mine\0", "a" * 5000, "x" * 300, "mine/" + "b" * 256, "tab\there"])
def test_a_folder_name_with_a_nul_byte_or_too_long_is_refused_before_the_file_system(tmp_path, monkeypatch, asked):
    monkeypatch.setenv(LIBRARY_ROOTS_ENV, str(tmp_path))
    touched = []
    monkeypatch.setattr(library.Path, "resolve", lambda self, *a, **k: touched.append(self))
    with pytest.raises(DatasetError, match="not a folder path") as info:
        library.check_source(asked)
    assert len(str(info.value)) < 300 and not touched  # the message is short, nothing was looked up


def test_a_folder_upload_keeps_its_sub_folders_as_labels_and_its_file_names(tmp_path, monkeypatch, six_tracks):
    from core.data.ingest import ingest

    monkeypatch.setenv("TIMBRE_UPLOADS", str(tmp_path / "uploads"))
    picked = [(f"My Music/{p.relative_to(six_tracks).as_posix()}", p.read_bytes())
              for p in sorted(six_tracks.rglob("*.wav"))]  # as a browser sends a folder: its relative paths
    folder = uploads.save_uploads(picked, "folder-upload", max_mb=5)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.wav")) == sorted(
        p.relative_to(six_tracks).as_posix() for p in six_tracks.rglob("*.wav"))
    tracks = load_dataset(ingest(folder, "folder-upload").dataset_dir.name).tracks
    assert sorted(tracks["label"].unique()) == ["electronic", "piano", "strings"]
    assert set(tracks["relpath"]) == {f"{s}/{s}_{i}.wav" for s in ("electronic", "piano", "strings") for i in (0, 1)}


def test_a_cluster_job_writes_the_results_the_pages_read(tiny_run_id):
    from core.analysis.clusters import cluster_inputs_done, load_clusters

    config = {"input": ["embeddings"], "k_min": 2, "k_max": 4}
    job_id = jobs.start_analysis_job("cluster", run=tiny_run_id, config=config)
    status = wait_for(job_id, ("done",))
    assert status["kind"] == "cluster" and status["stage"] == "clustering"
    assert status["result"]["n_results"] == 1 and status["done"] == status["total"] == 3  # k = 2, 3, 4
    folder = load_run(tiny_run_id).path / "clusters"
    assert status["result"]["results_dir"] == str(folder)
    assert cluster_inputs_done(folder) == ["embeddings"]
    assert load_clusters(folder, "embeddings")["curves"]["k"].tolist() == [2, 3, 4]
    assert jobs.find_analysis_job("cluster", run=tiny_run_id)["job_id"] == job_id
    assert jobs.find_analysis_job("classify", run=tiny_run_id) is None
    assert jobs.find_analysis_job("cluster", features=tiny_run_id) is None
    assert job_id not in {j["job_id"] for j in jobs.list_jobs(kinds=jobs.LIBRARY_KINDS)}


def test_a_classify_job_trains_on_a_feature_table(tmp_path, rng):
    from core.analysis.classify import classifier_summary
    from core.analysis.sources import source_from_dataset
    from core.data.tables import import_feature_table

    table = pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30), "g": np.repeat(["x", "y", "z"], 10)})
    table.loc[table["g"] == "y", "a"] += 5.0
    table.to_csv(tmp_path / "t.csv", index=False)
    import_feature_table(tmp_path / "t.csv", "jobs_table", label="g")
    job_id = jobs.start_analysis_job("classify", features="jobs_table", config={"models": ["logreg"], "cv_folds": 3})
    status = wait_for(job_id, ("done",))
    assert status["stage"] == "training classifiers" and status["result"]["n_results"] == 1
    summary = classifier_summary(source_from_dataset("jobs_table").path / "classifiers")
    assert summary["model"].tolist() == ["logreg"] and summary["test_accuracy"].iloc[0] > 0.5


def test_an_analysis_job_is_cancelled_and_one_runs_per_source(tmp_path, rng):
    """k-means with many restarts on 3,000 rows takes long enough to be cancelled mid-way; nothing is written."""
    from core.analysis.clusters import cluster_inputs_done
    from core.data.dataset import dataset_dir
    from core.data.tables import import_feature_table

    table = pd.DataFrame(rng.normal(size=(3000, 12)), columns=[f"f{i}" for i in range(12)]).assign(g=["x", "y"] * 1500)
    table.to_csv(tmp_path / "big.csv", index=False)
    import_feature_table(tmp_path / "big.csv", "jobs_big", label="g")
    slow = {"k_min": 2, "k_max": 30, "n_init": 100}
    job_id = jobs.start_analysis_job("cluster", features="jobs_big", config=slow)
    running = wait_for(job_id, ("running",), until=lambda s: s["done"] >= 1)
    assert running["total"] == 29 and "k=" in running["message"]
    with pytest.raises(TimbreError, match="still clustering for this data"):
        jobs.start_analysis_job("cluster", features="jobs_big", config=slow)
    assert jobs.find_analysis_job("cluster", features="jobs_big")["state"] == "running"  # what a reloaded page finds

    status = jobs.cancel_job(job_id, grace_s=10.0)
    assert status["state"] == "cancelled"
    assert group_gone(running["pid"])
    folder = dataset_dir("jobs_big") / "clusters"
    assert cluster_inputs_done(folder) == []
    assert not list(folder.glob(".partial*"))


@pytest.mark.parametrize(("args", "error"), [
    ({"kind": "train", "run": "x"}, "no analysis task 'train'"),
    ({"kind": "cluster"}, "either a run or a feature table"),
    ({"kind": "cluster", "run": "no-such-run"}, "no run named 'no-such-run'"),
    ({"kind": "cluster", "features": "no_such_table"}, "no dataset named 'no_such_table'"),
    ({"kind": "cluster", "features": "x", "collection": "c"}, "only classifiers"),
    ({"kind": "classify", "features": "jobs_table", "config": {"colour": 1}}, "unknown classify setting"),
    ({"kind": "tags", "features": "jobs_table"}, "name the run, not a feature table"),
    ({"kind": "tags", "run": "no-such-run"}, "no run named 'no-such-run'"),
])
def test_bad_analysis_requests_are_refused_before_a_process_starts(args, error):
    before = {j["job_id"] for j in jobs.list_jobs()}
    with pytest.raises(TimbreError, match=error):
        jobs.start_analysis_job(**args)
    assert {j["job_id"] for j in jobs.list_jobs()} == before


def test_a_tags_job_tags_the_run_s_dataset_once_per_dataset(tiny_run_id):
    """musicnn over the tiny dataset (2 patches a track) in a job; a second run of the same dataset finds it."""
    from core.analysis.tags import run_tags
    from core.data.dataset import dataset_dir

    dataset = dataset_dir("tiny")
    shutil.rmtree(dataset / "reference", ignore_errors=True)  # the training's teacher pass cached musicnn already
    (dataset / "tags.parquet").unlink(missing_ok=True)
    twin = runs_dir() / "twin-of-tiny"  # another run of the same dataset
    shutil.copytree(runs_dir() / tiny_run_id, twin)
    with pytest.raises(TimbreError, match="max_patches must be at least 1"):
        jobs.start_analysis_job("tags", run=tiny_run_id, config={"max_patches": 0})
    job_id = jobs.start_analysis_job("tags", run=tiny_run_id, config={"max_patches": 2})
    assert jobs.find_analysis_job("tags", run=twin.name)["job_id"] == job_id  # one tags job per dataset
    with pytest.raises(TimbreError, match="still computing musicnn tags"):  # the job needs seconds to start musicnn
        jobs.start_analysis_job("tags", run=twin.name)
    status = wait_for(job_id, ("done",))
    assert status["kind"] == "tags" and status["stage"] == "computing musicnn tags"
    assert status["done"] == status["total"] == 12 and status["spec"]["dataset"] == "tiny"
    assert {k: status["result"][k] for k in ("dataset", "n_tracks", "n_tagged", "warnings")} == {
        "dataset": "tiny", "n_tracks": 12, "n_tagged": 12, "warnings": []}
    assert (dataset / "reference" / "musicnn-2.npz").exists() and (dataset / "tags.parquet").exists()
    for run in (tiny_run_id, twin.name):
        tags = run_tags(load_run(run))
        assert tags.shape == (12, 50) and ((tags > 0) & (tags < 1)).all(axis=None)  # sigmoid likelihoods
    assert job_id not in {j["job_id"] for j in jobs.list_jobs(kinds=jobs.LIBRARY_KINDS)}
