"""The listener store, history import and hybrid ranking, against real SQLite files in temp folders.

Ranking runs on a synthetic run whose answer is known: two audio clusters (A, B) of 20 tracks each, and a "tag"
that half of each cluster carries; a query in A, a listener who likes B.
"""
from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from benchmarks.bench_taste import SyntheticRun
from core.base.errors import HistoryError, InvalidQuery, ListenerError, NotFound
from core.base.paths import REPO_ROOT
from core.listeners.collab import Cooccurrence
from core.listeners.history import import_history, match_tracks, read_history
from core.listeners.store import MIGRATIONS, SCHEMA_VERSION, ListenerStore
from core.listeners.taste import TasteConfig
from core.service.listening import Listening
from core.service.query import neighbours_of


@pytest.fixture
def run(rng) -> SyntheticRun:
    centres = np.zeros((2, 16), np.float32)
    centres[0, 0], centres[1, 1] = 1.0, 1.0
    emb = np.concatenate([centres[0] + 0.25 * rng.normal(size=(20, 16)), centres[1] + 0.25 * rng.normal(size=(20, 16))])
    labels = ["A"] * 20 + ["B"] * 20
    tracks = pd.DataFrame({"track_id": [f"t{i:02d}" for i in range(40)], "path": [f"/music/{i}.wav" for i in range(40)],
                           "label": labels, "duration_s": 30.0, "artist": [f"Artist {i % 7}" for i in range(40)],
                           "title": [f"Song {i}" for i in range(40)]})
    return SyntheticRun("synthetic", tracks, emb.astype(np.float32))


@pytest.fixture
def store(tmp_path) -> ListenerStore:
    return ListenerStore(tmp_path / "listeners.sqlite")


def audio_answer(run, row: int, k: int) -> pd.DataFrame:
    return neighbours_of(run, row, k=k)


# ------------------------------------------------------------------------------------------ the store


def test_store_is_wal_with_the_current_schema(store):
    me = store.listener("profile", "ann")
    assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} >= {
            "listeners", "events", "imports"}
    assert store.listener("profile", " ann ") == me  # the same profile, made once


def test_an_older_database_is_migrated_and_keeps_its_events(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # what the first version wrote
        db.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
        db.execute("INSERT INTO listeners (kind, name, created) VALUES ('profile', 'old', 0)")
        db.execute("INSERT INTO events (listener_id, track_id, kind, time) VALUES (1, 't01', 'liked', 5)")
    store = ListenerStore(path)
    assert store.schema_version() == SCHEMA_VERSION
    assert store.counts(store.listener("profile", "old"))["liked"] == 1


def test_a_newer_database_is_refused_plainly(tmp_path):
    path = tmp_path / "new.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ListenerError, match=f"new.sqlite has schema version {SCHEMA_VERSION + 1}, newer than"):
        ListenerStore(path).listener("profile", "x")


def test_listeners_see_and_delete_only_their_own(store):
    ann, bob = store.listener("profile", "ann"), store.listener("telegram", "4242")
    api, key = store.new_api_listener("client")
    for who, track in ((ann, "t01"), (ann, "t02"), (bob, "t03"), (api, "t04")):
        store.add_event(who, track, "liked", query="q")
    assert store.api_listener(key) == api
    assert list(store.events(ann)["track_id"]) == ["t02", "t01"]  # newest first, only hers
    assert store.forget(ann) == 2
    assert store.counts(bob)["liked"] == 1 and store.counts(api)["liked"] == 1
    with sqlite3.connect(store.path) as db:  # the key itself is never stored
        assert key not in str(db.execute("SELECT * FROM listeners").fetchall())
    with pytest.raises(NotFound):
        store.api_listener("not a key")
    with pytest.raises(InvalidQuery, match="exists already"):
        store.new_api_listener("client")
    with pytest.raises(InvalidQuery, match="unknown event 'loved'"):
        store.add_event(bob, "t01", "loved")
    with pytest.raises(InvalidQuery, match="1 to 80 printable"):
        store.listener("profile", "\x00")


def test_a_corrupt_database_is_a_clear_error_and_answers_stay_pure_audio(run, tmp_path):
    path = tmp_path / "listeners.sqlite"
    path.write_bytes(b"this is not sqlite at all" * 100)
    listening = Listening(ListenerStore(path))
    with pytest.raises(ListenerError, match="listeners.sqlite: it is not a readable SQLite database"):
        listening.listener("profile", "ann")
    audio = audio_answer(run, 0, 5)
    from core.listeners.store import Listener

    answer = listening.personalise(run, Listener(1, "profile", "ann"), audio, embedding=run.embeddings[0], k=5,
                                   query_name="Song 0", exclude=[0])
    assert not answer.personal and "pure audio similarity" in answer.note and "not a readable SQLite" in answer.note
    pd.testing.assert_frame_equal(answer.neighbours.drop(columns="why"), audio)


def test_a_locked_database_is_a_clear_error_and_answers_stay_pure_audio(run, tmp_path):
    path = tmp_path / "listeners.sqlite"
    listening = Listening(ListenerStore(path, timeout_s=0.2))
    me = listening.listener("profile", "ann")
    listening.store.add_event(me, "t25", "liked")
    listening.store.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")  # another program holds the file, reads included
    try:
        with pytest.raises(ListenerError, match=r"locked by another program \(waited 0.2 s\)"):
            listening.store.add_event(me, "t26", "liked")
        audio = audio_answer(run, 0, 5)
        answer = listening.personalise(run, me, audio, embedding=run.embeddings[0], k=5, query_name="Song 0")
        assert not answer.personal and "locked" in answer.note
        assert list(answer.neighbours["row"]) == list(audio["row"])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert listening.store.counts(me)["liked"] == 1  # works again once the other program lets go


KILLED_WRITER = textwrap.dedent("""
    import sys
    from core.listeners.store import ListenerStore
    store = ListenerStore(sys.argv[1])
    me = store.listener("profile", "writer")
    i = 0
    while True:
        event_id = store.add_event(me, f"t{i % 40:02d}", "played")
        print(event_id, flush=True)  # printed only once committed
        i += 1
""")


def test_kill_9_in_the_middle_of_writes_loses_nothing_committed(tmp_path):
    path = tmp_path / "listeners.sqlite"
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                             text=True)
    committed = []
    try:
        deadline = time.monotonic() + 60
        while len(committed) < 300 and time.monotonic() < deadline:
            committed.append(int(child.stdout.readline()))
    finally:
        child.kill()  # SIGKILL, mid-write
        child.wait(timeout=10)
        child.stdout.close()
    assert len(committed) == 300
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {r[0] for r in db.execute("SELECT event_id FROM events")}
    assert set(committed) <= stored
    store = ListenerStore(path)  # and the store opens and writes as before
    store.add_event(store.listener("profile", "writer"), "t00", "liked")


