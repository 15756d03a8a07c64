"""Spotify and YouTube links for a track: search URLs always (no network), a direct Spotify track link when
``SPOTIPY_CLIENT_ID`` / ``SPOTIPY_CLIENT_SECRET`` are set and the optional ``spotipy`` package resolves one."""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Mapping
from urllib.parse import quote, quote_plus

import pandas as pd

from core.data.tracks import clean_text

SPOTIFY_SEARCH = "https://open.spotify.com/search/"


YOUTUBE_SEARCH = "https://www.youtube.com/results?search_query="


def search_query(track: Mapping) -> str:
    """What to search for: "artist title" from tags, else the file name with separators as spaces."""
    artist, title = clean_text(track.get("artist")), clean_text(track.get("title"))
    if title:
        return f"{artist} {title}" if artist else title
    path = clean_text(track.get("path"))
    stem = Path(path).stem if path else str(track.get("track_id", ""))
    return re.sub(r"[_\s]+", " ", stem).strip()


def spotify_search_url(query: str) -> str:
    """``https://open.spotify.com/search/<query>``, the query one path segment (``/``, ``#``, ``?`` quoted)."""
    return SPOTIFY_SEARCH + quote(query, safe="")


def youtube_search_url(query: str) -> str:
    """``https://www.youtube.com/results?search_query=<query>``, form-encoded (spaces as ``+``)."""
    return YOUTUBE_SEARCH + quote_plus(query, safe="")


def track_links(track: Mapping, *, resolve: bool = True) -> dict[str, str]:
    """``spotify_url`` and ``youtube_url`` for one track (a table row or dict).

    ``spotify_url`` is a direct track link when Spotify credentials are configured and the lookup succeeds,
    else the search link; ``spotify_search_url`` is always the search link.
    """
    query = search_query(track)
    links = {"spotify_search_url": spotify_search_url(query), "youtube_url": youtube_search_url(query)}
    direct = spotify_track_url(query) if resolve else None
    links["spotify_url"] = direct or links["spotify_search_url"]
    return links


def with_links(table: pd.DataFrame, *, resolve: bool = True) -> pd.DataFrame:
    """``table`` with ``spotify_url`` and ``youtube_url`` columns added (one per row)."""
    links = [track_links(row, resolve=resolve) for row in table.to_dict("records")]
    return table.assign(spotify_url=[x["spotify_url"] for x in links], youtube_url=[x["youtube_url"] for x in links])


def spotify_configured() -> bool:
    return bool(os.environ.get("SPOTIPY_CLIENT_ID") and os.environ.get("SPOTIPY_CLIENT_SECRET"))


_FOUND: dict[str, str | None] = {}  # query -> direct link (or None: Spotify has no such track); failures not kept


def spotify_track_url(query: str) -> str | None:
    """The first Spotify track for ``query`` (credentials from the environment), or None: not configured,
    spotipy missing, nothing found, or the lookup failed. Never raises: the search link is the fallback."""
    if not spotify_configured() or not query:
        return None
    if query not in _FOUND:
        try:
            found = _spotify_client().search(q=query, type="track", limit=1)
        except Exception:  # offline, bad credentials, rate limit, spotipy not installed: keep the search link
            return None
        items = found.get("tracks", {}).get("items", [])
        _FOUND[query] = items[0]["external_urls"]["spotify"] if items else None
    return _FOUND[query]


@functools.lru_cache(maxsize=1)
def _spotify_client():
    import spotipy
    from spotipy.oauth2 import SpotifyClientCredentials

    return spotipy.Spotify(auth_manager=SpotifyClientCredentials(), requests_timeout=5, retries=0)
