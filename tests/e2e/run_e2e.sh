#!/usr/bin/env bash
# Real-browser end-to-end test of the ranking browser (the last step of `make test`;
# `make test-e2e` alone; `make figures` takes the README's screenshot with it).
# Installs what it needs when missing: Debian's Chromium (never Playwright's own browser
# download, which cannot work offline) and the Playwright Python package (driver only).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}

if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium (needs root and the Debian package registry)"
  if [ "$(id -u)" -ne 0 ]; then
    echo "not root: install it yourself with 'sudo apt-get install -y chromium'" >&2; exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! "$PY" -c "import playwright.sync_api" 2>/dev/null; then
  echo "installing the playwright Python package into $PY's environment"
  "$PY" -m pip install -q "playwright>=1.40"
fi

start=$(date +%s)
FMCNET_PROFILE=${FMCNET_PROFILE:-smoke} "$PY" -m pytest tests/e2e -m e2e -q -s -p no:cacheprovider "$@"
echo "e2e: $(( $(date +%s) - start )) s${FMCNET_E2E_SCREENSHOT:+; screenshot: $FMCNET_E2E_SCREENSHOT}"
