"""Commands on libraries and datasets: ingest, migrate-dataset, embed-dataset, import-features."""
from __future__ import annotations

from core.base.config import add_dataclass_args, dataclass_from_args
from core.cli.common import Bar


def analysed_now(n_analysed: int, n_rejected: int, n_cached: int) -> str:
    """"6 analysed now, 6 could not be used, 0 unchanged and reused": a file that could not be used is never
    counted as analysed."""
    rejected = f", {n_rejected} could not be used (skipped)" if n_rejected else ""
    return f"{n_analysed} analysed now{rejected}, {n_cached} unchanged and reused"


def _print_report(report) -> None:
    print(f"dataset: {report.dataset_dir}")
    print(f"tracks: {report.n_tracks} ({analysed_now(report.n_analysed, report.n_rejected, report.n_cached)})")
    print(f"audio: {report.audio_seconds / 60:.1f} min in {report.seconds:.1f} s")
    if report.skipped:
        crashed = sum(item["reason"].startswith("worker crashed") for item in report.skipped)
        note = f" ({crashed} after their worker process crashed twice; a re-run retries them)" if crashed else ""
        print(f"skipped {len(report.skipped)} file(s){note}:")
        for item in report.skipped:
            print(f"  {item['path']}: {item['reason']}")


def cmd_ingest(args) -> None:
    from core.data.config import IngestConfig
    from core.data.ingest import ingest

    bar = Bar("ingest", "file")
    try:
        report = ingest(args.folder, args.name, manifest=args.manifest, labels=not args.no_labels,
                        config=dataclass_from_args(IngestConfig, args), progress=bar)
    finally:
        bar.close()  # before any error or interrupt message
    _print_report(report)


def cmd_migrate_dataset(args) -> None:
    from core.data.ingest import migrate_dataset

    moved = migrate_dataset(args.name)
    print(f"dataset {args.name}: {moved} track(s) moved into shards" if moved else
          f"dataset {args.name}: already in shards, nothing to move")


def cmd_embed_dataset(args) -> None:
    from core.runs.dataset_embeddings import embed_dataset

    bar = Bar("embed", "track")
    try:
        result = embed_dataset(args.run, args.dataset, engine=args.engine, ray_address=args.ray_address,
                               progress=bar)
    finally:
        bar.close()
    print(f"wrote {result.path}: {result.n_tracks} x {result.dim} float32 on {result.device} "
          f"in {result.seconds:.1f} s")


def add_data_commands(sub) -> None:
    """ingest, migrate-dataset, embed-dataset."""
    from core.data.config import IngestConfig

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
