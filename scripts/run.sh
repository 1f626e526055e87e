#!/usr/bin/env bash
# `make run`: start atlas-server with its embedded defaults (SQLite and data in
# $FOUNDATIONS_HOME, default ~/.foundations; GUI and API on port 5555), and, the first time,
# submit the sample project so there is a job to look at. Ctrl-C stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/bin
port=${ATLAS_PORT:-5555}
url=http://127.0.0.1:$port

"$bin/atlas-server" start --port "$port" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null' INT TERM EXIT

for _ in $(seq 1 100); do
  curl -fsS "$url/api/v1/health" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { echo "atlas-server did not start" >&2; exit 1; }
  sleep 0.1
done

if [ "$(curl -fsS "$url/api/v1/projects")" = "[]" ]; then
  demo=$(mktemp -d)
  echo
  echo "First start: submitting the sample project (foundations init + foundations submit)."
  (cd "$demo" && "$bin/foundations" init hello-atlas >/dev/null && cd hello-atlas && "$bin/foundations" submit scheduler . main.py) || true
  rm -rf "$demo"
fi
echo
echo "Atlas is running: open $url in a browser. CLI: $bin/foundations --help. Ctrl-C to stop."
wait $server
