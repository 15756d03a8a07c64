"""Passages: where they start, how a candidate is scored, how they are stored, and that a query by audio finds
the passage it was cut from."""
import numpy as np
import pytest
import torch

from core.audio.features import log_mel
from core.model.embed import embed_passages, passage_starts
from core.runs.folder import load_run
from core.search.passages import (
    CANDIDATE,
    MAX_QUERY_PASSAGES,
    MIN_ALIGN_CHUNKS,
    add_passages,
    best_passage_scores,
    matcher_for,
    passage_alignment,
    read_passages,
    write_passages,
)
from core.service.query import recommend_audio
from tests.run_copies import copy_run


def test_starts_step_by_the_hop_and_spread_evenly_past_the_cap():
    assert passage_starts(100, chunk_frames=40, hop_frames=20, max_passages=10).tolist() == [0, 20, 40, 60]
    spread = passage_starts(1000, chunk_frames=40, hop_frames=10, max_passages=5)
    assert spread.tolist() == [0, 240, 480, 720, 960]  # first and last chunk still cover the track's ends
    assert passage_starts(30, chunk_frames=40, hop_frames=10, max_passages=5).tolist() == [0]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_alignment_tells_a_recording_from_a_scatter_of_look_alikes(rng):
    """Query chunks that are passages 10..17 of track 1 (noisy) all align with it; the same chunks in shuffled
    order, or a track they are not in, align only a few by chance; too few chunks never align."""
    passages = _unit(rng.standard_normal((20 + 40 + 30, 16))).astype(np.float32)
    offsets = np.array([0, 20, 60, 90])
    own = passages[20 + 10:20 + 18]
    queries = _unit(own + 0.1 * rng.standard_normal(own.shape)).astype(np.float32)
    aligned = passage_alignment(queries, passages, offsets, np.array([1, 0, 2]))
    assert aligned[0] == 8 and aligned[1:].max() <= 4
    shuffled = passage_alignment(queries[rng.permutation(8)], passages, offsets, np.array([1]))
    assert shuffled[0] <= 4
    assert passage_alignment(queries[:MIN_ALIGN_CHUNKS - 1], passages, offsets, np.array([1])).tolist() == [0.0]


def test_scores_are_the_mean_best_passage_cosine(rng):
    passages = _unit(rng.standard_normal((12, 8))).astype(np.float32)
    offsets = np.array([0, 3, 4, 9, 12])
    queries = _unit(rng.standard_normal((5, 8))).astype(np.float32)
    rows = np.array([2, 0, 3, 1])
    expected = [np.mean([max(passages[p] @ q for p in range(offsets[r], offsets[r + 1])) for q in queries])
                for r in rows]
    assert np.allclose(best_passage_scores(queries, passages, offsets, rows), expected, atol=1e-6)
    assert best_passage_scores(queries, passages, offsets, np.array([], dtype=int)).shape == (0,)


def test_a_track_holding_the_query_scores_one_and_beats_a_closer_average(rng):
    """The case track embeddings miss: the query is one passage of track 0, whose mean is far from it, while
    track 1's passages all lie close to the query without any being it."""
    query = _unit(rng.standard_normal(16))
    other = _unit(rng.standard_normal(16))
    track0 = np.stack([query, other, -query + 0.1 * other, other])  # mean far from the query
    track1 = _unit(query + 0.8 * _unit(rng.standard_normal((3, 16))))  # near, never equal
    passages = _unit(np.concatenate([track0, track1])).astype(np.float32)
    offsets = np.array([0, 4, 7])
    means = _unit(np.stack([passages[:4].mean(0), passages[4:].mean(0)]))
    assert means[1] @ query > means[0] @ query  # by track embedding track 1 wins
    scores = best_passage_scores(query[None].astype(np.float32), passages, offsets, np.array([0, 1]))
    assert scores[0] == pytest.approx(1.0, abs=1e-5) and scores[0] > scores[1]


def test_stored_passages_round_trip_and_a_mismatch_is_ignored(tmp_path, rng):
    passages = _unit(rng.standard_normal((7, 4))).astype(np.float32)
    offsets = np.array([0, 2, 7])
    write_passages(tmp_path, passages, offsets)
    found, found_offsets = read_passages(tmp_path, n_tracks=2)
    assert found.dtype == np.float16 and np.allclose(found, passages, atol=1e-3)
    assert found_offsets.tolist() == [0, 2, 7]
    assert read_passages(tmp_path, n_tracks=3) is None  # written for another library
    write_passages(tmp_path, passages, np.array([0, 7, 7]))  # an empty track: corrupt
    assert read_passages(tmp_path, n_tracks=2) is None
    assert read_passages(tmp_path / "nothing", n_tracks=2) is None


