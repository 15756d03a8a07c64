"""``python -m core <command>``: the pipeline from the shell. Flags of configs come from their dataclasses."""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from .config import add_dataclass_args, dataclass_from_args
from .errors import TimbreError


class _Bar:
    """A tqdm bar that is a :class:`core.progress.Progress`: it shows ``message`` and every value.

    A job that moves on to a new stage (a new total, or ``done`` going back) gets a fresh bar.
    """

    def __init__(self, desc: str, unit: str):
        self.desc, self.unit, self.bar = desc, unit, None

    def __call__(self, done: int, total: int, message: str = "", **values: float) -> None:
        from tqdm import tqdm

        if self.bar is not None and (total != self.bar.total or done < self.bar.n):
            self.close()
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=sys.stderr)
        self.bar.set_postfix_str(postfix(message, values), refresh=False)
        self.bar.update(done - self.bar.n)
        if done >= total:
            self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def postfix(message: str, values: dict) -> str:
    """"epoch 12, loss=0.4123": the message (its last 40 characters) and the values."""
    shown = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()]
    return ", ".join(([str(message)[-40:]] if message else []) + shown)


def _print_report(report) -> None:
    print(f"dataset: {report.dataset_dir}")
    print(f"tracks: {report.n_tracks} ({report.n_analysed} analysed now, {report.n_cached} unchanged and reused)")
    print(f"audio: {report.audio_seconds / 60:.1f} min in {report.seconds:.1f} s")
    if report.skipped:
        crashed = sum(item["reason"].startswith("worker crashed") for item in report.skipped)
        note = f" ({crashed} after their worker process crashed twice; a re-run retries them)" if crashed else ""
        print(f"skipped {len(report.skipped)} file(s){note}:")
        for item in report.skipped:
            print(f"  {item['path']}: {item['reason']}")


def cmd_ingest(args) -> None:
    from .dataset import IngestConfig, ingest

    bar = _Bar("ingest", "file")
    try:
        report = ingest(args.folder, args.name, manifest=args.manifest, labels=not args.no_labels,
                        config=dataclass_from_args(IngestConfig, args), progress=bar)
    finally:
        bar.close()  # before any error or interrupt message
    _print_report(report)


def cmd_migrate_dataset(args) -> None:
    from .dataset import migrate_dataset

    moved = migrate_dataset(args.name)
    print(f"dataset {args.name}: {moved} track(s) moved into shards" if moved else
          f"dataset {args.name}: already in shards, nothing to move")


def cmd_embed_dataset(args) -> None:
    from .embeddings import embed_dataset

    bar = _Bar("embed", "track")
    try:
        result = embed_dataset(args.run, args.dataset, engine=args.engine, ray_address=args.ray_address,
                               progress=bar)
    finally:
        bar.close()
    print(f"wrote {result.path}: {result.n_tracks} x {result.dim} float32 on {result.device} "
          f"in {result.seconds:.1f} s")


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
    from .reference import ReferenceConfig, reference_run

    _build_run(reference_run, args.dataset, dataclass_from_args(ReferenceConfig, args), desc="reference", unit="track")


def cmd_evaluate(args) -> None:
    from .evaluation import evaluate_run
    from .runs import load_run

    bar = _Bar("recordings", "query")
    try:
        result = evaluate_run(load_run(args.run), progress=bar)
    finally:
        bar.close()
    _print_recording(result)


def _build_run(build, dataset: str, cfg, *, desc: str, unit: str) -> None:
    """Run ``build(dataset, cfg=, progress=, stage=)`` (training or the reference) with a progress bar, then print
    the new run's id and evaluation."""
    from .runs import load_run

    bar = _Bar(desc, unit)
    try:
        run_id = build(dataset, cfg=cfg, progress=bar, stage=lambda message: (bar.close(), print(message, file=sys.stderr)))
    finally:
        bar.close()
    print(f"run: {run_id}")
    _print_eval(load_run(run_id).metrics)


def cmd_train(args) -> None:
    from .train import TrainConfig, train_run

    _build_run(train_run, args.dataset, dataclass_from_args(TrainConfig, args), desc="train", unit="epoch")


def cmd_embed(args) -> None:
    from .io import atomic_write_npy
    from .query import embed_files
    from .runs import load_run

    x = embed_files(load_run(args.run), args.files)
    atomic_write_npy(Path(args.out), x)
    print(f"wrote {args.out}: {x.shape[0]} x {x.shape[1]} float32")


