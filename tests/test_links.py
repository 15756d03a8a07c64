"""Spotify / YouTube links: quoting of every awkward character, tags before file names, no network."""
from urllib.parse import parse_qs, unquote, urlsplit

import pandas as pd
import pytest

from core.service import links
from core.service.links import search_query, track_links, with_links


@pytest.mark.parametrize("query", ["Sigur Rós Hoppípolla", "Simon & Garfunkel", "C# minor #1", 'say "hi" it\'s',
                                   "AC/DC ?!", "50% off + more", "日本語の曲"])
def test_links_round_trip_any_text(query, monkeypatch):
    monkeypatch.delenv("SPOTIPY_CLIENT_ID", raising=False)
    got = track_links({"title": query})
    spotify, youtube = urlsplit(got["spotify_url"]), urlsplit(got["youtube_url"])
    assert (spotify.scheme, spotify.netloc) == ("https", "open.spotify.com")
    assert spotify.path.startswith("/search/") and not spotify.query and not spotify.fragment
    assert unquote(spotify.path[len("/search/"):]) == query
    assert (youtube.netloc, youtube.path) == ("www.youtube.com", "/results") and not youtube.fragment
    assert parse_qs(youtube.query) == {"search_query": [query]}


def test_query_prefers_tags_then_file_name():
    assert search_query({"artist": "Nina Simone", "title": "Sinnerman", "path": "/x/01.mp3"}) == "Nina Simone Sinnerman"
    assert search_query({"artist": None, "title": "Sinnerman", "path": "/x/01.mp3"}) == "Sinnerman"
    assert search_query({"artist": pd.NA, "title": float("nan"), "path": "/m/Miles_Davis__So_What.flac"}) == \
        "Miles Davis So What"


def test_spotify_direct_link_only_with_credentials(monkeypatch):
    class FakeSpotify:
        def search(self, q, type, limit):
            return {"tracks": {"items": [{"external_urls": {"spotify": f"https://open.spotify.com/track/{len(q)}"}}]}}

    links._FOUND.clear()
    monkeypatch.setattr(links, "_spotify_client", lambda: FakeSpotify())
    monkeypatch.delenv("SPOTIPY_CLIENT_ID", raising=False)
    assert track_links({"title": "abc"})["spotify_url"].startswith(links.SPOTIFY_SEARCH)
    monkeypatch.setenv("SPOTIPY_CLIENT_ID", "id")
    monkeypatch.setenv("SPOTIPY_CLIENT_SECRET", "secret")
    got = track_links({"title": "abc"})
    assert got["spotify_url"] == "https://open.spotify.com/track/3"
    assert got["spotify_search_url"].startswith(links.SPOTIFY_SEARCH)
    links._FOUND.clear()


def test_spotify_failure_falls_back_to_search(monkeypatch):
    def broken():
        raise ConnectionError("offline")

    links._FOUND.clear()
    monkeypatch.setattr(links, "_spotify_client", broken)
    monkeypatch.setenv("SPOTIPY_CLIENT_ID", "id")
    monkeypatch.setenv("SPOTIPY_CLIENT_SECRET", "secret")
    assert track_links({"title": "abc"})["spotify_url"] == links.SPOTIFY_SEARCH + "abc"
    links._FOUND.clear()


def test_with_links_adds_a_column_per_row():
    table = pd.DataFrame({"title": ["a b", None], "artist": [None, None], "path": ["/x/1.mp3", "/x/two_words.wav"]})
    out = with_links(table, resolve=False)
    assert list(out["youtube_url"]) == [links.YOUTUBE_SEARCH + "a+b", links.YOUTUBE_SEARCH + "two+words"]
