"""``python -m core --help`` and every command's ``--help`` build the parser from light config modules: none of
them imports torch, pandas or scikit-learn (each is checked in a fresh interpreter, as a user runs it). How fast
they answer is measured by ``python -m benchmarks.bench_cli``, not here."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "pandas", "sklearn")
PROBE = """import json, runpy, sys
sys.argv = ["core"] + sys.argv[1:]
try:
    runpy.run_module("core", run_name="__main__")
except SystemExit as end:
    code = end.code
print(json.dumps({"code": code, "loaded": [m for m in %r if m in sys.modules]}), file=sys.stderr)
""" % (HEAVY,)


def commands() -> list[str]:
    from core.cli import build_parser

    return sorted(next(a for a in build_parser()._actions if a.dest == "command").choices)


def test_every_command_is_probed():
    assert {"train", "ingest", "reference", "demo", "classify", "cluster", "tags", "compare", "runs"} <= set(commands())


def test_help_of_the_cli_and_of_every_command_imports_no_torch_pandas_or_sklearn():
    words = [[]] + [[c] for c in commands()]
    running = [(w, subprocess.Popen([sys.executable, "-c", PROBE, *w, "--help"], cwd=ROOT, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)) for w in words]
    loaded = {}
    for w, process in running:
        out, err = process.communicate(timeout=120)
        report = json.loads(err.strip().splitlines()[-1])
        assert report["code"] == 0 and "usage: python -m core" in out, (w, err)
        loaded[" ".join(w) or "(none)"] = report["loaded"]
    assert not {c: m for c, m in loaded.items() if m}, loaded


@pytest.mark.parametrize("argv", [["train", "--dataset", "d"], ["cluster", "--run", "r"]])
def test_the_probe_sees_an_import_when_a_command_runs(argv, tmp_path):
    """The check can fail: a command that runs (not --help) imports what it needs."""
    env = {"TIMBRE_ARTIFACTS": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] == 2 and report["loaded"], done.stderr
