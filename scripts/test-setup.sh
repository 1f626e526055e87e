#!/usr/bin/env bash
# Provisions what the tests need and is missing, from the machine's configured package sources.
# On a developer machine it only reports; with CI=true it installs (as root) and starts services.
set -euo pipefail
cd "$(dirname "$0")/.."
ci=${CI:-}
need() { command -v "$1" >/dev/null 2>&1; }
if ! need python3; then
  if [ "$ci" = true ]; then apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null; else echo "test-setup: python3 is missing; Python tests will fail"; fi
fi
python3 -c 'import venv, ensurepip' 2>/dev/null || {
  if [ "$ci" = true ]; then apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null; else echo "test-setup: python3 venv/ensurepip missing; requirements tests will skip"; fi
}
echo "test-setup: ready"
