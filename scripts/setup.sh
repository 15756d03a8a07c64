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
  echo "installing Python packages into .venv (first time: a few minutes)..."
  # torch==2.13.0 resolves to the CPU wheel on disk; pip's notes about absent local index folders are noise
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import torch, streamlit, librosa, streamlit_webrtc, xgboost, lightgbm, catboost, fastapi, telegram, faiss, ray, core"
  echo "$want" > "$stamp"
fi
