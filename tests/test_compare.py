import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.analysis.compare import aligned_maps, compare_runs, comparison_lines, jaccard, map_trustworthiness, shared_tracks
from core.base.errors import CompareError
from core.cli import main
from core.runs.build import train_run
from core.runs.folder import config_differences, list_runs, load_run
from core.search.projection import METHODS
from core.training.config import TrainConfig
from tests.conftest import TINY_STYLES
from tests.pagetest import atlas_args, charts, gesture, markdown_text, open_page
from tests.run_copies import copy_run


def short_name(run_id: str) -> str:
    return run_id.split("-", 2)[-1]  # how the page names a run in legends


def _second_run(tiny_run_id) -> str:
    others = [r for r in list_runs() if r != tiny_run_id and "tiny" in r and not r.startswith("variant")]
    return others[0] if others else train_run("tiny", cfg=TrainConfig(epochs=2, batch_size=12, widths=(8, 16, 32, 64),
                                                                        embed_chunks=4, lr=1e-3, seed=0))


def test_config_differences_lists_only_what_differs(tiny_run_id):
    other = _second_run(tiny_run_id)
    diff = config_differences([tiny_run_id, other])
    assert "train.epochs" in diff.index and "train.lr" in diff.index
    assert "dataset" not in diff.index and "mel_params.n_mels" not in diff.index
    assert list(diff.columns) == [tiny_run_id, other]


def test_compare_page_shows_two_runs_side_by_side(tiny_run_id):
    other = _second_run(tiny_run_id)
    at = open_page("pages/compare.py", active_run_id=tiny_run_id)
    chosen = at.multiselect(key="compare_runs").value
    assert chosen == [tiny_run_id, other]
    scores, differences, per_label, changed = at.dataframe
    assert list(scores.value["run"]) == chosen
    assert "train.epochs" in differences.value.index
    assert list(per_label.value.index) == [*sorted(TINY_STYLES), "all"] and per_label.value["tracks"].iloc[-1] == 12
    assert len(changed.value) == 10 and changed.value["jaccard"].is_monotonic_increasing
    specs = charts(at)
    assert len(specs) == 3  # loss curves, agreement, per-label accuracy; then one atlas map per run
    assert specs[1]["data"][0]["type"] == "heatmap" and {t["name"] for t in specs[2]["data"]} == {
        short_name(tiny_run_id), short_name(other)}
    assert all(atlas_args(at, f"compare_atlas_{r}")["drag"] == "lasso" for r in chosen)
    captions = " ".join(c.value for c in at.caption)
    assert captions.count("trustworthiness") == 2 and "12 shared tracks" in captions
    # the most-changed track opens both runs' neighbours, with players
    text = markdown_text(at)
    # each list holds the 10 nearest, not the opened track itself
    assert text.count("nearest shared tracks") == 2 and text.count("*this track*") == 0
    assert len(at.get("audio")) == 2 * 10
    at.selectbox(key="compare_track").set_value(3).run()
    assert not at.exception


def positions(args: dict) -> np.ndarray:
    q = np.frombuffer(args["xy"], dtype="<u2").reshape(-1, 2) / 65_535
    x0, x1, y0, y1 = args["bounds"]
    return np.column_stack([x0 + q[:, 0] * (x1 - x0), y0 + q[:, 1] * (y1 - y0)])


def rows_of(blob: bytes) -> list[int]:
    return sorted(np.frombuffer(blob, dtype="<u4").astype(int).tolist())


def test_a_lasso_or_a_click_on_one_map_shows_on_every_map_and_lists_both_runs_neighbours(tiny_run_id):
    turned = _variant(tiny_run_id, "variant-turned", rotate=2.0)
    at = open_page("pages/compare.py", active_run_id=tiny_run_id)
    at.multiselect(key="compare_runs").set_value([tiny_run_id, turned]).run()
    first, second = (atlas_args(at, f"compare_atlas_{r}") for r in (tiny_run_id, turned))
    # the turned copy's map is aligned back onto the first: the same points in the same places
    np.testing.assert_allclose(positions(second), positions(first), atol=1e-3)
    gesture(at, "select", [5, 1, 7], seq=1, key=f"compare_atlas_{turned}")  # on the second run's map
    for run_id in (tiny_run_id, turned):
        assert rows_of(atlas_args(at, f"compare_atlas_{run_id}")["selected"]) == [1, 5, 7]
    assert any("3 track(s) selected" in c.value for c in at.caption)
    gesture(at, "click", [4], seq=2, key=f"compare_atlas_{tiny_run_id}")
    assert all(atlas_args(at, f"compare_atlas_{r}")["focus"] == 4 for r in (tiny_run_id, turned))
    text = markdown_text(at)
    assert text.count("**1. ") >= 2  # the clicked track's neighbours in each run, side by side
    assert "The focused track's neighbours in each run" in [s.value for s in at.subheader]
    next(b for b in at.button if b.label == "Clear selection").click().run()
    assert all(atlas_args(at, f"compare_atlas_{r}")["selected"] == b"" for r in (tiny_run_id, turned))


