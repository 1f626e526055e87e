#!/usr/bin/env bash
# Runs `CI=true make test` as a fresh machine would: in a clean clone of HEAD, with a fresh
# HOME, TMPDIR, npm cache and Go build cache (the Go module cache is shared: it holds only
# what go.sum pins). Whatever an earlier run left in this checkout, in /tmp or in $HOME is out
# of reach, so a test that depends on it fails here as it would in CI.
# What test-setup.sh installs or builds once per machine outside any clone (Debian packages,
# the worker images, the test clusters, MinIO) is shared, as it is on a CI machine that ran
# before. KEEP=1 keeps the directory afterwards.
set -euo pipefail
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
commit=$(git -C "$repo" rev-parse HEAD)
modcache=$(go env GOMODCACHE)
root=$(mktemp -d "${TMPDIR:-/tmp}/atlas-fresh-XXXXXX")
cleanup() {
  if [ "${KEEP:-}" = 1 ]; then echo "test-fresh: kept $root"; else chmod -R u+w "$root" 2>/dev/null; rm -rf "$root"; fi
}
trap cleanup EXIT
mkdir -p "$root/home" "$root/tmp" "$root/npm-cache" "$root/go-build" "$root/xdg-cache"
# As on a machine: other accounts (postgres, the jobs' users) may reach the clone and the
# temporary folder, and TMPDIR is everyone's, like /tmp.
chmod 0755 "$root" "$root/home"
chmod 1777 "$root/tmp"
git clone --quiet --no-hardlinks "$repo" "$root/atlas"
git -C "$root/atlas" checkout --quiet --detach "$commit"
echo "test-fresh: $commit in $root/atlas"
start=$(date +%s)
status=0
(
  cd "$root/atlas"
  exec env HOME="$root/home" TMPDIR="$root/tmp" XDG_CACHE_HOME="$root/xdg-cache" \
    npm_config_cache="$root/npm-cache" GOCACHE="$root/go-build" GOMODCACHE="$modcache" \
    GOPATH="$root/home/go" CI=true make test
) || status=$?
took=$(($(date +%s) - start))
printf 'test-fresh: %s after %dm%02ds\n' "$([ $status = 0 ] && echo passed || echo "FAILED ($status)")" $((took / 60)) $((took % 60))
exit $status
