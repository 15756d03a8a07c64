"""Commands on what a run holds: classify, cluster, tags, collections, compare, export."""
from __future__ import annotations

from pathlib import Path

from core.base.config import add_dataclass_args, bounded, dataclass_from_args, field_type
from core.cli.common import Bar

COUNT = bounded(int, at_least=1, what="a count")  # -k, --changed, --similar, --sample: how many


def cmd_import_features(args) -> None:
    from core.data.config import ImportConfig
    from core.data.tables import import_feature_table

    report = import_feature_table(args.csv, args.name, label=args.label, id_col=args.id,
                                  config=dataclass_from_args(ImportConfig, args))
    print("\n".join(report.lines()))


def cmd_classify(args) -> None:
    import pandas as pd

    from core.analysis.classify import best_per_input, run_classifiers
    from core.analysis.config import ClassifyConfig
    from core.analysis.sources import load_source

    source = load_source(run=args.run, features=args.features)
    cfg = dataclass_from_args(ClassifyConfig, args)
    bar = Bar("classify", "step")
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
    from core.analysis.clusters import run_clusters
    from core.analysis.config import ClusterConfig
    from core.analysis.sources import load_source

    source = load_source(run=args.run, features=args.features)
    cfg = dataclass_from_args(ClusterConfig, args)
    bar = Bar("cluster", "fit" if cfg.method == "kmeans" else "step")  # one k-means fit per k; HDBSCAN: steps
    report = run_clusters(source, cfg=cfg, progress=bar)
    bar.close()
    for s in report.summaries:
        agree = f", ARI with labels {s['ari']:.3f}, NMI {s['nmi']:.3f}" if s.get("ari") is not None else ""
        quality = "no silhouette" if s.get("silhouette") is None else f"silhouette {s['silhouette']:.3f}"
        noise = f", noise {s['noise_share']:.1%}" if s["method"] == "hdbscan" else ""
        sizes = sorted((n for c, n in s["sizes"].items() if int(c) >= 0), reverse=True)
        found = f"k={s['k']} (best silhouette)" if s["method"] == "kmeans" else f"{s['k']} clusters"
        print(f"{s['input']}: {s['method']} {found} ({quality}{noise}), cluster sizes {sizes}{agree}")
        print_profiles(source, s["input"], s["method"])
    print(f"results: {report.results_dir}")


def print_profiles(source, input: str, method: str) -> None:
    """Each cluster's profile, as the Clusters page's cards give it: size, labels, characteristic musicnn tags
    and audio features, the tracks nearest its centre."""
    from core.analysis.clusters import cluster_cards, clusters_dir, load_clusters
    from core.analysis.tags import aligned_tags
    from core.data.tracks import display_names

    result = load_clusters(clusters_dir(source), input, method)
    tags = aligned_tags(source.dataset, source.tracks["track_id"])
    names = dict(zip(source.tracks["track_id"].astype(str), display_names(source.tracks)))
    for card in cluster_cards(result, track_ids=source.tracks["track_id"].astype(str), tags=tags):
        parts = [f"{card['size']} tracks ({card['share']:.0%})",
                 "labels " + ", ".join(f"{label} {n}" for label, n in list(card["labels"].items())[:3])]
        if card["tags"]:
            parts.append("tags " + ", ".join(f"{tag} x{lift:.2f}" for tag, lift in card["tags"][:3]))
        if card["features"]:
            parts.append("features " + ", ".join(f"{f} {z:+.1f}" for f, z in card["features"][:3]))
        parts.append("near the centre: " + ", ".join(names.get(t, t) for t in card["central"]))
        print(f"  {card['name']}: " + "; ".join(parts))


def cmd_tags(args) -> None:
    from core.analysis.tags import compute_dataset_tags, label_tag_agreement, tag_patches, top_tags
    from core.data.dataset import load_dataset
    from core.runs.folder import load_run

    dataset = args.dataset or load_run(args.run).config.get("dataset")
    patches, why = tag_patches(load_dataset(dataset).path, args.max_patches)
    print(f"musicnn tags from {why}")
    bar = Bar("tags", "track")
    table = compute_dataset_tags(dataset, max_patches=patches, progress=bar)
    bar.close()
    tags = table.drop(columns="track_id")
    tagged = int(tags.notna().any(axis=1).sum())
    print(f"dataset {dataset}: musicnn tags for {tagged} of {len(tags)} tracks; most likely over the library: "
          + ", ".join(f"{t} {v:.2f}" for t, v in top_tags(tags, tags.index.to_numpy(), n=5)))
    labels = load_dataset(dataset).tracks.set_index("track_id")["label"].reindex(table["track_id"])
    check = label_tag_agreement(tags, labels.to_numpy())
    for item in check.itertuples():
        if item.rate is None or item.rate != item.rate:  # no tag names this label
            print(f"  {item.label}: not checked ({item.matching_tags})")
            continue
        print(f"  {item.label}: {item.matched} of {item.tracks} ({item.rate:.0%}) have a matching tag in their top 3 "
              f"({item.matching_tags})")


