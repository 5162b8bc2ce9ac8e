// 50 sequential MCP 2026-07-28 `tools/call whoami` requests on one keep-alive connection
// (Node's fetch) against a running example server; prints requests/s.
//
//   cargo build --release --example mcp_server
//   MCP_SERVER_BIND=127.0.0.1:8000 target/release/examples/mcp_server   # prints TOKEN
//   node benches/keepalive.mjs http://127.0.0.1:8000/mcp "$TOKEN"
const [url, token] = process.argv.slice(2);
const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'b', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };
const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {}, _meta: meta } });
const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'whoami' };
for (let i = 0; i < 5; i++) await (await fetch(url, { method: 'POST', headers, body })).text();
const n = 50, t0 = performance.now();
for (let i = 0; i < n; i++) {
  const r = await fetch(url, { method: 'POST', headers, body });
  const t = await r.text();
  if (r.status !== 200) throw new Error(`${r.status} ${t}`);
}
const s = (performance.now() - t0) / 1000;
console.log(`${(n / s).toFixed(0)} requests/s (${(1000 * s / n).toFixed(1)} ms each)`);
