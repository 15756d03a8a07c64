"""Supervised worker pools, numba's cache, and locks: crashes and concurrent processes never hang or corrupt."""
import faulthandler
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.data.workers import crash_reason, run_alone, supervised_map

ROOT = Path(__file__).resolve().parent.parent


def _square_or_die(x):
    if x == 3:
        faulthandler.disable()  # pytest's traceback dump would only add noise
        os.kill(os.getpid(), signal.SIGSEGV)
    return x * x


def _die_once(path):
    """Job f1 crashes the first time (a worker lost to an accident), then works."""
    marker = Path(str(path) + ".seen")
    if path.name == "f1" and not marker.exists():
        marker.touch()
        os._exit(3)
    return Path(path).name


def _raise(x):
    raise ValueError(f"bad job {x}")


def test_a_crashing_worker_costs_only_its_job():
    results = list(supervised_map(_square_or_die, range(8), workers=2, on_crash=lambda job, why: (job, why)))
    assert sorted(r for r in results if isinstance(r, int)) == [0, 1, 4, 16, 25, 36, 49]
    assert (3, "worker crashed: signal 11 (SIGSEGV)") in results and len(results) == 8


def test_a_job_whose_worker_died_by_accident_is_retried_once(tmp_path):
    jobs = [tmp_path / f"f{i}" for i in range(4)]
    results = list(supervised_map(_die_once, jobs, workers=2, on_crash=lambda job, why: why))
    assert sorted(results) == ["f0", "f1", "f2", "f3"]
    assert (tmp_path / "f1.seen").exists()  # f1 did crash once


def test_exceptions_of_the_job_reach_the_caller():
    with pytest.raises(ValueError, match="bad job [12]"):  # whichever finishes first
        list(supervised_map(_raise, [1, 2], workers=2, on_crash=lambda job, why: None))
    with pytest.raises(ValueError, match="bad job 5"):
        run_alone(_raise, 5, on_crash=lambda job, why: None)


def test_crash_reasons_name_the_signal():
    assert crash_reason(-9) == "worker crashed: signal 9 (SIGKILL)"
    assert crash_reason(3) == "worker crashed: exit code 3"


def _library(root: Path, n: int = 4) -> Path:
    import soundfile as sf

    from tests.audio_files import sine

    root.mkdir(parents=True)
    for i in range(n):
        sf.write(root / f"{'abcdef'[i]}.wav", sine(220.0 * (i + 1), 4.0), 22050)
    return root


def test_ingest_finishes_when_a_worker_segfaults_and_retries_that_file_next_time(tmp_path, monkeypatch):
    from core.data.ingest import IngestConfig, ingest
    from tests.crash_hooks import crash_on

    root = _library(tmp_path / "lib")
    with monkeypatch.context() as patch:
        crash_on(patch, "b.wav")
        report = ingest(root, "ds_crash", config=IngestConfig(workers=2))
    assert report.n_tracks == 3
    assert [(Path(s["path"]).name, s["reason"]) for s in report.skipped] == [
        ("b.wav", "worker crashed: signal 11 (SIGSEGV)")]
    again = ingest(root, "ds_crash", config=IngestConfig(workers=2))
    assert again.n_analysed == 1 and again.n_tracks == 4 and not again.skipped


INGEST = """
import json, sys
from core.data.ingest import IngestConfig, ingest
report = ingest(sys.argv[1], "ds", config=IngestConfig(workers=2))
print(json.dumps({"tracks": report.n_tracks, "skipped": report.skipped}))
"""


def test_ingest_completes_on_a_numba_cache_whose_index_names_the_wrong_code(tmp_path):
    """Two processes writing numba's cache at once can leave data file N holding another signature's code;
    loading it crashes with SIGSEGV (seen with librosa's beat tracker). Reproduce that in a private copy."""
    import numba

    from core.audio.features import MelParams
    from core.data.ingest import _warm_up

    _warm_up(MelParams(), True)  # the project cache holds the compiled code now
    cache = tmp_path / "numba"
    shutil.copytree(numba.config.CACHE_DIR, cache)
    swapped = 0
    for one in cache.rglob("*beat_track_dp*.1.nbc"):
        two = one.with_name(one.name.replace(".1.nbc", ".2.nbc"))
        a, b = one.read_bytes(), two.read_bytes()
        one.write_bytes(b), two.write_bytes(a)
        swapped += 1
    assert swapped, "no numba cache files of librosa's beat tracker to corrupt"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "TIMBRE_ARTIFACTS": str(tmp_path / "artifacts"),
           "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", INGEST, str(_library(tmp_path / "lib", 3))], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.splitlines()[-1]) == {"tracks": 3, "skipped": []}
    assert "does not work" in out.stderr  # the damage was found by the probe, not by luck