def add_analysis_commands(sub) -> None:
    """``import-features``, ``classify`` and ``cluster``."""
    from core.analysis.config import ClassifyConfig, ClusterConfig, TagsConfig
    from core.data.config import ImportConfig

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
    p.add_argument("--max-patches", type=field_type(TagsConfig, "max_patches"), default=None,
                   help="3 s patches per track (default: the "
                   "musicnn cache the dataset already has, from a training or a reference run; else 16)")
    p.set_defaults(func=cmd_tags)


def cmd_collections(args) -> None:

    from core.analysis import collections as col
    from core.analysis.tags import run_tags
    from core.runs.folder import load_run
    from core.service.query import more_like_these

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
        for item in more_like_these(run, rows, k=args.similar).itertuples():
            print(f"  {item.rank:>3}. {item.score:.3f}  {item.track_id}  {item.label}  {Path(str(item.path)).name}")


def add_collection_command(sub) -> None:
    p = sub.add_parser("collections", help="a run's dataset's collections (saved on the Map): list them, or show one "
                                           "with more like it, as M3U or CSV")
    p.add_argument("name", nargs="?", help="a collection's name or id (none: list them)")
    p.add_argument("--run", required=True, help="a run id (`python -m core runs` lists them)")
    p.add_argument("--similar", type=COUNT, default=0, metavar="K", help="print the K tracks nearest it")
    p.add_argument("--m3u", metavar="FILE", help="write its tracks as an M3U playlist")
    p.add_argument("--csv", metavar="FILE", help="write its tracks as CSV")
    p.set_defaults(func=cmd_collections)


def cmd_compare(args) -> None:
    import json

    from core.analysis.compare import compare_runs, comparison_lines
    from core.search.projection import METHODS

    methods = [args.method] if args.method else list(METHODS)  # every projection: the pages show the one chosen
    result = compare_runs(args.runs, k=args.k, method=methods[-1], sample=args.sample)
    if args.json:
        print(json.dumps(result.to_dict(n_changed=args.changed, methods=methods), indent=2))
    else:
        print("\n".join(comparison_lines(result, n_changed=args.changed, methods=methods)))


def cmd_export(args) -> None:
    from core.analysis.export import export_mlflow, export_tensorboard
    from core.base.errors import ExportError
    from core.runs.folder import load_run

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
        if done.reused:
            print(f"already exported: MLflow run {done.mlflow_run_id} in experiment {args.experiment!r} at "
                  f"{done.tracking_uri} (delete it there to export this run again)")
            return
        print(f"MLflow run {done.mlflow_run_id} in experiment {args.experiment!r} at {done.tracking_uri}: "
              f"{done.n_params} params, {done.n_metrics} metrics, the run folder as artifacts")


def add_comparison_commands(sub) -> None:
    """``compare`` and ``export``."""
    from core.analysis.config import EXPERIMENT, MAX_RUNS, NEIGHBOURS, SAMPLE, TARGETS
    from core.base.constants import MAP_METHODS

    p = sub.add_parser("compare", help=f"how 2-{MAX_RUNS} runs' embedding spaces differ on the tracks they share")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run ids or run folders (2 to 4)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("-k", type=COUNT, default=NEIGHBOURS, help=f"neighbours per set (default {NEIGHBOURS})")
    p.add_argument("--method", choices=MAP_METHODS, default=None,
                   help="the map whose trustworthiness is given (default: every one, each named; the same figure "
                        "as the Map and Compare pages')")
    p.add_argument("--changed", type=COUNT, default=10, help="most-changed tracks listed per pair")
    p.add_argument("--sample", type=COUNT, default=SAMPLE,
                   help=f"above this many shared tracks, a seeded sample of them (default {SAMPLE})")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("export", help="a run to TensorBoard's embedding projector or to MLflow")
    p.add_argument("--run", required=True)
    p.add_argument("--to", choices=TARGETS, required=True)
    p.add_argument("--out", default=None, help="--to tensorboard: the folder to write (TensorBoard's --logdir)")
    p.add_argument("--experiment", default=EXPERIMENT, help=f"--to mlflow: the experiment (default {EXPERIMENT}); "
                   "the store is MLFLOW_TRACKING_URI, else ./mlruns")
    p.set_defaults(func=cmd_export)
