"""``python -m api [--host 127.0.0.1] [--port 8000] [--run RUN] [--workers 1] [--cors-origin URL ...]``"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from core.base import TimbreError, add_dataclass_args, dataclass_from_args
from core.service import default_run

from .app import API_KEY_ENV, CONFIG_ENV, ApiConfig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api", description="Timbre Atlas REST API (OpenAPI docs at /docs). "
                                     f"Set {API_KEY_ENV} to require an X-API-Key header on every request.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    parser.add_argument("--workers", type=int, default=1, help="server processes, each with its own copy of the run "
                                                               "(default: 1)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    add_dataclass_args(parser, ApiConfig)
    args = parser.parse_args(argv)
    cfg = dataclass_from_args(ApiConfig, args)
    try:
        run = default_run(cfg.run)
    except TimbreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cfg = dataclasses.replace(cfg, run=None if run is None else str(run.path))  # every worker opens this folder
    if run is None:
        print("note: no run yet; build one with `python -m core demo` (the API answers 404 until then)", file=sys.stderr)
    import uvicorn

    os.environ[CONFIG_ENV] = json.dumps(dataclasses.asdict(cfg))  # read by every worker's app factory
    uvicorn.run("api.app:app_from_env", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
