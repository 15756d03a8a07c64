"""The one registry of background jobs (core.jobs.registry): it names exactly the eight kinds, each with its config
class, and a job started through core.jobs runs what the registry names for its kind, with the config built from
its spec by that class."""
from __future__ import annotations

import dataclasses
import shutil
import signal

import pytest

from core import jobs
from core.base.errors import TimbreError
from core.base.io import atomic_write_json
from core.base.paths import LIBRARY_ROOTS_ENV, runs_dir
from core.jobs import registry, runner, start

KIND_NAMES = {"ingest", "train", "demo", "classify", "cluster", "tags", "agreement", "fingerprints"}


def test_the_registry_names_exactly_the_eight_kinds_each_with_a_bounded_config():
    assert set(jobs.KINDS) == KIND_NAMES
    assert (set(jobs.LIBRARY_KINDS) - {"ingest+train"} | set(jobs.ANALYSIS_KINDS) | set(jobs.MAP_KINDS)
            | set(jobs.LISTEN_KINDS) | {"demo"} == KIND_NAMES)
    for name, kind in jobs.KINDS.items():
        assert kind.name == name and dataclasses.is_dataclass(kind.config) and callable(kind.work)
        assert kind.build({}) == kind.config()  # the defaults
        with pytest.raises(TimbreError, match=rf"unknown {name} setting 'colour'"):
            kind.build({"colour": 1})
    with pytest.raises(TimbreError, match="no kind of job 'paint'"):
        jobs.job_kind("paint")


@pytest.fixture
def started_specs(tiny_run_id, tiny_library, monkeypatch) -> dict[str, dict]:
    """The spec each start function of core.jobs writes for a job of each kind (and ingest+train), checked as
    for a real job; no process is started."""
    monkeypatch.setenv(LIBRARY_ROOTS_ENV, str(tiny_library.parent))
    specs = {}
    monkeypatch.setattr(start, "launch", lambda spec, *, name: specs.setdefault(spec["kind"], spec) and name)
    jobs.start_job(dataset="registry-ingest", source=tiny_library, ingest={"workers": 1})
    jobs.start_job(dataset="tiny", train={"epochs": 2, "batch_size": 4})
    jobs.start_job(dataset="registry-both", source=tiny_library, train={"epochs": 1})
    jobs.start_demo_job({"tracks_per_style": 2, "epochs": 3})
    jobs.start_analysis_job("classify", run=tiny_run_id, config={"models": ["logreg"]})
    jobs.start_analysis_job("cluster", run=tiny_run_id, config={"k_max": 4})
    jobs.start_analysis_job("tags", run=tiny_run_id, config={"max_patches": 2})
    other = runs_dir() / "registry-other"
    if not other.exists():
        shutil.copytree(runs_dir() / tiny_run_id, other)
    jobs.start_agreement_job(tiny_run_id, other.name, config={"k": 5})
    jobs.start_fingerprint_job(tiny_run_id)
    return specs


def test_a_job_of_each_kind_runs_the_registered_work_with_its_registered_config(started_specs, tmp_path,
                                                                               monkeypatch):
    """run_job (the job's process) on each started spec, in this process, with each registered work recording
    its call: the kinds run in the spec's order, each given its config class built from the spec."""
    assert set(started_specs) == KIND_NAMES | {"ingest+train"}
    calls = []

    def recorder(name):
        def work(spec, cfg, writer):
            calls.append((name, cfg))
            writer.progress(1, 1, f"{name} worked")
            return {f"{name}_done": True}
        return work

    for name, kind in registry.KINDS.items():
        monkeypatch.setitem(registry.KINDS, name, dataclasses.replace(kind, work=recorder(name)))
    before = signal.getsignal(signal.SIGTERM)  # run_job installs the job process's own handler
    try:
        for kind_name, spec in started_specs.items():
            folder = tmp_path / kind_name
            folder.mkdir()
            atomic_write_json(folder / "spec.json", spec)
            calls.clear()
            assert runner.run_job(folder) == 0
            status = runner._read(folder / "status.json")
            names = kind_name.split("+")
            assert [n for n, _ in calls] == names and status["state"] == "done"
            assert status["result"] == {f"{n}_done": True for n in names}
            for name, cfg in calls:
                assert type(cfg) is jobs.KINDS[name].config and cfg == jobs.KINDS[name].config_of(spec)
            assert status["stage"] == jobs.KINDS[names[-1]].doing
    finally:
        signal.signal(signal.SIGTERM, before)
    demo = jobs.KINDS["demo"].config_of(started_specs["demo"])
    assert (demo.tracks_per_style, demo.epochs) == (2, 3)
    assert jobs.KINDS["train"].config_of(started_specs["train"]).batch_size == 4
    assert jobs.KINDS["agreement"].config_of(started_specs["agreement"]).k == 5


def test_an_agreement_job_needs_two_different_runs_that_exist(tiny_run_id):
    with pytest.raises(TimbreError, match="two different runs"):
        jobs.start_agreement_job(tiny_run_id, tiny_run_id)
    with pytest.raises(TimbreError, match="no run named 'nosuchrun'"):
        jobs.start_agreement_job(tiny_run_id, "nosuchrun")
    with pytest.raises(TimbreError, match="unknown agreement setting 'colour'"):
        jobs.start_agreement_job(tiny_run_id, tiny_run_id, config={"colour": 1})


def test_a_spec_naming_an_unregistered_kind_fails_and_runs_nothing(tmp_path):
    atomic_write_json(tmp_path / "spec.json", {"kind": "ingest+paint", "dataset": "x"})
    before = signal.getsignal(signal.SIGTERM)
    try:
        assert runner.run_job(tmp_path) == 1
    finally:
        signal.signal(signal.SIGTERM, before)
    status = runner._read(tmp_path / "status.json")
    assert status["state"] == "failed" and "no kind of job 'paint'" in status["error"] and status["result"] == {}


def test_a_real_cluster_job_runs_the_registered_task(tiny_run_id):
    """A real job process on the tiny run: its stage is the registry's, its result what the registered task
    (core.analysis.tasks.cluster_task) returns."""
    import time

    job_id = jobs.start_analysis_job("cluster", run=tiny_run_id, config={"input": ["embeddings"], "k_max": 3})
    deadline = time.monotonic() + 120
    while jobs.job_status(job_id)["state"] in jobs.ACTIVE and time.monotonic() < deadline:
        time.sleep(0.1)
    status = jobs.job_status(job_id)
    assert status["state"] == "done", jobs.job_log(job_id)
    assert status["stage"] == jobs.KINDS["cluster"].doing == "clustering"
    assert set(status["result"]) == {"results_dir", "n_results", "seconds", "warnings"}
    assert status["result"]["n_results"] == 1
