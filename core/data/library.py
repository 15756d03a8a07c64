"""A music library on disk: which folders may be read, its audio files, their labels and track ids."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Optional

import pandas as pd

from core.audio.decode import AUDIO_EXTENSIONS, is_audio_path, path_problem
from core.base.errors import DatasetError
from core.base.paths import LIBRARY_ROOTS_ENV, REPO_ROOT, library_roots, shown_path

NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def uploads_dir() -> Path:
    """Where uploaded libraries are saved: ``data/uploads`` in the repository, or ``TIMBRE_UPLOADS``."""
    return Path(os.environ.get("TIMBRE_UPLOADS", REPO_ROOT / "data" / "uploads"))


def check_name(name: str, *, what: str = "dataset name") -> str:
    """``name`` stripped, or :class:`DatasetError` unless it is 1-64 letters, digits, '-' and '_'."""
    name = (name or "").strip()
    if not NAME_RULE.match(name):
        raise DatasetError(f"invalid {what} {name!r}: use 1-64 letters, digits, '-' and '_', "
                           "starting with a letter or digit")
    return name


MAX_PATH_CHARS = 1024  # a folder path a page may name; longer text is refused before touching the file system
MAX_PART_CHARS = 255  # the longest file name Linux allows (NAME_MAX)


def check_source(source) -> str:
    """The library folder a page asked for, resolved (symlinks followed) and inside a library root, else a
    :class:`DatasetError`.

    The text is checked before the file system is touched: no NUL or control character, no ``~`` (it would
    tell which user accounts exist), no ``..`` part (it would tell what exists beside the roots), nothing over
    :data:`MAX_PATH_CHARS`; an absolute path must lie inside a root as written, a relative one is taken below
    each root in turn. Only then is it resolved, and a folder that resolves outside (a symlink out) gets the
    same refusal as one that was never inside, whether it exists or not.
    """
    text = str(source or "").strip()
    if not text:
        raise DatasetError("give the folder of your music")
    shown = text if len(text) <= 80 else f"{text[:60]}...({len(text):,} characters)"
    if len(text) > MAX_PATH_CHARS or any(len(part) > MAX_PART_CHARS for part in text.split("/")) \
            or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise DatasetError(f"{shown!r}: not a folder path (at most {MAX_PATH_CHARS} characters, "
                           f"{MAX_PART_CHARS} per name, no control characters)")
    roots = allowed_roots()
    folder = _inside(text, roots)
    if folder is None:
        raise DatasetError(f"{shown}: not inside a library folder of this server ("
                           f"{', '.join(shown_path(r) for r in roots)}; a path inside one, or a name there, "
                           f"without '~' or '..'); an administrator adds folders with {LIBRARY_ROOTS_ENV}")
    try:
        if not folder.exists():
            raise DatasetError(f"{shown}: no such folder on the server")
        if not folder.is_dir():
            raise DatasetError(f"{shown}: not a folder")
        audio = find_audio_files(folder)
    except OSError as error:  # unreadable inside a root: say so without the server's path
        raise DatasetError(f"{shown}: cannot be read ({error.strerror or type(error).__name__})") from None
    if not audio:
        raise DatasetError(f"{shown}: no audio files found (looked for {', '.join(AUDIO_EXTENSIONS)})")
    return str(folder)


def allowed_roots() -> list[Path]:
    """:func:`core.base.paths.library_roots` and the folder uploads are saved in."""
    return list(dict.fromkeys([*library_roots(), uploads_dir().resolve()]))


def _inside(text: str, roots: list[Path]) -> Path | None:
    """``text`` (absolute, or relative to a root) resolved, when it lies inside one of ``roots``; else None.

    ``~`` and ``..`` are refused as written, and an absolute path outside every root, before any file system
    call. Then, root by root, a candidate that resolves outside (a symlink out) is refused whether its target
    exists or not, and the first that exists inside wins; else the first candidate (reported missing).
    """
    given = Path(text)
    if text.startswith("~") or ".." in given.parts:
        return None
    if given.is_absolute():
        candidates = [given] if any(given.is_relative_to(root) for root in roots) else []
    else:
        candidates = [root / given for root in roots]
    inside = []
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
            if not any(resolved.is_relative_to(root) for root in roots):
                return None
            if resolved.exists():
                return resolved
        except (OSError, RuntimeError):  # a symlink loop, a name too long
            return None
        inside.append(resolved)
    return inside[0] if inside else None


def track_id_for(relpath: str) -> str:
    """Stable id of a file inside its library folder."""
    return hashlib.sha1(relpath.encode("utf-8")).hexdigest()[:16]


SYMLINKED_FOLDER = ("a symlinked folder: not followed (a link to a parent folder would never end); copy the "
                    "folder in, or name it as a library folder of its own")


def find_audio_files(root: Path) -> list[Path]:
    """Every audio file below ``root`` that can be opened (see :func:`scan_library`), sorted."""
    return scan_library(root)[0]


def scan_library(root: Path) -> tuple[list[Path], list[dict]]:
    """Audio files below ``root`` (hidden files and folders skipped, sorted for a stable order), and
    ``{"path", "reason"}`` for each audio file name that cannot be opened: a symlink loop, a broken symlink, a
    named pipe; and for each symlinked folder, which is not followed (a link to a parent would never end)."""
    found, unusable = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        unusable += [{"path": str(Path(dirpath) / d), "reason": SYMLINKED_FOLDER} for d in dirnames
                     if (Path(dirpath) / d).is_symlink()]  # os.walk does not enter them: say so
        for name in sorted(filenames):
            if is_audio_path(name) and not name.startswith("."):
                path = Path(dirpath) / name
                problem = path_problem(path)
                if problem:
                    unusable.append({"path": str(path), "reason": problem})
                else:
                    found.append(path)
    return found, unusable


def read_labels(root: Path, files: list[Path], manifest: Optional[Path]) -> tuple[pd.DataFrame, str, list[dict]]:
    """Labels (and artist/title when the manifest has them) for ``files``, and the manifest rows left out.

    With a manifest (CSV with ``path,label`` and optional ``artist,title``; paths relative to ``root`` or
    absolute) its labels are used; a row naming a file outside ``root`` is left out with its reason. Otherwise
    the first sub-folder name under ``root``. Files at the top level of ``root`` without a manifest entry are
    unlabelled.
    """
    rel = [f.relative_to(root).as_posix() for f in files]
    table = pd.DataFrame({"relpath": rel, "label": None, "artist": None, "title": None}, dtype=object)
    if manifest is None:
        table["label"] = [r.split("/")[0] if "/" in r else None for r in rel]
        return table, "sub-folder names", []
    try:
        m = pd.read_csv(manifest)
    except Exception as error:
        raise DatasetError(f"{manifest}: cannot read the manifest CSV ({error})") from error
    if not {"path", "label"} <= set(m.columns):
        raise DatasetError(f"{manifest}: a manifest needs 'path' and 'label' columns, found {list(m.columns)}")
    keys = [_manifest_key(root, p) for p in m["path"].astype(str)]
    outside = [{"path": p, "reason": f"{manifest.name}: this row names a file outside the library folder"}
               for p, key in zip(m["path"].astype(str), keys) if key is None]
    m = m.assign(relpath=keys).dropna(subset=["relpath"]).drop_duplicates("relpath", keep="last").set_index("relpath")
    for col in ("label", "artist", "title"):
        if col in m.columns:
            values = m[col].where(m[col].notna(), None)
            table[col] = [values.get(r) for r in rel]
    return table, f"manifest {manifest}", outside


def _manifest_key(root: Path, path: str) -> str | None:
    """A manifest path as a path relative to ``root`` (None when it leads outside ``root``)."""
    full = Path(os.path.normpath(root / path))  # an absolute path replaces root
    if Path(path).is_absolute():
        try:
            full = full.resolve()  # the library root is resolved too
        except (OSError, RuntimeError):  # a symlink loop: compare the path as written
            pass
    try:
        return full.relative_to(root).as_posix()
    except ValueError:
        return None
