"""The layers import one way: core <- ui <- pages; core <- api; core <- bot; and inside core, wing by wing.

The front-end checks import every module of a package in a fresh interpreter and look at what got loaded, so an
import hidden in any module (or pulled in through another package) is caught. The wing checks read every import
statement of core's files (at the top or inside a function), so they see imports that a run would not reach.
"""
from __future__ import annotations

import ast
import importlib
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
    assert {"core.analysis.maps", "core.audio.live", "core.data.tables", "core.runs.folder"} <= set(modules)
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


# ---- the wings of core import one way ----------------------------------------------------------------------

# Lowest first: a module imports its own wing or the ones before it, never one after it. Modules directly in
# core/ (jobs, demo, cli) are the top and may import every wing; the package's own __init__ only ``base``.
WINGS = ("base", "audio", "data", "model", "training", "search", "evaluation", "runs", "analysis", "listeners",
         "service")
TOP = len(WINGS)
FRONT_ENDS = ("api", "bot", "ui", "pages", "tests", "benchmarks", "scripts", "streamlit")


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``package``."""
    found = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module ``path`` imports (at the top or inside a function), resolved to a module of ``modules`` where
    the name is one (``from core.model import musicnn`` -> ``core.model.musicnn``), else the dotted name."""
    name = next(m for m, p in modules.items() if p == path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
    return found


def import_graph(root: Path = ROOT / "core") -> dict[str, set[str]]:
    modules = module_files(root)
    return {name: imports_of(path, modules) for name, path in modules.items()}


def wing(module: str) -> int:
    """Rank of a core module: its wing's place in :data:`WINGS`, TOP for core/jobs.py, core/cli/, ...; -1 for
    the package itself (``core/__init__.py``)."""
    parts = module.split(".")
    if len(parts) == 1:
        return -1
    return WINGS.index(parts[1]) if parts[1] in WINGS else TOP


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, imported in graph.items():
        for other in imported:
            top_name = other.split(".")[0]
            if top_name in FRONT_ENDS:
                wrong.append(f"{module} imports {other} (a front end)")
            elif top_name == "core" and other != "core" and wing(other) > max(wing(module), 0):
                wrong.append(f"{module} imports {other} (a higher wing)")
    return sorted(wrong)


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or through others (Tarjan's strongly connected
    components of more than one module, or a module importing itself)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1 or v in graph[v]:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_every_module_of_core_lives_in_a_wing_or_at_the_top():
    graph = import_graph()
    assert {"core.base.errors", "core.data.ingest", "core.runs.folder", "core.service.query", "core.jobs"} <= set(graph)
    loose = [m for m in graph if m.count(".") == 1 and m.split(".")[1] not in WINGS + ("jobs", "demo", "cli", "__main__")]
    assert not loose, f"modules outside the wings: {loose}"


def test_core_imports_only_down_and_never_a_front_end():
    assert upward_imports(import_graph()) == []


def test_core_has_no_import_cycles():
    assert import_cycles(import_graph()) == []


def test_the_checks_see_an_upward_import_and_a_cycle():
    graph = import_graph()
    upward = {**graph, "core.audio.decode": graph["core.audio.decode"] | {"core.runs.folder", "api.app"}}
    assert upward_imports(upward) == ["core.audio.decode imports api.app (a front end)",
                                      "core.audio.decode imports core.runs.folder (a higher wing)"]
    circle = {**graph, "core.runs.folder": graph["core.runs.folder"] | {"core.runs.build"}}
    assert import_cycles(circle) == [["core.runs.build", "core.runs.folder"]]


def test_an_import_inside_a_function_counts(tmp_path):
    package = tmp_path / "core"
    (package / "audio").mkdir(parents=True)
    (package / "runs").mkdir()
    for path in (package / "__init__.py", package / "audio" / "__init__.py", package / "runs" / "__init__.py",
                 package / "runs" / "folder.py"):
        path.write_text("")
    (package / "audio" / "decode.py").write_text("def f():\n    from ..runs import folder\n    return folder\n")
    assert upward_imports(import_graph(package)) == ["core.audio.decode imports core.runs.folder (a higher wing)"]


def test_no_module_of_core_is_over_400_lines():
    long = {m: n for m, p in module_files(ROOT / "core").items() if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


# ---- the front ends go through the wings' public faces --------------------------------------------------------

FRONT_END_PACKAGES = ("ui", "pages", "api", "bot")
# What a front end may import from core: a wing (its public names), core.jobs and core.demo (the top).
PUBLIC_MODULES = {f"core.{w}" for w in WINGS} | {"core.jobs", "core.demo"}
TOP_MODULES = ("jobs", "demo")  # ``from core import jobs``


def front_end_modules() -> dict[str, Path]:
    modules = {name: path for package in FRONT_END_PACKAGES for name, path in module_files(ROOT / package).items()}
    return {**modules, "app": ROOT / "app.py"}


def front_end_graph() -> dict[str, set[str]]:
    """Front-end module -> what it imports (core modules and front-end modules, resolved as :func:`imports_of`)."""
    modules = front_end_modules()
    known = {**module_files(ROOT / "core"), **modules}
    return {name: imports_of(path, known) for name, path in modules.items()}


def public_names(module: str) -> set[str]:
    return set(importlib.import_module(module).__all__)


def private_core_imports(path: Path) -> list[str]:
    """Each import of ``path`` (at the top or inside a function) that reaches past a wing's public face: a module
    inside a wing (``core.runs.folder``), or a name its ``__init__`` does not export (a submodule included)."""
    wrong = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            wrong += [f"import {a.name}" for a in node.names
                      if a.name.split(".")[0] == "core" and a.name not in PUBLIC_MODULES | {"core"}]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "core" and not node.level:
            module, names = node.module, [a.name for a in node.names]
            if module == "core":
                allowed = set(TOP_MODULES)
            elif module in PUBLIC_MODULES - {"core.jobs", "core.demo"}:
                allowed = public_names(module)
            elif module in ("core.jobs", "core.demo"):
                continue
            else:
                allowed = set()
            wrong += [f"from {module} import {name}" for name in names if name not in allowed]
    return wrong


def test_front_ends_import_only_the_wings_public_names():
    modules = front_end_modules()
    assert {"ui.state", "pages.map", "api.app", "bot.replies", "app"} <= set(modules)
    wrong = {name: found for name, path in modules.items() if (found := private_core_imports(path))}
    assert not wrong, wrong


def test_the_public_face_check_sees_a_private_module_and_a_submodule(tmp_path):
    page = tmp_path / "page.py"
    page.write_text("from core.runs import Run\nfrom core.service import QueryService\nfrom core import jobs\n"
                    "def f():\n    from core.runs.folder import list_runs\n    from core.analysis import collections\n"
                    "    import core.data.tracks\n    from core.runs import no_such_name\n")
    assert private_core_imports(page) == ["from core.runs.folder import list_runs",
                                          "from core.analysis import collections", "import core.data.tracks",
                                          "from core.runs import no_such_name"]


def test_no_page_is_imported_by_ui_and_neither_service_imports_the_other():
    wrong = [f"{module} imports {other}" for module, imported in front_end_graph().items() for other in imported
             if (module.startswith("ui") and other.startswith("pages."))
             or (module.startswith("api") and other.split(".")[0] == "bot")
             or (module.startswith("bot") and other.split(".")[0] == "api")]
    assert wrong == []


def test_front_ends_have_no_import_cycles():
    graph = front_end_graph()
    assert {"ui.widgets", "ui.nav"} <= set(graph["app"] | graph["ui.nav"] | graph["pages.map"])  # edges are seen
    assert import_cycles(graph) == []


FACES_LOAD = """
import importlib, json, sys
wings = sys.argv[1:]
for wing in wings:
    importlib.import_module("core." + wing)
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "sklearn", "pandas", "librosa", "faiss", "umap"})
faces = {w: sorted(importlib.import_module("core." + w).__all__) for w in wings}
missing = [f"core.{w}.{n}" for w, names in faces.items() for n in names
           if getattr(importlib.import_module("core." + w), n, None) is None]
print(json.dumps({"heavy": heavy, "faces": faces, "missing": missing}))
"""


def test_every_wing_has_a_light_public_face_whose_names_resolve():
    """``import core.<wing>`` loads none of the wing's modules (so no torch); each exported name then resolves;
    no exported name hides a module of the wing (``from core.analysis import tags`` must stay a module)."""
    done = subprocess.run([sys.executable, "-c", FACES_LOAD, *WINGS], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["heavy"] == [] and found["missing"] == []
    assert {"Run", "list_runs"} <= set(found["faces"]["runs"]) and "QueryService" in found["faces"]["service"]
    modules = module_files(ROOT / "core")
    hiding = [f"core.{w}.{n}" for w, names in found["faces"].items() for n in names if f"core.{w}.{n}" in modules]
    assert hiding == []