def cmd_recommend(args) -> None:
    from .query import check_k, recommend_file
    from .runs import load_run
    from .tracks import display_name

    run = load_run(args.run)
    check_k(run, args.k)  # before decoding the query: a bad -k is told at once
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
    from .ann import EXACT_MAX_TRACKS, index_run
    from .runs import load_run

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

    from .runs import runs_table

    table = runs_table()
    if table.empty:
        print("no runs yet: `python -m core demo` builds one")
        return
    broken = table["broken"].notna()
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table[~broken].drop(columns="broken").to_string(index=False))
    for reason in table.loc[broken, "broken"]:
        print(f"cannot be opened: {reason}")


def cmd_demo(args) -> None:
    from .demo import DemoConfig, build_demo

    bar = _Bar("demo", "step")
    run_id = build_demo(cfg=dataclass_from_args(DemoConfig, args), progress=bar)
    bar.close()
    print(f"demo run: {run_id}")
    from .runs import load_run

    _print_eval(load_run(run_id).metrics)


# --- analysis: feature tables, classifiers, clusters (issue 4) --------------------------------------------


def cmd_import_features(args) -> None:
    from .feature_table import ImportConfig, import_feature_table

    report = import_feature_table(args.csv, args.name, label=args.label, id_col=args.id,
                                  config=dataclass_from_args(ImportConfig, args))
    print("\n".join(report.lines()))


def cmd_classify(args) -> None:
    import pandas as pd

    from .classify import ClassifyConfig, best_per_input, run_classifiers
    from .feature_table import load_source

    source = load_source(run=args.run, features=args.features)
    cfg = dataclass_from_args(ClassifyConfig, args)
    bar = _Bar("classify", "step")
    report = run_classifiers(source, cfg=cfg, progress=bar)
    bar.close()
    for note in report.warnings:
        print(f"warning: {note}")
    cols = ["input", "model", "test_accuracy", "balanced_accuracy", "macro_f1", "cv_mean", "cv_std", "train_seconds"]
    summary = report.summary
    this_job = summary[summary["input"].isin(cfg.input or source.available_inputs()) & summary["model"].isin(cfg.models)]
    with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
        print(this_job[cols].to_string(index=False))
        print("\nbest model per input (chosen by CV mean, not by the test split; all results in the folder):")
        print(best_per_input(summary)[cols].to_string(index=False))
    print(f"results: {report.results_dir} ({report.seconds / 60:.1f} min)")


def cmd_cluster(args) -> None:
    from .clusters import ClusterConfig, run_clusters
    from .feature_table import load_source

    source = load_source(run=args.run, features=args.features)
    bar = _Bar("cluster", "k")
    report = run_clusters(source, cfg=dataclass_from_args(ClusterConfig, args), progress=bar)
    bar.close()
    for s in report.summaries:
        agree = f", ARI with labels {s['ari']:.3f}, NMI {s['nmi']:.3f}" if s.get("ari") is not None else ""
        quality = "no silhouette" if s.get("silhouette") is None else f"silhouette {s['silhouette']:.3f}"
        noise = f", noise {s['noise_share']:.1%}" if s["method"] == "hdbscan" else ""
        sizes = sorted((n for c, n in s["sizes"].items() if int(c) >= 0), reverse=True)
        print(f"{s['input']}: {s['method']} k={s['k']} ({quality}{noise}), cluster sizes {sizes}{agree}")
    print(f"results: {report.results_dir}")


def cmd_tags(args) -> None:
    from .dataset import load_dataset
    from .runs import load_run
    from .tags import compute_dataset_tags, label_tag_agreement, top_tags

    dataset = args.dataset or load_run(args.run).config.get("dataset")
    bar = _Bar("tags", "track")
    table = compute_dataset_tags(dataset, max_patches=args.max_patches, progress=bar)
    bar.close()
    tags = table.drop(columns="track_id")
    tagged = int(tags.notna().any(axis=1).sum())
    print(f"dataset {dataset}: musicnn tags for {tagged} of {len(tags)} tracks; most likely over the library: "
          + ", ".join(f"{t} {v:.2f}" for t, v in top_tags(tags, tags.index.to_numpy(), n=5)))
    labels = load_dataset(dataset).tracks.set_index("track_id")["label"].reindex(table["track_id"])
    check = label_tag_agreement(tags, labels.to_numpy())
    for item in check.itertuples():
        print(f"  {item.label}: {item.matched} of {item.tracks} ({item.rate:.0%}) have a matching tag in their top 3 "
              f"({item.matching_tags})")


