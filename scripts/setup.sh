#!/usr/bin/env bash
# Create .venv with Python 3.11 and install the project (editable, with its test tools) and its requirements
# (skipped when nothing changed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(cat pyproject.toml requirements.txt requirements-dev.txt | sha1sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing Python packages into .venv (first time: a few minutes; each package is named as it comes)..."
  # torch==2.13.0 resolves to the CPU wheel on disk; only what pip is doing is shown (a package collected, the
  # install, the result), not its notes about absent local index folders or what is already there
  .venv/bin/python -m pip install --progress-bar off --disable-pip-version-check -e ".[dev]" 2>&1 \
    | grep --line-buffered -E "^(Collecting|Installing|Successfully|ERROR|error)" || true
  # the import check itself prints nothing: streamlit_webrtc's import warns of "no runtime" outside a server
  .venv/bin/python -c "import logging; logging.disable(logging.WARNING); import torch, streamlit, librosa, streamlit_webrtc, xgboost, lightgbm, catboost, fastapi, telegram, faiss, ray, core"
  echo "$want" > "$stamp"
fi
