"""How a track is named and found: one display name for every page, the API, the bot and the CLI."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd


def clean_text(value) -> str | None:
    """A non-empty string, or None for missing values (None, NaN, pd.NA, blank)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    value = str(value).strip()
    return value or None


def display_name(track: Mapping) -> str:
    """A readable name: "artist - title" from tags, else the title, else the file name without extension,
    else the track id.

    Parameters
    ----------
    track : mapping
        A row of a track table (``pd.Series`` or dict) with any of ``artist, title, path, track_id``.
    """
    artist, title = clean_text(track.get("artist")), clean_text(track.get("title"))
    if title:
        return f"{artist} - {title}" if artist else title
    path = clean_text(track.get("path"))
    if path:
        return Path(path).stem
    return str(track.get("track_id", "unknown track"))


def display_names(tracks: pd.DataFrame) -> pd.Series:
    """:func:`display_name` of every row, pd.Series [shape=(n,)] named ``name`` on the table's index
    (column-wise: a million rows take about a second)."""
    def column(name: str) -> pd.Series:
        if name not in tracks.columns:
            return pd.Series(pd.NA, index=tracks.index, dtype="string")
        text = tracks[name].astype("string").str.strip()
        return text.mask(text == "")

    title, artist, path = column("title"), column("artist"), column("path")
    # Path(p).stem, column-wise: the file name without its last suffix (a leading dot is no suffix)
    stems = path.str.rsplit("/", n=1).str[-1].str.replace(r"(?<=.)\.[^.]+$", "", regex=True)
    ids = tracks["track_id"].astype("string") if "track_id" in tracks.columns else column("track_id")
    names = (artist + " - " + title).fillna(title).fillna(stems).fillna(ids).fillna("unknown track")
    return names.astype(object).rename("name")


SEARCH_COLUMNS = ("title", "artist", "path", "label")


def search_tracks(tracks: pd.DataFrame, query: str, *, limit: int = 20) -> pd.DataFrame:
    """Tracks whose title, artist, file name or label contain ``query`` (case-insensitive).

    Tracks whose display name starts with the query come first, then those whose name contains it, then
    matches on other fields (label, folder); within each group the table's order is kept.

    Returns
    -------
    pd.DataFrame [shape=(<= limit, ...)]
        The matching rows with ``row`` (position in ``tracks``) and ``name`` added.
    """
    needle = query.strip().casefold()
    if not needle:
        return tracks.iloc[:0].assign(row=pd.Series(dtype=int), name=pd.Series(dtype=object))
    names = display_names(tracks).str.casefold()
    fields = [tracks[c].astype("string").str.casefold() for c in SEARCH_COLUMNS if c in tracks.columns]
    if "path" in tracks.columns:
        fields.append(tracks["path"].map(lambda p: Path(str(p)).name.casefold()).astype("string"))
    anywhere = pd.concat([f.str.contains(needle, regex=False) for f in fields], axis=1).fillna(False).any(axis=1)
    rank = pd.Series(3, index=tracks.index)
    rank[anywhere] = 2
    rank[names.str.contains(needle, regex=False)] = 1
    rank[names.str.startswith(needle)] = 0
    hits = tracks.assign(row=range(len(tracks)), name=display_names(tracks), _rank=rank.to_numpy())
    hits = hits[hits["_rank"] < 3].sort_values(["_rank", "row"], kind="stable")
    return hits.drop(columns="_rank").head(limit).reset_index(drop=True)