# ------------------------------------------------------------------------------------------ histories


def test_history_columns_of_lastfm_and_spotify_exports():
    lastfm = read_history(b"artist,album,track,date\nA,X,Song,\"01 Jan 2024, 10:00\"\n")
    assert list(lastfm.iloc[0][["artist", "title"]]) == ["A", "Song"]
    assert lastfm["time"].iloc[0] == pd.Timestamp("2024-01-01 10:00", tz="UTC").timestamp()
    spotify = read_history(b"endTime,artistName,trackName,msPlayed\n2023-05-01 08:30,B,Tune,1000\n")
    assert list(spotify.iloc[0][["artist", "title"]]) == ["B", "Tune"]
    assert spotify["time"].iloc[0] == pd.Timestamp("2023-05-01 08:30", tz="UTC").timestamp()
    extended = read_history(b"ts,master_metadata_album_artist_name,master_metadata_track_name\n"
                            b"2023-05-01T08:30:00Z,C,Air\n")
    assert list(extended.iloc[0][["artist", "title"]]) == ["C", "Air"]
    headerless = read_history(b"D,Album,Tide,1700000000\n")  # lastfm-to-csv writes no header
    assert list(headerless.iloc[0][["artist", "title"]]) == ["D", "Tide"] and headerless["time"].iloc[0] == 1.7e9
    with pytest.raises(HistoryError, match="h.csv: no title column .found when, who.; a history needs"):
        read_history(b"when,who\n1,2\n", name="h.csv")
    with pytest.raises(HistoryError, match="e.csv: not a readable CSV"):
        read_history(b"", name="e.csv")


def test_history_matches_library_tracks_by_folded_names(run):
    history = pd.DataFrame({"artist": ["ARTIST 3", "Nobody", "Artist 1", "", "Artist 2"],
                            "title": ["Song 3 (Remastered)", "Song 3", "Sóng 1 feat. Guest", "Song 10", "Nothing"]})
    ids = match_tracks(history, run.tracks)
    # by artist + title; by a title no other track has; never by a title that names no track
    assert list(ids) == ["t03", "t03", "t01", "t10", ""]


