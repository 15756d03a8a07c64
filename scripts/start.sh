#!/usr/bin/env bash
# Install, build the demo run on first launch (about two minutes on a quiet machine), and open the dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "$(.venv/bin/python -c 'from core.runs.folder import list_runs; print(*list_runs()[:1])')" ]; then
  echo "no run yet: building the demo run (synthetic corpus, ingest, training; about two minutes, each stage with progress)..."
  .venv/bin/python -m core demo
fi
exec .venv/bin/streamlit run app.py "$@"
