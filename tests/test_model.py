import numpy as np
import torch

from core.model.embed import chunk_embeddings, chunk_starts, embed_mels, embed_passages, track_chunks
from core.model.encoder import Encoder, ProjectionHead, load_model, save_model


def test_encoder_output_shape_and_unit_norm():
    model = Encoder(n_mels=96, widths=(8, 16, 32, 64), embedding_dim=128).eval()
    z = model(torch.randn(5, 96, 128) * 10 - 40)
    assert z.shape == (5, 128)
    assert torch.allclose(z.norm(dim=1), torch.ones(5), atol=1e-5)


def test_encoder_accepts_other_chunk_lengths():
    model = Encoder(n_mels=64, widths=(8, 16)).eval()
    assert model(torch.randn(2, 64, 200)).shape == (2, 128)


def test_projection_head_is_normalised():
    z = ProjectionHead(dim_in=128)(torch.randn(4, 128))
    assert z.shape == (4, 64) and torch.allclose(z.norm(dim=1), torch.ones(4), atol=1e-5)


def test_track_embedding_is_normalised_mean_of_chunks(rng):
    model = Encoder(n_mels=32, widths=(4, 8)).eval()
    mel = rng.normal(-40, 10, (32, 300)).astype(np.float32)
    emb = embed_mels(model, [mel], chunk_frames=100, max_chunks=3)[0]
    chunks = torch.from_numpy(track_chunks(mel, chunk_frames=100, max_chunks=3))
    with torch.no_grad():
        expected = model(chunks).mean(0)
    assert np.allclose(emb, (expected / expected.norm()).numpy(), atol=1e-5)


def test_embedding_of_many_tracks_matches_one_by_one(rng):
    model = Encoder(n_mels=32, widths=(4, 8)).eval()
    mels = [rng.normal(-40, 10, (32, int(n))).astype(np.float32) for n in rng.integers(50, 400, 9)]
    together = embed_mels(model, mels, chunk_frames=64, max_chunks=4, batch_size=7)
    alone = np.vstack([embed_mels(model, [m], chunk_frames=64, max_chunks=4) for m in mels])
    assert np.allclose(together, alone, atol=1e-5)


def test_one_batching_loop_keeps_track_order_and_bounds_batches(rng):
    """chunk_embeddings: every chunk once, in track order, batches closed at batch_size (a track split only when
    it alone holds more); embed_mels and embed_passages both read it."""
    mels = [rng.normal(-40, 10, (32, int(n))).astype(np.float32) for n in (10, 300, 70, 900, 40)]
    sizes = [3, 9, 1, 20, 5]  # chunks per track
    cut = lambda mel: np.zeros((sizes[[m.shape[1] for m in mels].index(mel.shape[1])], 32, 8), np.float32)  # noqa: E731
    seen = []
    batches = list(chunk_embeddings(lambda x: x.sum(dim=(1, 2))[:, None], mels, cut=cut, batch_size=8,
                                    progress=lambda done, total, stage: seen.append((done, total, stage))))
    owners = np.concatenate([o for o, _ in batches])
    assert owners.tolist() == sum(([i] * n for i, n in enumerate(sizes)), [])
    assert max(len(o) for o, _ in batches) <= 8 + 7 and all(z.shape == (len(o), 1) for o, z in batches)
    assert seen[-1] == (5, 5, "embedding")
    model = Encoder(n_mels=32, widths=(4, 8), match_dim=6).eval()
    passages, offsets = embed_passages(model, mels, chunk_frames=64, hop_frames=32, max_passages=4, batch_size=5)
    assert passages.shape == (offsets[-1], 6) and np.diff(offsets).tolist() == [1, 4, 1, 4, 1]
    assert np.allclose(np.linalg.norm(passages, axis=1), 1, atol=1e-5)


def test_chunks_cover_the_track_and_short_tracks_are_padded():
    assert list(chunk_starts(1000, chunk_frames=100, max_chunks=32)) == list(range(0, 901, 100))
    assert chunk_starts(1000, chunk_frames=100, max_chunks=4)[-1] == 900
    assert track_chunks(np.ones((8, 30)), chunk_frames=100, max_chunks=4).shape == (1, 8, 100)


def test_save_and_load_with_weights_only(tmp_path):
    model = Encoder(n_mels=32, widths=(4, 8), embedding_dim=16)
    model.set_input_stats(np.full(32, -30.0), np.full(32, 12.0))
    save_model(tmp_path / "m.pt", model)
    blob = torch.load(tmp_path / "m.pt", weights_only=True)
    assert blob["model_args"] == {"n_mels": 32, "widths": [4, 8], "embedding_dim": 16, "pooling": "time",
                                  "level_norm": False, "match_dim": 0}
    loaded = load_model(tmp_path / "m.pt")
    x = torch.randn(3, 32, 64)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), loaded(x), atol=1e-6)


