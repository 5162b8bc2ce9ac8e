#!/usr/bin/env bash
# Interoperability suite: real authorization servers (oidc-provider) and real MCP clients
# (TypeScript SDK, Python SDK, MCP Inspector CLI) against examples/mcp_server, on 127.0.0.1.
#
#   bash tests/interop/run.sh
#
# Installs what it needs on first run (npm ci into tests/interop/node_modules, including a
# Node.js 22 binary for the Inspector; a Python virtual environment in tests/interop/.venv),
# builds the example, starts every process itself and stops each by PID.
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
mkdir -p .logs

echo "interop: cargo build --example mcp_server" >&2
(cd "$root" && cargo build --quiet --example mcp_server)

exec node run.mjs