HOLD = """
import sys, time
from core.base.locks import file_lock
with file_lock(sys.argv[1], what="ingest"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_ingest_of_the_same_dataset_is_refused_until_the_first_process_dies(tmp_path):
    from core.base.errors import DatasetError
    from core.data.dataset import dataset_dir
    from core.data.ingest import IngestConfig, ingest

    root = _library(tmp_path / "lib", 2)
    dataset_dir("ds_locked").mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(dataset_dir("ds_locked") / ".lock")], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DatasetError, match=rf"dataset 'ds_locked' is being ingested by process {holder.pid} since"):
            ingest(root, "ds_locked", config=IngestConfig(workers=1))
    finally:
        holder.kill()  # SIGKILL: the kernel releases the lock with the process
        holder.wait(timeout=30)
    assert ingest(root, "ds_locked", config=IngestConfig(workers=1)).n_tracks == 2


def test_kill_9_during_ingest_then_a_rerun_keeps_the_finished_files(tmp_path):
    import pandas as pd

    from core.data.dataset import dataset_dir, load_dataset
    from core.data.ingest import IngestConfig, ingest

    root = _library(tmp_path / "lib", 6)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # one track per shard: every finished file is committed at once, so the kill lands between or inside writes
    code = INGEST.replace('"ds"', '"ds_killed"').replace("workers=2", "workers=1, shard_tracks=1")
    proc = subprocess.Popen([sys.executable, "-c", code, str(root)], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    index = dataset_dir("ds_killed") / "index.jsonl"
    try:
        deadline = time.monotonic() + 300
        while not (index.exists() and len(index.read_text().splitlines()) >= 2):
            assert proc.poll() is None and time.monotonic() < deadline, "the ingest ended before it was killed"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finished = len(index.read_text().splitlines())
    assert 2 <= finished < 6
    resumed = ingest(root, "ds_killed", config=IngestConfig(workers=1))
    assert resumed.n_cached == finished and resumed.n_analysed == 6 - finished and resumed.n_tracks == 6
    mels = dataset_dir("ds_killed") / "mels"
    assert not list(mels.glob(".*.tmp"))
    ds = load_dataset("ds_killed")
    refs = pd.read_parquet(mels / "refs.parquet")
    assert sorted(p.name for p in mels.glob("shard-*.npy")) == sorted(f"shard-{n:06d}.npy" for n in set(refs["shard"]))
    for tid, n in zip(ds.tracks["track_id"], ds.tracks["n_frames"]):  # every track whole, read from its shard
        mel = ds.mel(tid)
        assert mel.shape == (ds.params.n_mels, n) and np.isfinite(mel).all() and np.asarray(mel, np.float32).std() > 0


def _children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.parametrize("sig", (signal.SIGKILL, signal.SIGTERM), ids=("kill-9", "sigterm"))
def test_workers_die_with_a_killed_ingest_and_never_keep_the_dataset_locked(tmp_path, sig):
    import soundfile as sf

    from core.base.locks import is_locked
    from core.data.dataset import dataset_dir
    from core.data.ingest import IngestConfig, ingest
    from tests.audio_files import sine

    root = tmp_path / "lib"
    root.mkdir()
    for i in range(6):  # long enough that the pool is busy when the parent goes
        sf.write(root / f"t{i:02d}.wav", sine(220.0 * (1 + i / 6), 20.0), 22050)
    name = f"ds_orphans_{sig.name.lower()}"
    proc = subprocess.Popen([sys.executable, "-m", "core", "ingest", str(root), "--name", name, "--workers", "2"],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        while len(workers) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the pool never started"
            workers |= {pid for pid in _children_of(proc.pid) if _alive(pid)}
            time.sleep(0.05)
        os.kill(proc.pid, sig)  # the parent alone, as kill or a service manager would: not its group
        proc.wait(timeout=60)
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        orphans = [pid for pid in workers if _alive(pid)]
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert not orphans, f"workers {orphans} outlived their ingest"
    if sig == signal.SIGTERM:  # stopped as Ctrl-C stops it
        assert proc.returncode == 130 and "interrupted: finished work is kept" in proc.stderr.read()
    assert is_locked(dataset_dir(name) / ".lock") is None
    assert ingest(root, name, config=IngestConfig(workers=1)).n_tracks == 6
