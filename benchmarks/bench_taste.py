"""Recommendations that learn from listeners: simulated listeners against pure audio, the hybrid, taste alone and
the collaborative signal alone; and how fast a listening history goes in.

    .venv/bin/python -m benchmarks.bench_taste [--run RUN] [--listeners 60] [--few 5] [--rounds 10] [--k 10]
                                               [--noise 0.1] [--import-rows 100000] [--json]

Each simulated listener prefers one kind of track: a genre (the run's labels), or, in the second population, a
musicnn tag whose likeliest quarter of the library spreads over several genres (so audio neighbours of one track
cannot find it). A listener starts from a random track of its kind and asks for the ``k`` tracks like it, ``rounds``
times; after each answer it reacts to every track it had not heard before by its rule: one of its kind is liked,
any other disliked or skipped (half each), each reaction flipped with probability ``noise``. Listeners take their rounds in turns, so
the collaborative signal grows as they go. Every system keeps its events in its own real SQLite store.

Systems: ``audio`` (pure audio similarity: the same list every round), ``hybrid`` (audio + taste + other
listeners, the default weights), ``taste`` (no collaborative part), ``collab`` (the collaborative part alone, audio
only breaking ties). Reported per round: the precision of the listener's kind in the top ``k`` (mean over
listeners) and, for the hybrid, the share of the top ``k`` the listener had not rated before. The hybrid and
taste-only lines are run again with ``--few`` listeners, to show what the collaborative part adds as listeners
accumulate.

Scale (``--scale tracks,listeners,events``): a personalised answer on random embeddings with that many listeners'
events, beside pure audio, and the co-occurrence scores beside the full item-item matrix.

History import: ``--import-rows`` rows of a Last.fm-style CSV (80 % naming library tracks) through
:func:`core.listeners.history.import_history` (one transaction), beside a naive reference that commits each row
on its own (timed on 2,000 rows and scaled).
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.listeners.store import ListenerStore
from core.listeners.taste import TasteConfig
from core.runs.folder import Run, resolve_run
from core.service.listening import Listening
from core.service.query import neighbours_of

SYSTEMS = {"audio": None, "hybrid": TasteConfig(), "taste": TasteConfig(collab=0.0),
           "collab": TasteConfig(audio=0.05, taste=0.0, collab=1.0)}
TAG_SHARE = 0.25  # a tag listener's kind: the library's likeliest quarter for that tag
MAX_GENRE_SHARE = 0.6  # ... and a tag qualifies only when no genre holds more of that quarter than this


def genre_kinds(run: Run) -> dict[str, np.ndarray]:
    labels = run.tracks["label"].astype("string")
    return {str(name): (labels == name).fillna(False).to_numpy() for name in labels.dropna().unique()}


def tag_kinds(run: Run, tags: pd.DataFrame | None, *, n: int = 4) -> dict[str, np.ndarray]:
    """Up to ``n`` tags whose likeliest quarter of the library spreads most evenly over the genres."""
    if tags is None:
        return {}
    labels = run.tracks["label"].astype("string").fillna("?").to_numpy()
    scored = []
    for tag in tags.columns:
        values = tags[tag].to_numpy(float)
        if np.isnan(values).all():
            continue
        mask = values >= np.nanquantile(values, 1 - TAG_SHARE)
        share = pd.Series(labels[mask]).value_counts(normalize=True).max()
        if share <= MAX_GENRE_SHARE:
            scored.append((share, tag, mask))
    return {tag: mask for _, tag, mask in sorted(scored, key=lambda s: s[0])[:n]}


def react(is_kind: bool, rng: np.random.Generator, noise: float) -> str:
    liked = is_kind != (rng.random() < noise)
    return "liked" if liked else ("disliked" if rng.random() < 0.5 else "skipped")


def simulate(run: Run, kinds: dict[str, np.ndarray], cfg: TasteConfig | None, *, listeners: int, rounds: int, k: int,
             noise: float, seed: int, tags_of) -> dict:
    """Precision of each listener's kind per round (mean over listeners), and the share new to them."""
    rng = np.random.default_rng(seed)
    names = list(kinds)
    prefs = [names[i % len(names)] for i in range(listeners)]
    starts = [int(rng.choice(np.flatnonzero(kinds[p]))) for p in prefs]
    folder = Path(tempfile.mkdtemp(prefix="bench-taste-"))
    service = Listening(ListenerStore(folder / "listeners.sqlite"), tags_of=tags_of, cfg=cfg or TasteConfig())
    people = [service.listener("profile", f"sim-{i}") for i in range(listeners)]
    precision, fresh, seconds = np.zeros((rounds, listeners)), np.zeros((rounds, listeners)), []
    rated: list[set] = [set() for _ in range(listeners)]
    for r in range(rounds):
        for i, (person, pref, start) in enumerate(zip(people, prefs, starts)):
            began = time.perf_counter()  # the audio answer is part of every system's time
            audio = neighbours_of(run, start, k=k)
            table = (audio if cfg is None else
                     service.personalise(run, person, audio, embedding=run.embeddings[start], k=k,
                                         exclude=[start]).neighbours)
            seconds.append(time.perf_counter() - began)
            rows = table["row"].to_numpy(np.int64)
            precision[r, i] = kinds[pref][rows].mean()
            fresh[r, i] = np.mean([row not in rated[i] for row in rows])
            new = [row for row in rows if row not in rated[i]]  # a track heard before keeps its verdict
            events = [(run.tracks["track_id"].iloc[row], react(bool(kinds[pref][row]), rng, noise), time.time(), None)
                      for row in new]
            service.store.add_events(person, events, source="bench")
            rated[i].update(new)
    return {"precision": np.round(precision.mean(axis=1), 3).tolist(), "fresh": np.round(fresh.mean(axis=1), 3).tolist(),
            "median_ms": round(1000 * statistics.median(seconds), 2)}


