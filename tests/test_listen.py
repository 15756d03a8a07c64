"""core.service.listen and core.service.identify: the streaming matcher and its identification rule on synthetic
streams whose answer is known (a library track, a track not in the library, silence, a switch of track)."""
from __future__ import annotations

import numpy as np
import pytest

from core.base.errors import AudioDecodeError
from core.demo import synthesise_track
from core.runs.folder import load_run
from core.service.identify import Identification, IdentifyRule
from core.service.listen import ListenConfig, StreamMatcher, listen_to, pcm_to_float, update_record


@pytest.fixture(scope="module")
def run(tiny_run_id):
    return load_run(tiny_run_id)


def track_audio(run, row: int) -> np.ndarray:
    from core.audio.decode import load_audio

    return load_audio(run.tracks["path"].iloc[row], sr=run.mel_params.sr)


# ------------------------------------------------------------------------------------------------ the rule alone

RULE = IdentifyRule(confirm=3, min_margin=0.02, min_passage=0.6, min_aligned=6)
SURE = (np.array([4, 1, 2]), np.array([0.9, 0.8, 0.7]), 0.9, 12)  # rows, scores, passage, aligned chunks
UNSURE = (np.array([4, 1, 2]), np.array([0.9, 0.89, 0.7]), 0.9, 12)  # margin 0.01
SCATTERED = (np.array([4, 1, 2]), np.array([0.9, 0.8, 0.7]), 0.9, 3)  # look-alike passages, no time order


def steps(ident: Identification, updates, start: float = 1.0):
    return [ident.step(*u, seconds=start + i) for i, u in enumerate(updates)]


def test_rule_needs_consecutive_confident_updates():
    ident = Identification(rule=RULE)
    assert steps(ident, [SURE, SURE, UNSURE, SURE, SURE, SURE]) == [None, None, None, None, None, 4]
    assert ident.seconds == 6.0


def test_rule_never_identifies_scattered_or_close_calls():
    ident = Identification(rule=RULE)
    assert steps(ident, [SCATTERED] * 10 + [UNSURE] * 10) == [None] * 20


def test_rule_keeps_the_answer_through_silence_and_switches_only_by_the_rule():
    ident = Identification(rule=RULE)
    other = (np.array([7, 4, 2]), np.array([0.95, 0.8, 0.7]), 0.9, 12)
    assert steps(ident, [SURE] * 3)[-1] == 4
    assert ident.silence() == 4 and ident.streak == 0
    assert steps(ident, [other, other], start=5.0) == [4, 4]  # not yet sure of the new track
    assert steps(ident, [other], start=7.0) == [7] and ident.seconds == 7.0


def test_rule_with_fingerprints_counts_votes_instead_of_passages():
    rule = IdentifyRule(confirm=2, min_margin=0.02, min_votes=12)
    scores = np.array([1.4, 0.9, 0.8])
    assert rule.passes(scores, 0.1, 0.0, votes=30)  # a poor passage match does not matter: the landmarks do
    assert not rule.passes(scores, 0.99, 12, votes=5)  # a few chance votes never identify, whatever the passages
    assert not rule.passes(np.array([1.4, 1.39]), 0.99, 12, votes=30)  # nor a close call
    ident = Identification(rule=rule)
    sure = (np.array([4, 1]), scores, np.nan, np.nan)
    assert [ident.step(*sure, seconds=s, votes=v) for s, v in ((1, 30), (2, 8), (3, 30), (4, 31))] == [None, None,
                                                                                                        None, 4]


def test_fingerprint_strength_is_nothing_for_chance_votes_and_grows_towards_one():
    cfg = ListenConfig(vote_floor=4.0, vote_half=8.0)
    assert cfg.strength(np.array([0, 4, 12, 1000])).round(3).tolist() == [0.0, 0.0, 0.5, 0.992]


def test_rule_without_passages_uses_the_margin_only():
    assert RULE.passes(np.array([0.9, 0.8]), float("nan"), float("nan"))
    assert not RULE.passes(np.array([0.9, 0.89]), float("nan"), float("nan"))
    assert not RULE.passes(np.zeros(0), 1.0, 1.0)


# ------------------------------------------------------------------------------------------------ streams

