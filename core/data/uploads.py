"""Uploads: query files (the Recommend page, the REST API, the Telegram bot) and whole libraries (the Library page).

A client-given file name is never used as a path: :func:`safe_name` keeps only a readable base name (for
messages) whose extension picks the decoder's hint, and :func:`saved_upload` streams the bytes into a private
temp file of our own naming, with the app's size cap, and always removes it. A library upload
(:func:`save_uploads`) becomes a new folder under :func:`core.data.library.uploads_dir` with names rebuilt by
:func:`upload_paths`, ready to ingest.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Union

from core.audio.decode import AUDIO_EXTENSIONS
from core.base.constants import MAX_UPLOAD_MB  # the default cap; a server may pass its own
from core.base.errors import AudioDecodeError, DatasetError, TooLarge
from core.base.io import atomic_write_bytes
from core.data.library import check_name, uploads_dir

UPLOAD_TYPES = ("mp3", "wav", "ogg", "flac", "m4a")


DEFAULT_NAME = "upload"


MAX_NAME_CHARS = 120


CHUNK_BYTES = 1 << 20


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


Upload = Union[bytes, bytearray, memoryview, BinaryIO]


def safe_name(name, *, default: str = DEFAULT_NAME) -> str:
    """A display name for a client-given file name: the base name only, never a path.

    ``"../../etc/passwd.mp3"`` and ``"C:\\music\\a.mp3"`` become ``"passwd.mp3"`` and ``"a.mp3"``; control
    characters (NUL included) are dropped; ``""``, ``"."``, ``".."`` or a non-string give ``default``; long names
    are cut to :data:`MAX_NAME_CHARS`, keeping the extension.
    """
    if not isinstance(name, str):
        return default
    base = re.split(r"[/\\]", _CONTROL.sub("", name))[-1].strip()
    if base in ("", ".", ".."):
        return default
    if len(base) > MAX_NAME_CHARS:
        suffix = Path(base).suffix if len(Path(base).suffix) <= 10 else ""
        base = base[:MAX_NAME_CHARS - len(suffix)] + suffix
    return base


def upload_suffix(name) -> str:
    """The lower-case audio extension of :func:`safe_name` (``".mp3"``), or ``""`` when it is not an audio one."""
    suffix = Path(safe_name(name)).suffix.lower()
    return suffix if suffix in AUDIO_EXTENSIONS else ""


def _too_large(name: str, max_mb: float, n_bytes: int | None = None) -> TooLarge:
    size = f"{n_bytes / 2**20:.1f} MB" if n_bytes is not None else f"more than {max_mb:g} MB"
    return TooLarge(name, f"too large: {size}, the limit is {max_mb:g} MB")


def check_upload(name: str, n_bytes: int, *, max_mb: float = MAX_UPLOAD_MB) -> None:
    """Raise :class:`AudioDecodeError` for an empty upload, :class:`TooLarge` for one over ``max_mb`` megabytes."""
    if n_bytes == 0:
        raise AudioDecodeError(name, "file is empty (0 bytes)")
    if n_bytes > max_mb * 1024 * 1024:
        raise _too_large(name, max_mb, n_bytes)


def named_buffer(data: bytes, name: str) -> io.BytesIO:
    """``data`` as a file-like object that carries :func:`safe_name` of ``name`` (decoders and messages use it)."""
    buffer = io.BytesIO(data)
    buffer.name = safe_name(name)
    return buffer


def _chunks(upload: Upload, chunk_bytes: int) -> Iterator[bytes]:
    if isinstance(upload, (bytes, bytearray, memoryview)):
        yield bytes(upload)
        return
    while chunk := upload.read(chunk_bytes):
        yield chunk


@contextlib.contextmanager
def saved_upload(upload: Upload, name, *, max_mb: float = MAX_UPLOAD_MB, dir: str | Path | None = None,
                 chunk_bytes: int = CHUNK_BYTES) -> Iterator[Path]:
    """Stream an upload into a private temp file and yield its path; the file is removed on exit, always.

    Parameters
    ----------
    upload : bytes or binary file-like
        The upload's content (read in ``chunk_bytes`` pieces, never whole).
    name : str
        The client's file name: only :func:`safe_name` of it is used, for messages and the temp file's extension.
    max_mb : float
        Size cap; reading stops as soon as it is passed.
    dir : str or Path or None
        Folder of the temp file (None: the system temp folder, ``TMPDIR``).

    Raises
    ------
    AudioDecodeError
        Empty or too large; and any :class:`AudioDecodeError` raised in the ``with`` block about the temp file
        is raised again naming ``safe_name(name)`` instead of the temp path.
    """
    shown = safe_name(name)
    limit = max_mb * 1024 * 1024
    fd, tmp = tempfile.mkstemp(prefix="timbre-upload-", suffix=upload_suffix(name), dir=dir)  # mode 0600
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            for chunk in _chunks(upload, chunk_bytes):
                size += len(chunk)
                if size > limit:
                    raise _too_large(shown, max_mb, size if isinstance(upload, (bytes, bytearray, memoryview)) else None)
                out.write(chunk)
        check_upload(shown, size, max_mb=max_mb)
        try:
            yield Path(tmp)
        except AudioDecodeError as error:
            if error.path not in (tmp, os.path.basename(tmp)):  # load_audio names a Path by its .name
                raise
            reason = error.reason.replace(tmp, shown).replace(os.path.basename(tmp), shown)
            raise AudioDecodeError(shown, reason) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _safe_part(text: str, *, default: str) -> str:
    """One path part made of letters, digits, '-', '_' and single dots (never hidden, never '..')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:72] or default