def population(run: Run, kinds: dict[str, np.ndarray], args, tags_of) -> dict:
    out = {"kinds": {name: int(mask.sum()) for name, mask in kinds.items()}, "listeners": args.listeners}
    for name, cfg in SYSTEMS.items():
        out[name] = simulate(run, kinds, cfg, listeners=args.listeners, rounds=args.rounds, k=args.k,
                             noise=args.noise, seed=args.seed, tags_of=tags_of)
        print(f"  {name:7s} precision per round {out[name]['precision']}", file=sys.stderr, flush=True)
    for name in ("hybrid", "taste"):
        out[f"{name}_few"] = simulate(run, kinds, SYSTEMS[name], listeners=args.few, rounds=args.rounds, k=args.k,
                                      noise=args.noise, seed=args.seed, tags_of=tags_of)
    later = slice(1, None)  # rounds after the first answer (round 0 is pure audio for every system)
    out["collab_gain"] = round(float(np.mean(out["hybrid"]["precision"][later]) - np.mean(out["taste"]["precision"][later])), 3)
    out["collab_gain_few"] = round(float(np.mean(out["hybrid_few"]["precision"][later])
                                         - np.mean(out["taste_few"]["precision"][later])), 3)
    return out


def history_csv(run: Run, rows: int, rng: np.random.Generator) -> bytes:
    """A Last.fm-style export (artist, track, date): 80 % library tracks, 20 % names the library lacks."""
    from core.data.tracks import display_names

    names = display_names(run.tracks).to_numpy()
    titles = run.tracks["title"].astype("string").fillna(pd.Series(names, index=run.tracks.index)).to_numpy()
    artists = run.tracks["artist"].astype("string").fillna("").to_numpy()
    pick = rng.integers(0, len(names), rows)
    known = rng.random(rows) < 0.8
    frame = pd.DataFrame({"artist": np.where(known, artists[pick], "Nobody"),
                          "track": np.where(known, titles[pick], [f"Unknown song {i % 997}" for i in range(rows)]),
                          "date": pd.to_datetime(1.6e9 + np.arange(rows) * 60, unit="s").strftime("%d %b %Y, %H:%M")})
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def import_figures(run: Run, rows: int, seed: int) -> dict:
    data = history_csv(run, rows, np.random.default_rng(seed))
    folder = Path(tempfile.mkdtemp(prefix="bench-import-"))
    service = Listening(ListenerStore(folder / "listeners.sqlite"))
    person = service.listener("profile", "importer")
    updates = []
    began = time.perf_counter()
    report = service.import_history(run, person, io.BytesIO(data), name="history.csv",
                                    progress=lambda done, total, message="", **v: updates.append(done))
    ours = time.perf_counter() - began
    naive_rows = min(rows, 2000)  # one INSERT and one commit per row, as a loop over the file would
    db = sqlite3.connect(folder / "naive.sqlite")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("CREATE TABLE events (listener_id INTEGER, track_id TEXT, kind TEXT, time REAL, query TEXT, source TEXT)")
    ids = run.tracks["track_id"].astype(str).to_numpy()
    began = time.perf_counter()
    for i in range(naive_rows):
        db.execute("INSERT INTO events VALUES (?, ?, 'played', ?, NULL, 'import')", (1, ids[i % len(ids)], float(i)))
        db.commit()
    naive = (time.perf_counter() - began) * rows / naive_rows
    return {"rows": rows, "matched": report.matched, "unmatched": report.unmatched, "seconds": round(ours, 2),
            "rows_per_s": round(rows / ours), "progress_updates": len(updates),
            "naive_commit_per_row_seconds_scaled": round(naive, 1), "naive_rows_timed": naive_rows}


@dataclasses.dataclass
class SyntheticRun:
    """What ranking reads of a run (the scale section's random unit embeddings; the tests' small libraries): id,
    tracks, embeddings, no ANN index (exact search), no label rows."""

    run_id: str
    tracks: pd.DataFrame
    embeddings: np.ndarray
    index: None = None

    @property
    def label_rows(self) -> dict:
        return {}


