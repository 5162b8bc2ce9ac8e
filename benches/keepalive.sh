#!/usr/bin/env bash
# MCP 2026-07-28 `tools/call whoami` round trips on ONE keep-alive connection through the
# example server (release build), with wrk as the client (`-c1`: one request in flight at a
# time, so requests/s = 1 / round-trip time). Server on CPU 0, wrk on CPU 1; ROUNDS runs of
# DURATION s each (defaults 3 and 4), each printed. Installs Debian's wrk when missing.
#
#   bash benches/keepalive.sh
#
# (benches/keepalive.mjs does the same with Node's fetch, which is itself the bottleneck.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-4}"
PORT="${PORT:-28610}"
if ! command -v wrk >/dev/null; then
    (apt-get install -y -q wrk >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }) >&2
fi
(cd "$root" && cargo build --quiet --release --example mcp_server)
work="$(mktemp -d)"
MCP_SERVER_BIND="127.0.0.1:$PORT" taskset -c 0 "$root/target/release/examples/mcp_server" \
    >"$work/out" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
    grep -q "TOKEN (scope mcp:tools)" "$work/out" && break
    sleep 0.1
done
token="$(grep -m1 "TOKEN (scope mcp:tools)" "$work/out" | awk '{print $NF}')"
[ -n "$token" ] || { echo "keepalive: the example printed no token" >&2; exit 1; }
meta='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"b","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}'
cat >"$work/whoami.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "whoami"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},$meta}}'
LUA
for round in $(seq "$ROUNDS"); do
    report="$(timeout $((DURATION + 20)) taskset -c 1 wrk -t1 -c1 -d"${DURATION}s" \
        -s "$work/whoami.lua" "http://127.0.0.1:$PORT/mcp")"
    if grep -q "Non-2xx" <<<"$report"; then
        echo "keepalive: refused answers" >&2
        exit 1
    fi
    echo "round $round: $(awk '/Requests\/sec/ {print $2}' <<<"$report") tools/call per second on one connection"
done
