"""The listener store: one SQLite file (``<artifacts>/listeners.sqlite``, WAL mode) of listeners and their events.

A listener is a dashboard profile, an API client (known by a key of its own, stored only as a SHA-256 hash) or a
Telegram chat. An event is one of :data:`EVENT_KINDS` on a library track (by ``track_id``, which is the same in
every run of a dataset), with its time, the query that led there and where it came from.

Why stdlib ``sqlite3`` and not SQLAlchemy + Alembic: three tables and a linear list of migrations
(:data:`MIGRATIONS`, applied in order up to ``PRAGMA user_version``) need no ORM; WAL lets readers go on while one
writer commits, and ``busy_timeout`` makes concurrent writers wait for each other instead of failing. Every
failure of the file (corrupt, locked past the timeout, written by a newer version) is a
:class:`~core.base.errors.ListenerError` that names the file and the reason; the service then answers with pure
audio similarity.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator, Optional

import pandas as pd

from core.base.errors import InvalidQuery, ListenerError, NotFound
from core.base.paths import artifacts_dir
from core.base.progress import Progress, or_silent

STORE_FILE = "listeners.sqlite"
EVENT_KINDS = ("played", "liked", "disliked", "skipped")
LISTENER_KINDS = ("profile", "api", "telegram")
MAX_NAME = 80  # characters of a listener's name (a profile name, a chat id)
MAX_QUERY = 300  # characters of the query kept with an event
BUSY_TIMEOUT_S = 5.0  # a writer waits this long for another's commit before the file counts as locked
IMPORT_CHUNK = 10_000  # rows per executemany while importing (progress is reported per chunk)

# Schema versions, applied in order; PRAGMA user_version is the number applied. Never edit a shipped step: add one.
MIGRATIONS = (
    """
    CREATE TABLE listeners (
        listener_id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('profile', 'api', 'telegram')),
        name TEXT NOT NULL,
        secret TEXT,
        created REAL NOT NULL,
        UNIQUE (kind, name));
    CREATE TABLE events (
        event_id INTEGER PRIMARY KEY,
        listener_id INTEGER NOT NULL REFERENCES listeners (listener_id) ON DELETE CASCADE,
        track_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('played', 'liked', 'disliked', 'skipped')),
        time REAL NOT NULL,
        query TEXT,
        source TEXT);
    CREATE INDEX events_by_listener ON events (listener_id, time);
    """,
    """
    CREATE TABLE imports (
        import_id INTEGER PRIMARY KEY,
        listener_id INTEGER NOT NULL REFERENCES listeners (listener_id) ON DELETE CASCADE,
        file TEXT NOT NULL,
        rows INTEGER NOT NULL,
        matched INTEGER NOT NULL,
        time REAL NOT NULL);
    CREATE UNIQUE INDEX listeners_by_secret ON listeners (secret) WHERE secret IS NOT NULL;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclasses.dataclass(frozen=True)
class Listener:
    listener_id: int
    kind: str
    name: str


def store_path() -> Path:
    """``<artifacts>/listeners.sqlite`` (``TIMBRE_ARTIFACTS`` moves it with everything else)."""
    return artifacts_dir() / STORE_FILE


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_name(kind: str, name) -> str:
    """A listener's kind and name as stored: ``kind`` one of :data:`LISTENER_KINDS`, ``name`` 1 to
    :data:`MAX_NAME` printable characters (:class:`InvalidQuery` otherwise)."""
    if kind not in LISTENER_KINDS:
        raise InvalidQuery(f"unknown listener kind {kind!r}: one of {', '.join(LISTENER_KINDS)}")
    text = str(name).strip()
    if not text or len(text) > MAX_NAME or not text.isprintable():
        raise InvalidQuery(f"a listener's name must be 1 to {MAX_NAME} printable characters (got {text[:40]!r})")
    return text


