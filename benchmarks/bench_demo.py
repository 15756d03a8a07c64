"""Where the demo's build time goes: ``core.demo.build_demo`` from nothing in a fresh artifacts folder, timed per
stage (synthesis, ingest, the musicnn teacher, training, embedding, passages, evaluation, maps, fingerprints,
writing) in wall and CPU seconds, with the load average at the start and the end (the machine is shared).

    python -m benchmarks.bench_demo [--json] [--tracks-per-style 8] [--epochs 60] [--keep DIR]

Stages come from the progress the demo reports (``<stage>: <what>``; each step around training is one
"working: ..." message), so what is timed is what the Runs page and ``python -m core demo`` show. The numba cache
(``TIMBRE_CACHE``) is the project's, as on a first launch after set-up; ``--cold-numba`` gives it an empty one.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class StageClock:
    """A :class:`core.base.progress.Progress` that closes a stage when the next one starts."""

    def __init__(self):
        self.stages: list[dict] = []
        self.current = None

    def _start(self, name: str) -> None:
        self._close()
        self.current = {"stage": name, "started": time.perf_counter(), "cpu": cpu_seconds()}

    def _close(self) -> None:
        if self.current is not None and self.current["stage"] is not None:
            c = self.current
            self.stages.append({"stage": c["stage"], "wall_s": round(time.perf_counter() - c["started"], 2),
                                "cpu_s": round(cpu_seconds() - c["cpu"], 2)})
            self.current = None

    def __call__(self, done: int, total: int, message: str = "", **values: float) -> None:
        stage, _, what = message.partition(": ")
        if stage == "working":
            # a step around training is announced as one "working: <step>" of 1; its own progress follows
            name = what if total == 1 and done == 1 else (self.current or {}).get("stage", what)
        else:
            name = stage
        if self.current is not None and self.current["stage"] is None:  # the gap since the last stage ended
            self.current["stage"] = f"{name} (start-up)"
        if self.current is None or name != self.current["stage"]:
            self._start(name)
        if stage != "working" and done >= total:  # what comes before the next stage's first report is its start-up
            self._start(None)

    def finish(self) -> list[dict]:
        self._close()
        return self.stages


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--tracks-per-style", type=int, default=None, help="the demo's default unless given")
    parser.add_argument("--epochs", type=int, default=None, help="the demo's default unless given")
    parser.add_argument("--cold-numba", action="store_true", help="an empty numba cache (a fresh clone)")
    parser.add_argument("--keep", default=None, help="build in this folder and keep it (default: a temp folder)")
    args = parser.parse_args(argv)

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-demo-"))
    os.environ["TIMBRE_ARTIFACTS"] = str(root / "artifacts")
    if args.cold_numba:
        os.environ["TIMBRE_CACHE"] = str(root / "cache")
    from core.demo import DemoConfig, build_demo

    overrides = {k: v for k, v in (("tracks_per_style", args.tracks_per_style), ("epochs", args.epochs)) if v}
    clock, load0 = StageClock(), os.getloadavg()[0]
    started, cpu0 = time.perf_counter(), cpu_seconds()
    try:
        run_id = build_demo(cfg=DemoConfig(**overrides), progress=clock)
        stages = clock.finish()
        total = {"wall_s": round(time.perf_counter() - started, 1), "cpu_s": round(cpu_seconds() - cpu0, 1)}
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    result = {"run_id": run_id, "config": overrides or "defaults", "total": total, "stages": stages,
              "load_average": [round(load0, 2), round(os.getloadavg()[0], 2)], "cpus": os.cpu_count()}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"demo built in {total['wall_s']} s wall, {total['cpu_s']} s CPU (load {load0:.1f} -> "
              f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs)")
        for s in stages:
            print(f"  {s['wall_s']:7.2f} s  {s['cpu_s']:7.2f} s CPU  {s['stage']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