def upload_paths(client_names: list[str]) -> list[str]:
    """Where each upload goes inside its new library folder, built from the client's names without trusting them.

    A folder upload names files by their relative path (``mymusic/rock/23.mp3``): the folder the user picked is
    dropped, its sub-folders are kept (they become the labels, as for a folder on the server) and the file keeps
    its name. Every part is cut to letters, digits, '-', '_' and dots; never absolute, never ``..``, never
    hidden; a name used twice in one folder gets ``-2``, ``-3``.

    Raises
    ------
    DatasetError
        A name without an audio extension.
    """
    from core.audio.decode import AUDIO_EXTENSIONS

    split = [[p for p in re.split(r"[/\\]", str(name)) if p.strip() not in ("", ".", "..")] or ["track"]
             for name in client_names]
    tops = {parts[0] for parts in split if len(parts) > 1}
    if len(tops) == 1 and all(len(parts) > 1 for parts in split):  # one picked folder: its name is no label
        split = [parts[1:] for parts in split]
    out, used = [], set()
    for name, parts in zip(client_names, split):
        ext = upload_suffix(parts[-1])
        if not ext:
            raise DatasetError(f"{safe_name(name)!r}: not an audio file name (expected one of "
                               f"{', '.join(AUDIO_EXTENSIONS)})")
        folders = [_safe_part(p, default="folder") for p in parts[:-1]]
        stem = _safe_part(parts[-1][:-len(ext)], default="track")
        path, n = "/".join([*folders, stem + ext]), 1
        while path.casefold() in used:
            n += 1
            path = "/".join([*folders, f"{stem}-{n}{ext}"])
        used.add(path.casefold())
        out.append(path)
    return out


def save_uploads(files: Iterable[tuple[str, bytes]], library: str, *, max_mb: float) -> Path:
    """Write uploaded files into a new library folder ``uploads_dir()/library`` (see :func:`upload_paths`).

    Parameters
    ----------
    files : iterable of (client file name or relative path, bytes)
    library : str
        Name of the new folder (the rules of :func:`check_name`).
    max_mb : float
        Size limit of each file.

    Returns
    -------
    Path
        The folder, ready for :func:`start_job` (``source=``); sub-folders of a folder upload are its labels.
    """

    library = check_name(library, what="library folder name")
    files = list(files)
    if not files:
        raise DatasetError("choose at least one audio file to upload")
    for name, data in files:
        check_upload(name, len(data), max_mb=max_mb)
    paths = upload_paths([name for name, _ in files])
    folder = uploads_dir().resolve() / library  # as check_source compares it with the roots
    if folder.exists():
        raise DatasetError(f"{library}: a library folder of that name exists already; choose another name")
    for path, (_, data) in zip(paths, files):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / path, data)
    return folder
