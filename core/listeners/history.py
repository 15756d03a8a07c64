"""Listening histories from CSV exports (Last.fm, Spotify) matched to library tracks by name.

The columns are found by the names the exports give them (:data:`COLUMNS`: Last.fm's ``artist, track, date`` or
``uts``, Spotify's ``artistName, trackName, endTime`` or ``master_metadata_album_artist_name,
master_metadata_track_name, ts``, or plain ``artist, title, time``); a headerless Last.fm export
(``artist, album, title, date``, as lastfm-to-csv writes it) is read by position. A row matches a library track
when its artist and title, folded (case, accents, punctuation and "feat." parts ignored), equal the track's;
failing that, when its title alone names exactly one library track. Rows that match nothing are counted and the
most frequent are listed. Every matched row becomes a ``played`` event at its time, all in one transaction.
"""
from __future__ import annotations

import dataclasses
import io
import unicodedata
import warnings
from typing import Optional

import numpy as np
import pandas as pd

from core.base.errors import HistoryError
from core.base.progress import Progress, or_silent
from core.data.tracks import display_names
from core.listeners.store import Listener, ListenerStore

COLUMNS = {  # what each export calls artist, title and time, most specific first
    "artist": ("artist", "artistname", "artist name", "master_metadata_album_artist_name", "artist_name"),
    "title": ("title", "track", "trackname", "track name", "master_metadata_track_name", "track_name", "song", "name"),
    "time": ("time", "date", "uts", "utc_time", "endtime", "ts", "played_at", "timestamp", "end_time"),
}
LASTFM_HEADERLESS = ("artist", "album", "title", "time")
MAX_ROWS = 2_000_000  # rows of one history file (a decade of daily listening is ~200,000)
UNMATCHED_SHOWN = 20  # most frequent unmatched "artist - title" listed in the report


@dataclasses.dataclass(frozen=True)
class ImportReport:
    """What an import did: rows read, rows matched (recorded as plays), tracks they matched, and the most
    frequent unmatched names with their counts."""

    rows: int
    matched: int
    tracks: int
    unmatched: int
    unmatched_top: list[tuple[str, int]]

    def summary(self) -> str:
        return (f"{self.matched:,} of {self.rows:,} plays matched {self.tracks:,} library tracks; "
                f"{self.unmatched:,} unmatched")


def fold(text: pd.Series) -> pd.Series:
    """Names folded for matching: lower case, accents and punctuation dropped, "feat. X" and bracketed parts cut,
    spaces collapsed (each distinct name once: a history repeats its names)."""
    codes, distinct = pd.factorize(text.astype("string").fillna(""))
    return pd.Series(_fold(pd.Series(distinct, dtype="string")).to_numpy(object)[codes], index=text.index)


def _fold(text: pd.Series) -> pd.Series:
    text = text.map(
        lambda s: unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode(), na_action="ignore")
    text = text.str.lower().str.replace(r"\s*[\(\[].*?[\)\]]", "", regex=True)
    text = text.str.replace(r"\s+(feat\.?|ft\.?|featuring)\s.*$", "", regex=True)
    text = text.str.replace(r"[^\w\s]", " ", regex=True).str.replace(r"\s+", " ", regex=True).str.strip()
    return text


