"""scripts/setup.sh as a newcomer sees it on a first launch: pip says what it installs, and the import check
that ends the install prints nothing that looks like an error."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETUP = (ROOT / "scripts" / "setup.sh").read_text()


def test_the_install_shows_each_package_as_it_comes():
    install = next(line for line in SETUP.splitlines() if "pip install" in line)
    assert " -q " not in install and "Collecting" in SETUP  # minutes of silence looked like a hang


def test_the_import_check_prints_no_streamlit_warnings():
    check = next(line.strip() for line in SETUP.splitlines() if "import torch, streamlit" in line)
    done = subprocess.run(["bash", "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "" and "No runtime found" not in done.stderr and "ScriptRunContext" not in done.stderr, \
        done.stderr[-2000:]
