// The interoperability suite: real authorization servers (oidc-provider), real MCP clients
// (TypeScript SDK, Python SDK, MCP Inspector CLI) against examples/mcp_server, all on
// 127.0.0.1. Started by run.sh, which installs what this needs. Every process started here
// is stopped by PID at the end. Last line: `N passed, M failed`.

import path from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

import { scriptedLogin } from './login.mjs';
import {
  ALGS,
  assert,
  check,
  clientToken,
  dpopChallenge,
  eq,
  finish,
  freePort,
  HERE,
  log,
  NODE22,
  PYTHON,
  results,
  run,
  SERVER_BIN,
  sleep,
  start,
  startAuthorizationServers,
  stopAll,
} from './lib.mjs';

// --- set-up -------------------------------------------------------------------------------

const [portA, portB, portX, portMcp] = [await freePort(), await freePort(), await freePort(), await freePort()];
const A = `http://127.0.0.1:${portA}`;
const B = `http://127.0.0.1:${portB}`;
const X = `http://127.0.0.1:${portX}`;
const MCP = `http://127.0.0.1:${portMcp}/mcp`;
const METADATA = `http://127.0.0.1:${portMcp}/.well-known/oauth-protected-resource/mcp`;

function token(issuer, clientId, { scope = 'mcp:tools', resource = MCP } = {}) {
  return clientToken(issuer, clientId, { scope, resource });
}

/** A raw initialize POST with this bearer token; resolves with the Response. */
function rawInitialize(bearer) {
  return fetch(MCP, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
    },
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    }),
  });
}

