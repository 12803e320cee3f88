#!/usr/bin/env bash
# Runs by ctest: starts a server example on a free port, waits for its "listening on <address>"
# line, runs the client example against that address, then waits for the server to exit (it
# serves a fixed number of connections in this mode) and prints both outputs.
#   run_server_and_client.sh <server> <client> <clients>
set -euo pipefail
server="$1" client="$2" clients="$3"
out="$(mktemp)"
"$server" 127.0.0.1:0 --connections "$clients" >"$out" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 600); do
  grep -q '^listening on ' "$out" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
address="$(sed -n 's/^listening on //p' "$out")"
[[ -n "$address" ]] || { echo "the server never said where it listens" >&2; cat "$out"; exit 1; }
"$client" "$address" "$clients" 100
wait "$pid"
cat "$out"
