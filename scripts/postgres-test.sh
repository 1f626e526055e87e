#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster in a temporary directory and stops it again at the end.
#
#   scripts/postgres-test.sh go test ./internal/store/postgres/   # run a command with
#                                                                 # ATLAS_TEST_POSTGRES_URL set
#   scripts/postgres-test.sh                                      # print the export line and keep
#                                                                 # the cluster until Ctrl-C
#
# The cluster trades durability for speed (fsync off): it holds test data only. Run as root, the
# server runs as the postgres user; run as anyone else, as that user. Without PostgreSQL, CI=true
# installs Debian's package; by hand the script says so and runs the command without the URL,
# so the PostgreSQL tests skip with that reason.
set -euo pipefail
say() { echo "postgres-test: $*" >&2; }

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
bin=$(bindir)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  if [ "${CI:-}" != true ]; then
    say "PostgreSQL is not installed (apt-get install postgresql; CI=true installs it)"
    [ $# -gt 0 ] || exit 1
    unset ATLAS_TEST_POSTGRES_URL
    exec "$@"
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  bin=$(bindir)
  say "installed $("$bin/postgres" --version)"
fi

# The cluster's directory also holds its socket, whose path has room for about 100 bytes; and
# run as root, the postgres user must be able to reach it. A TMPDIR that is too deep, or private
# to root, gives way to /tmp.
base=${TMPDIR:-/tmp}
if [ ${#base} -gt 64 ] || { [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$base" 2>/dev/null; }; then
  base=/tmp
fi
dir=$(mktemp -d "$base/atlas-pg.XXXXXX")
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
  as_pg=(runuser -u postgres --)
fi
# The server stops whichever way this script ends; the data goes with the directory.
sleeper=
stop() {
  [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null || true
  "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"${as_pg[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
  { cat "$dir/initdb.log" >&2; exit 1; }

# A free port: try a few random ones, as another cluster may take one between check and start.
started=
for _ in 1 2 3 4 5 6 7 8; do
  port=$((20000 + RANDOM % 40000))
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue # in use
  if "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 30 start -o \
    "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    >/dev/null 2>&1; then
    started=1
    break
  fi
done
if [ -z "$started" ]; then
  say "PostgreSQL did not start:"
  tail -n 20 "$dir/data/server.log" >&2 || true
  exit 1
fi

export ATLAS_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
if [ $# -gt 0 ]; then
  "$@" # not exec: the EXIT trap stops the server after the command
  exit
fi
echo "export ATLAS_TEST_POSTGRES_URL='$ATLAS_TEST_POSTGRES_URL'"
say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') runs in $dir until Ctrl-C"
while :; do sleep 3600 & sleeper=$!; wait "$sleeper" || true; done
