"""Commands on runs: train, reference, evaluate, embed, recommend, listen, fingerprint, index, runs, demo."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from core.base.config import add_dataclass_args, bounded, dataclass_from_args
from core.base.constants import DEFAULT_K
from core.cli.common import Bar

TRACKS = bounded(int, at_least=1, what="-k")  # how many tracks an answer lists (the run's size is checked later)
STREAM_SECONDS = bounded(float, above=0.0, at_most=600.0, what="seconds")  # a query reads at most 10 minutes
SPEED = bounded(float, at_least=0.0, at_most=1000.0, what="--speed")


def _print_eval(metrics: dict) -> None:
    learned, base = metrics.get("knn_eval"), metrics.get("baseline_mfcc_knn_eval")
    if learned and base:
        print(f"5-NN accuracy: learned {learned['knn_accuracy']:.3f} | MFCC baseline {base['knn_accuracy']:.3f}")
        print(f"precision@5:   learned {learned['precision_at_k']:.3f} | MFCC baseline {base['precision_at_k']:.3f}")
    else:
        print("no labels: k-NN evaluation skipped")
    _print_recording(metrics.get("recording_eval"))


def _print_recording(result: dict | None) -> None:
    if result:
        print(f"query by recording (10 s, 3.4 kHz low-pass, 10 dB noise): source first {result['top1']:.3f}, "
              f"in the top 5 {result['top5']:.3f} ({result['n_queries']} queries)")
    else:
        print("query by recording skipped: no track's audio can be read")


def cmd_reference(args) -> None:
    from core.runs.config import ReferenceConfig
    from core.runs.reference import reference_run

    _build_run(reference_run, args.dataset, dataclass_from_args(ReferenceConfig, args), desc="reference", unit="track")


def cmd_evaluate(args) -> None:
    from core.evaluation.recording import evaluate_run
    from core.runs.folder import load_run

    bar = Bar("recordings", "query")
    try:
        result = evaluate_run(load_run(args.run), progress=bar)
    finally:
        bar.close()
    _print_recording(result)


def _build_run(build, dataset: str, cfg, *, desc: str, unit: str) -> None:
    """Run ``build(dataset, cfg=, progress=, stage=)`` (training or the reference) with a progress bar, then print
    the new run's id and evaluation."""
    from core.runs.folder import load_run

    bar = Bar(desc, unit)
    try:
        run_id = build(dataset, cfg=cfg, progress=bar, stage=lambda message: (bar.close(), print(message, file=sys.stderr)))
    finally:
        bar.close()
    print(f"run: {run_id}")
    _print_eval(load_run(run_id).metrics)


def cmd_train(args) -> None:
    from core.runs.build import train_run
    from core.training.config import TrainOptions, apply_options, load_recipe, parse_settings

    cfg = load_recipe(args.recipe, parse_settings(args.set or []))  # a bad recipe, key or value: a TimbreError
    cfg = apply_options(cfg, dataclass_from_args(TrainOptions, args))
    _build_run(train_run, args.dataset, cfg, desc="train", unit="epoch")


def add_train_args(parser) -> None:
    """The ``train`` command's options: the product options, ``--recipe`` and ``--set``. The recipes of earlier
    defaults (``configs/history/``) are not offered here, but ``--recipe NAME`` loads them."""
    from core.training.config import DEFAULT_RECIPE, TrainOptions, offered_recipes

    parser.add_argument("--dataset", required=True, help="the name of an ingested dataset (python -m core ingest makes one)")
    parser.add_argument("--recipe", default=DEFAULT_RECIPE,
                        help=f"named settings in configs/<name>.toml: {', '.join(offered_recipes())}; or a .toml "
                             "file's path (default: %(default)s)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="change one of the recipe's settings, e.g. --set distill=0.5 --set lowpass_hz=2000,8000 "
                             "(repeatable; every key is a field of core.training.config.TrainConfig)")
    add_dataclass_args(parser, TrainOptions)


def cmd_embed(args) -> None:
    from core.base.io import atomic_write_npy
    from core.runs.folder import load_run
    from core.service.query import embed_files

    x = embed_files(load_run(args.run), args.files)
    atomic_write_npy(Path(args.out), x)
    print(f"wrote {args.out}: {x.shape[0]} x {x.shape[1]} float32")


