#!/usr/bin/env bash
# Builds the web GUI into web/dist, which `go build` embeds into atlas-server. Without npm it
# says so and leaves web/dist alone: the server then serves a page that says how to build the GUI.
# npm packages are installed with `npm ci` when package-lock.json is newer than node_modules.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
  echo "web: npm not found; building atlas-server without the web GUI" >&2
  exit 0
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
