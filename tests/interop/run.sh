#!/usr/bin/env bash
# Interoperability suite: real authorization servers (oidc-provider) and real MCP clients
# (TypeScript SDK, Python SDK, MCP Inspector CLI) against examples/mcp_server, on 127.0.0.1
# (run.mjs); the zero-configuration example's embedded development authorization server with
# real clients (devauth.mjs) and with the MCP Inspector web UI in headless Chromium, logging in
# on its consent page (browser.mjs, screenshot in .logs/inspector-whoami.png); then two replicas
# of it on a real Redis, and its 2026-07-28 behaviour (replicas.mjs); connected accounts,
# token exchange and introspection (accounts.mjs, exchange.mjs, introspect.mjs); DPoP with the
# TypeScript SDK v2 client (dpop.mjs).
#
#   bash tests/interop/run.sh
#
# Installs what it needs on first run (npm ci into tests/interop/node_modules, including a
# Node.js 22 binary for the Inspector and playwright-core; a Python virtual environment in
# tests/interop/.venv), Debian's redis-server and chromium when they are missing, builds the
# example, starts every process itself and stops each by PID.
# Ends with a line `N passed, M failed`; exits non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    echo "interop: npm ci" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2
fi
if [ ! -x .venv/bin/python ] || [ requirements.txt -nt .venv ]; then
    echo "interop: python venv" >&2
    rm -rf .venv
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt >&2
fi
if ! command -v redis-server >/dev/null; then
    echo "interop: apt-get install redis-server" >&2
    (apt-get install -y -q redis-server >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q redis-server >/dev/null; }) >&2
fi
if [ ! -x /usr/bin/chromium ]; then
    echo "interop: apt-get install chromium" >&2
    (apt-get install -y -q chromium >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }) >&2
fi
mkdir -p .logs

echo "interop: cargo build --example mcp_server --example connected_accounts" >&2
(cd "$root" && cargo build --quiet --example mcp_server --example connected_accounts)

status=0
# The connected-account tests and the DPoP replay check shared by two replicas on a real
# Redis: a private server on a Unix socket, stopped by its PID.
redis_dir=$(mktemp -d)
redis-server --port 0 --unixsocket "$redis_dir/redis.sock" --unixsocketperm 700 \
    --save "" --appendonly no >"$redis_dir/log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do [ -S "$redis_dir/redis.sock" ] && break; sleep 0.1; done
echo "interop: connected accounts and the DPoP replay check on Redis (cargo test -- --ignored)" >&2
(cd "$root" && PR_TEST_REDIS_URL="unix://$redis_dir/redis.sock" \
    cargo test --quiet --all-features --test it -- --ignored downstream::accounts::redis dpop_layer::redis) || status=1
kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null || true
rm -rf "$redis_dir"
node run.mjs || status=1
node devauth.mjs || status=1
node browser.mjs || status=1
node replicas.mjs || status=1
node accounts.mjs || status=1
node exchange.mjs || status=1
node introspect.mjs || status=1
node dpop.mjs || status=1
exit $status
