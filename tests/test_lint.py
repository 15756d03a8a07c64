"""The project's own lint settings (pyproject.toml [tool.ruff]) hold for every file."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.base.paths import REPO_ROOT

RUFF = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")


@pytest.mark.skipif(not Path(RUFF).exists(), reason="ruff is not installed (pip install -e '.[dev]')")
def test_ruff_finds_nothing():
    result = subprocess.run([RUFF, "check", "--no-cache", "."], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
