// The zero-configuration example (no MCP_SERVER_AUTH_AUTHORIZATION_SERVERS): its embedded
// development authorization server with real clients, no oidc-provider involved. The
// TypeScript SDK v1 and v2 and the Python SDK register, log in on our consent page (scripted
// form) and call whoami; a client named by its client ID metadata document; auto-approve; step-up to mcp:admin through the page; refresh tokens
// with offline_access through the SDK's own refresh; the refusals of the authorization and
// token endpoints; a non-loopback bind refused. Started by run.sh; every process is stopped
// by PID at the end. Last line: `N passed, M failed`.

import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, auth } from '@modelcontextprotocol/sdk/client/auth.js';
import * as V2 from '@modelcontextprotocol/client';

import { codeProvider, connectV1, scriptedLogin } from './login.mjs';
import {
  HERE, PYTHON, SERVER_BIN, assert, check, dpopChallenge, eq, finish, freePort, results, run, sleep, start, stopAll,
} from './lib.mjs';

const ZERO_CONFIG = {
  MCP_SERVER_AUTH_AUTHORIZATION_SERVERS: '', MCP_RESOURCE_SERVER_AUTHORIZATION_SERVERS: '',
  MCP_SERVER_AUTH_CANONICAL_URL: '', MCP_SERVER_AUTH_SCOPES_SUPPORTED: '',
  MCP_SERVER_AUTH_DEFAULT_CHALLENGE_SCOPES: '', MCP_SERVER_DEV_AUTO_APPROVE: '',
  RUST_LOG: 'warn',
};

/** Starts the example with no configuration (plus `env`) on a free port. */
async function example(env = {}) {
  const port = await freePort();
  await start(`example:${port}`, SERVER_BIN, [], {
    env: { ...ZERO_CONFIG, MCP_SERVER_BIND: `127.0.0.1:${port}`, ...env },
    ready: (l) => l.startsWith('Protected MCP server on'),
  });
  const base = `http://127.0.0.1:${port}`;
  return { base, mcp: `${base}/mcp`, issuer: `${base}/dev-auth` };
}

const text = (result) => JSON.parse(result.content[0].text);