def scale_figures(n_tracks: int, n_listeners: int, per_listener: int, seed: int, queries: int = 20) -> dict:
    """A personalised answer on a large library with many listeners' events, beside pure audio, and our
    co-occurrence scores beside the naive reference (the full item-item matrix ``X^T X``, sparse)."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n_tracks, 128)).astype(np.float32)
    ids = np.array([f"t{i:07d}" for i in range(n_tracks)])
    run = SyntheticRun(f"synthetic-{n_tracks}", pd.DataFrame({"track_id": ids, "path": ids, "label": None,
                                                               "duration_s": 30.0, "artist": None, "title": ids}), emb)
    folder = Path(tempfile.mkdtemp(prefix="bench-taste-scale-"))
    service = Listening(ListenerStore(folder / "listeners.sqlite"))
    people = [service.listener("profile", f"p{i}") for i in range(n_listeners)]
    kinds = np.array(["liked", "played", "disliked", "skipped"])
    began = time.perf_counter()
    for person in people:
        rows = rng.integers(0, n_tracks, per_listener)
        service.store.add_events(person, [(ids[r], kinds[rng.integers(0, 4)], 0.0, None) for r in rows], source="bench")
    writing = time.perf_counter() - began
    began = time.perf_counter()
    co = service.cooccurrence(run)
    build = time.perf_counter() - began
    audio_s, personal_s, ours_s, naive_s = [], [], [], []
    for q in range(queries):
        row, person = int(rng.integers(0, n_tracks)), people[q % n_listeners]
        began = time.perf_counter()
        audio = neighbours_of(run, row, k=10)
        audio_s.append(time.perf_counter() - began)
        service.personalise(run, person, audio, embedding=emb[row], k=10, exclude=[row])
        personal_s.append(time.perf_counter() - began)
        weights = service.feedback(run, person).weights(n_tracks)
        began = time.perf_counter()
        co.scores(person.listener_id, weights)
        ours_s.append(time.perf_counter() - began)
        if q < 3:  # the naive reference: every item-item similarity, then the listener's rows of it
            began = time.perf_counter()
            (co.X.T @ co.X)[np.flatnonzero(weights)].sum(axis=0)
            naive_s.append(time.perf_counter() - began)
    return {"tracks": n_tracks, "listeners": n_listeners, "events": n_listeners * per_listener,
            "events_written_s": round(writing, 2), "cooccurrence_build_s": round(build, 2),
            "audio_median_ms": round(1000 * statistics.median(audio_s), 1),
            "personal_median_ms": round(1000 * statistics.median(personal_s), 1),
            "collab_scores_median_ms": round(1000 * statistics.median(ours_s), 2),
            "naive_item_item_median_ms": round(1000 * statistics.median(naive_s), 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_taste", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default=None, help="run id or folder (default: the emotify-dev run, else the newest)")
    parser.add_argument("--listeners", type=int, default=60)
    parser.add_argument("--few", type=int, default=5, help="the small population the collaborative gain is compared to")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--scale", default="100000,10000,30", help="tracks,listeners,events each for the scale "
                                                                  "section ('' to skip)")
    parser.add_argument("--populations", default="genre,tag")
    parser.add_argument("--weights", default=None, help="the hybrid's audio,taste,collab weights (default: TasteConfig's)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if args.weights:
        audio, taste, collab = (float(w) for w in args.weights.split(","))
        SYSTEMS["hybrid"] = TasteConfig(audio=audio, taste=taste, collab=collab)
        SYSTEMS["taste"] = TasteConfig(audio=audio, taste=taste, collab=0.0)
    run = resolve_run(args.run or default_run_name())
    from core.service.service import QueryService

    tags_of = QueryService(warm=False).tags
    figures = {"run": run.run_id, "tracks": len(run.tracks), "rounds": args.rounds, "k": args.k, "noise": args.noise,
               "weights": dataclasses.asdict(SYSTEMS["hybrid"])}
    wanted = args.populations.split(",")
    for name, kinds in (("genre", genre_kinds(run) if "genre" in wanted else {}),
                        ("tag", tag_kinds(run, tags_of(run)) if "tag" in wanted else {})):
        if not kinds:
            figures[name] = None if name not in wanted else "no kinds (a tag population needs the run's musicnn tags)"
            continue
        print(f"{name} population: {', '.join(kinds)}", file=sys.stderr, flush=True)
        figures[name] = population(run, kinds, args, tags_of)
    if args.import_rows:
        figures["import"] = import_figures(run, args.import_rows, args.seed)
    if args.scale:
        n_tracks, n_listeners, per_listener = (int(v) for v in args.scale.split(","))
        figures["scale"] = scale_figures(n_tracks, n_listeners, per_listener, args.seed)
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=1))
    return 0


def default_run_name() -> str | None:
    from core.runs.folder import list_runs, load_run

    for run_id in list_runs():
        try:
            if load_run(run_id).config.get("dataset") == "emotify-dev":
                return run_id
        except Exception:  # a broken run is skipped here; resolve_run reports it if named
            continue
    return None


if __name__ == "__main__":
    sys.exit(main())
