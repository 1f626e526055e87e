#!/usr/bin/env bash
# Provisions what the tests need and is missing, from the machine's configured package sources:
# Python 3 with venv, a Docker engine and the worker images, PostgreSQL, an S3 server, and
# single-node Kubernetes and Slurm clusters. With CI=true it installs (as root) and starts what is
# missing; by hand it only says what is missing, and the tests that need it skip with that reason.
set -euo pipefail
cd "$(dirname "$0")/.."
ci=${CI:-}
say() { echo "test-setup: $*"; }
need() { command -v "$1" >/dev/null 2>&1; }
apt_updated=
install() {
  if [ "$ci" != true ]; then say "missing $* (CI=true installs it)"; return 1; fi
  [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  say "installed $*"
}

need python3 || install python3 python3-venv || true
python3 -c 'import venv, ensurepip' 2>/dev/null || install python3-venv || true
# numpy scalars in log_metric are tested with any python3 that has numpy (Debian's package).
python3 -c 'import numpy' 2>/dev/null || { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; } || install python3-numpy || true

# Chromium for the web GUI's browser tests (Debian's package; playwright-core drives it and
# downloads nothing). Node.js and npm build the GUI and run those tests.
[ -x /usr/bin/chromium ] || install chromium || true
need npm || install nodejs npm || true

# Docker engine (Debian's docker.io; no systemd here, so dockerd is started by hand).
if ! need docker || ! need dockerd; then install docker.io || true; fi
if need dockerd && ! docker info >/dev/null 2>&1; then
  if [ "$ci" = true ]; then
    # It outlives this run, whose TMPDIR, HOME and folder may be a clean clone's: the machine's own, and /.
    (cd / && env TMPDIR=/tmp HOME=~root setsid dockerd >/tmp/atlas-dockerd.log 2>&1 &)
    for _ in $(seq 1 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
    docker info >/dev/null 2>&1 && say "started dockerd" || { say "dockerd did not start:"; tail -20 /tmp/atlas-dockerd.log; exit 1; }
  else
    say "no Docker engine running; Docker tests will skip"
  fi
fi
# The worker images (default and torch), built only when missing or older than their recipe:
# a Docker engine pays for them once.
if docker info >/dev/null 2>&1; then
  for variant in latest torch; do
    status=$(scripts/worker-image.sh --check "$variant") && continue
    if [ "$ci" = true ]; then
      need mmdebstrap || install mmdebstrap
      scripts/worker-image.sh "$variant"
    else
      say "$status; the tests that need it will skip"
    fi
  done
fi
# The single-node Kubernetes and Slurm clusters of the executors' end-to-end tests (after the
# worker image, which the Kubernetes cluster imports). With CI=true they are started, Kubernetes
# built first if this machine has not built its version yet (cached outside the clone), and they
# stay up for the next run, whose `up` only checks them; by hand this says what is missing.
for cluster in k8s slurm; do
  if [ "$ci" = true ]; then
    "scripts/$cluster-cluster.sh" up
  elif ! status=$("scripts/$cluster-cluster.sh" status 2>&1); then
    say "$cluster cluster: $(grep -E 'not |missing' <<<"$status" | sed 's/^[a-z0-9-]*: //' | head -n 3 | awk 'NR > 1 {printf "; "} {printf "%s", $0}'); its tests will skip"
  fi
done
# PostgreSQL for the PostgreSQL store's tests (scripts/postgres-test.sh runs a throwaway cluster).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || install postgresql || true
# A real S3 server (MinIO) for the S3 blob store's tests, built once per machine outside the
# clone (scripts/s3-server.sh runs a throwaway one).
if ! status=$(scripts/s3-server.sh --check); then
  if [ "$ci" = true ]; then scripts/s3-server.sh --build; else say "$status; the S3 tests will skip"; fi
fi
say "ready"
