"""Shared fixtures: a seeded rng, a tiny synthetic library, and a tiny run built once per session.

Every test module writes into an artifacts folder of its own (TIMBRE_ARTIFACTS), so no module sees what another
made and none depends on the order they run in; ``tiny_run_id`` copies the session's tiny dataset and run into it.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

SESSION_ROOT = Path(tempfile.mkdtemp(prefix="timbre-tests-"))
os.environ["TIMBRE_ARTIFACTS"] = str(SESSION_ROOT / "collection")  # only what runs while tests are collected
# A page error fails its test with the whole traceback (the served app logs it under an id and shows the id):
os.environ.setdefault("TIMBRE_PAGE_ERRORS", "raise")

TINY_STYLES = ("electronic", "strings", "piano")


def clear_streamlit_caches() -> None:
    """Empty st.cache_data / st.cache_resource of this process (AppTests share them), when Streamlit is loaded."""
    if "streamlit" in sys.modules:
        import streamlit as st

        st.cache_data.clear()
        st.cache_resource.clear()


@pytest.fixture(scope="session", autouse=True)
def page_errors_in_full():
    """AppTest shows a page's error whole, message and traceback (the served app shows none of it:
    ``client.showErrorDetails = "none"`` in .streamlit/config.toml)."""
    from streamlit.testing.v1.util import patch_config_options

    with patch_config_options({"client.showErrorDetails": "full"}):
        yield


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="module", autouse=True)
def module_artifacts(request) -> Path:
    """This module's own artifacts folder (datasets, runs, jobs, checkpoints), set as TIMBRE_ARTIFACTS."""
    folder = SESSION_ROOT / "modules" / request.module.__name__
    folder.mkdir(parents=True, exist_ok=True)
    clear_streamlit_caches()  # pages cache by run id, and every module's copy of the tiny run has the same id
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIMBRE_ARTIFACTS", str(folder))
        yield folder


@pytest.fixture(scope="session")
def tiny_library(tmp_path_factory) -> Path:
    """3 styles x 4 synthetic tracks of 8 s, as WAV files in <style>/ folders (labels from folder names)."""
    import soundfile as sf

    from core.demo import SR, synthesise_track

    root = tmp_path_factory.mktemp("tiny_library")
    for s, style in enumerate(TINY_STYLES):
        (root / style).mkdir()
        for i in range(4):
            sf.write(root / style / f"{style}_{i}.wav", synthesise_track(style, seconds=8.0, seed=100 * s + i), SR)
    return root


@pytest.fixture(scope="session")
def tiny_build(tiny_library) -> tuple[Path, str]:
    """The dataset 'tiny' and a run trained for a few epochs on it, built once per session in a folder of
    their own: (that artifacts folder, run id)."""
    from core.data.ingest import IngestConfig, ingest
    from core.runs.build import train_run
    from core.training.config import TrainConfig

    folder = SESSION_ROOT / "tiny-build"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIMBRE_ARTIFACTS", str(folder))
        ingest(tiny_library, "tiny", config=IngestConfig(workers=1))
        cfg = TrainConfig(epochs=3, batch_size=12, widths=(8, 16, 32, 64), embed_chunks=4, seed=0)
        return folder, train_run("tiny", cfg=cfg)


@pytest.fixture(scope="module")
def tiny_run_id(tiny_build, module_artifacts) -> str:
    """A complete run of :func:`tiny_library` (dataset 'tiny'), copied into this module's artifacts folder."""
    built, run_id = tiny_build
    for part in ("datasets/tiny", f"runs/{run_id}"):
        if not (module_artifacts / part).exists():
            shutil.copytree(built / part, module_artifacts / part, copy_function=shutil.copy2)
    return run_id
