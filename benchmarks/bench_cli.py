"""Command-line start-up: ``python -m core --help`` and every ``python -m core CMD --help``, each in a fresh
process, beside two references in the same run: ``python -c pass`` (the interpreter alone) and
``python -c "import torch"`` (what any command that imports torch pays before doing anything).

    .venv/bin/python -m benchmarks.bench_cli [--repeats 5] [--json]

Each command runs ``--repeats`` times, interleaved with the references (this machine is noisy: the ratios hold
better than the seconds); the figure of each is its median wall time. ``torch_loaded`` says whether the command's
process imported torch (it must not: :mod:`tests.test_cli_help` checks the same for every command).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH_PROBE = "import runpy, sys; sys.argv = ['core'] + sys.argv[1:]\n" \
              "try:\n    runpy.run_module('core', run_name='__main__')\n" \
              "except SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)"


def commands() -> list[str]:
    """The subcommands ``python -m core`` has (read from its parser, in this process)."""
    from core.cli import build_parser

    parser = build_parser()
    return sorted(next(a for a in parser._actions if a.dest == "command").choices)


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def loads_torch(words: list[str]) -> bool:
    done = subprocess.run([sys.executable, "-c", TORCH_PROBE, *words], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    return done.stderr.strip().splitlines()[-1] == "True"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command (median reported)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)

    cases = {"python -c pass": [sys.executable, "-c", "pass"],
             "python -c 'import torch'": [sys.executable, "-c", "import torch"],
             "python -m core --help": [sys.executable, "-m", "core", "--help"]}
    cases.update({f"python -m core {c} --help": [sys.executable, "-m", "core", c, "--help"] for c in commands()})
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):  # interleaved: a noisy spell hits every command alike
        for name, words in cases.items():
            seconds[name].append(timed(words))
    medians = {name: round(statistics.median(s), 3) for name, s in seconds.items()}
    helps = {name: s for name, s in medians.items() if name.startswith("python -m core")}
    torch_s = medians["python -c 'import torch'"]
    figures = {
        "repeats": args.repeats,
        "median_s": medians,
        "slowest_help": max(helps, key=helps.get),
        "slowest_help_s": max(helps.values()),
        "core_help_vs_import_torch": round(medians["python -m core --help"] / torch_s, 3),
        "torch_loaded": {name: loads_torch(cases[name][3:]) for name in helps},
    }
    if args.json:
        print(json.dumps(figures))
        return 0
    width = max(map(len, medians))
    for name, s in medians.items():
        torch_note = "" if name not in helps else ("  (imports torch)" if figures["torch_loaded"][name] else "")
        print(f"{name:<{width}}  {s:6.3f} s{torch_note}")
    print(f"slowest --help: {figures['slowest_help']} ({figures['slowest_help_s']:.3f} s); python -m core --help is "
          f"{figures['core_help_vs_import_torch']:.2f}x an `import torch`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