def test_library_track_is_found_and_identified(run):
    row = 5
    updates = listen_to(run, track_audio(run, row))
    assert [u.seconds for u in updates] == [float(s) for s in range(1, 9)]
    assert all(int(u.neighbours["row"].iloc[0]) == row for u in updates[3:])
    assert updates[-1].identified == row and updates[-1].identified_seconds <= 8.0
    assert updates[-1].neighbours["passage"].iloc[0] > 0.99  # its own passages, one after another
    assert updates[-1].neighbours["aligned"].iloc[0] == 10  # every chunk of the window (starts 0 to 4.5 s)
    assert updates[-1].neighbours["votes"].iloc[0] >= 10 * max(updates[-1].neighbours["votes"].iloc[1], 1)
    assert set(updates[-1].positions) == {"pca", "tsne", "umap"}


def test_track_not_in_the_library_is_never_identified(run):
    styles = run.tracks["label"].astype(str).tolist()
    y = synthesise_track(styles[0], seconds=8.0, seed=987)  # same style, a seed no library track has
    updates = listen_to(run, y)
    assert len(updates) == 8 and all(len(u.neighbours) == 5 for u in updates)
    assert all(u.identified is None for u in updates)
    assert max(u.neighbours["votes"].max() for u in updates) < IdentifyRule().min_votes  # chance votes only


def test_the_fingerprint_stage_finds_a_band_limited_noisy_excerpt(run):
    """A telephone-band excerpt at 10 dB SNR of a library track (from 0.5 s on): its landmarks vote for it and the
    combined stage names it; the stage can be turned off (then ``votes`` is NaN and passages alone rank)."""
    from scipy.signal import butter, sosfilt

    assert run.fingerprints is not None  # training wrote them with the run
    sr, row = run.mel_params.sr, 7
    clean = track_audio(run, row)[int(0.5 * sr):]
    x = sosfilt(butter(4, [300, 3400], btype="bandpass", fs=sr, output="sos"), clean)
    x = x + np.random.default_rng(0).standard_normal(len(x)) * np.sqrt(np.mean(x ** 2)) * 10 ** (-10 / 20)
    updates = listen_to(run, (0.3 * x / np.abs(x).max()).astype(np.float32))
    last = updates[-1].neighbours
    assert int(last["row"].iloc[0]) == row and last["votes"].iloc[0] >= IdentifyRule().min_votes
    assert updates[-1].identified == row and updates[-1].identified_seconds <= 6.0
    alone = listen_to(run, clean, config=ListenConfig(fingerprints=False))
    assert alone[-1].neighbours["votes"].isna().all() and int(alone[-1].neighbours["row"].iloc[0]) == row


def test_silence_matches_nothing(run):
    updates = listen_to(run, np.zeros(5 * run.mel_params.sr, np.float32))
    assert len(updates) == 5 and all(u.silent and u.neighbours.empty and u.identified is None for u in updates)
    assert update_record(run, updates[0])["top"] == [] and update_record(run, updates[0])["margin"] is None


def test_a_switch_of_track_mid_stream_is_followed(run):
    a, b = track_audio(run, 2), track_audio(run, 9)
    config = ListenConfig(window_seconds=6.0)  # 6 whole chunks: enough to align, short enough to follow
    updates = listen_to(run, np.concatenate([a, b]), config=config)
    assert updates[7].identified == 2
    assert updates[-1].identified == 9 and updates[-1].identified_seconds > 8.0
    record = update_record(run, updates[-1])
    assert record["identified"] == run.tracks["track_id"].iloc[9] and record["top"][0]["track_id"] == record["identified"]


def test_falling_behind_drops_windows_instead_of_queueing(run):
    stream = StreamMatcher(run)
    y = track_audio(run, 1)
    assert stream.feed(y[:100]) is None  # less than an update's worth
    update = stream.feed(y[100:])  # seven seconds at once: one update, of the newest window
    assert update is not None and update.seconds == pytest.approx(8.0, abs=0.01)
    assert stream.feed(y[:10]) is None


def test_chunks_are_embedded_once_and_match_a_full_pass(run):
    """The incremental window embedding equals the same chunks embedded together from the window's log-mel."""
    from core.audio.features import log_mel

    y = track_audio(run, 3)
    stream = StreamMatcher(run, config=ListenConfig(window_seconds=6.0))
    for i in range(0, len(y), 4410):
        stream.feed(y[i:i + 4410])
    held = sorted(stream.chunks)
    assert len(held) == 6 and held[0] > 0  # the window's chunks only; older ones were let go
    mel = log_mel(y, params=stream.params)
    frames = stream.step // stream.params.hop_length
    chunks = np.stack([mel[:, j * frames:j * frames + stream.chunk_frames] for j in held])
    z, m = stream._embed(chunks)
    np.testing.assert_allclose(np.stack([stream.chunks[j][0] for j in held]), z, atol=1e-4)
    np.testing.assert_allclose(np.stack([stream.chunks[j][1] for j in held]), m, atol=1e-4)


