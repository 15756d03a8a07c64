"""Collections of a dataset (saved, renamed, deleted, refused), and what a set of tracks gives: more like these,
a summary, an M3U playlist, a CSV, a "collection vs the rest" labelling."""
from __future__ import annotations

import io
import os
import threading

import numpy as np
import pandas as pd
import pytest

from core.analysis import collections as col
from core.base.errors import CollectionError
from core.runs.folder import load_run
from core.search.exact import l2_normalise
from core.service.query import more_like_these


@pytest.fixture
def run(tiny_run_id):
    return load_run(tiny_run_id)


@pytest.fixture(autouse=True)
def no_collections(run):
    """Every test starts from a dataset without collections."""
    col.collections_path("tiny").unlink(missing_ok=True)
    yield


def test_a_saved_selection_survives_a_restart_renamed_and_deleted(run):
    saved = col.save_selection(run, "  Calm piano ", [3, 1, 3])
    assert saved.name == "Calm piano" and saved.n_tracks == 2
    assert ID_OK(saved.collection_id)
    # "a restart": nothing in memory, the table is read again
    again = col.load_collection("tiny", saved.collection_id)
    assert again == saved
    assert list(col.collection_rows(run, again)) == [1, 3]
    listed = col.list_collections("tiny")
    assert listed.to_dict("records") == [{"collection_id": saved.collection_id, "name": "Calm piano",
                                          "n_tracks": 2, "created": saved.created}]
    renamed = col.rename_collection("tiny", saved.collection_id, "calm PIANO")  # its own name, other case: fine
    assert renamed.name == "calm PIANO" and renamed.track_ids == saved.track_ids
    other = col.save_selection(run, "Electronic", [0])
    assert col.list_collections("tiny")["name"].tolist() == ["calm PIANO", "Electronic"]
    assert col.delete_collection("tiny", saved.collection_id).name == "calm PIANO"
    assert col.list_collections("tiny")["collection_id"].tolist() == [other.collection_id]
    with pytest.raises(CollectionError, match="no collection"):
        col.load_collection("tiny", saved.collection_id)
    # the file is named by the code, never by the user
    assert sorted(p.name for p in col.collections_path("tiny").parent.glob("*collection*")) == [
        ".collections.lock", "collections.parquet"]


def ID_OK(collection_id: str) -> bool:
    return bool(col.ID_PATTERN.match(collection_id))


@pytest.mark.parametrize("name, why", [
    ("", "needs a name"), ("   ", "needs a name"), (None, "needs a name"),
    ("x" * 61, "at most 60"), ("a/b", "looks like a path"), ("..", "looks like a path"), (".", "looks like a path"),
    ("..\\etc", "looks like a path"), ("tab\there", "control characters"), ("nul\x00", "control characters"),
    ("line\nbreak", "control characters"),
])
def test_bad_names_are_refused_and_nothing_is_written(run, name, why):
    with pytest.raises(CollectionError, match=why):
        col.save_selection(run, name, [0, 1])
    assert col.list_collections("tiny").empty


def test_a_duplicate_name_an_empty_selection_and_a_bad_row_are_refused(run):
    first = col.save_selection(run, "Mine", [0])
    with pytest.raises(CollectionError, match="already a collection named 'mine'"):
        col.save_selection(run, "mine", [1])
    second = col.save_selection(run, "Other", [1])
    with pytest.raises(CollectionError, match="already a collection"):
        col.rename_collection("tiny", second.collection_id, "MINE")
    with pytest.raises(CollectionError, match="selection is empty"):
        col.save_selection(run, "Empty", [])
    with pytest.raises(CollectionError, match="rows must lie in 0..11"):
        col.save_selection(run, "Far", [12])
    with pytest.raises(CollectionError, match="not a collection id"):
        col.delete_collection("tiny", "../../runs")
    assert col.list_collections("tiny")["name"].tolist() == ["Mine", "Other"]
    assert col.load_collection("tiny", first.collection_id).track_ids == (run.tracks["track_id"][0],)


def test_sessions_saving_at_once_lose_nothing(run):
    errors = []

    def save(i):
        try:
            col.save_selection(run, f"set {i}", [i])
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(col.list_collections("tiny")["name"]) == [f"set {i}" for i in range(8)]


def test_more_like_these_is_the_best_mean_cosine_to_the_set_without_the_set(run):
    rows = [0, 5, 9]
    found = more_like_these(run, rows, k=4)
    unit = l2_normalise(run.embeddings)
    mean_cosine = (unit @ unit[rows].T).mean(axis=1)
    mean_cosine[rows] = -np.inf
    expected = np.argsort(-mean_cosine, kind="stable")[:4]
    assert found["row"].tolist() == expected.tolist()
    assert found["score"].to_numpy() == pytest.approx(mean_cosine[expected], abs=1e-3)
    assert found["rank"].tolist() == [1, 2, 3, 4]
    assert not set(found["row"]) & set(rows)
    # more than there are: the other nine
    assert len(more_like_these(run, rows, k=50)) == len(run.tracks) - 3


def test_more_like_these_refuses_an_empty_set_a_bad_k_and_the_whole_library(run):
    with pytest.raises(CollectionError, match="selection is empty"):
        more_like_these(run, [], k=3)
    with pytest.raises(CollectionError, match="at least 1"):
        more_like_these(run, [1], k=0)
    with pytest.raises(CollectionError, match="every track"):
        more_like_these(run, range(len(run.tracks)), k=3)


def test_a_single_track_set_gives_its_neighbours(run):
    from core.service.query import neighbours_of

    assert more_like_these(run, [4], k=3)["row"].tolist() == neighbours_of(run, 4, k=3)["row"].tolist()