def test_a_history_of_100000_rows_goes_in_with_progress(run, store):
    rng = np.random.default_rng(7)
    pick = rng.integers(0, 40, 100_000)
    known = rng.random(100_000) < 0.8
    csv = pd.DataFrame({"artist": np.where(known, run.tracks["artist"].to_numpy()[pick], "Nobody"),
                        "track": np.where(known, run.tracks["title"].to_numpy()[pick], "Unknown song"),
                        "uts": 1_600_000_000 + np.arange(100_000)}).to_csv(index=False).encode()
    me = store.listener("profile", "ann")
    updates = []
    report = import_history(store, me, io.BytesIO(csv), run.tracks, name="scrobbles.csv",
                            progress=lambda done, total, message="", **v: updates.append((done, total)))
    assert report.rows == 100_000 and report.matched == int(known.sum()) and report.unmatched == int((~known).sum())
    assert report.unmatched_top == [("Nobody - Unknown song", int((~known).sum()))]
    assert report.tracks == len(set(pick[known]))
    assert store.counts(me)["played"] == report.matched
    assert len(updates) >= 8 and updates[-1] == (report.matched, report.matched)  # every 10,000 rows
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT file, rows, matched FROM imports").fetchall() == [("scrobbles.csv", 100_000,
                                                                                      report.matched)]


# ------------------------------------------------------------------------------------------ ranking


def like(listening, who, run, rows, kind="liked"):
    for row in rows:
        listening.store.add_event(who, run.tracks["track_id"].iloc[row], kind)


def test_cold_start_is_pure_audio_unchanged(run, store):
    listening = Listening(store)
    audio = audio_answer(run, 0, 8)
    answer = listening.personalise(run, listening.listener("profile", "new"), audio, embedding=run.embeddings[0], k=8,
                                   query_name="Song 0", exclude=[0])
    assert not answer.personal and answer.note.startswith("no plays or likes yet")
    pd.testing.assert_frame_equal(answer.neighbours.drop(columns="why"), audio)
    assert set(map(tuple, answer.neighbours["why"])) == {("sounds like Song 0",)}
    nobody = listening.personalise(run, None, audio, embedding=run.embeddings[0], k=8)
    assert nobody.note is None and list(nobody.neighbours["row"]) == list(audio["row"])


def test_taste_pulls_the_answer_towards_what_the_listener_likes(run, store):
    listening = Listening(store, cfg=TasteConfig(collab=0.0))
    me = listening.listener("profile", "likes-B")
    audio = audio_answer(run, 0, 10)
    assert (audio["label"] == "A").all()  # a query in A: audio alone answers A
    like(listening, me, run, [20, 21, 22])  # three tracks of B
    like(listening, me, run, [1, 2], kind="disliked")
    answer = listening.personalise(run, me, audio, embedding=run.embeddings[0], k=10, query_name="Song 0", exclude=[0])
    assert answer.personal
    table = answer.neighbours
    assert (table["label"] == "B").sum() >= 8 and not {0, 1, 2} & set(table["row"])  # never a disliked track
    first_new = table[~table["row"].isin([20, 21, 22])].iloc[0]
    unit = run.embeddings / np.linalg.norm(run.embeddings, axis=1, keepdims=True)
    nearest = [20, 21, 22][int(np.argmax(unit[[20, 21, 22]] @ unit[first_new["row"]]))]
    assert f"you liked Artist {nearest % 7} - Song {nearest}" in first_new["why"]
    assert list(table["rank"]) == list(range(1, 11)) and table["score"].is_monotonic_decreasing


def test_audio_weight_alone_keeps_the_audio_order(run, store):
    listening = Listening(store)
    me = listening.listener("profile", "x")
    like(listening, me, run, [25])
    audio = audio_answer(run, 3, 6)
    answer = listening.personalise(run, me, audio, embedding=run.embeddings[3], k=6, exclude=[3],
                                   cfg=TasteConfig(taste=0.0, collab=0.0))
    assert list(answer.neighbours["row"]) == list(audio["row"])


def test_other_listeners_link_tracks_for_a_listener(run, store):
    listening = Listening(store, cfg=TasteConfig(audio=0.0, taste=0.0, collab=1.0))
    me = listening.listener("profile", "me")
    like(listening, me, run, [5])
    for i in range(4):  # others who liked track 5 also liked 33 (in the other cluster)
        like(listening, listening.listener("profile", f"other-{i}"), run, [5, 33])
    found = listening.for_you(run, me, k=3).neighbours
    assert found["row"].iloc[0] == 33 and found["why"].iloc[0] == ["listeners of Artist 5 - Song 5 played it"]
    assert 5 not in set(found["row"])  # "for you" is new to the listener


def test_a_listener_alone_gets_no_collaborative_echo(run, store):
    listening = Listening(store)
    me = listening.listener("profile", "alone")
    like(listening, me, run, [5, 33])
    co = Cooccurrence(store.all_events(), run.tracks["track_id"].to_numpy())
    weights = listening.feedback(run, me).weights(len(run.tracks))
    assert not co.scores(me.listener_id, weights).any()


def test_for_you_needs_events(run, store):
    listening = Listening(store)
    with pytest.raises(InvalidQuery, match="like or play a few tracks first"):
        listening.for_you(run, listening.listener("profile", "empty"), k=5)
