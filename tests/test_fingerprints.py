"""core.search.fingerprints: landmark hashes find a noisy, band-limited excerpt's source track at the right time
offset, and music not in the library gathers only a few scattered votes."""
from __future__ import annotations

import json

import numpy as np
from scipy.signal import butter, sosfilt

from core.search.fingerprints import FingerprintConfig, FingerprintIndex, landmarks, spectral_peaks

SR = 22_050


def melody(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Random three-note chords (0.1-0.3 s each, 300-3,500 Hz): a track whose spectral peaks are its own."""
    out = []
    while sum(map(len, out)) < seconds * SR:
        n = int(rng.uniform(0.1, 0.3) * SR)
        t = np.arange(n) / SR
        out.append(sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(300, 3500, 3)) * np.hanning(n))
    return (0.3 * np.concatenate(out)[:int(seconds * SR)]).astype(np.float32)


def test_peaks_are_in_the_band_and_hashes_are_made(rng):
    y = melody(rng, 5.0)
    frames, bins = spectral_peaks(y, sr=SR)
    hz = bins * SR / 2048
    assert len(frames) > 50 and hz.min() >= 290 and hz.max() <= 4020 and np.all(np.diff(frames) >= 0)
    hashes, times = landmarks(y, sr=SR)
    assert hashes.dtype == np.uint32 and len(hashes) == len(times) > len(frames)
    assert hashes.max() < FingerprintConfig().n_hashes(SR)  # dense ids: the index has a bucket for each
    assert landmarks(np.zeros(100, np.float32), sr=SR)[0].size == 0  # shorter than one frame


def test_a_degraded_excerpt_finds_its_track_and_outside_music_does_not(rng):
    tracks = [melody(np.random.default_rng(i), 30.0) for i in range(8)]
    index = FingerprintIndex.build(tracks, np.arange(10, 18), sr=SR)
    excerpt = tracks[3][int(12.3 * SR):int(15.3 * SR)]  # 3 s from 12.3 s on
    band = sosfilt(butter(4, [300, 3400], btype="bandpass", fs=SR, output="sos"), excerpt)
    noisy = band + rng.standard_normal(len(band)) * np.sqrt(np.mean(band ** 2)) * 10 ** (-10 / 20)
    rows, votes = index.votes(0.3 * noisy, sr=SR, k=3)
    assert rows[0] == 13 and votes[0] >= 5 * max(votes[1:].max(initial=1), 1)
    outside_rows, outside_votes = index.votes(melody(np.random.default_rng(99), 3.0), sr=SR, k=3)
    assert outside_votes.max(initial=0) < votes[0] / 4


def test_votes_a_frame_apart_count_together_and_never_across_tracks():
    """A recording's peaks land a frame early or late: within the tolerance they count for one offset, and the
    window never reaches a neighbouring slot's offsets (slot 0's largest offset beside slot 1's smallest)."""
    from core.search.fingerprints import _best_offsets

    slots = np.array([0, 0, 0, 0, 0, 1, 1])
    offsets = np.array([5, 5, 6, 4, 9, -3, 9])
    assert _best_offsets(slots, offsets, 2, tolerance=0).tolist() == [2, 1]
    assert _best_offsets(slots, offsets, 2, tolerance=1).tolist() == [4, 1]
    assert _best_offsets(slots, offsets, 2, tolerance=4).tolist() == [5, 1]  # 4..9 in slot 0; -3 and 9 far apart
    assert _best_offsets(slots[:0], offsets[:0], 2, tolerance=1).tolist() == [0, 0]


def test_only_allowed_rows_vote_and_a_budget_keeps_the_votes():
    """Rows left out never vote; a budget of entries seeks candidates among the rarest hashes only, and the
    candidates' votes are then counted over every hash (the same as without a budget)."""
    base = melody(np.random.default_rng(0), 20.0)
    tracks = [melody(np.random.default_rng(i), 20.0) for i in range(1, 5)] + [base] * 4  # rows 4-7 share hashes
    index = FingerprintIndex.build(tracks, np.arange(8), sr=SR)
    excerpt = tracks[2][5 * SR:9 * SR]
    assert index.votes(excerpt, sr=SR, k=1)[0].tolist() == [2]
    allowed = np.array([True, True, False, True] + [True] * 4)
    rows, votes = index.votes(excerpt, sr=SR, k=4, allowed=allowed)
    assert 2 not in rows.tolist() and votes.max(initial=0) < 10
    hashes, times = landmarks(base[3 * SR:7 * SR], sr=SR)
    full_rows, full_votes = index.vote(hashes, times, k=4)
    assert sorted(full_rows.tolist()) == [4, 5, 6, 7]
    every = len(index.lookup(hashes, times)[0])
    assert len(index.lookup(hashes, times, budget=every // 3)[0]) <= every // 3
    rows, votes = index.vote(hashes, times, k=4, budget=every // 3)
    assert sorted(rows.tolist()) == [4, 5, 6, 7] and votes.tolist() == full_votes.tolist()
    own, other = index.row_votes(hashes, times, np.array([4, 1])).tolist()
    assert own == full_votes[0] and other <= 2  # another track: a chance landmark or two


def write_tracks(folder, n: int) -> list:
    import soundfile as sf

    paths = []
    for i in range(n):
        paths.append(folder / f"t{i}.wav")
        sf.write(paths[-1], melody(np.random.default_rng(i), 12.0), SR)
    return paths


def test_a_run_folder_keeps_its_fingerprints_and_a_cut_short_write_is_rebuilt(tmp_path):
    from core.base.io import atomic_write_npy
    from core.search.fingerprint_store import ARRAYS, MANIFEST, build_fingerprints, read_fingerprints

    paths = write_tracks(tmp_path, 3)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not audio")
    paths.append(broken)
    run = tmp_path / "run"
    run.mkdir()
    built = build_fingerprints(run, paths, sr=SR)
    manifest = json.loads((run / MANIFEST).read_text())
    assert manifest["n_tracks"] == 4 and len(manifest["unread"]) == 1 and "broken.wav" in manifest["unread"][0]
    read = read_fingerprints(run, n_tracks=4, sr=SR)
    assert isinstance(read.rows, np.memmap) and np.array_equal(read.rows, built.rows)
    assert not np.any(np.asarray(read.rows) == 3)  # the unreadable file has no landmarks, and matches by embedding
    excerpt = melody(np.random.default_rng(1), 12.0)[2 * SR:6 * SR]
    assert read.votes(excerpt, sr=SR, k=1)[0].tolist() == [1]
    assert read_fingerprints(run, n_tracks=5, sr=SR) is None  # made for another library
    assert read_fingerprints(run, n_tracks=4, sr=16_000) is None  # or another rate
    (run / MANIFEST).unlink()  # a write cut short before its manifest
    assert read_fingerprints(run, n_tracks=4, sr=SR) is None
    atomic_write_npy(run / ARRAYS["rows"], np.zeros(5, np.int32))  # and arrays that disagree with it
    rebuilt = build_fingerprints(run, paths, sr=SR)
    assert np.array_equal(rebuilt.rows, built.rows) and read_fingerprints(run, n_tracks=4, sr=SR) is not None



def test_a_build_in_parts_writes_the_index_a_build_at_once_makes(tmp_path):
    """Parts of 2 tracks merged bucket by bucket: the same arrays as all 5 tracks indexed at once (buckets in row
    order), so a large library is fingerprinted in bounded memory."""
    from core.search.fingerprint_store import build_fingerprints

    paths = write_tracks(tmp_path, 5)
    from core.audio.decode import load_audio

    whole = FingerprintIndex.build([load_audio(p, sr=SR, max_seconds=None) for p in paths], np.arange(5), sr=SR)
    run = tmp_path / "run"
    run.mkdir()
    parted = build_fingerprints(run, paths, sr=SR, part_tracks=2)
    for field in ("starts", "rows", "times"):
        assert np.array_equal(np.asarray(getattr(parted, field)), getattr(whole, field)), field
    assert not list(run.glob(".fingerprint-parts-*")) and not list(run.glob(".*.tmp"))  # nothing left behind