def add_analysis_commands(sub) -> None:
    """``import-features``, ``classify`` and ``cluster``."""
    from .classify import ClassifyConfig
    from .clusters import ClusterConfig
    from .feature_table import ImportConfig

    p = sub.add_parser("import-features", help="import a CSV of numeric audio features with a label column")
    p.add_argument("csv")
    p.add_argument("--name", required=True, help="dataset name to store it under")
    p.add_argument("--label", required=True, help="the label column")
    p.add_argument("--id", default=None, help="a unique id column (default: row numbers)")
    add_dataclass_args(p, ImportConfig)
    p.set_defaults(func=cmd_import_features)

    for name, cls, func, text in (
            ("classify", ClassifyConfig, cmd_classify, "genre classifiers on features / embeddings / both"),
            ("cluster", ClusterConfig, cmd_cluster,
             "k-means (k by silhouette) or HDBSCAN clusters (--method hdbscan) with cluster profiles")):
        p = sub.add_parser(name, help=text)
        source = p.add_mutually_exclusive_group(required=True)
        source.add_argument("--run", help="a run id (`python -m core runs` lists them)")
        source.add_argument("--features", metavar="NAME", help="a dataset's feature table (ingested or imported)")
        add_dataclass_args(p, cls)
        p.set_defaults(func=func)

    p = sub.add_parser("tags", help="musicnn's 50 tag likelihoods for every track of a dataset (computes the "
                                    "reference cache where it is missing)")
    named = p.add_mutually_exclusive_group(required=True)
    named.add_argument("--run", help="a run id: tags its dataset")
    named.add_argument("--dataset", help="an ingested dataset")
    p.add_argument("--max-patches", type=_positive_int, default=16, help="3 s patches per track (default: 16, as "
                   "the reference run's cache)")
    p.set_defaults(func=cmd_tags)


def cmd_collections(args) -> None:
    from pathlib import Path

    from . import collections as col
    from .runs import load_run
    from .tags import run_tags

    run = load_run(args.run)
    dataset = col.run_dataset(run)
    if args.name is None:
        listed = col.list_collections(dataset)
        print(f"dataset {dataset}: {len(listed)} collection(s)")
        for item in listed.itertuples():
            print(f"  {item.collection_id}  {item.name!r}: {item.n_tracks} tracks, saved {item.created}")
        return
    found = col.find_collection(dataset, args.name)
    rows = col.collection_rows(run, found)
    summary = col.selection_summary(run, rows, tags=run_tags(run))
    print(f"collection {found.name!r} ({found.collection_id}): {found.n_tracks} tracks, {len(rows)} in run {run.run_id}")
    print("labels: " + ", ".join(f"{r.label} {r.count} ({r.share:.0%})" for r in summary.label_mix.itertuples()))
    if summary.tags is not None:
        print("characteristic tags: " + ", ".join(f"{t} x{lift:.2f}" for t, lift in summary.tags))
    tracks = col.track_table(run, rows)
    for path, text in ((args.m3u, col.m3u_playlist), (args.csv, col.tracks_csv)):
        if path:
            Path(path).write_text(text(tracks))
            print(f"wrote {path}")
    if args.similar:
        print(f"{args.similar} more like these (mean cosine to the collection's tracks):")
        for item in col.more_like_these(run, rows, k=args.similar).itertuples():
            print(f"  {item.rank:>3}. {item.score:.3f}  {item.track_id}  {item.label}  {Path(str(item.path)).name}")


def add_collection_command(sub) -> None:
    p = sub.add_parser("collections", help="a run's dataset's collections (saved on the Map): list them, or show one "
                                           "with more like it, as M3U or CSV")
    p.add_argument("name", nargs="?", help="a collection's name or id (none: list them)")
    p.add_argument("--run", required=True, help="a run id (`python -m core runs` lists them)")
    p.add_argument("--similar", type=_positive_int, default=0, metavar="K", help="print the K tracks nearest it")
    p.add_argument("--m3u", metavar="FILE", help="write its tracks as an M3U playlist")
    p.add_argument("--csv", metavar="FILE", help="write its tracks as CSV")
    p.set_defaults(func=cmd_collections)


# --- how runs differ, and export to TensorBoard / MLflow (issue 17) ------------------------------------------


def cmd_compare(args) -> None:
    import json

    from .compare import compare_runs, comparison_lines

    result = compare_runs(args.runs, k=args.k, method=args.method, sample=args.sample)
    if args.json:
        print(json.dumps(result.to_dict(n_changed=args.changed), indent=2))
    else:
        print("\n".join(comparison_lines(result, n_changed=args.changed)))


def cmd_export(args) -> None:
    from .errors import ExportError
    from .export import export_mlflow, export_tensorboard
    from .runs import load_run

    run = load_run(args.run)
    if args.to == "tensorboard":
        if not args.out:
            raise ExportError("--to tensorboard needs --out DIR (the folder to give `tensorboard --logdir`)")
        done = export_tensorboard(run, args.out)
        for note in done.notes:
            print(f"note: {note}")
        print(f"wrote {done.folder}: {done.n_tracks} x {done.dim} embeddings with metadata and a projector config; "
              f"view with `tensorboard --logdir {done.folder}` (Projector tab)")
    else:
        done = export_mlflow(run, experiment=args.experiment)
        print(f"MLflow run {done.mlflow_run_id} in experiment {args.experiment!r} at {done.tracking_uri}: "
              f"{done.n_params} params, {done.n_metrics} metrics, the run folder as artifacts")


