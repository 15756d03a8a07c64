"""Where things live: the repository root every default path starts from."""
from __future__ import annotations

from pathlib import Path

from core.base import paths
from core.data import engines

ROOT = Path(__file__).resolve().parent.parent


def test_repo_root_is_the_repository_whatever_wing_paths_lives_in():
    assert paths.REPO_ROOT == ROOT and (paths.REPO_ROOT / "app.py").is_file()
    assert engines.ROOT == ROOT  # Ray ships this folder to its workers


def test_artifacts_default_to_the_repository_and_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("TIMBRE_ARTIFACTS", raising=False)
    assert paths.artifacts_dir() == ROOT / "artifacts"
    monkeypatch.setenv("TIMBRE_ARTIFACTS", str(tmp_path))
    assert paths.datasets_dir() == tmp_path / "datasets" and paths.runs_dir() == tmp_path / "runs"


def test_a_page_shows_server_paths_without_where_the_server_keeps_them(monkeypatch, tmp_path):
    monkeypatch.setenv("TIMBRE_ARTIFACTS", str(tmp_path / "store"))
    monkeypatch.setenv(paths.LIBRARY_ROOTS_ENV, str(tmp_path / "music"))
    assert paths.public_path(ROOT / "artifacts" / "runs" / "r1") == "artifacts/runs/r1"
    assert paths.public_path(tmp_path / "store" / "runs" / "r1") == "<artifacts>/runs/r1"
    assert paths.public_path(tmp_path / "music" / "gtzan") == "<library>/gtzan"
    assert paths.public_path(tmp_path / "music" / "gtzan" / "rock" / "a.mp3", base=tmp_path / "music" / "gtzan") \
        == "rock/a.mp3"
    assert paths.public_path("/home/someone/secret/x.mp3") == ".../x.mp3"
