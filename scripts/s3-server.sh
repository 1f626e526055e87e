#!/usr/bin/env bash
# Starts a throwaway S3 server (MinIO, built from the Go module proxy) on 127.0.0.1 and stops it
# again at the end.
#
#   scripts/s3-server.sh go test ./internal/blob/s3/   # run a command with ATLAS_TEST_S3_URL set
#   scripts/s3-server.sh                               # print the export line and keep the server
#                                                      # until Ctrl-C
#   scripts/s3-server.sh --check                       # say whether the server is built
#   scripts/s3-server.sh --build                       # build it if it is not
#
# ATLAS_TEST_S3_URL is http://<access key>:<secret key>@127.0.0.1:<port>: the tests make their
# own buckets. The server keeps its objects in a temporary directory, gone with it.
#
# The binary is built once per machine and version into $ATLAS_TEST_CACHE/minio-<version>/
# (default /var/cache/atlas-test, or ~/.cache/atlas-test when that is not writable), outside
# the clone, so only a machine's first run pays for the build (about two minutes). Without it,
# CI=true builds it; by hand the script says so and runs the command without the URL, so the
# S3 tests skip with that reason.
set -euo pipefail
say() { echo "s3-server: $*" >&2; }

# MinIO has no releases on the module proxy: a pseudo-version pins the commit.
version=v0.0.0-20260212201848-7aac2a2c5b7c
module=github.com/minio/minio

cache_root() {
  if [ -n "${ATLAS_TEST_CACHE:-}" ]; then echo "$ATLAS_TEST_CACHE"; return; fi
  if mkdir -p /var/cache/atlas-test 2>/dev/null && [ -w /var/cache/atlas-test ]; then
    echo /var/cache/atlas-test
  else
    echo "${XDG_CACHE_HOME:-$HOME/.cache}/atlas-test"
  fi
}
bin="$(cache_root)/minio-$version/minio"

build() {
  local tmp
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/atlas-minio-build.XXXXXX")
  say "building MinIO $version from the Go module proxy into $(dirname "$bin") (once per machine)"
  if ! GOBIN="$tmp" GOFLAGS=-mod=mod CGO_ENABLED=0 go install -trimpath "$module@$version" >"$tmp/build.log" 2>&1; then
    tail -n 20 "$tmp/build.log" >&2
    rm -rf "$tmp"
    say "building MinIO failed"
    return 1
  fi
  # The binary appears under its name only when complete: a build cut short leaves nothing.
  mkdir -p "$(dirname "$bin")"
  mv "$tmp/minio" "$bin.tmp.$$"
  mv "$bin.tmp.$$" "$bin"
  rm -rf "$tmp"
  say "built $bin"
}

case "${1:-}" in
--check)
  if [ -x "$bin" ]; then echo "MinIO $version is built ($bin)"; exit 0; fi
  echo "MinIO $version is not built (scripts/s3-server.sh --build, or CI=true, builds it into $(dirname "$bin"))"
  exit 1
  ;;
--build)
  [ -x "$bin" ] || build
  exit
  ;;
esac

if [ ! -x "$bin" ]; then
  if [ "${CI:-}" != true ]; then
    say "MinIO is not built (scripts/s3-server.sh --build, or CI=true, builds it once per machine)"
    [ $# -gt 0 ] || exit 1
    unset ATLAS_TEST_S3_URL
    exec "$@"
  fi
  build
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/atlas-s3.XXXXXX")
pid=
sleeper=
stop() {
  [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null || true
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

user=atlastest
secret=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
# A free port: try a few random ones, as another server may take one between check and start.
started=
for _ in 1 2 3 4 5 6 7 8; do
  port=$((20000 + RANDOM % 40000))
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue # in use
  # Nothing leaves the machine: no update checks, no console, no call home.
  MINIO_ROOT_USER=$user MINIO_ROOT_PASSWORD=$secret MINIO_UPDATE=off MINIO_BROWSER=off \
    MINIO_CALLHOME_ENABLE=off CI= \
    "$bin" server "$dir/data" --quiet --address "127.0.0.1:$port" >"$dir/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/minio/health/ready" 2>/dev/null; then
      started=1
      break 2
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
done
if [ -z "$started" ]; then
  say "MinIO did not start:"
  tail -n 20 "$dir/server.log" >&2 || true
  exit 1
fi

export ATLAS_TEST_S3_URL="http://$user:$secret@127.0.0.1:$port"
if [ $# -gt 0 ]; then
  "$@" # not exec: the EXIT trap stops the server after the command
  exit
fi
echo "export ATLAS_TEST_S3_URL='$ATLAS_TEST_S3_URL'"
say "MinIO $version runs on 127.0.0.1:$port with its data in $dir until Ctrl-C"
while :; do sleep 3600 & sleeper=$!; wait "$sleeper" || true; done