def read_history(source, *, name: str = "history.csv") -> pd.DataFrame:
    """A history export as ``artist, title, time`` (time in seconds since 1970, NaN where unreadable).

    Parameters
    ----------
    source : path or file-like or bytes
    name : str
        How errors name the file.

    Raises
    ------
    HistoryError
        Not CSV, empty, too many rows, or no title column (naming the columns found).
    """
    data = source if not isinstance(source, (bytes, bytearray)) else io.BytesIO(source)
    try:
        with warnings.catch_warnings():  # rows with extra fields keep their first columns: said once, not per row
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            table = pd.read_csv(data, dtype=str, keep_default_na=False, nrows=MAX_ROWS + 1, on_bad_lines="skip",
                                encoding_errors="replace", index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
        raise HistoryError(f"{name}: not a readable CSV file ({error})") from None
    if len(table) > MAX_ROWS:
        raise HistoryError(f"{name}: more than {MAX_ROWS:,} rows; split the file")
    found = _columns(table)
    if "title" not in found:
        if len(table.columns) == len(LASTFM_HEADERLESS):  # lastfm-to-csv: no header line
            table = pd.concat([pd.DataFrame([table.columns], columns=table.columns), table], ignore_index=True)
            table.columns = list(LASTFM_HEADERLESS)
            found = {key: key for key in ("artist", "title", "time")}
        else:
            raise HistoryError(f"{name}: no title column (found {', '.join(map(str, table.columns[:10])) or 'none'}); "
                                "a history needs artist, title and time columns, as Last.fm and Spotify exports have")
    out = pd.DataFrame({key: table[found[key]] if key in found else "" for key in ("artist", "title")})
    out["time"] = _seconds(table[found["time"]]) if "time" in found else np.nan
    return out


def _columns(table: pd.DataFrame) -> dict[str, str]:
    """artist / title / time -> the table's column of that meaning (the first alias present)."""
    by_name = {str(c).strip().lower(): c for c in table.columns}
    found = {}
    for key, aliases in COLUMNS.items():
        present = [by_name[a] for a in aliases if a in by_name]
        if present:
            found[key] = present[0]
    return found


DATE_FORMATS = ("ISO8601", "%d %b %Y, %H:%M", "%d %b %Y %H:%M", "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M")
# (Spotify's ts and endTime, Last.fm's exports and their spreadsheet copies); checked on a sample, then applied at
# C speed: guessing each row's format took 60 s for 100,000 rows


def _seconds(values: pd.Series) -> np.ndarray:
    """Times as seconds since 1970: numbers (Last.fm's ``uts``; milliseconds when they are that large) or dates in
    the first of :data:`DATE_FORMATS` that reads a sample of them (row by row only when none does)."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().mean() > 0.5:
        numbers = numbers.where(numbers < 1e11, numbers / 1000)
        return numbers.to_numpy(float)
    sample = values[values.str.strip() != ""].head(200)
    dates = None
    for fmt in DATE_FORMATS:
        try:
            pd.to_datetime(sample, format=fmt, utc=True)
        except (ValueError, TypeError):
            continue
        dates = pd.to_datetime(values, format=fmt, utc=True, errors="coerce")
        break
    if dates is None:
        dates = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    naive = dates.dt.tz_localize(None).dt.as_unit("s")  # seconds: any year fits (nanoseconds end at 1677 / 2262)
    seconds = naive.to_numpy().astype(np.int64).astype(float)
    seconds[naive.isna().to_numpy()] = np.nan
    return seconds


def match_tracks(history: pd.DataFrame, tracks: pd.DataFrame) -> np.ndarray:
    """For each history row, the ``track_id`` it names in ``tracks`` ("" when none), by folded artist + title,
    else by a title that names one library track only.

    Returns
    -------
    np.ndarray [shape=(len(history),), dtype=object]
    """
    names = display_names(tracks)
    title = tracks["title"].astype("string") if "title" in tracks else pd.Series(pd.NA, index=tracks.index)
    artist = tracks["artist"].astype("string") if "artist" in tracks else pd.Series(pd.NA, index=tracks.index)
    lib_title, lib_artist = fold(title.fillna(names)), fold(artist.fillna(""))
    ids = tracks["track_id"].astype(str).to_numpy()
    pair = dict(zip(lib_artist + "\x1f" + lib_title, ids))
    unique_titles = lib_title[~lib_title.duplicated(keep=False)]
    by_title = dict(zip(unique_titles, ids[unique_titles.index.to_numpy()]))
    h_title, h_artist = fold(history["title"]), fold(history["artist"])
    found = (h_artist + "\x1f" + h_title).map(pair)
    found = found.fillna(h_title.map(by_title)).fillna("")
    return found.to_numpy(object)


def import_history(store: ListenerStore, listener: Listener, source, tracks: pd.DataFrame, *,
                   name: str = "history.csv", progress: Optional[Progress] = None) -> ImportReport:
    """Read a history export, match it to ``tracks`` and record every matched row as a ``played`` event (one
    transaction: all or none). Rows without a readable time get the import's time.

    Raises
    ------
    HistoryError
        The file cannot be read (see :func:`read_history`).
    ListenerError
        The store cannot be written.
    """
    progress = or_silent(progress)
    history = read_history(source, name=name)
    progress(0, max(len(history), 1), f"read {len(history):,} rows; matching")
    ids = match_tracks(history, tracks)
    hit = ids != ""
    now = pd.Timestamp.now("UTC").timestamp()
    times = np.where(np.isfinite(history["time"].to_numpy(float)), history["time"].to_numpy(float), now)
    events = list(zip(ids[hit], ["played"] * int(hit.sum()), times[hit], [f"import {name}"] * int(hit.sum())))
    store.add_events(listener, events, source="import", file=name, rows=len(history), progress=progress)
    missed = (history["artist"].str.strip() + " - " + history["title"].str.strip()).str.strip(" -")[~hit]
    top = missed.value_counts().head(UNMATCHED_SHOWN)
    return ImportReport(rows=len(history), matched=int(hit.sum()), tracks=len(set(ids[hit])),
                        unmatched=int((~hit).sum()), unmatched_top=[(str(k), int(v)) for k, v in top.items()])
