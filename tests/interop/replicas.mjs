// The example server as a deployment runs it: two replicas behind one canonical URL sharing a
// session key and a real Redis (Debian's redis-server) as rmcp's session store, the
// `MCP_SERVER_TOOL_GATE=headers` mode, MCP 2026-07-28 requests with their headers, prompts
// and resources with requirements, and configuration errors that stop the server with exit
// code 2; and the TypeScript SDK v2 client (v2.mjs). Started by run.sh after run.mjs; every process is stopped by PID at the end.

import crypto from 'node:crypto';

import {
  ALGS,
  assert,
  check,
  clientToken,
  eq,
  finish,
  freePort,
  log,
  results,
  run,
  SERVER_BIN,
  start,
  startAuthorizationServers,
  stopAll,
} from './lib.mjs';
import { v2Checks } from './v2.mjs';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1Transport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [portA, portB, portX, portR, port1, port2, port3] = await Promise.all(
  Array.from({ length: 7 }, () => freePort()),
);
const A = `http://127.0.0.1:${portA}`;
// The canonical URL both replicas serve (a load balancer's, in production).
const MCP = `http://127.0.0.1:${port1}/mcp`;
const REPLICA = [1, 2].map((i) => `http://127.0.0.1:${[port1, port2][i - 1]}/mcp`);
const HEADERS_MODE = `http://127.0.0.1:${port3}/mcp`;
const SESSION_KEY = crypto.randomBytes(32).toString('base64url');
const PV = '2026-07-28';
const META = {
  'io.modelcontextprotocol/protocolVersion': PV,
  'io.modelcontextprotocol/clientInfo': { name: 'interop-replicas', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

function token(clientId, scope = 'mcp:tools', resource = MCP) {
  return clientToken(A, clientId, { scope, resource });
}

/** POSTs a JSON-RPC message; answers { status, headers, text, messages }. */
async function post(url, bearer, body, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${bearer}`,
      ...headers,
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let messages;
  try {
    messages = [JSON.parse(text)];
  } catch {
    messages = text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim())
      .filter((d) => d).map((d) => JSON.parse(d));
  }
  return { status: res.status, headers: res.headers, text, messages };
}

/** A 2026-07-28 request with the headers a conforming client sends. */
function call2026(url, bearer, method, params = {}, extra = {}) {
  const name = params.name ?? params.uri;
  return post(url, bearer, { jsonrpc: '2.0', id: 1, method, params: { ...params, _meta: META } }, {
    'mcp-protocol-version': PV,
    'mcp-method': method,
    ...(name ? { 'mcp-name': name } : {}),
    ...extra,
  });
}

/** Opens a 2025-11-25 session on `url`; answers the session id the client holds. */
async function openSession(url, bearer) {
  const init = await post(url, bearer, {
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'interop-replicas', version: '1' } },
  });
  eq(init.status, 200, `initialize: ${init.text}`);
  const session = init.headers.get('mcp-session-id');
  assert(session, 'a session id');
  const done = await post(url, bearer, { jsonrpc: '2.0', method: 'notifications/initialized' },
    { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' });
  eq(done.status, 202, 'initialized');
  return session;
}

function inSession(url, bearer, session, method, params) {
  return post(url, bearer, { jsonrpc: '2.0', id: 2, method, params },
    { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' });
}

const servers = JSON.stringify([{ issuer: A, algorithms: ALGS }]);
function replicaEnv(port, extra = {}) {
  return {
    MCP_SERVER_BIND: `127.0.0.1:${port}`,
    MCP_SERVER_AUTH_CANONICAL_URL: MCP,
    MCP_SERVER_AUTH_AUTHORIZATION_SERVERS: servers,
    MCP_SERVER_AUTH_SCOPES_SUPPORTED: 'mcp:tools mcp:admin',
    // Clients ask for the 401's scope first and step up when a 403 asks for more.
    MCP_SERVER_AUTH_DEFAULT_CHALLENGE_SCOPES: 'mcp:tools',
    MCP_SERVER_SESSION_KEY: SESSION_KEY,
    RUST_LOG: process.env.RUST_LOG || 'warn',
    ...extra,
  };
}

try {
  await startAuthorizationServers({ a: portA, b: await freePort(), x: portX, resource: MCP });
  await start('redis', 'redis-server', ['--port', String(portR), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    ready: (l) => l.includes('Ready to accept connections'),
  });
  const store = `redis://127.0.0.1:${portR}`;
  for (const [i, port] of [[1, port1], [2, port2]]) {
    await start(`replica ${i}`, SERVER_BIN, [], {
      env: replicaEnv(port, { MCP_SERVER_SESSION_STORE: store }),
      ready: (l) => l.startsWith('Protected MCP server on'),
    });
  }
  await start('headers-mode server', SERVER_BIN, [], {
    env: replicaEnv(port3, { MCP_SERVER_TOOL_GATE: 'headers', MCP_SERVER_AUTH_CANONICAL_URL: HEADERS_MODE }),
    ready: (l) => l.startsWith('Protected MCP server on'),
  });

  const alice = await token('cc-rs256');
  const bob = await token('cc-es256');

  await check('replicas on Redis: a session opened on one continues on the other, for its user only', async () => {
    const session = await openSession(REPLICA[0], alice);
    const me = await inSession(REPLICA[1], alice, session, 'tools/call', { name: 'whoami', arguments: {} });
    eq(me.status, 200, `whoami on the other replica: ${me.text}`);
    eq(JSON.parse(me.messages.find((m) => m.result).result.content[0].text).user_id, 'cc-rs256', 'user_id');
    // A never-issued id of the same shape: the server's own unknown-session answer.
    const [id] = session.split('.');
    const never = `${id.replace(/[0-9a-f]/g, (c) => ((parseInt(c, 16) + 1) % 16).toString(16))}.AAAA`;
    for (const url of REPLICA) {
      const theirs = await inSession(url, bob, session, 'tools/call', { name: 'whoami', arguments: {} });
      const unknown = await inSession(url, bob, never, 'tools/call', { name: 'whoami', arguments: {} });
      eq(theirs.status, 404, `bob naming alice's session on ${url}`);
      eq(`${theirs.status} ${theirs.headers.get('content-type')} ${theirs.text}`,
        `${unknown.status} ${unknown.headers.get('content-type')} ${unknown.text}`, 'byte-identical to an unknown session');
    }
    // Alice's session still works on both.
    for (const url of REPLICA) {
      eq((await inSession(url, alice, session, 'tools/list', {})).status, 200, `alice on ${url}`);
    }
  });

  await check('TS SDK v1 (2025-11-25): a session opened on replica 1 goes on from replica 2, not for another user', async () => {
    const auth = (bearer) => ({ requestInit: { headers: { authorization: `Bearer ${bearer}` } } });
    const first = new V1Client({ name: 'interop-replica-1', version: '1.0.0' });
    const t1 = new V1Transport(new URL(REPLICA[0]), auth(alice));
    await first.connect(t1);
    const session = t1.sessionId;
    assert(session?.includes('.'), `a sealed session id: ${session}`);
    // The same session from the other replica (a load balancer moved the client).
    const t2 = new V1Transport(new URL(REPLICA[1]), { ...auth(alice), sessionId: session });
    const moved = new V1Client({ name: 'interop-replica-2', version: '1.0.0' });
    await moved.connect(t2);
    eq(t2.sessionId, session, 'same session');
    const me = JSON.parse((await moved.callTool({ name: 'whoami', arguments: {} })).content[0].text);
    eq(me.user_id, 'cc-rs256', 'user_id');
    // Another user resuming that session id: refused as an unknown session.
    const t3 = new V1Transport(new URL(REPLICA[1]), { ...auth(bob), sessionId: session });
    const intruder = new V1Client({ name: 'interop-intruder', version: '1.0.0' });
    await intruder.connect(t3);
    let refused;
    try {
      await intruder.callTool({ name: 'whoami', arguments: {} });
    } catch (e) {
      refused = e;
    }
    assert(refused && /404|not found/i.test(String(refused)), `bob must be refused: ${refused}`);
    await first.close();
    await moved.close();
    await intruder.close().catch(() => {});
  });

  await check('2026-07-28: prompt and resource requirements, filtered lists, header mismatch', async () => {
    const admin = await token('cc-rs256', 'mcp:tools mcp:admin');
    const challenge = `Bearer error="insufficient_scope", scope="mcp:admin mcp:tools", resource_metadata="http://127.0.0.1:${port1}/.well-known/oauth-protected-resource/mcp"`;
    for (const [method, params] of [
      ['tools/call', { name: 'admin_report', arguments: {} }],
      ['prompts/get', { name: 'admin_brief' }],
      ['resources/read', { uri: 'admin://report' }],
    ]) {
      const refused = await call2026(REPLICA[1], alice, method, params);
      eq(refused.status, 403, `${method} without mcp:admin`);
      eq(refused.headers.get('www-authenticate'), challenge, `${method} challenge`);
      const allowed = await call2026(REPLICA[1], admin, method, params);
      eq(allowed.status, 200, `${method} with mcp:admin: ${allowed.text}`);
    }
    const tools = await call2026(REPLICA[0], alice, 'tools/list');
    const result = tools.messages.find((m) => m.result).result;
    eq(JSON.stringify(result.tools.map((t) => t.name).sort()), JSON.stringify(['acme_profile', 'note_create', 'note_read', 'whoami']), 'tools for mcp:tools');
    eq(result.cacheScope, 'private', 'cacheScope');
    // Headers saying whoami over a body calling admin_report.
    const mismatch = await post(REPLICA[0], admin, { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'admin_report', arguments: {}, _meta: META } },
      { 'mcp-protocol-version': PV, 'mcp-method': 'tools/call', 'mcp-name': 'whoami' });
    eq(mismatch.status, 400, 'mismatch status');
    eq(mismatch.text, '{"jsonrpc":"2.0","id":5,"error":{"code":-32020,"message":"Header mismatch: Mcp-Name does not match the body"}}', 'mismatch body');
  });

  await check('MCP_SERVER_TOOL_GATE=headers: decided from the headers, rmcp refuses a body that disagrees', async () => {
    const t = await token('cc-rs256', 'mcp:tools', HEADERS_MODE);
    const refused = await call2026(HEADERS_MODE, t, 'tools/call', { name: 'admin_report', arguments: {} });
    eq(refused.status, 403, 'admin_report by its headers');
    const mismatch = await post(HEADERS_MODE, t, { jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'admin_report', arguments: {}, _meta: META } },
      { 'mcp-protocol-version': PV, 'mcp-method': 'tools/call', 'mcp-name': 'whoami' });
    eq(mismatch.status, 400, `mismatch: ${mismatch.text}`);
    eq(mismatch.messages[0]?.error?.code, -32020, 'rmcp answers HeaderMismatch');
    const me = await call2026(HEADERS_MODE, t, 'tools/call', { name: 'whoami', arguments: {} });
    eq(me.status, 200, 'whoami');
  });

  await check('keep-alive: 200 sequential tools/call on one connection wait for no delayed ACK (TCP_NODELAY)', async () => {
    const t = await token('cc-rs256', 'mcp:tools');
    const times = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      const r = await call2026(REPLICA[0], t, 'tools/call', { name: 'whoami', arguments: {} });
      eq(r.status, 200, `whoami: ${r.text}`);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const stalled = times.filter((ms) => ms > 35).length;
    log(`keep-alive: median ${times[100].toFixed(1)} ms, slowest ${times[199].toFixed(1)} ms, ${stalled} over 35 ms`);
    // Nagle against the client's delayed ACK holds an answer written in pieces ~40 ms (without
    // TCP_NODELAY about one call in ten stalls here); the debug build answers in a few ms.
    assert(stalled <= 4, `${stalled} of 200 calls took over 35 ms: answers wait for the client's ACK`);
  });

  await v2Checks({ url: REPLICA[0], issuer: A });
  await v2Checks({ url: HEADERS_MODE, issuer: A, label: ' [MCP_SERVER_TOOL_GATE=headers]' });

  await check('a bad MCP_SERVER_* value stops the example with exit code 2, naming the variable', async () => {
    for (const [name, value] of [
      ['MCP_SERVER_SESSION_KEY', 'dG9vLXNob3J0'],
      ['MCP_SERVER_SESSION_STORE', 'not a url'],
      ['MCP_SERVER_TOOL_GATE', 'sometimes'],
    ]) {
      const r = await run(`bad ${name}`, SERVER_BIN, [], { env: replicaEnv(await freePort(), { [name]: value }), timeoutMs: 20000 });
      eq(r.code, 2, `${name} exit code`);
      assert(r.stderr.includes(name), `${name} named: ${r.stderr}`);
      assert(name !== 'MCP_SERVER_SESSION_KEY' || !r.stderr.includes(value), 'the key is never shown');
    }
  });
} catch (e) {
  results.push(false);
  log(`FAIL  set-up: ${e?.stack || e}`);
} finally {
  await stopAll();
}
finish();
