"""The README and docs/ agree with the code: the files, modules, names, commands, flags and recipes they cite
exist; they date nothing (no sessions, no issue numbers); ``core.__version__`` is pyproject's version."""
from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import core
from core.cli import build_parser
from core.training.config import TrainConfig, recipe_names

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, ROOT / "artifacts" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# What a user guide must not say: when something was done instead of how to reproduce it, or which issue asked.
DATING = re.compile(r"\b(?:this|last|previous|earlier|next|two|three) sessions?\b|\bsessions? (?:ago|before)\b"
                    r"|\bissues? #?\d+|(?<![\w&])#\d+\b", re.IGNORECASE)
PROJECT_PATH = re.compile(r"^(?:core|api|bot|ui|pages|tests|benchmarks|scripts|configs|docs)/[\w./-]*$")
PLACEHOLDER = re.compile(r"[<>*{}]|NNN|\bNAME\b|\bID\b")


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def code_spans(markdown: str) -> list[str]:
    """Every line of a fenced block and every inline `code` span, in order."""
    spans, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced:
            spans.append(line)
        else:
            spans += re.findall(r"`([^`]+)`", line)
    return spans


def commands(markdown: str, module: str) -> list[list[str]]:
    """The words after each ``python -m MODULE`` (up to a shell comment), brackets and ``|`` choices split."""
    found = []
    for span in code_spans(markdown):
        for rest in re.findall(rf"python -m {re.escape(module)}(?![\w.])(.*)", span):
            words = re.sub(r"[\[\]|]", " ", rest.split(" #")[0]).split()
            found.append(words)
    return found


def flags(words: list[str]) -> set[str]:
    return {w.split("=")[0] for w in words if w.startswith("--")}


def option_values(words: list[str], flag: str) -> list[str]:
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w == flag]


def test_version_is_pyprojects():
    project = tomllib.loads(text(ROOT / "pyproject.toml"))["project"]
    assert core.__version__ == project["version"]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_docs_date_nothing(path):
    found = [m.group(0) for m in DATING.finditer(text(path))]
    assert not found, f"{path.name} dates itself or names an issue: {found}"


def test_the_dating_check_catches_what_it_should():
    hits = [m.group(0) for m in DATING.finditer("as asked in issue 9, measured this session, the default of two "
                                                "sessions ago (#18); not: #EXTINF, the session's tiny run, issue")]
    assert hits == ["issue 9", "this session", "two sessions", "#18"]


def missing_files(markdown: str, base: Path) -> list[str]:
    """Links (relative to ``base``) and project paths in code (``core/x.py``, ``core/x.py:name``) that do not
    exist, or whose ``name`` the file does not define."""
    missing = [n for n in re.findall(r"\]\(([^)#]+)\)", markdown) if "://" not in n and not (base / n).exists()]
    for span in code_spans(markdown):
        for word in span.split():
            word = word.strip(",;()")
            file, _, name = word.partition(":")
            if not PROJECT_PATH.match(file) or PLACEHOLDER.search(word):
                continue
            if not (ROOT / file).exists() or (name and not defines(text(ROOT / file), name)):
                missing.append(word)
    return missing


def defines(source: str, name: str) -> bool:
    """Whether a module's source defines or imports ``name`` at its top level (or a class defines it)."""
    return bool(re.search(rf"^\s*(?:def|class) {name}\b|^{name}\b[^=\n]*=|^from \S+ import .*\b{name}\b", source, re.M))


def resolves(dotted: str) -> bool:
    """``core.service.query`` is a module, or ``core.service.query.nearest`` a name one defines."""
    try:
        if importlib.util.find_spec(dotted) is not None:
            return True
    except ModuleNotFoundError:  # the parent is a module, not a package: the last part is a name in it
        pass
    module, name = dotted.rsplit(".", 1)
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return False
    if spec is not None and spec.origin is not None and spec.origin.endswith("__init__.py") and module != "core":
        if name in getattr(importlib.import_module(module), "__all__", ()):  # a wing's public face: a light import
            return True
    return spec is not None and spec.origin is not None and defines(Path(spec.origin).read_text(encoding="utf-8"), name)


def unresolved_names(markdown: str) -> list[str]:
    return [d for span in code_spans(markdown) for d in re.findall(r"\bcore(?:\.[A-Za-z_]\w*)+", span) if not resolves(d)]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_project_file_and_core_name_cited_exists(path):
    assert not missing_files(text(path), path.parent), missing_files(text(path), path.parent)
    assert not unresolved_names(text(path)), unresolved_names(text(path))


