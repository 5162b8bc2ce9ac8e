// DPoP (RFC 9449, the MCP DPoP profile) end to end: oidc-provider (DPoP on, its default)
// binds access tokens to the client's key; the TypeScript SDK v2 client with a DpopSession
// logs a user in (authorization code + PKCE, its token request carrying a proof) and calls
// whoami on examples/mcp_server with `Authorization: DPoP` and a fresh proof per request.
// The same token sent as a bearer token is refused, a proof sent twice is refused, and a
// second server with server nonces (MCP_SERVER_AUTH_DPOP_NONCE_KEY) makes the client retry
// with the nonce it hands out. Started by run.sh; every process is stopped by PID at the end.
// Last line: `N passed, M failed`.

import crypto from 'node:crypto';

import { Client, DpopSession, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';

import { codeProvider } from './login.mjs';
import {
  ALGS,
  assert,
  check,
  DPOP_ALGS,
  eq,
  finish,
  freePort,
  SERVER_BIN,
  start,
  startAuthorizationServers,
  stopAll,
} from './lib.mjs';

/** Starts examples/mcp_server on a free port trusting `issuer`; `env` adds variables. */
async function server(issuer, env = {}) {
  const port = await freePort();
  const mcp = `http://127.0.0.1:${port}/mcp`;
  await start(`mcp_server ${port}`, SERVER_BIN, [], {
    env: {
      MCP_SERVER_BIND: `127.0.0.1:${port}`,
      MCP_SERVER_AUTH_CANONICAL_URL: mcp,
      MCP_SERVER_AUTH_AUTHORIZATION_SERVERS: JSON.stringify([{ issuer, jwks_uri: `${issuer}/jwks`, algorithms: ALGS }]),
      MCP_SERVER_AUTH_SCOPES_SUPPORTED: 'mcp:tools mcp:admin',
      MCP_SERVER_AUTH_DEFAULT_CHALLENGE_SCOPES: 'mcp:tools',
      RUST_LOG: process.env.RUST_LOG || 'warn',
      ...env,
    },
    ready: (l) => l.startsWith('Protected MCP server on'),
  });
  return { mcp, metadata: `http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp` };
}

/**
 * Logs `user` in with the SDK v2 client and a DPoP session, then connects: resolves with the
 * client, the provider, the session and every request the DPoP wrapper sent (its final
 * headers, body and answer status).
 */
async function connectWithDpop(mcp, user) {
  const provider = await codeProvider(user);
  const session = await DpopSession.create();
  provider.dpop = async () => session;
  const sent = [];
  // Under the DPoP wrapper: sees the headers as they go out.
  const spy = async (input, init) => {
    const res = await fetch(input, init);
    sent.push({ url: String(input), headers: new Headers(init?.headers), body: init?.body, status: res.status });
    return res;
  };
  const first = new StreamableHTTPClientTransport(new URL(mcp), { authProvider: provider, fetch: spy });
  try {
    await new Client({ name: 'interop-dpop', version: '1.0.0' }).connect(first);
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    assert(provider.response?.code, `no authorization code: ${JSON.stringify(provider.response)}`);
    // v2 checks the RFC 9207 `iss` of the authorization response.
    await first.finishAuth(provider.response.code, provider.response.iss);
  }
  const client = new Client({ name: 'interop-dpop', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(mcp), { authProvider: provider, fetch: spy }));
  return { client, provider, session, sent };
}

const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

try {
  const [portA, portB, portX] = [await freePort(), await freePort(), await freePort()];
  const A = `http://127.0.0.1:${portA}`;
  await startAuthorizationServers({ a: portA, b: portB, x: portX, resource: 'http://127.0.0.1:1/unused' });
  const plain = await server(A);
  const withNonces = await server(A, { MCP_SERVER_AUTH_DPOP_NONCE_KEY: crypto.randomBytes(32).toString('base64url') });

  await check('the metadata advertises DPoP: the proof algorithms, not required', async () => {
    const meta = await (await fetch(plain.metadata)).json();
    eq(JSON.stringify(meta.dpop_signing_alg_values_supported), JSON.stringify(DPOP_ALGS.split(' ')), 'algs');
    eq(meta.dpop_bound_access_tokens_required, false, 'required');
  });

  let captured;
  await check('TS SDK v2 with DPoP: authorization code flow, DPoP-bound token, whoami', async () => {
    const { client, provider, session, sent } = await connectWithDpop(plain.mcp, 'dora');
    try {
      const tokens = provider.tokens();
      eq(tokens?.token_type?.toLowerCase(), 'dpop', 'token_type');
      eq(claimsOf(tokens.access_token).cnf?.jkt, session.thumbprint, 'cnf.jkt is the session key');
      const me = JSON.parse((await client.callTool({ name: 'whoami', arguments: {} })).content[0].text);
      eq(me.user_id, 'dora', 'user_id');
      eq(me.issuer, A, 'issuer');
      const call = sent.findLast((r) => r.url === plain.mcp && String(r.body).includes('"whoami"'));
      assert(call, 'the whoami request was seen');
      eq(call.headers.get('authorization'), `DPoP ${tokens.access_token}`, 'DPoP scheme');
      assert(call.headers.get('dpop'), 'a DPoP proof header');
      eq(call.status, 200, 'status');
      captured = call;
    } finally {
      await client.close();
    }
  });

  const resend = (headers, body) => fetch(plain.mcp, { method: 'POST', headers, body });
  await check('the same proof sent again is refused (replay)', async () => {
    assert(captured, 'no captured request');
    const res = await resend(captured.headers, captured.body);
    eq(res.status, 401, 'status');
    eq(res.headers.get('www-authenticate'),
      `DPoP error="invalid_dpop_proof", error_description="The DPoP proof was already used", algs="${DPOP_ALGS}", resource_metadata="${plain.metadata}", Bearer resource_metadata="${plain.metadata}"`,
      'challenge');
  });

  await check('the same token as a bearer token is refused', async () => {
    assert(captured, 'no captured request');
    const headers = new Headers(captured.headers);
    headers.set('authorization', captured.headers.get('authorization').replace(/^DPoP /, 'Bearer '));
    headers.delete('dpop');
    const res = await resend(headers, captured.body);
    eq(res.status, 401, 'status');
    eq(res.headers.get('www-authenticate'),
      `Bearer error="invalid_token", error_description="The access token is sender-constrained and can not be used as a bearer token", resource_metadata="${plain.metadata}", DPoP algs="${DPOP_ALGS}", resource_metadata="${plain.metadata}"`,
      'challenge');
  });

  await check('the token with another key\'s proof is refused', async () => {
    assert(captured, 'no captured request');
    const stranger = await DpopSession.create();
    const token = captured.headers.get('authorization').slice('DPoP '.length);
    const headers = new Headers(captured.headers);
    headers.set('dpop', await stranger.buildProof({ htm: 'POST', htu: plain.mcp, accessToken: token }));
    const res = await resend(headers, captured.body);
    eq(res.status, 401, 'status');
    assert(res.headers.get('www-authenticate').startsWith(
      'DPoP error="invalid_dpop_proof", error_description="The DPoP proof key is not the key the access token is bound to"'),
    res.headers.get('www-authenticate'));
  });

  await check('server nonces: use_dpop_nonce, the client retries with the nonce, whoami', async () => {
    const { client, sent } = await connectWithDpop(withNonces.mcp, 'nora');
    try {
      const me = JSON.parse((await client.callTool({ name: 'whoami', arguments: {} })).content[0].text);
      eq(me.user_id, 'nora', 'user_id');
      const toMcp = sent.filter((r) => r.url === withNonces.mcp && r.headers.get('dpop'));
      assert(toMcp.some((r) => r.status === 401), 'a use_dpop_nonce answer was seen');
      const withNonce = toMcp.filter((r) => claimsOf(r.headers.get('dpop')).nonce);
      assert(withNonce.length > 0 && withNonce.at(-1).status === 200, 'a proof with the nonce was accepted');
    } finally {
      await client.close();
    }
  });
} catch (e) {
  console.log(`FAIL set-up: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}
finish();