def test_a_run_stores_one_passage_per_hop_equal_to_its_chunk_embedding(tiny_run_id, tiny_build):
    run = load_run(tiny_run_id)
    passages, offsets = run.passages
    assert len(offsets) == len(run.tracks) + 1 and np.all(np.diff(offsets) >= 1)
    hop = matcher_for(run).hop_frames
    assert hop == round(0.5 * run.mel_params.frames_per_second())
    from core.data.dataset import load_dataset

    mel = np.asarray(load_dataset(run.config["dataset"]).mel(run.tracks["track_id"][2]), dtype=np.float32)
    n_expected = len(passage_starts(mel.shape[1], chunk_frames=run.config["chunk_frames"], hop_frames=hop,
                                    max_passages=128))
    assert offsets[3] - offsets[2] == n_expected
    second = mel[None, :, hop:hop + run.config["chunk_frames"]]
    with torch.inference_mode():
        z = run.model.eval().match(torch.from_numpy(np.ascontiguousarray(second))).numpy()[0]
    assert np.allclose(passages[offsets[2] + 1], z, atol=2e-3)


def test_passages_do_not_depend_on_how_they_are_batched(tiny_run_id, rng):
    model = load_run(tiny_run_id).model
    mels = [rng.normal(-40, 10, size=(model.model_args["n_mels"], frames)).astype(np.float32) for frames in (90, 300, 41)]
    one_go, offsets = embed_passages(model, mels, chunk_frames=64, hop_frames=16, batch_size=256)
    small, small_offsets = embed_passages(model, mels, chunk_frames=64, hop_frames=16, batch_size=5)
    assert np.array_equal(offsets, small_offsets) and offsets[-1] == len(one_go) == 2 + 15 + 1
    assert np.allclose(one_go, small, atol=1e-5)


def test_a_recording_of_a_library_track_finds_it_by_track_and_passage(tiny_run_id):
    run = load_run(tiny_run_id)
    from core.audio.decode import load_audio

    sr, row = run.mel_params.sr, 6
    y = load_audio(run.tracks["path"][row], sr=sr)
    clip = y[len(y) // 3: len(y) // 3 + int(run.config["chunk_seconds"] * sr * 1.5)] * 0.1  # a quiet excerpt
    rec = recommend_audio(run, clip, k=3)
    table = rec.neighbours
    assert table["row"][0] == row and (np.diff(table["score"]) <= 1e-6).all()
    tracks, chunks = matcher_for(run).embed([clip])
    expected_passage = best_passage_scores(chunks[0], *run.passages, table["row"].to_numpy())
    expected_cosine = tracks[0] @ run.embeddings[table["row"]].T
    assert np.allclose(table["passage"], expected_passage, atol=1e-4)
    assert np.allclose(table["cosine"], expected_cosine, atol=1e-4)
    assert np.allclose(table["score"], (expected_passage + expected_cosine) / 2, atol=1e-4)
    label = run.tracks["label"][0]
    filtered = recommend_audio(run, clip, k=3, labels=label)
    assert (filtered.neighbours["label"] == label).all()


def test_candidates_rank_by_the_mean_of_track_and_passage_similarity(tiny_run_id):
    run = load_run(tiny_run_id)
    from core.audio.decode import load_audio

    y = load_audio(run.tracks["path"][2], sr=run.mel_params.sr)[: 4 * run.mel_params.sr]
    matcher = matcher_for(run)
    tracks, chunks = matcher.embed([y])
    rows = np.arange(len(run.tracks))
    cosines = tracks[0] @ run.embeddings.T
    scores, passage = matcher.rerank(chunks[0], rows, cosines)
    assert np.allclose(scores, (cosines + passage) / 2, atol=1e-6)
    full = matcher.scores([y])[0]
    assert np.allclose(full, CANDIDATE + scores, atol=1e-5)  # a library smaller than the depth: all candidates
    matcher.depth = 3
    full = matcher.scores([y])[0]
    top = np.argsort(-cosines)[:3]
    assert set(np.flatnonzero(full >= CANDIDATE - 1)) == set(top)
    assert np.allclose(np.delete(full, top), np.delete(cosines, top), atol=1e-5)


def test_long_queries_are_matched_on_a_bounded_number_of_chunks(tiny_run_id, rng):
    run = load_run(tiny_run_id)
    y = (0.1 * rng.standard_normal(run.mel_params.sr * 60)).astype(np.float32)
    matcher = matcher_for(run)
    _, chunks = matcher.embed([y])
    assert chunks[0].shape == (MAX_QUERY_PASSAGES, 128)
    mel = log_mel(y, params=run.mel_params)
    alone, offsets = embed_passages(run.model, [mel], chunk_frames=run.config["chunk_frames"],
                                    hop_frames=matcher.hop_frames, max_passages=MAX_QUERY_PASSAGES)
    assert np.allclose(alone, chunks[0], atol=1e-5) and offsets.tolist() == [0, MAX_QUERY_PASSAGES]


def test_an_older_run_gets_its_passages_back(tiny_run_id):
    run_id = copy_run(tiny_run_id, "tiny-no-passages")
    original = load_run(tiny_run_id).passages
    older = load_run(run_id)
    for name in ("passages.npy", "passage_offsets.npy"):
        (older.path / name).unlink()
    assert older.passages is None and matcher_for(older).passages is None
    assert add_passages(older)
    assert np.array_equal(older.passages[1], original[1])
    assert np.allclose(np.asarray(older.passages[0], np.float32), np.asarray(original[0], np.float32), atol=2e-3)
    assert matcher_for(older).passages is not None