def cmd_recommend(args) -> None:
    from core.data.tracks import display_name
    from core.runs.folder import load_run
    from core.service.query import check_k, recommend_file

    run = load_run(args.run)
    check_k(args.k, available=len(run.tracks))  # before decoding the query: a bad -k is told at once
    run.model, run.embeddings  # load before timing: the figure is the query itself
    start = time.perf_counter()
    rec = recommend_file(run, args.file, k=args.k)
    elapsed = time.perf_counter() - start
    for _, row in rec.neighbours.iterrows():
        name = display_name(row)
        label = row["label"] if isinstance(row["label"], str) else "-"
        print(f"{row['rank']:>3}  {row['score']:.4f}  {label:<12}  {name}  ({row['path']})")
    print(f"({elapsed:.3f} s)", file=sys.stderr)


def cmd_index(args) -> None:
    from core.runs.folder import load_run
    from core.search.ann import EXACT_MAX_TRACKS, index_run

    run = load_run(args.run)
    ann = index_run(run.path, run.embeddings, force=args.force, seed=run.config.get("seed", 0))
    if ann is None:
        print(f"run {run.run_id}: {len(run.embeddings)} tracks (at most {EXACT_MAX_TRACKS}) are searched exactly, "
              "no index needed (--force builds one anyway)")
        return
    m = ann.meta
    print(f"run {run.run_id}: {m['kind']} index of {m['n_tracks']} x {m['dim']}, {m['nlist']} lists, nprobe "
          f"{m['nprobe']} (recall@10 {m['calibration']['recall_at_10']} vs exact) in {m['total_seconds']} s")


def cmd_runs(args) -> None:
    import pandas as pd

    from core.runs.folder import runs_table

    table = runs_table()
    if table.empty:
        print("no runs yet: `python -m core demo` builds one")
        return
    broken = table["broken"].notna()
    shown = table[~broken].drop(columns="broken").astype(object).fillna("-")  # no "None" for what a run lacks
    with pd.option_context("display.width", 200, "display.max_columns", 21):
        print(shown.to_string(index=False))
    for reason in table.loc[broken, "broken"]:
        print(f"cannot be opened: {reason}")


def cmd_alias(args) -> None:
    from core.runs.aliases import read_alias, set_alias
    from core.runs.folder import run_path

    path = run_path(args.run)
    run_id = path.name
    alias = set_alias(run_id, None) if args.clear else set_alias(run_id, args.name) if args.name else read_alias(path)
    print(f"run {run_id}: alias {alias}" if alias else f"run {run_id}: no alias")


def cmd_demo(args) -> None:
    from core.demo import DemoConfig, build_demo

    bar = Bar("demo", "step")
    run_id = build_demo(cfg=dataclass_from_args(DemoConfig, args), progress=bar)
    bar.close()
    print(f"demo run: {run_id}")
    from core.runs.folder import load_run

    _print_eval(load_run(run_id).metrics)


def cmd_listen(args) -> None:
    import json

    from core.runs.folder import load_run
    from core.service.listen import ListenConfig, StreamMatcher, update_record
    from core.service.query import load_query

    run = load_run(args.run)
    y = load_query(run, args.file)
    if run.fingerprints is None:  # a run trained before fingerprints: built once, on first use
        _fingerprint(run)
    stream = StreamMatcher(run, config=ListenConfig(k=args.k, window_seconds=args.window, update_seconds=args.every))
    step, sr = int(round(args.every * run.mel_params.sr)), run.mel_params.sr
    started = time.monotonic()
    for i in range(0, len(y), step):
        if args.speed > 0:  # a live stream: the audio arrives no faster than it plays
            time.sleep(max(0.0, started + i / sr / args.speed - time.monotonic()))
        update = stream.feed(y[i:i + step])
        if update is None and i + step >= len(y):
            update = stream.update()
        if update is not None:
            record = update_record(run, update)
            print(json.dumps(record) if args.json else _listen_line(record), flush=True)


def _fingerprint(run) -> None:
    from core.search.fingerprint_store import add_fingerprints

    print(f"run {run.run_id}: fingerprinting its {len(run.tracks)} tracks' audio (once)", file=sys.stderr)
    bar = Bar("fingerprints", "track")
    index = add_fingerprints(run, progress=bar)
    bar.close()
    print(f"run {run.run_id}: {len(index.rows)} landmarks, {index.size_bytes / 1e6:.1f} MB", file=sys.stderr)