def test_pooling_modes():
    import pytest

    x = torch.randn(2, 32, 64)
    assert Encoder(n_mels=32, widths=(4, 8), pooling="global").eval()(x).shape == (2, 128)
    time_pooled = Encoder(n_mels=32, widths=(4, 8), pooling="time").eval()
    assert time_pooled.features(x).shape == (2, 8 * 8)  # 8 channels x (32 / 2**2) bands
    with pytest.raises(ValueError, match="pooling"):
        Encoder(pooling="max")


def test_runs_saved_before_the_pooling_option_still_load(tmp_path):
    old = Encoder(n_mels=32, widths=(4, 8), pooling="global")
    blob = {"format": 1, "model_args": {"n_mels": 32, "widths": [4, 8], "embedding_dim": 128},
            "state_dict": old.state_dict()}
    torch.save(blob, tmp_path / "old.pt")
    assert load_model(tmp_path / "old.pt").model_args["pooling"] == "global"


def test_level_norm_makes_the_embedding_ignore_gain(rng):
    x = torch.from_numpy(rng.normal(-40, 10, (3, 96, 64)).astype(np.float32))
    plain = Encoder(widths=(4, 8)).eval()
    levelled = Encoder(widths=(4, 8), level_norm=True).eval()
    levelled.load_state_dict(plain.state_dict())
    with torch.no_grad():
        assert torch.allclose(levelled(x), levelled(x - 20), atol=1e-5)  # 20 dB quieter: the same embedding
        assert not torch.allclose(plain(x), plain(x - 20), atol=1e-3)


def test_chunk_level_is_the_mean_power_in_db():
    from core.model.encoder import chunk_level

    x = torch.full((2, 4, 5), -30.0)
    x[1, 0] = 0.0  # one band of 4 at 0 dB, the rest -30 dB: mean power 10*log10((1 + 3e-3) / 4)
    expected = torch.tensor([-30.0, 10 * np.log10((1 + 3e-3) / 4)], dtype=torch.float32)
    assert torch.allclose(chunk_level(x).flatten(), expected, atol=1e-4)


def test_runs_saved_before_level_norm_load_without_it(tmp_path):
    model = Encoder(widths=(4, 8))
    save_model(tmp_path / "m.pt", model)
    blob = torch.load(tmp_path / "m.pt", weights_only=True)
    del blob["model_args"]["level_norm"]
    torch.save(blob, tmp_path / "m.pt")
    assert load_model(tmp_path / "m.pt").level_norm is False


def test_the_match_head_gives_its_own_unit_vectors_and_survives_saving(tmp_path):
    model = Encoder(n_mels=32, widths=(4, 8), embedding_dim=16, match_dim=12).eval()
    x = torch.randn(5, 32, 64)
    with torch.no_grad():
        m, e = model.match(x), model(x)
    assert m.shape == (5, 12) and torch.allclose(m.norm(dim=1), torch.ones(5), atol=1e-5)
    save_model(tmp_path / "m.pt", model)
    with torch.no_grad():
        assert torch.allclose(load_model(tmp_path / "m.pt").match(x), m, atol=1e-6)
    plain = Encoder(n_mels=32, widths=(4, 8), embedding_dim=16).eval()
    with torch.no_grad():
        assert torch.allclose(plain.match(x), plain(x))  # no head: passages are the embedding
    blob = torch.load(tmp_path / "m.pt", weights_only=True)
    assert blob["model_args"]["match_dim"] == 12 and e.shape == (5, 16)


def test_runs_saved_before_the_match_head_load_without_it(tmp_path):
    save_model(tmp_path / "m.pt", Encoder(widths=(4, 8)))
    blob = torch.load(tmp_path / "m.pt", weights_only=True)
    del blob["model_args"]["match_dim"]
    torch.save(blob, tmp_path / "m.pt")
    assert load_model(tmp_path / "m.pt").match_head is None


def test_a_model_file_this_version_cannot_build_raises_a_run_error_naming_it(tmp_path):
    import pytest

    from core.base.errors import RunError

    model = Encoder(n_mels=32, widths=(4, 8))
    save_model(tmp_path / "newer.pt", model)
    blob = torch.load(tmp_path / "newer.pt", weights_only=True)
    blob["model_args"]["pooling"] = "attention"
    torch.save(blob, tmp_path / "newer.pt")
    with pytest.raises(RunError, match=r"newer\.pt: cannot rebuild the model .*pooling"):
        load_model(tmp_path / "newer.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "newer.pt").read_bytes()[:100])
    with pytest.raises(RunError, match=r"cut\.pt: cannot rebuild the model"):
        load_model(tmp_path / "cut.pt")
    with pytest.raises(RunError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")
