import numpy as np
import pytest

from core.base.errors import AudioDecodeError, InvalidQuery, RunError
from core.runs.folder import load_run
from core.service.query import embed_files, recommend_audio, recommend_file, similar_tracks
from tests.audio_files import sine


def test_a_library_file_recommends_itself_first(tiny_run_id):
    run = load_run(tiny_run_id)
    for row in (0, 5, 11):
        rec = recommend_file(run, run.tracks["path"][row], k=5)
        assert rec.neighbours["track_id"][0] == run.tracks["track_id"][row]
        assert rec.neighbours["score"][0] == pytest.approx(1.0, abs=1e-4)
        assert list(rec.neighbours["rank"]) == [1, 2, 3, 4, 5]
        assert (np.diff(rec.neighbours["score"]) <= 1e-6).all()


def test_query_is_placed_on_every_map_next_to_itself(tiny_run_id):
    run = load_run(tiny_run_id)
    rec = recommend_file(run, run.tracks["path"][3], k=3)
    for method in ("pca", "tsne", "umap"):
        own = run.projections.loc[3, [f"{method}_x", f"{method}_y"]].to_numpy(float)
        spread = run.projections[[f"{method}_x", f"{method}_y"]].to_numpy(float).std(axis=0).mean()
        assert np.linalg.norm(rec.positions[method] - own) < 0.05 * spread + 1e-6, method


def test_embed_files_matches_the_stored_embeddings(tiny_run_id):
    run = load_run(tiny_run_id)
    x = embed_files(run, list(run.tracks["path"][:3]))
    assert x.shape == (3, 128)
    assert np.allclose(x, run.embeddings[:3], atol=2e-3)  # stored mels are float16


def test_similar_tracks_starts_with_itself(tiny_run_id):
    run = load_run(tiny_run_id)
    table = similar_tracks(run, 7, k=4)
    assert table["row"][0] == 7 and len(table) == 4


def test_bad_query_audio_is_a_clear_error(tiny_run_id, tmp_path):
    run = load_run(tiny_run_id)
    (tmp_path / "x.mp3").write_bytes(b"ID3 not really")
    with pytest.raises(AudioDecodeError, match="x.mp3"):
        recommend_file(run, tmp_path / "x.mp3")
    import soundfile as sf

    sf.write(tmp_path / "short.wav", sine(440, 1.0), 22050)
    with pytest.raises(AudioDecodeError, match="too short"):
        recommend_file(run, tmp_path / "short.wav")


def test_recommend_audio_from_samples(tiny_run_id):
    run = load_run(tiny_run_id)
    rec = recommend_audio(run, sine(440.0, 5.0), k=2)
    assert len(rec.neighbours) == 2 and rec.embedding.shape == (128,)


def test_k_outside_one_to_the_library_size_is_a_clear_error(tiny_run_id):
    from core.service.query import check_k

    run = load_run(tiny_run_id)
    assert check_k(np.int64(12), available=12) == 12 and type(check_k(np.int64(12), available=12)) is int
    for k in (0, -1, 2.5, True, "3"):
        with pytest.raises(InvalidQuery, match=r"ask for 1 to 12 tracks"):
            similar_tracks(run, 0, k=k)
    with pytest.raises(InvalidQuery, match=r"^k=13 is more than the 12 tracks of the run: ask for 1 to 12$"):
        similar_tracks(run, 0, k=13)
    with pytest.raises(InvalidQuery, match=r"k=13 is more than the 12 tracks"):
        recommend_audio(run, sine(440.0, 5.0), k=13)


def test_neighbours_of_leaves_the_track_out_and_ranks_from_one(tiny_run_id):
    from core.service.query import neighbours_of

    run = load_run(tiny_run_id)
    near = neighbours_of(run, 7, k=4)
    assert 7 not in set(near["row"]) and list(near["rank"]) == [1, 2, 3, 4]
    assert list(near["row"]) == list(similar_tracks(run, 7, k=5)["row"].iloc[1:])
    assert len(neighbours_of(run, 0, k=len(run.tracks) - 1)) == len(run.tracks) - 1
    for bad in (0, len(run.tracks)):
        with pytest.raises(InvalidQuery, match="11 other tracks"):
            neighbours_of(run, 0, k=bad)


def test_load_query_names_a_too_short_file(tiny_run_id, tmp_path):
    import soundfile as sf

    from core.service.query import load_query

    run = load_run(tiny_run_id)
    sf.write(tmp_path / "short.wav", sine(seconds=1.0), 22_050)
    with pytest.raises(AudioDecodeError, match="short.wav.*too short"):
        load_query(run, tmp_path / "short.wav")
    assert load_query(run, run.tracks["path"][0]).ndim == 1


def test_resolve_run_takes_an_id_a_path_or_the_newest(tiny_run_id, monkeypatch, tmp_path):
    from core.runs.folder import list_runs, resolve_run, runs_dir

    assert resolve_run(tiny_run_id).run_id == tiny_run_id
    assert resolve_run(str(runs_dir() / tiny_run_id) + "/").run_id == tiny_run_id
    assert resolve_run().run_id == list_runs()[0]
    monkeypatch.setenv("TIMBRE_ARTIFACTS", str(tmp_path))
    with pytest.raises(RunError, match="no complete run yet"):
        resolve_run()