def cmd_fingerprint(args) -> None:
    from core.runs.folder import load_run
    from core.search.fingerprint_store import MANIFEST

    run = load_run(args.run)
    if run.fingerprints is not None and not args.force:
        print(f"run {run.run_id} has its fingerprints ({len(run.fingerprints.rows)} landmarks; --force builds them "
              "again)")
        return
    if args.force:
        (run.path / MANIFEST).unlink(missing_ok=True)
        run.__dict__.pop("fingerprints", None)
    _fingerprint(run)


def _listen_line(record: dict) -> str:
    """One update as a line: time, the top 3 with scores, and the identified track once there is one."""
    if record["silent"]:
        top = "silence"
    else:
        top = ", ".join(f"{t['name']} {t['score']:.3f}" for t in record["top"][:3])
    found = "" if record["identified"] is None else (
        f"  identified: {record['identified']} after {record['identified_seconds']:.1f} s")
    return f"{record['seconds']:6.1f} s  {top}{found}"


def add_run_commands(sub) -> None:
    """train, reference, evaluate, embed, recommend, listen, fingerprint, index, runs, demo."""
    from core.demo import DemoConfig
    from core.runs.config import ReferenceConfig

    p = sub.add_parser("train", help="train the contrastive encoder on a dataset and write a run folder",
                       description="Train the contrastive encoder on a dataset and write a run folder. The "
                                   "options below replace the recipe's values.")
    add_train_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("reference", help="embed a dataset with the frozen pretrained musicnn (MSD) into a run folder")
    p.add_argument("--dataset", required=True)
    add_dataclass_args(p, ReferenceConfig)
    p.set_defaults(func=cmd_reference)

    p = sub.add_parser("evaluate", help="(re)compute a run's query-by-recording evaluation into its metrics.json")
    p.add_argument("--run", required=True)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("embed", help="embed audio files with a run's model")
    p.add_argument("--run", required=True)
    p.add_argument("files", nargs="+")
    p.add_argument("--out", default="embeddings.npy")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("recommend", help="the k library tracks most similar to a file")
    p.add_argument("--run", required=True)
    p.add_argument("file")
    p.add_argument("-k", type=TRACKS, default=DEFAULT_K, help=f"how many tracks (1 to the library size; default {DEFAULT_K})")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("listen", help="play a file as a live stream and print the streaming matcher's updates")
    p.add_argument("--run", required=True)
    p.add_argument("file")
    p.add_argument("-k", type=TRACKS, default=DEFAULT_K, help=f"tracks per update (default {DEFAULT_K})")
    p.add_argument("--window", type=STREAM_SECONDS, default=10.0, help="seconds matched at each update (default 10)")
    p.add_argument("--every", type=STREAM_SECONDS, default=1.0, help="seconds of stream between updates (default 1)")
    p.add_argument("--speed", type=SPEED, default=1.0,
                   help="play at this multiple of real time (default 1: live; 0: as fast as it can)")
    p.add_argument("--json", action="store_true", help="one JSON object per update")
    p.set_defaults(func=cmd_listen)

    p = sub.add_parser("fingerprint", help="build a run's landmark fingerprints from its tracks' audio files (train "
                                           "writes them; listen builds them on first use)")
    p.add_argument("--run", required=True)
    p.add_argument("--force", action="store_true", help="build them again")
    p.set_defaults(func=cmd_fingerprint)

    p = sub.add_parser("index", help="build a run's ANN search index (train builds it for a large library)")
    p.add_argument("--run", required=True)
    p.add_argument("--force", action="store_true", help="build it even for a library searched exactly")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("runs", help="list the runs with their evaluation; `runs alias RUN NAME` names a run")
    p.set_defaults(func=cmd_runs)
    actions = p.add_subparsers(dest="runs_action")
    a = actions.add_parser("alias", help="give a run a short name, accepted wherever a run id is",
                           description="Give a run a short name (1-40 letters, digits, '.', '_', '-'), accepted "
                                       "wherever a run id is and shown wherever runs are listed.")
    a.add_argument("run", help="the run's id, alias or folder")
    a.add_argument("name", nargs="?", help="the alias (refused when it is another run's id or alias; "
                                           "without it, the run's alias is shown)")
    a.add_argument("--clear", action="store_true", help="remove the run's alias")
    a.set_defaults(func=cmd_alias)

    p = sub.add_parser("demo", help="synthesise the demo corpus, ingest it and train a run")
    add_dataclass_args(p, DemoConfig)
    p.set_defaults(func=cmd_demo)