async function whoamiWith(transportOptions) {
  const client = new Client({ name: 'interop-ts', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(MCP), transportOptions);
  await client.connect(transport);
  try {
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    return JSON.parse(result.content[0].text);
  } finally {
    await client.close();
  }
}

try {
  await startAuthorizationServers({ a: portA, b: portB, x: portX, resource: MCP });
  const servers = [
    // A: jwks_uri discovered from its metadata, RFC 9068 `typ` required.
    { issuer: A, algorithms: ALGS, validation_options: { require_at_jwt_type: true } },
    // B: jwks_uri given.
    { issuer: B, jwks_uri: `${B}/jwks`, algorithms: ALGS },
  ];
  await start('mcp_server', SERVER_BIN, [], {
    env: {
      MCP_SERVER_BIND: `127.0.0.1:${portMcp}`,
      MCP_SERVER_AUTH_CANONICAL_URL: MCP,
      MCP_SERVER_AUTH_AUTHORIZATION_SERVERS: JSON.stringify(servers),
      MCP_SERVER_AUTH_SCOPES_SUPPORTED: 'mcp:tools mcp:admin',
      // Clients start with mcp:tools and step up to mcp:admin when a tool asks for it.
      MCP_SERVER_AUTH_DEFAULT_CHALLENGE_SCOPES: 'mcp:tools',
      RUST_LOG: process.env.RUST_LOG || 'warn',
    },
    ready: (l) => l.startsWith('Protected MCP server on'),
  });

  // --- unauthenticated discovery ----------------------------------------------------------

  await check('401 challenge points at the protected-resource metadata', async () => {
    const res = await rawInitialize(null);
    eq(res.status, 401, 'status');
    eq(res.headers.get('www-authenticate'), `Bearer resource_metadata="${METADATA}", scope="mcp:tools", ${dpopChallenge(METADATA)}`, 'challenge');
    const meta = await (await fetch(METADATA)).json();
    eq(meta.resource, MCP, 'resource');
    eq(JSON.stringify(meta.authorization_servers), JSON.stringify([A, B]), 'authorization_servers');
  });

  // --- TypeScript SDK ---------------------------------------------------------------------

  for (const alg of ALGS) {
    await check(`TS SDK client credentials, ${alg} access token: whoami`, async () => {
      const clientId = `cc-${alg.toLowerCase()}`;
      const authProvider = new ClientCredentialsProvider({
        clientId, clientSecret: 'secret', expectedIssuer: A, scope: 'mcp:tools',
      });
      const me = await whoamiWith({ authProvider });
      eq(me.user_id, clientId, 'user_id (sub is the client id with client credentials)');
      eq(me.issuer, A, 'issuer');
      eq(me.client_id, clientId, 'client_id');
    });
  }

  await check('TS SDK dynamic client registration, then client credentials: whoami', async () => {
    const reg = await fetch(`${A}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: 'interop-dcr', grant_types: ['client_credentials'], response_types: [],
        redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic', scope: 'mcp:tools',
      }),
    });
    const client = await reg.json();
    assert(reg.status === 201, `registration failed: ${JSON.stringify(client)}`);
    const authProvider = new ClientCredentialsProvider({
      clientId: client.client_id, clientSecret: client.client_secret, expectedIssuer: A, scope: 'mcp:tools',
    });
    const me = await whoamiWith({ authProvider });
    eq(me.user_id, client.client_id, 'user_id');
  });

  /** An interactive OAuth client whose "browser" is the scripted login of `login`. */
  async function codeProvider(login) {
    const redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
    return {
      _tokens: undefined, _info: undefined, _verifier: undefined, response: undefined,
      get redirectUrl() { return redirectUri; },
      get clientMetadata() {
        return {
          client_name: 'interop-code', redirect_uris: [redirectUri],
          grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
          token_endpoint_auth_method: 'none',
        };
      },
      clientInformation() { return this._info; },
      saveClientInformation(i) { this._info = i; },
      tokens() { return this._tokens; },
      saveTokens(t) { this._tokens = t; },
      async redirectToAuthorization(url) {
        this.requestedScope = url.searchParams.get('scope');
        this.response = await scriptedLogin(url, redirectUri, login);
      },
      saveCodeVerifier(v) { this._verifier = v; },
      codeVerifier() { return this._verifier; },
    };
  }

  await check('TS SDK authorization code + PKCE with scripted login: whoami', async () => {
    const provider = await codeProvider('alice');
    const first = new StreamableHTTPClientTransport(new URL(MCP), { authProvider: provider });
    const client = new Client({ name: 'interop-code', version: '1.0.0' });
    try {
      await client.connect(first);
      throw new Error('expected the authorization redirect');
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
    }
    assert(provider.response?.code, `no authorization code: ${JSON.stringify(provider.response)}`);
    await first.finishAuth(provider.response.code);
    const me = await whoamiWith({ authProvider: provider });
    eq(me.user_id, 'alice', 'user_id (the login)');
    eq(me.issuer, A, 'issuer');
  });

  await check('TS SDK step-up: 403 insufficient_scope for admin_report, new token, success', async () => {
    // An interactive client: it asks for the 401's scope (mcp:tools) first; admin_report
    // answers 403 insufficient_scope; the SDK starts a new authorization for mcp:admin.
    const provider = await codeProvider('carol');
    const first = new StreamableHTTPClientTransport(new URL(MCP), { authProvider: provider });
    try {
      await new Client({ name: 'interop-stepup', version: '1.0.0' }).connect(first);
      throw new Error('expected the authorization redirect');
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
    }
    await first.finishAuth(provider.response.code);
    const client = new Client({ name: 'interop-stepup', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(MCP), { authProvider: provider });
    await client.connect(transport);
    try {
      eq(provider.requestedScope, 'mcp:tools', 'first authorization asks for the 401 scope');
      const before = provider.tokens()?.access_token;
      const direct = await fetch(MCP, {
        method: 'POST',
        headers: {
          'content-type': 'application/json', accept: 'application/json, text/event-stream',
          authorization: `Bearer ${before}`, 'mcp-session-id': transport.sessionId,
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'admin_report', arguments: {} } }),
      });
      eq(direct.status, 403, 'status without mcp:admin');
      eq(direct.headers.get('www-authenticate'),
        `Bearer error="insufficient_scope", scope="mcp:admin mcp:tools", resource_metadata="${METADATA}"`, 'challenge');
      provider.response = undefined;
      try {
        await client.callTool({ name: 'admin_report', arguments: {} });
        throw new Error('expected the step-up authorization redirect');
      } catch (e) {
        if (!(e instanceof UnauthorizedError)) throw e;
      }
      assert(provider.requestedScope?.split(' ').includes('mcp:admin'), `step-up asked for ${provider.requestedScope}`);
      assert(provider.response?.code, `step-up authorization answered ${JSON.stringify(provider.response)}`);
      await transport.finishAuth(provider.response.code);
      assert(provider.tokens()?.access_token !== before, 'the client obtained a new token');
      const result = await client.callTool({ name: 'admin_report', arguments: {} });
      const report = JSON.parse(result.content[0].text);
      eq(report.requested_by, 'carol', 'requested_by');
      const me = JSON.parse((await client.callTool({ name: 'whoami', arguments: {} })).content[0].text);
      eq(me.user_id, 'carol', 'same user, same session');
    } finally {
      await client.close();
    }
  });

  await check('second trusted issuer (jwks_uri given): whoami', async () => {
    const bearer = await token(B, 'cc-es256');
    const me = await whoamiWith({ requestInit: { headers: { authorization: `Bearer ${bearer}` } } });
    eq(me.issuer, B, 'issuer');
    eq(me.user_id, 'cc-es256', 'user_id');
  });

  await check('TS SDK: a note handle opens for the user who made it, for no one else', async () => {
    const withClient = async (clientId, fn) => {
      const bearer = await token(A, clientId);
      const client = new Client({ name: 'interop-notes', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(MCP), { requestInit: { headers: { authorization: `Bearer ${bearer}` } } }));
      try { return await fn(client); } finally { await client.close(); }
    };
    const made = await withClient('cc-rs256', (c) => c.callTool({ name: 'note_create', arguments: { text: 'hello from rs256' } }));
    const { handle } = JSON.parse(made.content[0].text);
    const mine = await withClient('cc-rs256', (c) => c.callTool({ name: 'note_read', arguments: { handle } }));
    eq(JSON.stringify(JSON.parse(mine.content[0].text)), JSON.stringify({ owner: 'cc-rs256', text: 'hello from rs256' }), 'owner reads');
    const theirs = await withClient('cc-es256', (c) => c.callTool({ name: 'note_read', arguments: { handle } }));
    const never = await withClient('cc-es256', (c) => c.callTool({ name: 'note_read', arguments: { handle: 'v1.aGk.AAAA' } }));
    eq(JSON.stringify(theirs), JSON.stringify(never), 'another user reads the same as for a handle that never existed');
    eq(theirs.isError, true, 'isError');
    eq(theirs.content[0].text, 'no such note', 'text');
  });

  // --- refusals ---------------------------------------------------------------------------

  const refusals = [
    ['untrusted issuer', () => token(X, 'cc-rs256'), 'The access token issuer is not trusted'],
    ['token for another resource', () => token(A, 'cc-rs256', { resource: 'http://127.0.0.1:1/other' }),
      'The access token audience does not include this resource'],
    ['HS256 token', () => token(A, 'cc-hs256'), 'The access token signing algorithm is not allowed'],
    ['opaque token', () => token(A, 'cc-opaque'), 'The access token is malformed'],
  ];
  for (const [what, get, description] of refusals) {
    await check(`refused: ${what}`, async () => {
      const res = await rawInitialize(await get());
      eq(res.status, 401, 'status');
      eq(res.headers.get('www-authenticate'),
        `Bearer error="invalid_token", error_description="${description}", resource_metadata="${METADATA}", ${dpopChallenge(METADATA)}`, 'challenge');
    });
  }

  // --- rotation ---------------------------------------------------------------------------

  await check('key rotation at the authorization server: new key accepted within the cooldown', async () => {
    const { kid } = await (await fetch(`${A}/__rotate?alg=RS256`, { method: 'POST' })).json();
    const fresh = await token(A, 'cc-rs256');
    const header = JSON.parse(Buffer.from(fresh.split('.')[0], 'base64url').toString());
    eq(header.kid, kid, 'the new token is signed with the new key');
    const started = Date.now();
    let status = 0;
    while (Date.now() - started < 8000) {
      status = (await rawInitialize(fresh)).status;
      if (status === 200) break;
      await sleep(250);
    }
    eq(status, 200, 'status with the new key');
    assert(Date.now() - started <= 6500, `accepted only after ${Date.now() - started} ms`);
  });

  // --- Python SDK -------------------------------------------------------------------------

  for (const [mode, args, expect] of [
    ['client credentials', ['cc', MCP, A, 'cc-ps256', 'secret'], 'cc-ps256'],
    ['authorization code + PKCE', ['code', MCP, A, 'bob'], 'bob'],
  ]) {
    await check(`Python SDK ${mode}: whoami`, async () => {
      const r = await run(`python ${mode}`, PYTHON, [path.join(HERE, 'client.py'), ...args], { timeoutMs: 60000 });
      assert(r.code === 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      const me = JSON.parse(r.stdout.trim().split('\n').pop());
      eq(me.user_id, expect, 'user_id');
      eq(me.issuer, A, 'issuer');
    });
  }

  // --- MCP Inspector CLI ------------------------------------------------------------------

  await check('MCP Inspector CLI lists the tools a bearer token may use', async () => {
    const inspector = path.join(HERE, 'node_modules', '@modelcontextprotocol', 'inspector', 'clients', 'launcher', 'build', 'index.js');
    // tools/list shows a caller only what its scopes allow: admin_report needs mcp:admin.
    const everyone = ['acme_profile', 'note_create', 'note_read', 'whoami'];
    for (const [scope, expected] of [['mcp:tools', everyone], ['mcp:tools mcp:admin', ['admin_report', ...everyone].sort()]]) {
      const bearer = await token(A, 'cc-eddsa', { scope });
      const r = await run('inspector', NODE22, [inspector, '--cli', MCP, '--transport', 'http',
        '--method', 'tools/list', '--header', `Authorization: Bearer ${bearer}`], { timeoutMs: 60000, env: { HOME: path.join(HERE, '.logs') } });
      assert(r.code === 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      const names = JSON.parse(r.stdout).tools.map((t) => t.name).sort();
      eq(JSON.stringify(names), JSON.stringify(expected), `tools for ${scope}`);
    }
    const denied = await run('inspector', NODE22, [inspector, '--cli', MCP, '--transport', 'http',
      '--method', 'tools/list'], { timeoutMs: 60000, env: { HOME: path.join(HERE, '.logs') } });
    assert(denied.code !== 0, 'without a token the inspector must fail');
  });
} catch (e) {
  results.push(false);
  log(`FAIL  set-up: ${e?.stack || e}`);
} finally {
  await stopAll();
}

finish();
