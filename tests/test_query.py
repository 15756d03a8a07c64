import numpy as np
import pytest

from core.errors import AudioDecodeError
from core.query import embed_files, recommend_audio, recommend_file, similar_tracks
from core.runs import load_run
from tests.conftest import sine


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
    import pytest

    from core.errors import RunError
    from core.query import check_k, similar_tracks

    run = load_run(tiny_run_id)
    assert check_k(run, 12) == 12
    for k in (0, -1, 13, 2.5, True):
        with pytest.raises(RunError, match=r"ask for 1 to 12 tracks"):
            similar_tracks(run, 0, k=k)
