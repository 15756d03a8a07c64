#!/usr/bin/env bash
# Install Debian's Chromium and chromedriver for the browser test (tests/test_browser.py), when missing.
# Playwright's own browser download is not used. With CI set, a browser that cannot be installed is an error;
# elsewhere it is a warning and the browser test skips with the reason.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  echo "browser: $(/usr/bin/chromium --version 2>/dev/null | head -n1) (already installed)"
  exit 0
fi

in_ci() { case "${CI:-}" in ""|0|false|False|FALSE|no) return 1 ;; *) return 0 ;; esac; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  fi
fi

install() {
  command -v apt-get >/dev/null 2>&1 || { echo "apt-get not found"; return 1; }
  [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ] || { echo "need root (or passwordless sudo) for apt-get"; return 1; }
  echo "installing chromium and chromium-driver with apt-get..."
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver
}

if install && [ -x /usr/bin/chromium ]; then
  echo "browser: $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
  exit 0
fi
if in_ci; then
  echo "error: Chromium could not be installed; the browser test cannot run in CI" >&2
  exit 1
fi
echo "warning: Chromium is not installed; the browser test will be skipped (install: apt-get install chromium chromium-driver)" >&2
exit 0