def add_comparison_commands(sub) -> None:
    """``compare`` and ``export``."""
    from .compare import MAX_RUNS, NEIGHBOURS, SAMPLE
    from .export import EXPERIMENT, TARGETS
    from .projection import METHODS

    p = sub.add_parser("compare", help=f"how 2-{MAX_RUNS} runs' embedding spaces differ on the tracks they share")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run ids or run folders (2 to 4)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("-k", type=_positive_int, default=NEIGHBOURS, help=f"neighbours per set (default {NEIGHBOURS})")
    p.add_argument("--method", choices=METHODS, default="umap", help="the map whose trustworthiness is measured")
    p.add_argument("--changed", type=_positive_int, default=10, help="most-changed tracks listed per pair")
    p.add_argument("--sample", type=_positive_int, default=SAMPLE,
                   help=f"above this many shared tracks, a seeded sample of them (default {SAMPLE})")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("export", help="a run to TensorBoard's embedding projector or to MLflow")
    p.add_argument("--run", required=True)
    p.add_argument("--to", choices=TARGETS, required=True)
    p.add_argument("--out", default=None, help="--to tensorboard: the folder to write (TensorBoard's --logdir)")
    p.add_argument("--experiment", default=EXPERIMENT, help=f"--to mlflow: the experiment (default {EXPERIMENT}); "
                   "the store is MLFLOW_TRACKING_URI, else ./mlruns")
    p.set_defaults(func=cmd_export)


def build_parser() -> argparse.ArgumentParser:
    from .dataset import IngestConfig
    from .demo import DemoConfig
    from .reference import ReferenceConfig
    from .train import TrainConfig

    parser = argparse.ArgumentParser(prog="python -m core", description="Timbre Atlas pipeline")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="decode a music folder into a dataset (log-mels, features, track table)")
    p.add_argument("folder")
    p.add_argument("--name", required=True, help="dataset name")
    p.add_argument("--manifest", default=None, help="CSV with path,label[,artist,title] (default: FOLDER/manifest.csv if present)")
    p.add_argument("--no-labels", action="store_true", help="ignore folder names and manifests")
    add_dataclass_args(p, IngestConfig)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("migrate-dataset", help="move a dataset's per-track log-mel files into shards (old layout)")
    p.add_argument("name")
    p.set_defaults(func=cmd_migrate_dataset)

    p = sub.add_parser("embed-dataset", help="embed every track of a dataset with a run's encoder (GPU if present)")
    p.add_argument("--run", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--engine", choices=("pool", "ray"), default="pool",
                   help="'pool': in this process; 'ray': Ray tasks, one per shard (default: pool)")
    p.add_argument("--ray-address", default="", help="with --engine ray: a cluster to join; empty = local Ray")
    p.set_defaults(func=cmd_embed_dataset)

    p = sub.add_parser("train", help="train the contrastive encoder on a dataset and write a run folder")
    p.add_argument("--dataset", required=True)
    add_dataclass_args(p, TrainConfig)
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
    p.add_argument("-k", type=_positive_int, default=5, help="how many tracks (1 to the library size)")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("index", help="build a run's ANN search index (train builds it for a large library)")
    p.add_argument("--run", required=True)
    p.add_argument("--force", action="store_true", help="build it even for a library searched exactly")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("runs", help="list the runs with their evaluation")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("demo", help="synthesise the demo corpus, ingest it and train a run")
    add_dataclass_args(p, DemoConfig)
    p.set_defaults(func=cmd_demo)

    add_analysis_commands(sub)
    add_collection_command(sub)
    add_comparison_commands(sub)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number of tracks")
    return value


def _run_arg(args) -> None:
    """``--run`` as given (an id, or a run folder path like ``artifacts/runs/ID/``) -> the run id when the
    folder is in the runs folder, else its absolute path."""
    from .paths import runs_dir
    from .runs import run_path

    if getattr(args, "run", None):
        path = run_path(args.run)
        args.run = path.name if path.parent == runs_dir() else str(path)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM (kill, a service manager) stops as Ctrl-C does: workers end, work is kept


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        _run_arg(args)
        args.func(args)
    except TimbreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished work is kept (a re-run of the same command resumes: ingest keeps every "
              "analysed file, training its last checkpoint; no half-written run is listed)", file=sys.stderr)
        return 130
    return 0

