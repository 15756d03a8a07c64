"""The layers import one way: core <- ui <- pages; core <- api; core <- bot.

Each check imports every module of a package in a fresh interpreter and looks at what got loaded, so an import
hidden in any module (or pulled in through another package) is caught.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What the engine must never load: the dashboard's toolkit, its charts, and the WebRTC stack.
PRESENTATION = ("streamlit", "plotly", "aioice", "streamlit_webrtc", "ui", "pages")

LOADED_AFTER_IMPORTING = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
names = [sys.argv[1]] + [m.name for m in pkgutil.walk_packages(package.__path__, sys.argv[1] + ".")
                         if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def loaded_after_importing(package: str) -> tuple[list[str], set[str]]:
    """(modules of ``package`` imported, top-level names of everything then in ``sys.modules``)."""
    done = subprocess.run([sys.executable, "-c", LOADED_AFTER_IMPORTING, package], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return found["modules"], set(found["loaded"])


def test_core_imports_neither_streamlit_nor_plotly_nor_aioice():
    modules, loaded = loaded_after_importing("core")
    assert {"core.maps", "core.live", "core.feature_table", "core.runs"} <= set(modules)
    assert not loaded & set(PRESENTATION), sorted(loaded & set(PRESENTATION))
    assert "numpy" in loaded  # the check sees what was imported


@pytest.mark.parametrize("package", ["api", "bot"])
def test_services_do_not_need_the_dashboard(package):
    _, loaded = loaded_after_importing(package)
    assert not loaded & set(PRESENTATION), sorted(loaded & set(PRESENTATION))


def test_the_check_catches_a_presentation_import():
    """ui/ itself loads streamlit and plotly: the same check must see that."""
    _, loaded = loaded_after_importing("ui")
    assert {"streamlit", "plotly", "core"} <= loaded
