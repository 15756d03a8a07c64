#!/usr/bin/env bash
# Install everything the tests need (Python packages, Chromium for the browser test) and run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install_browser.sh
exec .venv/bin/python -m pytest -q -rs "$@"