class ListenerStore:
    """The listener database at ``path`` (default :func:`store_path`), created and migrated on first use.

    Safe to share between threads and processes: each thread keeps a connection of its own (SQLite connections
    must not cross threads), writes are single transactions, and WAL plus ``busy_timeout`` serialise concurrent
    writers without losing any.
    """

    def __init__(self, path: str | Path | None = None, *, timeout_s: float = BUSY_TIMEOUT_S):
        self.path = Path(path) if path is not None else store_path()
        self.timeout_s = timeout_s
        self._ready = False
        self._lock = threading.Lock()
        self._local = threading.local()  # one open connection per thread (and per process: see _connection)

    # ------------------------------------------------------------------------------------------ connections

    def _fail(self, error: sqlite3.Error) -> ListenerError:
        text = str(error)
        if "locked" in text or "busy" in text:
            reason = f"it is locked by another program (waited {self.timeout_s:g} s)"
        elif "not a database" in text or "malformed" in text or "disk image" in text:
            reason = f"it is not a readable SQLite database ({text}); move it away to start a new one"
        else:
            reason = text
        return ListenerError(f"listener database {self.path.name}: {reason}")

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one transaction (committed on success, rolled back on error); SQLite errors
        become :class:`ListenerError` naming the file."""
        self._migrate_once()
        try:
            db = self._connection()
            try:
                with db:
                    yield db
            except sqlite3.Error:
                self.close()  # a connection that failed is not reused
                raise
        except sqlite3.Error as error:
            raise self._fail(error) from None

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use; a forked child opens its own."""
        pid, db = getattr(self._local, "owner", None), getattr(self._local, "db", None)
        if db is None or pid != os.getpid():
            self._local.db, self._local.owner = self._open(), os.getpid()
        return self._local.db

    def close(self) -> None:
        """Close this thread's connection (the next call opens another)."""
        db, self._local.db = getattr(self._local, "db", None), None
        if db is not None:
            db.close()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level="DEFERRED")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a commit survives a killed process
        return db

    def _migrate_once(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            try:
                with contextlib.closing(self._open()) as db:
                    db.execute("PRAGMA journal_mode = WAL")
                    self._migrate(db)
            except sqlite3.Error as error:
                raise self._fail(error) from None
            self._ready = True

    def _migrate(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then find it done
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ListenerError(f"listener database {self.path.name} has schema version {version}, newer than "
                                    f"this program's {SCHEMA_VERSION}: update Timbre Atlas")
            for number in range(version, SCHEMA_VERSION):
                for statement in filter(str.strip, MIGRATIONS[number].split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        with self.connect() as db:
            return db.execute("PRAGMA user_version").fetchone()[0]

    # ------------------------------------------------------------------------------------------ listeners

    def listener(self, kind: str, name: str) -> Listener:
        """The listener ``kind``/``name`` (a dashboard profile, a Telegram chat), made on first use."""
        name = check_name(kind, name)
        with self.connect() as db:
            db.execute("INSERT OR IGNORE INTO listeners (kind, name, created) VALUES (?, ?, ?)", (kind, name, time.time()))
            row = db.execute("SELECT listener_id FROM listeners WHERE kind = ? AND name = ?", (kind, name)).fetchone()
        return Listener(row[0], kind, name)

    def new_api_listener(self, name: str) -> tuple[Listener, str]:
        """A new API listener and its key (shown once: only its hash is kept)."""
        name = check_name("api", name)
        key = secrets.token_urlsafe(24)
        with self.connect() as db:
            if db.execute("SELECT 1 FROM listeners WHERE kind = 'api' AND name = ?", (name,)).fetchone():
                raise InvalidQuery(f"an API listener named {name!r} exists already: choose another name")
            cursor = db.execute("INSERT INTO listeners (kind, name, secret, created) VALUES ('api', ?, ?, ?)",
                                (name, _hash(key), time.time()))
        return Listener(cursor.lastrowid, "api", name), key

    def api_listener(self, key: str) -> Listener:
        """The API listener holding ``key`` (:class:`NotFound` for an unknown key)."""
        with self.connect() as db:
            row = db.execute("SELECT listener_id, name FROM listeners WHERE secret = ?", (_hash(key),)).fetchone()
        if row is None:
            raise NotFound("no listener has this key: create one with POST /listeners", what="listener")
        return Listener(row[0], "api", row[1])

    def profiles(self) -> list[str]:
        """Names of the dashboard's profiles, in the order they were made."""
        with self.connect() as db:
            return [r[0] for r in db.execute("SELECT name FROM listeners WHERE kind = 'profile' ORDER BY listener_id")]

    def forget(self, listener: Listener) -> int:
        """Delete the listener and everything it did; the number of events deleted."""
        with self.connect() as db:
            n = db.execute("SELECT count(*) FROM events WHERE listener_id = ?", (listener.listener_id,)).fetchone()[0]
            db.execute("DELETE FROM listeners WHERE listener_id = ?", (listener.listener_id,))
        return n

    # ------------------------------------------------------------------------------------------ events

    def add_event(self, listener: Listener, track_id: str, kind: str, *, query: Optional[str] = None,
                  source: Optional[str] = None, at: Optional[float] = None) -> int:
        """Record one event (committed when this returns); its id."""
        row = _event_row(listener, track_id, kind, query, source, at)
        with self.connect() as db:
            return db.execute("INSERT INTO events (listener_id, track_id, kind, time, query, source) "
                              "VALUES (?, ?, ?, ?, ?, ?)", row).lastrowid

    def add_events(self, listener: Listener, events: Iterable[tuple], *, source: str = "import",
                   file: Optional[str] = None, rows: Optional[int] = None,
                   progress: Optional[Progress] = None) -> int:
        """Record many ``(track_id, kind, time, query)`` events in one transaction (all or none), reporting
        progress every :data:`IMPORT_CHUNK` rows; with ``file`` the import is logged with ``rows`` read. The
        number recorded."""
        events, progress = list(events), or_silent(progress)
        with self.connect() as db:
            for start in range(0, len(events), IMPORT_CHUNK):
                chunk = events[start:start + IMPORT_CHUNK]
                db.executemany("INSERT INTO events (listener_id, track_id, kind, time, query, source) "
                               "VALUES (?, ?, ?, ?, ?, ?)",
                               [_event_row(listener, t, k, q, source, at) for t, k, at, q in chunk])
                progress(start + len(chunk), len(events), "events recorded")
            if file is not None:
                db.execute("INSERT INTO imports (listener_id, file, rows, matched, time) VALUES (?, ?, ?, ?, ?)",
                           (listener.listener_id, file, rows if rows is not None else len(events), len(events),
                            time.time()))
        return len(events)

    def events(self, listener: Listener, *, limit: Optional[int] = None) -> pd.DataFrame:
        """The listener's events, newest first: ``event_id, track_id, kind, time, query, source``."""
        sql = ("SELECT event_id, track_id, kind, time, query, source FROM events WHERE listener_id = ? "
               "ORDER BY time DESC, event_id DESC") + (" LIMIT ?" if limit is not None else "")
        args = (listener.listener_id,) + ((int(limit),) if limit is not None else ())
        with self.connect() as db:
            return pd.read_sql_query(sql, db, params=args)

    def verdicts(self, listener: Listener) -> list[tuple[str, str]]:
        """The listener's ``(track_id, kind)`` events, oldest first (what a ranking reads)."""
        with self.connect() as db:
            return db.execute("SELECT track_id, kind FROM events WHERE listener_id = ? ORDER BY time, event_id",
                              (listener.listener_id,)).fetchall()

    def all_events(self) -> pd.DataFrame:
        """Every listener's events in time order: ``listener_id, track_id, kind`` (the collaborative signal)."""
        with self.connect() as db:
            return pd.read_sql_query("SELECT listener_id, track_id, kind FROM events ORDER BY time, event_id", db)

    def version(self) -> tuple[int, int]:
        """Changes whenever an event is added or deleted: (largest event id, number of events)."""
        with self.connect() as db:
            return tuple(db.execute("SELECT coalesce(max(event_id), 0), count(*) FROM events").fetchone())

    def counts(self, listener: Listener) -> dict[str, int]:
        """Events of the listener per kind (every kind of :data:`EVENT_KINDS`, 0 when none)."""
        with self.connect() as db:
            found = dict(db.execute("SELECT kind, count(*) FROM events WHERE listener_id = ? GROUP BY kind",
                                    (listener.listener_id,)).fetchall())
        return {kind: found.get(kind, 0) for kind in EVENT_KINDS}


def _event_row(listener: Listener, track_id, kind: str, query, source, at) -> tuple:
    if kind not in EVENT_KINDS:
        raise InvalidQuery(f"unknown event {kind!r}: one of {', '.join(EVENT_KINDS)}")
    query = None if query is None else str(query)[:MAX_QUERY]
    return (listener.listener_id, str(track_id), kind, time.time() if at is None else float(at), query, source)
