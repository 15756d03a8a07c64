"""Run aliases: a short name a researcher gives a run ("baseline", "distill-0.5") in place of its dated id.

An alias is kept in the run folder (``alias.json``, written atomically), so it travels with the folder and goes
with it when the run is deleted. It is accepted wherever a run id is (``--run``, ``python -m core compare``, the
API's ``/runs/{run}``) and shown wherever runs are listed or picked. Names are compared without regard to case,
and one is refused when it is another run's id or alias; setting or clearing an alias holds a lock on the runs
folder, so two people naming runs at once cannot both take a name.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

from core.base.errors import RunError
from core.base.io import atomic_write_json
from core.base.locks import file_lock
from core.base.paths import runs_dir

ALIAS_FILE = "alias.json"
MAX_CHARS = 40  # fits a select box and a table column beside the id
NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_CHARS - 1}}}")  # never a path, never hidden
RESERVED = ("default",)  # the API's {run} for the server's own run


def read_alias(path: str | Path) -> Optional[str]:
    """The alias stored in the run folder ``path``, or None (none, or an unreadable file: the id still works)."""
    try:
        alias = json.loads((Path(path) / ALIAS_FILE).read_text(encoding="utf-8")).get("alias")
    except (OSError, ValueError, AttributeError):
        return None
    return alias if isinstance(alias, str) and NAME.fullmatch(alias) else None


def aliases() -> dict[str, str]:
    """Every alias -> its run id, over the run folders (hidden partial folders are no runs)."""
    root = runs_dir()
    if not root.is_dir():
        return {}
    found = {}
    for folder in root.iterdir():
        if folder.is_dir() and not folder.name.startswith("."):
            alias = read_alias(folder)
            if alias:
                found[alias] = folder.name
    return found


def run_id_of(name: str) -> Optional[str]:
    """The run id ``name`` stands for: itself when a run folder has that id, else the run whose alias it is
    (any case); None when it is neither."""
    text = str(name).strip().rstrip("/")
    if not text or "/" in text or text.startswith("."):
        return None
    if (runs_dir() / text).is_dir():
        return text
    return next((run_id for alias, run_id in aliases().items() if alias.casefold() == text.casefold()), None)


def run_label(run_id: str, alias: Optional[str] = None) -> str:
    """How a run reads in a picker or a list: ``"alias · run_id"``, or the id alone without an alias
    (``alias`` given saves reading the folder)."""
    alias = alias if alias is not None else read_alias(runs_dir() / run_id)
    return f"{alias} · {run_id}" if alias else run_id


def check_alias(name: str) -> str:
    """``name`` stripped, or :class:`RunError` saying why it cannot be an alias."""
    text = str(name).strip()
    if not NAME.fullmatch(text):
        raise RunError(f"{text[:60]!r} cannot be an alias: use 1-{MAX_CHARS} letters, digits, '.', '_' or '-', "
                       "starting with a letter or digit")
    if text.casefold() in RESERVED:
        raise RunError(f"{text!r} cannot be an alias: it is reserved (the API's name for the server's run)")
    return text


def set_alias(run_id: str, name: Optional[str]) -> Optional[str]:
    """Give run ``run_id`` the alias ``name`` (None or "" removes its alias); returns the alias now set.

    Raises
    ------
    RunError
        No such run, a name that cannot be an alias, or one that is another run's id or alias.
    """
    folder = runs_dir() / run_id
    if not run_id or "/" in run_id or run_id.startswith(".") or not folder.is_dir():
        raise RunError(f"no run named {run_id!r}")
    alias = check_alias(name) if name and str(name).strip() else None
    with file_lock(runs_dir() / ".aliases.lock", what=f"naming run {run_id}", wait=True):  # check and write as one
        if alias is not None:
            _check_free(alias, run_id)
        atomic_write_json(folder / ALIAS_FILE, {"alias": alias})
    return alias


def _check_free(alias: str, run_id: str) -> None:
    key = alias.casefold()
    clash = next((p.name for p in runs_dir().iterdir() if p.is_dir() and p.name.casefold() == key
                  and p.name != run_id), None)
    if clash:
        raise RunError(f"alias {alias!r} is refused: it is the id of another run ({clash})")
    taken = next((other for name, other in aliases().items() if name.casefold() == key and other != run_id), None)
    if taken:
        raise RunError(f"alias {alias!r} is refused: run {taken} already has it")
