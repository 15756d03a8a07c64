"""``python -m core <command>``: the pipeline from the shell. Flags of configs come from their dataclasses.

One module per topic registers its commands: :mod:`core.cli.data` (libraries and datasets),
:mod:`core.cli.runs` (training and using runs), :mod:`core.cli.analysis` (classifiers, clusters, tags,
collections, comparisons, exports); :mod:`core.cli.common` holds what they share.
"""
from __future__ import annotations

import argparse
import signal
import sys

from core.base.errors import TimbreError
from core.cli.analysis import add_analysis_commands, add_collection_command, add_comparison_commands
from core.cli.data import add_data_commands
from core.cli.runs import add_run_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Timbre Atlas pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    add_data_commands(sub)
    add_run_commands(sub)
    add_analysis_commands(sub)
    add_collection_command(sub)
    add_comparison_commands(sub)
    return parser


def _run_arg(args) -> None:
    """``--run`` as given (an id, or a run folder path like ``artifacts/runs/ID/``) -> the run id when the
    folder is in the runs folder, else its absolute path."""
    from core.base.paths import runs_dir
    from core.runs.folder import run_path

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
