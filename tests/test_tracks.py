"""One display name and one track search for every page, the API, the bot and the CLI."""
import pandas as pd

from core.data.tracks import display_name, display_names, search_tracks


def test_display_name_rules():
    assert display_name({"artist": "Björk", "title": "Jóga", "path": "/a/1.mp3"}) == "Björk - Jóga"
    assert display_name({"artist": "Björk", "title": None, "path": "/a/1.mp3"}) == "1"
    assert display_name({"artist": pd.NA, "title": "Jóga", "path": "/a/1.mp3"}) == "Jóga"
    assert display_name({"title": "  ", "track_id": "abc"}) == "abc"


def library() -> pd.DataFrame:
    return pd.DataFrame({
        "track_id": ["t0", "t1", "t2", "t3"],
        "title": ["Blue in Green", None, "So What", "Greensleeves"],
        "artist": ["Miles Davis", None, "Miles Davis", None],
        "path": ["/m/jazz/1.mp3", "/m/rock/green_river.mp3", "/m/jazz/3.mp3", "/m/folk/4.mp3"],
        "label": ["jazz", "rock", "jazz", "folk"],
    })


def test_search_is_case_insensitive_and_ranks_name_prefix_first():
    hits = search_tracks(library(), "GREEN")
    assert list(hits["track_id"]) == ["t1", "t3", "t0"]  # 'green_river', 'Greensleeves' start with it
    assert list(hits["row"]) == [1, 3, 0]
    assert hits["name"].iloc[0] == "green_river"


def test_search_matches_artist_and_label_and_limits():
    assert list(search_tracks(library(), "miles")["track_id"]) == ["t0", "t2"]
    assert list(search_tracks(library(), "folk")["track_id"]) == ["t3"]
    assert len(search_tracks(library(), "m", limit=2)) == 2
    assert search_tracks(library(), "   ").empty
    assert search_tracks(library(), "zzz").empty


def test_display_names_column_wise_equals_the_row_rule():
    table = pd.DataFrame({
        "track_id": list("abcdefgh"),
        "path": ["/x/.hidden", "/x/foo.", "/x/a.tar.gz", "rel/name", "/x/y.z/noext", None, "/x/s.mp3", None],
        "title": [None, None, None, "  ", None, None, "T", "Only title"],
        "artist": [None, "A", None, None, None, None, "A", None],
    })
    assert list(display_names(table)) == [display_name(r) for r in table.to_dict("records")] == \
        [".hidden", "foo.", "a.tar", "name", "noext", "f", "A - T", "Only title"]