def test_the_summary_counts_labels_and_finds_characteristic_tags(run):
    labels = run.tracks["label"]
    rows = np.flatnonzero(labels == "piano").tolist() + [int(np.flatnonzero(labels == "strings")[0])]
    summary = col.selection_summary(run, rows, tags=None)
    assert summary.n_tracks == 5 and summary.tags is None
    assert summary.label_mix.to_dict("records") == [{"label": "piano", "count": 4, "share": 0.8},
                                                    {"label": "strings", "count": 1, "share": 0.2}]
    from core.analysis.tags import TAGS

    tags = pd.DataFrame(np.full((len(run.tracks), len(TAGS)), 0.1, dtype=np.float32), columns=list(TAGS))
    tags.loc[rows, "instrumental"] = 0.9  # only the selection sounds instrumental
    summary = col.selection_summary(run, rows, tags=tags, n_tags=3)
    assert summary.tags[0][0] == "instrumental" and summary.tags[0][1] > 1.5


def test_m3u_and_csv_name_every_track_once_in_order(run):
    table = col.track_table(run, [2, 0])
    table.loc[0, "title"] = "Two\nlines"  # a line break in a name must not start a new entry
    text = col.m3u_playlist(table)
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U" and len(lines) == 5
    assert lines[1] == f"#EXTINF:{round(table['duration_s'][0])},Two lines"
    assert lines[2] == os.path.abspath(table["path"][0])
    assert lines[3].startswith(f"#EXTINF:{round(table['duration_s'][1])},") and lines[4].endswith(".wav")
    csv = pd.read_csv(io.StringIO(col.tracks_csv(table)))
    assert csv["track_id"].tolist() == table["track_id"].tolist()
    assert {"name", "label", "path", "duration_s"} <= set(csv.columns)


def test_a_collection_labels_a_source_for_its_classifier(run, tiny_run_id):
    from core.analysis.sources import load_source

    saved = col.save_selection(run, "Piano", np.flatnonzero(run.tracks["label"] == "piano"))
    source = load_source(run=tiny_run_id)
    labelled = col.collection_source(source, saved)
    assert (labelled.tracks["label"] == col.IN_COLLECTION).sum() == 4
    assert (labelled.tracks["label"] == col.THE_REST).sum() == 8
    assert labelled.path == source.path / "collections" / saved.collection_id
    assert source.tracks["label"].isin(["piano", "strings", "electronic"]).all()  # the original is unchanged
    everything = col.save_selection(run, "All", range(len(run.tracks)))
    with pytest.raises(CollectionError, match="both sides"):
        col.collection_source(source, everything)


def test_collection_groups_colour_members_by_name_and_the_rest(run):
    col.save_selection(run, "Pair", [2, 7])
    groups = col.collection_groups(run, "PAIR")
    assert groups.tolist() == ["Pair" if i in (2, 7) else col.THE_REST for i in range(len(run.tracks))]
    assert col.collection_groups(run, "nope") is None
    assert col.collection_names(run) == ["Pair"]


def test_the_collections_command_lists_shows_and_exports(run, tiny_run_id, tmp_path, capsys):
    from core.cli import main

    saved = col.save_selection(run, "Cli set", [0, 1, 2])
    assert main(["collections", "--run", tiny_run_id]) == 0
    assert f"{saved.collection_id}  'Cli set': 3 tracks" in capsys.readouterr().out
    assert main(["collections", "cli SET", "--run", tiny_run_id, "--similar", "2", "--m3u", str(tmp_path / "a.m3u"),
                 "--csv", str(tmp_path / "a.csv")]) == 0
    out = capsys.readouterr().out
    assert "3 tracks, 3 in run" in out and "2 more like these" in out
    found = more_like_these(run, [0, 1, 2], k=2)
    assert [line.split()[2] for line in out.splitlines() if line.startswith(("    1.", "    2."))] == list(
        found["track_id"])
    assert (tmp_path / "a.m3u").read_text().startswith("#EXTM3U\n") and len(pd.read_csv(tmp_path / "a.csv")) == 3
    assert main(["collections", "nope", "--run", tiny_run_id]) == 2
    assert "has no collection 'nope' (its collections: 'Cli set')" in capsys.readouterr().err


def test_a_track_of_unknown_length_is_minus_one_and_a_large_playlist_lists_every_track(run):
    table = col.track_table(run, [0]).assign(duration_s=np.nan)
    assert col.m3u_playlist(table).splitlines()[1].startswith("#EXTINF:-1,")
    many = col.track_table(run, np.arange(100_000) % len(run.tracks))
    text = col.m3u_playlist(many)
    assert text.count("#EXTINF:") == 100_000 and text.splitlines()[-1] == str(many["path"].iloc[-1])


def test_adding_to_a_collection_keeps_its_members_and_appends_only_new_ones(run):
    saved = col.save_selection(run, "mix", [1, 2])
    ids = run.tracks["track_id"].astype(str).to_numpy()
    grown = col.add_rows(run, saved.collection_id, [2, 5, 5, 0])
    assert grown.track_ids == (ids[1], ids[2], ids[0], ids[5])  # rows come in ascending order
    assert grown.name == "mix" and grown.created == saved.created
    assert col.load_collection("tiny", saved.collection_id) == grown
    with pytest.raises(CollectionError, match="no tracks"):
        col.add_to_collection("tiny", saved.collection_id, [])
    with pytest.raises(CollectionError, match="no collection"):
        col.add_rows(run, "0" * 12, [1])
    assert col.load_collection("tiny", saved.collection_id) == grown  # refusals wrote nothing