def test_the_file_and_name_checks_see_what_is_gone():
    markdown = ("[log](docs/no-such.md) `core/model/encoder.py:load_model` `core/model/encoder.py:no_such_name` "
                "`core/no_such.py` `core.service.query.nearest`, `core.runs.folder`, `core.runs.no_such`, "
                "`core.no_such.module.name`, `core/<placeholder>.py`")
    assert missing_files(markdown, ROOT) == ["docs/no-such.md", "core/model/encoder.py:no_such_name", "core/no_such.py"]
    assert unresolved_names(markdown) == ["core.runs.no_such", "core.no_such.module.name"]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_core_commands_flags_and_recipes_exist(path):
    parsers, fields = subcommands(), {f.name for f in TrainConfig.__dataclass_fields__.values()}
    wrong = []
    for words in commands(text(path), "core"):
        if not words or words[0] == "...":
            continue  # the command line in general: `python -m core ...`
        if words[0] not in parsers:
            wrong.append(f"no command: python -m core {' '.join(words[:1])}")
            continue
        known = set(parsers[words[0]]._option_string_actions)
        wrong += [f"{words[0]} {f}" for f in sorted(flags(words) - known)]
        wrong += [f"recipe {r}" for r in option_values(words, "--recipe")
                  if not PLACEHOLDER.search(r) and r not in recipe_names()]
        wrong += [f"--set {s}" for s in option_values(words, "--set") if s.split("=")[0] not in fields | {"key"}]
    assert not wrong, wrong


def test_the_command_check_sees_a_missing_flag():
    words = commands("`python -m core train --dataset x --no-such-flag 3 [--seed 1]  # a comment --not-this`",
                     "core")[0]
    assert flags(words) == {"--dataset", "--no-such-flag", "--seed"}
    assert flags(words) - set(subcommands()["train"]._option_string_actions) == {"--no-such-flag"}


def test_every_recipe_named_in_the_experiment_log_exists():
    """A row's recipe cell (`name`, maybe with --set key=value) names a recipe in configs/ and settings it has."""
    fields = {f.name for f in TrainConfig.__dataclass_fields__.values()}
    wrong, seen = [], 0
    for line in text(ROOT / "docs" / "experiments.md").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for cell in cells[1:2] + cells[:1]:  # the recipe column, or the first in the main-recipes table
            match = re.fullmatch(r"`([a-z][a-z0-9.-]*)((?: --set \w+=\S+)*)`(?:, seed .*)?(?: .*)?", cell)
            if match and not match.group(1).startswith("python"):
                seen += 1
                wrong += [] if match.group(1) in recipe_names() else [match.group(1)]
                wrong += [s for s in re.findall(r"--set (\w+)=", match.group(2)) if s not in fields]
    assert seen >= 10, "the check found too few recipe cells: the table's shape changed"
    assert not wrong, wrong


def help_texts(modules: list[str]) -> dict[str, subprocess.CompletedProcess]:
    """``python -m MODULE --help`` for each module, run side by side."""
    running = {m: subprocess.Popen([sys.executable, "-m", m, "--help"], cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True) for m in modules}
    done = {}
    for module, process in running.items():
        out, err = process.communicate(timeout=300)
        done[module] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return done


def test_other_modules_and_their_flags_exist():
    """``python -m api``, ``bot``, ``benchmarks.*``: the module runs (``--help``) and has every flag named."""
    named: dict[str, set[str]] = {}
    for path in DOCS:
        for span in code_spans(text(path)):
            for module, rest in re.findall(r"python -m ((?!core\b)[\w.]+)(.*)", span):
                words = re.sub(r"[\[\]|]", " ", rest.split(" #")[0]).split()
                named.setdefault(module, set()).update(flags(words))
    assert {"api", "bot"} <= set(named)
    unknown = [m for m in named if importlib.util.find_spec(m) is None]
    assert not unknown, unknown
    with_flags = sorted(m for m, f in named.items() if f and m != "core.jobs")
    wrong = []
    for module, result in help_texts(with_flags).items():
        if result.returncode != 0:
            wrong.append(f"python -m {module} --help failed: {result.stderr[-500:]}")
        wrong += [f"python -m {module} {f}" for f in sorted(named[module]) if f not in result.stdout]
    assert not wrong, wrong