try {
  const dev = await example();
  const auto = await example({ MCP_SERVER_DEV_AUTO_APPROVE: 'robot' });

  await check('probes: /healthz without a token; /readyz 200 once the embedded keys are fetched (warmed at start)', async () => {
    const health = await fetch(`${dev.base}/healthz`);
    eq(health.status, 200, 'healthz');
    eq(await health.text(), 'ok', 'healthz body');
    let ready;
    for (let i = 0; i < 50; i += 1) {
      ready = await fetch(`${dev.base}/readyz`);
      if (ready.status === 200) break;
      await ready.body?.cancel();
      await sleep(100);
    }
    eq(ready.status, 200, 'readyz');
    eq(JSON.stringify(await ready.json()), '{"ready":true}', 'readyz body');
    eq(ready.headers.get('cache-control'), 'no-store', 'not cached');
  });

  await check('probes: /readyz 503 naming the issuer whose keys can not be fetched', async () => {
    const port = await freePort();
    const dead = 'http://127.0.0.1:9';
    await start(`example:${port}`, SERVER_BIN, [], {
      env: {
        ...ZERO_CONFIG, MCP_SERVER_BIND: `127.0.0.1:${port}`,
        MCP_SERVER_AUTH_CANONICAL_URL: `http://127.0.0.1:${port}/mcp`,
        MCP_SERVER_AUTH_AUTHORIZATION_SERVERS: JSON.stringify([{ issuer: dead, jwks_uri: `${dead}/jwks` }]),
      },
      ready: (l) => l.startsWith('Protected MCP server on'),
    });
    let res;
    for (let i = 0; i < 50; i += 1) {
      res = await fetch(`http://127.0.0.1:${port}/readyz`);
      const body = await res.json();
      if (body.issuers?.[0]?.reason === 'fetch_failing') {
        eq(res.status, 503, 'status');
        eq(JSON.stringify(body), JSON.stringify({ issuers: [{ issuer: dead, reason: 'fetch_failing' }], ready: false }), 'body');
        return;
      }
      await sleep(100);
    }
    throw new Error('never reported fetch_failing');
  });

  await check('metrics: MCP_SERVER_METRICS_BIND serves Prometheus text; a known sequence gives exact counts', async () => {
    const [port, metricsPort] = [await freePort(), await freePort()];
    await start(`example:${port}`, SERVER_BIN, [], {
      env: { ...ZERO_CONFIG, MCP_SERVER_BIND: `127.0.0.1:${port}`, MCP_SERVER_METRICS_BIND: `127.0.0.1:${metricsPort}` },
      ready: (l) => l.startsWith('Protected MCP server on'),
    });
    const mcp = `http://127.0.0.1:${port}/mcp`;
    const post = (headers) => fetch(mcp, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });
    for (let i = 0; i < 3; i += 1) eq((await post({})).status, 401, 'no token');
    eq((await post({ authorization: 'Bearer not-a-jwt' })).status, 401, 'malformed');
    await (await fetch(`http://127.0.0.1:${port}/healthz`)).text();
    await (await fetch(`http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp`)).text();
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const count = (labels) => {
      const line = text.split('\n').find((l) => l.startsWith('protected_resource_requests_total{') && labels.every((x) => l.includes(x)));
      return line ? Number(line.split(' ').pop()) : undefined;
    };
    eq(count(['reason="missing_token"', 'outcome="refused"', 'issuer="unknown"']), 3, `missing_token in\n${text}`);
    eq(count(['reason="malformed"']), 1, 'malformed');
    eq(count(['outcome="accepted"']), undefined, 'nothing accepted; probes and metadata not counted');
    assert(/protected_resource_keys\{issuer="http:\/\/127\.0\.0\.1:\d+\/dev-auth"\} 1/.test(text), `keys gauge in\n${text}`);
  });

  await check('metrics: a bad MCP_SERVER_METRICS_BIND exits 2 naming it', async () => {
    const r = await run('example', SERVER_BIN, [], { env: { ...ZERO_CONFIG, MCP_SERVER_BIND: `127.0.0.1:${await freePort()}`, MCP_SERVER_METRICS_BIND: 'nowhere' } });
    eq(r.code, 2, 'exit code');
    assert(r.stderr.includes('MCP_SERVER_METRICS_BIND'), r.stderr);
  });

  await check('zero-config: 401 asks for mcp:tools; metadata names the embedded issuer', async () => {
    const res = await fetch(dev.mcp, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    eq(res.status, 401, 'status');
    eq(res.headers.get('www-authenticate'),
      `Bearer resource_metadata="${dev.base}/.well-known/oauth-protected-resource/mcp", scope="mcp:tools", ${dpopChallenge(`${dev.base}/.well-known/oauth-protected-resource/mcp`)}`, 'challenge');
    const prm = await (await fetch(`${dev.base}/.well-known/oauth-protected-resource/mcp`)).json();
    eq(JSON.stringify(prm.authorization_servers), JSON.stringify([dev.issuer]), 'authorization_servers');
    const asm = await (await fetch(`${dev.base}/.well-known/oauth-authorization-server/dev-auth`)).json();
    eq(asm.issuer, dev.issuer, 'issuer');
    eq(JSON.stringify(asm.code_challenge_methods_supported), '["S256"]', 'PKCE');
    assert(asm.registration_endpoint, 'registration endpoint');
  });

  await check('TS SDK v1: registration + code + PKCE on the consent page, whoami', async () => {
    const provider = await codeProvider('alice');
    const { client } = await connectV1(dev.mcp, provider);
    try {
      eq(provider.requestedScope, 'mcp:tools', 'asked for the 401 scope');
      const me = text(await client.callTool({ name: 'whoami', arguments: {} }));
      eq(me.user_id, 'alice', 'user_id (the login)');
      eq(me.issuer, dev.issuer, 'issuer');
      eq(me.client_id, provider._info.client_id, 'client_id (the registered client)');
      eq(JSON.stringify(me.scopes), '["mcp:tools"]', 'scopes');
    } finally {
      await client.close();
    }
  });

  await check('acme_profile: a token for Acme by token exchange, per user; the MCP token gets 401 at Acme', async () => {
    const provider = await codeProvider('mallory');
    const { client } = await connectV1(dev.mcp, provider);
    try {
      const result = await client.callTool({ name: 'acme_profile', arguments: {} });
      assert(!result.isError, `tool error: ${JSON.stringify(result)}`);
      eq(JSON.stringify(text(result)), JSON.stringify({ acme_user: 'mallory', audience: 'acme-api' }), 'profile');
    } finally {
      await client.close();
    }
    const direct = await fetch(`${dev.base}/acme/profile`, { headers: { authorization: `Bearer ${provider.tokens().access_token}` } });
    eq(direct.status, 401, 'the MCP token at Acme');
    await direct.body?.cancel();
  });

  await check('TS SDK v1: step-up to mcp:admin through the consent page', async () => {
    const provider = await codeProvider('carol');
    const { client } = await connectV1(dev.mcp, provider);
    try {
      const before = provider.tokens()?.access_token;
      provider.response = undefined;
      try {
        await client.callTool({ name: 'admin_report', arguments: {} });
        throw new Error('expected the step-up authorization');
      } catch (e) {
        if (!(e instanceof UnauthorizedError)) throw e;
      }
      assert(provider.requestedScope?.split(' ').includes('mcp:admin'), `step-up asked for ${provider.requestedScope}`);
      const transport = new StreamableHTTPClientTransport(new URL(dev.mcp), { authProvider: provider });
      await transport.finishAuth(provider.response.code);
      assert(provider.tokens()?.access_token !== before, 'a new token');
      const again = new Client({ name: 'interop-dev', version: '1.0.0' });
      await again.connect(new StreamableHTTPClientTransport(new URL(dev.mcp), { authProvider: provider }));
      try {
        eq(text(await again.callTool({ name: 'admin_report', arguments: {} })).requested_by, 'carol', 'requested_by');
      } finally {
        await again.close();
      }
    } finally {
      await client.close();
    }
  });

  await check('TS SDK v1: Deny on the page ends the flow with access_denied', async () => {
    const provider = await codeProvider('dave', { answer: 'deny' });
    try {
      await new Client({ name: 'interop-dev', version: '1.0.0' })
        .connect(new StreamableHTTPClientTransport(new URL(dev.mcp), { authProvider: provider }));
      throw new Error('expected the authorization redirect');
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
    }
    eq(provider.response?.error, 'access_denied', 'error');
    eq(provider.response?.iss, dev.issuer, 'iss');
    eq(provider.response?.code, undefined, 'no code');
  });

  await check('TS SDK v1 with MCP_SERVER_DEV_AUTO_APPROVE: no page, whoami', async () => {
    const provider = await codeProvider('ignored');
    const { client } = await connectV1(auto.mcp, provider);
    try {
      eq(text(await client.callTool({ name: 'whoami', arguments: {} })).user_id, 'robot', 'user_id');
    } finally {
      await client.close();
    }
  });

  await check('TS SDK v1 auth(): offline_access gives a refresh token; the SDK refreshes, rotated', async () => {
    const provider = await codeProvider('erin');
    eq(await auth(provider, { serverUrl: dev.mcp, scope: 'mcp:tools offline_access' }), 'REDIRECT', 'first step');
    eq(await auth(provider, { serverUrl: dev.mcp, authorizationCode: provider.response.code }), 'AUTHORIZED', 'code');
    const first = provider.tokens();
    assert(first.refresh_token, 'a refresh token');
    provider.saveTokens({ ...first, access_token: 'expired' });
    eq(await auth(provider, { serverUrl: dev.mcp }), 'AUTHORIZED', 'refreshed');
    const second = provider.tokens();
    assert(second.access_token !== 'expired' && second.refresh_token !== first.refresh_token, 'new tokens');
    const client = new Client({ name: 'interop-dev', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(dev.mcp), { authProvider: provider }));
    try {
      eq(text(await client.callTool({ name: 'whoami', arguments: {} })).user_id, 'erin', 'user_id');
    } finally {
      await client.close();
    }
    // The used refresh token is gone.
    const res = await fetch(`${dev.issuer}/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: provider._info.client_id }),
    });
    eq(res.status, 400, 'reused refresh token');
    eq((await res.json()).error, 'invalid_grant', 'error');
  });

  for (const [server, login, expected, how] of [
    [dev, 'frank', 'frank', 'on the consent page'],
    [auto, 'ignored', 'robot', 'with auto-approve'],
  ]) await check(`TS SDK v2 (2026-07-28): code + PKCE ${how}, whoami`, async () => {
    const provider = await codeProvider(login);
    const options = { versionNegotiation: { mode: { pin: '2026-07-28' } } };
    const first = new V2.StreamableHTTPClientTransport(new URL(server.mcp), { authProvider: provider });
    try {
      await new V2.Client({ name: 'interop-dev-v2', version: '1.0.0' }, options).connect(first);
    } catch (e) {
      if (!(e instanceof V2.UnauthorizedError)) throw e;
      // v2 checks the RFC 9207 `iss` of the authorization response (our metadata says we send it).
      eq(provider.response.iss, server.issuer, 'iss');
      await first.finishAuth(provider.response.code, provider.response.iss);
    }
    const client = new V2.Client({ name: 'interop-dev-v2', version: '1.0.0' }, options);
    await client.connect(new V2.StreamableHTTPClientTransport(new URL(server.mcp), { authProvider: provider }));
    try {
      eq(client.getNegotiatedProtocolVersion(), '2026-07-28', 'version');
      const me = text(await client.callTool({ name: 'whoami', arguments: {} }));
      eq(me.user_id, expected, 'user_id');
      eq(me.issuer, server.issuer, 'issuer');
    } finally {
      await client.close();
    }
  });

  for (const [server, login, expected, how] of [
    [dev, 'grace', 'grace', 'on the consent page'],
    [auto, 'ignored', 'robot', 'with auto-approve'],
  ]) {
    await check(`Python SDK: registration + code + PKCE ${how}, whoami`, async () => {
      const r = await run('python code', PYTHON, [path.join(HERE, 'client.py'), 'code', server.mcp, server.issuer, login], { timeoutMs: 60000 });
      assert(r.code === 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      const me = JSON.parse(r.stdout.trim().split('\n').pop());
      eq(me.user_id, expected, 'user_id');
      eq(me.issuer, server.issuer, 'issuer');
    });
  }

  await check('a client named by its client ID metadata document (loopback http): code + PKCE, whoami', async () => {
    const port = await freePort();
    const clientId = `http://127.0.0.1:${port}/oauth/client.json`;
    const redirectUri = `http://127.0.0.1:${port}/callback`;
    const server = http.createServer((req, res) => {
      if (req.url !== '/oauth/client.json') { res.writeHead(404).end(); return; }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        client_id: clientId, client_name: 'Interop document client', redirect_uris: [redirectUri],
        grant_types: ['authorization_code'], token_endpoint_auth_method: 'none',
      }));
    });
    await new Promise((r) => server.listen(port, '127.0.0.1', r));
    try {
      const asm = await (await fetch(`${dev.base}/.well-known/oauth-authorization-server/dev-auth`)).json();
      eq(asm.client_id_metadata_document_supported, true, 'advertised');
      const verifier = randomBytes(32).toString('base64url');
      const url = new URL(asm.authorization_endpoint);
      for (const [k, v] of Object.entries({
        response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'mcp:tools', state: 'doc',
        code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256', resource: dev.mcp,
      })) url.searchParams.set(k, v);
      const response = await scriptedLogin(url, redirectUri, 'judy');
      eq(response.state, 'doc', 'state');
      const res = await fetch(asm.token_endpoint, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: response.code, redirect_uri: redirectUri, code_verifier: verifier, client_id: clientId }),
      });
      const tokens = await res.json();
      eq(res.status, 200, `token: ${JSON.stringify(tokens)}`);
      const client = new Client({ name: 'interop-doc', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(dev.mcp), { requestInit: { headers: { authorization: `Bearer ${tokens.access_token}` } } }));
      try {
        const me = text(await client.callTool({ name: 'whoami', arguments: {} }));
        eq(me.user_id, 'judy', 'user_id');
        eq(me.client_id, clientId, 'client_id (the document URL)');
      } finally {
        await client.close();
      }
    } finally {
      server.close();
    }
  });

  await check('authorization endpoint refusals: 400 page without redirect, or redirect with the error', async () => {
    const redirect = 'http://127.0.0.1:9/callback';
    const reg = await (await fetch(`${dev.issuer}/register`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [redirect], token_endpoint_auth_method: 'none' }),
    })).json();
    const authorize = (params) => fetch(`${dev.issuer}/authorize?${new URLSearchParams({
      response_type: 'code', client_id: reg.client_id, redirect_uri: redirect, state: 's1',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
      resource: dev.mcp, ...params,
    })}`, { redirect: 'manual' });
    for (const params of [{ client_id: 'unknown' }, { redirect_uri: 'http://127.0.0.1:9/other' }]) {
      const res = await authorize(params);
      eq(res.status, 400, JSON.stringify(params));
      eq(res.headers.get('location'), null, 'no redirect');
    }
    for (const [params, error] of [
      [{ code_challenge: '' }, 'invalid_request'],
      [{ scope: 'mcp:tools mcp:everything' }, 'invalid_scope'],
      [{ resource: 'http://127.0.0.1:9/elsewhere' }, 'invalid_target'],
    ]) {
      const res = await authorize(params);
      eq(res.status, 302, JSON.stringify(params));
      const q = new URL(res.headers.get('location')).searchParams;
      eq(q.get('error'), error, JSON.stringify(params));
      eq(q.get('state'), 's1', 'state');
      eq(q.get('iss'), dev.issuer, 'iss');
    }
  });

  await check('token endpoint refusals: wrong verifier, reused code, other redirect, unknown client', async () => {
    const provider = await codeProvider('heidi');
    eq(await auth(provider, { serverUrl: dev.mcp }), 'REDIRECT', 'authorization');
    const token = async (params) => {
      const res = await fetch(`${dev.issuer}/token`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code', code: provider.response.code, redirect_uri: provider.redirectUrl,
          code_verifier: provider.codeVerifier(), client_id: provider._info.client_id, ...params,
        }),
      });
      return [res.status, (await res.json()).error];
    };
    eq(JSON.stringify(await token({ client_id: 'unknown' })), '[401,"invalid_client"]', 'unknown client');
    eq(JSON.stringify(await token({ redirect_uri: 'http://127.0.0.1:9/other' })), '[400,"invalid_grant"]', 'other redirect');
    eq(JSON.stringify(await token({})), '[400,"invalid_grant"]', 'the code was used up by the failed attempt');
    provider.response = undefined;
    eq(await auth(provider, { serverUrl: dev.mcp }), 'REDIRECT', 'a new authorization');
    eq(JSON.stringify(await token({ code_verifier: 'x'.repeat(43) })), '[400,"invalid_grant"]', 'wrong verifier');
  });

  await check('a non-loopback MCP_SERVER_BIND with the embedded server exits 2 naming it', async () => {
    const r = await run('example 0.0.0.0', SERVER_BIN, [], { env: { ...ZERO_CONFIG, MCP_SERVER_BIND: '0.0.0.0:0' }, timeoutMs: 20000 });
    eq(r.code, 2, `exit code\n${r.stderr}`);
    assert(r.stderr.includes('MCP_SERVER_BIND') && r.stderr.includes('MCP_SERVER_DEV_AUTH_DANGEROUS_ALLOW_NON_LOOPBACK'), r.stderr);
  });
} catch (e) {
  results.push(false);
  console.log(`FAIL  set-up: ${e?.stack || e}`);
} finally {
  await stopAll();
}
finish();
