"""Uploads: client file names are never paths, temp files are capped, private and always removed."""
from __future__ import annotations

import io
import stat

import numpy as np
import pytest

from core.audio.decode import load_audio
from core.base.errors import AudioDecodeError
from core.data.uploads import MAX_NAME_CHARS, MAX_UPLOAD_MB, named_buffer, safe_name, saved_upload, upload_suffix
from tests.audio_files import sine, write_audio


@pytest.mark.parametrize("given, shown", [
    ("song.mp3", "song.mp3"),
    ("../../etc/passwd.mp3", "passwd.mp3"),
    ("/abs/path/a b.flac", "a b.flac"),
    ("..\\..\\Windows\\win.ini.wav", "win.ini.wav"),
    ("C:\\music\\x.m4a", "x.m4a"),
    ("evil\x00.mp3\x00", "evil.mp3"),
    ("new\nline\r.ogg", "newline.ogg"),
    ("", "upload"), (".", "upload"), ("..", "upload"), ("music/", "upload"), ("  ", "upload"),
    (None, "upload"), (b"bytes.mp3", "upload"),
    ("Ünïcødé 音楽.mp3", "Ünïcødé 音楽.mp3"),
])
def test_safe_name_keeps_only_a_base_name(given, shown):
    assert safe_name(given) == shown


def test_safe_name_cuts_long_names_keeping_the_extension():
    name = safe_name("x" * 1000 + ".flac")
    assert len(name) == MAX_NAME_CHARS and name.endswith(".flac")


@pytest.mark.parametrize("given, suffix", [("a.MP3", ".mp3"), ("../b.flac", ".flac"), ("c.exe", ""),
                                           ("noext", ""), ("../../etc/passwd", ""), ("d.mp3/..", "")])
def test_upload_suffix_is_an_audio_extension_or_nothing(given, suffix):
    assert upload_suffix(given) == suffix


def test_named_buffer_never_carries_a_path():
    assert named_buffer(b"abc", "../../secret/a.wav").name == "a.wav"


def test_saved_upload_writes_a_private_file_and_removes_it(tmp_path):
    with saved_upload(b"abc" * 1000, "../../etc/passwd.mp3", dir=tmp_path) as path:
        assert path.parent == tmp_path and path.suffix == ".mp3"
        assert "passwd" not in path.name and ".." not in path.name
        assert path.read_bytes() == b"abc" * 1000
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == []


def test_saved_upload_streams_a_file_object_in_chunks(tmp_path):
    data = np.random.default_rng(0).bytes(300_000)
    with saved_upload(io.BytesIO(data), "x.wav", dir=tmp_path, chunk_bytes=4096) as path:
        assert path.read_bytes() == data
    assert list(tmp_path.iterdir()) == []


class EndlessStream:
    """A client that never stops sending: reading must stop at the cap."""

    def __init__(self):
        self.sent = 0

    def read(self, n: int = -1) -> bytes:
        assert n > 0, "the upload must be read in bounded chunks"
        self.sent += n
        return b"\0" * n


def test_saved_upload_stops_reading_as_soon_as_the_cap_is_passed(tmp_path):
    stream = EndlessStream()
    with pytest.raises(AudioDecodeError, match=r"^big.mp3: too large: more than 0.1 MB, the limit is 0.1 MB$"):
        with saved_upload(stream, "../big.mp3", max_mb=0.1, dir=tmp_path, chunk_bytes=8192):
            pytest.fail("the body must not run for an oversized upload")
    assert 0.1 * 2**20 < stream.sent <= 0.1 * 2**20 + 8192
    assert list(tmp_path.iterdir()) == []


def test_saved_upload_refuses_oversized_bytes_with_their_size(tmp_path):
    with pytest.raises(AudioDecodeError, match=r"^a.wav: too large: 2.0 MB, the limit is 1 MB$"):
        with saved_upload(b"\0" * 2 * 2**20, "a.wav", max_mb=1, dir=tmp_path):
            pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("empty", [b"", io.BytesIO(b"")])
def test_saved_upload_refuses_empty_uploads(tmp_path, empty):
    with pytest.raises(AudioDecodeError, match=r"^e.ogg: file is empty \(0 bytes\)$"):
        with saved_upload(empty, "e.ogg", dir=tmp_path):
            pass
    assert list(tmp_path.iterdir()) == []


def test_decode_errors_name_the_upload_not_the_temp_file(tmp_path):
    with pytest.raises(AudioDecodeError) as caught:
        with saved_upload(b"this is not audio" * 100, "../../notes.mp3", dir=tmp_path) as path:
            load_audio(path)
    assert caught.value.path == "notes.mp3" and "not a readable audio file" in caught.value.reason
    assert str(tmp_path) not in str(caught.value) and "timbre-upload" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_other_errors_pass_through_and_the_file_is_still_removed(tmp_path):
    with pytest.raises(AudioDecodeError, match=r"^elsewhere.wav: "):
        with saved_upload(b"x", "a.wav", dir=tmp_path):
            raise AudioDecodeError("elsewhere.wav", "some other file")
    with pytest.raises(KeyError):
        with saved_upload(b"x", "a.wav", dir=tmp_path):
            raise KeyError("boom")
    assert list(tmp_path.iterdir()) == []


def test_a_real_upload_decodes_from_the_temp_file(tmp_path):
    y = sine(330.0, seconds=2.0)
    write_audio(tmp_path / "src.flac", y, 22_050)
    work = tmp_path / "tmp"
    work.mkdir()
    with open(tmp_path / "src.flac", "rb") as stream, saved_upload(stream, "a/b/c.flac", dir=work) as path:
        decoded = load_audio(path)
    np.testing.assert_allclose(decoded, y, atol=1e-3)
    assert list(work.iterdir()) == []


def test_the_default_cap_is_the_apps():
    assert MAX_UPLOAD_MB == 200
