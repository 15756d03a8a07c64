"""Uploaded query files: which types the app takes and how large they may be, checked before decoding."""
from __future__ import annotations

import io

from .errors import AudioDecodeError

UPLOAD_TYPES = ("mp3", "wav", "ogg", "flac", "m4a")
# Default limit; the app passes the server's own (server.maxUploadSize in .streamlit/config.toml).
MAX_UPLOAD_MB = 200


def check_upload(name: str, n_bytes: int, *, max_mb: float = MAX_UPLOAD_MB) -> None:
    """Raise :class:`AudioDecodeError` for an empty upload or one larger than ``max_mb`` megabytes."""
    if n_bytes == 0:
        raise AudioDecodeError(name, "file is empty (0 bytes)")
    if n_bytes > max_mb * 1024 * 1024:
        raise AudioDecodeError(name, f"too large: {n_bytes / 2**20:.1f} MB, the limit is {max_mb:g} MB")


def named_buffer(data: bytes, name: str) -> io.BytesIO:
    """``data`` as a file-like object that carries ``name`` (decoders and error messages use it)."""
    buffer = io.BytesIO(data)
    buffer.name = name
    return buffer