def test_other_rates_are_resampled_as_one_stream(run):
    from core.audio.decode import to_mono_resampled

    y = track_audio(run, 6)
    y48 = to_mono_resampled(y, sr_in=run.mel_params.sr, sr=48_000)
    stream = StreamMatcher(run, sr=48_000)
    updates = [stream.feed(y48[i:i + 960]) for i in range(0, len(y48), 960)]  # 20 ms frames
    updates = [u for u in updates if u is not None]
    assert len(updates) == 7 and int(updates[-1].neighbours["row"].iloc[0]) == 6


def test_bad_stream_input_is_refused(run):
    with pytest.raises(AudioDecodeError, match="whole frames"):
        pcm_to_float(b"\x00\x01\x02", channels=1)
    assert pcm_to_float(np.array([16384, -16384], "<i2").tobytes()).tolist() == [0.5, -0.5]
    assert pcm_to_float(np.array([16384, 0], "<i2").tobytes(), channels=2).tolist() == [0.25]
    with pytest.raises(AudioDecodeError, match="NaN"):
        StreamMatcher(run).feed(np.array([0.1, np.nan], np.float32))


def test_cli_plays_a_file_as_a_live_stream(run, capsys):
    import json

    from core.cli import main

    assert main(["listen", "--run", run.run_id, str(run.tracks["path"].iloc[5]), "--speed", "0", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [u["seconds"] for u in lines] == [float(s) for s in range(1, 9)]
    assert lines[-1]["top"][0]["track_id"] == lines[-1]["identified"] == run.tracks["track_id"].iloc[5]
    assert main(["listen", "--run", run.run_id, str(run.tracks["path"].iloc[5]), "--speed", "0", "-k", "2"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert len(text) == 8 and "identified: " in text[-1] and text[0].strip().startswith("1.0 s")


def test_cli_builds_missing_fingerprints_on_first_use_and_on_demand(run, capsys):
    from core.cli import main
    from core.search.fingerprint_store import MANIFEST

    (run.path / MANIFEST).unlink()  # as a run trained before fingerprints (or a build cut short)
    stale = load_run(run.run_id)  # as a server loaded it then
    assert stale.fingerprints is None and StreamMatcher(stale).fingerprints is None
    assert main(["listen", "--run", run.run_id, str(run.tracks["path"].iloc[5]), "--speed", "0", "--json"]) == 0
    out = capsys.readouterr()
    assert f"fingerprinting its {len(run.tracks)} tracks" in out.err and '"votes": ' in out.out
    again = load_run(run.run_id).fingerprints
    assert again is not None and np.array_equal(again.rows, run.fingerprints.rows)
    assert StreamMatcher(stale).fingerprints is not None  # the server's next stream finds them
    assert main(["fingerprint", "--run", run.run_id]) == 0
    assert "has its fingerprints" in capsys.readouterr().out
    assert main(["fingerprint", "--run", run.run_id, "--force"]) == 0
    assert "landmarks" in capsys.readouterr().err and load_run(run.run_id).fingerprints is not None


def test_a_background_job_fingerprints_a_run_for_its_next_stream(run):
    """What a server does on a live stream of a run without fingerprints: a job (its own process) builds them, a
    second start while it runs names the same job, and the server's next stream of that run uses them."""
    import time

    from core import jobs
    from core.search.fingerprint_store import MANIFEST

    (run.path / MANIFEST).unlink(missing_ok=True)
    stale = load_run(run.run_id)
    assert StreamMatcher(stale).fingerprints is None
    job = jobs.start_fingerprint_job(run.run_id)
    assert jobs.start_fingerprint_job(run.run_id) == job or jobs.job_status(job)["state"] == "done"
    deadline = time.monotonic() + 120
    while jobs.job_status(job)["state"] in jobs.ACTIVE and time.monotonic() < deadline:
        time.sleep(0.5)
    status = jobs.job_status(job)
    assert status["state"] == "done", jobs.job_log(job)
    assert status["result"]["landmarks"] == len(run.fingerprints.rows)
    assert StreamMatcher(stale).fingerprints is not None