def test_runs_sharing_no_tracks_say_so_and_still_show_their_maps(tiny_run_id):
    elsewhere = _variant(tiny_run_id, "variant-elsewhere", rename=True)
    at = open_page("pages/compare.py", active_run_id=tiny_run_id)
    at.multiselect(key="compare_runs").set_value([tiny_run_id, elsewhere]).run()
    assert not at.exception
    assert f"runs {tiny_run_id} and variant-elsewhere share no tracks" in at.error[0].value
    assert len(at.get("plotly_chart")) == 1  # the loss curves; the two maps are drawn as they are, not aligned
    assert len([e for e in at.get("component_instance") if "compare_atlas_" in e.proto.id]) == 2


def test_compare_cli_prints_the_figures_and_json(tiny_run_id, capsys):
    noisy = _variant(tiny_run_id, "variant-noisy", noise=0.5)
    assert main(["compare", tiny_run_id, noisy, "--changed", "3"]) == 0
    out = capsys.readouterr().out
    assert "neighbour agreement (mean Jaccard of 10-NN sets" in out and out.count("in common") == 3
    assert main(["compare", tiny_run_id, noisy, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["runs"] == [tiny_run_id, noisy] and len(data["most_changed"][0]["tracks"]) == 10
    elsewhere = _variant(tiny_run_id, "variant-elsewhere", rename=True)
    assert main(["compare", tiny_run_id, elsewhere]) == 2
    assert "share no tracks" in capsys.readouterr().err

# --- how the spaces differ (core.analysis.compare) ------------------------------------------------------------------


def _variant(tiny_run_id: str, new_id: str, *, noise: float = 0.0, rotate: float = 0.0, keep=None, rename=False) -> str:
    """A copy of the tiny run under ``new_id`` whose embeddings get seeded noise, whose maps are rotated by
    ``rotate`` radians, scaled by 3 and shifted, keeping only rows ``keep`` (None: all); ``rename`` gives every
    track a new id (a library sharing nothing)."""
    from core.base.io import atomic_write_npy, atomic_write_parquet
    from core.base.paths import runs_dir

    if (runs_dir() / new_id).exists():  # made by an earlier test (the same id always means the same variant)
        return new_id
    copy_run(tiny_run_id, new_id)
    run = load_run(new_id)
    rows = np.arange(len(run.tracks)) if keep is None else np.asarray(keep)
    x = run.embeddings[rows] + noise * np.random.default_rng(7).standard_normal(run.embeddings[rows].shape).astype(np.float32)
    tracks, coords = run.tracks.iloc[rows].reset_index(drop=True), run.projections.iloc[rows].reset_index(drop=True)
    if rename:
        tracks["track_id"] = "other-" + tracks["track_id"]
        coords["track_id"] = tracks["track_id"]
    turn = np.array([[np.cos(rotate), -np.sin(rotate)], [np.sin(rotate), np.cos(rotate)]])
    for method in METHODS:
        xy = coords[[f"{method}_x", f"{method}_y"]].to_numpy(np.float64)
        coords[[f"{method}_x", f"{method}_y"]] = xy @ turn.T * 3.0 + [5.0, -2.0]
    atomic_write_npy(run.path / "embeddings.npy", np.ascontiguousarray(x, dtype=np.float32))
    atomic_write_parquet(run.path / "tracks.parquet", tracks)
    atomic_write_parquet(run.path / "projections.parquet", coords)
    return new_id


def test_jaccard_of_neighbour_sets():
    a = np.array([[1, 2, 3], [4, 5, 6]])
    b = np.array([[3, 2, 1], [4, 7, 8]])
    np.testing.assert_allclose(jaccard(a, b), [1.0, 1 / 5])


def test_identical_runs_agree_fully_and_noise_lowers_agreement(tiny_run_id):
    same = _variant(tiny_run_id, "variant-same")
    noisy = _variant(tiny_run_id, "variant-noisy", noise=0.5)
    result = compare_runs([tiny_run_id, same, noisy], method="pca")
    n = len(result.shared.track_ids)
    assert n == 12 and result.k == 10 and not result.shared.sampled
    assert result.agreement.loc[tiny_run_id, same] == pytest.approx(1.0)
    assert result.agreement.loc[tiny_run_id, noisy] < 1.0
    assert result.agreement.loc[noisy, tiny_run_id] == result.agreement.loc[tiny_run_id, noisy]
    changed = result.most_changed(tiny_run_id, noisy, n=3)
    assert list(changed["jaccard"]) == sorted(changed["jaccard"]) and changed["jaccard"].iloc[0] < 1.0
    assert changed["jaccard"].min() == pytest.approx(result.pair_jaccard(tiny_run_id, noisy).min(), abs=1e-4)
    # the per-label accuracy of an identical copy is the same; "all" weighs labels by their tracks
    assert result.per_label[tiny_run_id].equals(result.per_label[same])
    assert list(result.per_label.index) == [*sorted(TINY_STYLES), "all"]
    counts = result.label_counts
    assert result.per_label.loc["all", tiny_run_id] == pytest.approx(
        sum(result.per_label.loc[lab, tiny_run_id] * counts[lab] for lab in counts.index) / counts.sum())
    assert all(0.0 <= t.value <= 1.0 and t.k == 5 for t in result.trust.values())  # 12 tracks: k < n / 2


def test_shared_neighbours_list_the_track_first_then_its_neighbours(tiny_run_id):
    noisy = _variant(tiny_run_id, "variant-noisy", noise=0.5)
    result = compare_runs([tiny_run_id, noisy])
    rows, scores = result.shared_neighbours(noisy, 4)
    assert len(rows) == result.k + 1 and rows[0] == result.shared.rows[noisy][4]
    assert scores[0] == pytest.approx(1.0) and (np.diff(scores) <= 1e-6).all()


def test_runs_of_other_datasets_compare_on_the_tracks_they_share(tiny_run_id):
    part = _variant(tiny_run_id, "variant-part", keep=[11, 0, 2, 3, 5, 6, 7, 9], noise=0.2)
    result = compare_runs([tiny_run_id, part])
    assert result.shared.n_total == 8 and result.k == 7
    ids = result.shared.track_ids
    for run in result.runs:
        assert list(run.tracks["track_id"].iloc[result.shared.rows[run.run_id]]) == list(ids)


def test_runs_that_share_no_tracks_are_refused_by_name(tiny_run_id):
    other = _variant(tiny_run_id, "variant-elsewhere", rename=True)
    with pytest.raises(CompareError, match=f"runs {tiny_run_id} and variant-elsewhere share no tracks"):
        compare_runs([tiny_run_id, other])
    with pytest.raises(CompareError, match="compare 2 to 4 runs"):
        compare_runs([tiny_run_id])
    with pytest.raises(CompareError, match="named twice"):
        compare_runs([tiny_run_id, tiny_run_id])
    with pytest.raises(CompareError, match="unknown projection"):
        compare_runs([tiny_run_id, _variant(tiny_run_id, "variant-same")], method="mds")


def test_a_large_library_is_compared_on_a_seeded_sample(tiny_run_id):
    noisy = _variant(tiny_run_id, "variant-noisy", noise=0.5)
    one = compare_runs([tiny_run_id, noisy], sample=8, trust_sample=9, seed=3)
    two = compare_runs([tiny_run_id, noisy], sample=8, trust_sample=9, seed=3)
    assert one.shared.sampled and len(one.shared.track_ids) == 8 and one.shared.n_total == 12
    assert list(one.shared.track_ids) == list(two.shared.track_ids)
    assert "a seeded sample of 8 of the 12 shared tracks" in one.describe_sample()
    trust = one.trust[tiny_run_id]
    assert trust.sampled and trust.n == 9 and "a seeded sample of 9 of 12 tracks" in trust.describe()


def test_procrustes_undoes_a_rotation_scaling_and_shift(tiny_run_id):
    turned = _variant(tiny_run_id, "variant-turned", rotate=2.0)
    runs = [load_run(tiny_run_id), load_run(turned)]
    coords, disparity = aligned_maps(runs, shared_tracks(runs), "umap")
    np.testing.assert_allclose(coords[turned], coords[tiny_run_id], atol=1e-4)
    assert disparity[turned] == pytest.approx(0.0, abs=1e-9) and disparity[tiny_run_id] == 0.0


def test_trustworthiness_is_high_for_a_faithful_map_and_low_for_noise(rng):
    from core.runs.folder import Run

    # points round a circle (plus a little noise): cosine neighbours are neighbours on the circle
    angle = rng.uniform(0, 2 * np.pi, 80)
    x = np.c_[np.cos(angle), np.sin(angle), 0.02 * rng.standard_normal((80, 4))].astype(np.float32)
    maps = {"faithful": (np.cos(angle), np.sin(angle)), "noise": tuple(rng.standard_normal((2, 80)))}
    value = {}
    for name, (mx, my) in maps.items():
        run = Run(run_id=name, path=Path("/nonexistent"))
        run.__dict__.update(embeddings=x, projections=pd.DataFrame({"pca_x": mx, "pca_y": my}))
        value[name] = map_trustworthiness(run, "pca")
    assert value["faithful"].value > 0.95 and value["noise"].value < 0.7
    assert value["faithful"].k == 10 and not value["faithful"].sampled


def test_comparison_as_json_and_text(tiny_run_id):
    noisy = _variant(tiny_run_id, "variant-noisy", noise=0.5)
    result = compare_runs([tiny_run_id, noisy])
    data = json.loads(json.dumps(result.to_dict(n_changed=4)))
    assert data["runs"] == [tiny_run_id, noisy] and data["shared_tracks"] == 12
    assert data["agreement"][tiny_run_id][noisy] == pytest.approx(result.agreement.loc[tiny_run_id, noisy], abs=1e-4)
    assert len(data["most_changed"][0]["tracks"]) == 4
    assert set(data["per_label_knn_accuracy"]) == {*TINY_STYLES, "all"}
    assert 0 <= data["trustworthiness"][noisy]["value"] <= 1
    text = "\n".join(comparison_lines(result, n_changed=4))
    assert "neighbour agreement" in text and "[1] " + tiny_run_id in text and "trustworthiness" in text
