// RFC 7662 introspection against oidc-provider: examples/mcp_server trusts server A as a mixed
// issuer (JWTs verified with its keys, opaque tokens introspected at the endpoint discovered
// from its metadata, as the client `introspector`). A real MCP client (TypeScript SDK v1)
// logs a user in with authorization code + PKCE, gets an opaque access token and calls
// whoami; JWTs still work; opaque tokens the server does not vouch for are refused. Started
// by run.sh; every process is stopped by PID at the end. Last line: `N passed, M failed`.


import { codeProvider, connectV1 } from './login.mjs';
import {
  ALGS,
  assert,
  check,
  clientToken,
  dpopChallenge,
  eq,
  finish,
  freePort,
  SERVER_BIN,
  start,
  startAuthorizationServers,
  stopAll,
} from './lib.mjs';

try {
  const [portA, portB, portX, portMcp] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const A = `http://127.0.0.1:${portA}`;
  const MCP = `http://127.0.0.1:${portMcp}/mcp`;
  const METADATA = `http://127.0.0.1:${portMcp}/.well-known/oauth-protected-resource/mcp`;
  await startAuthorizationServers({ a: portA, b: portB, x: portX, resource: MCP });
  const servers = [{
    issuer: A, jwks_uri: `${A}/jwks`, algorithms: ALGS,
    introspection: { client_id: 'introspector', client_secret: 'secret', cache_ttl: 30 },
  }];
  await start('mcp_server', SERVER_BIN, [], {
    env: {
      MCP_SERVER_BIND: `127.0.0.1:${portMcp}`,
      MCP_SERVER_AUTH_CANONICAL_URL: MCP,
      MCP_SERVER_AUTH_AUTHORIZATION_SERVERS: JSON.stringify(servers),
      MCP_SERVER_AUTH_SCOPES_SUPPORTED: 'mcp:tools mcp:admin',
      MCP_SERVER_AUTH_DEFAULT_CHALLENGE_SCOPES: 'mcp:tools',
      RUST_LOG: process.env.RUST_LOG || 'warn',
    },
    ready: (l) => l.startsWith('Protected MCP server on'),
  });

  const initialize = (bearer) => fetch(MCP, {
    method: 'POST',
    headers: {
      'content-type': 'application/json', accept: 'application/json, text/event-stream',
      authorization: `Bearer ${bearer}`,
    },
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    }),
  });

  await check('TS SDK v1 login with an opaque access token, introspected: whoami', async () => {
    const provider = await codeProvider('alice', { metadata: { access_token_format: 'opaque' } });
    const { client } = await connectV1(MCP, provider);
    try {
      const token = provider.tokens()?.access_token || '';
      assert(token && !token.includes('.'), `the access token is not opaque: ${token.slice(0, 20)}…`);
      const result = await client.callTool({ name: 'whoami', arguments: {} });
      const me = JSON.parse(result.content[0].text);
      eq(me.user_id, 'alice', 'user_id');
      eq(me.issuer, A, 'issuer');
      eq(me.client_id, provider.clientInformation().client_id, 'client_id');
      eq(JSON.stringify(me.scopes), JSON.stringify(['mcp:tools']), 'scopes');
    } finally {
      await client.close();
    }
  });

  await check('the same issuer\'s JWT is still verified locally', async () => {
    const res = await initialize(await clientToken(A, 'cc-rs256', { scope: 'mcp:tools', resource: MCP }));
    eq(res.status, 200, 'status');
  });

  for (const [what, get, description] of [
    ['an opaque token without a user (client credentials)', () => clientToken(A, 'cc-opaque', { scope: 'mcp:tools', resource: MCP }),
      'The access token has no subject'],
    ['a made-up opaque token', async () => 'Xk2mQ9vTn4bW7pLr0sYd3fGh6jKa8zCe1uVo5iNw2qE', 'The access token is not active'],
  ]) {
    await check(`refused: ${what}`, async () => {
      const res = await initialize(await get());
      eq(res.status, 401, 'status');
      eq(res.headers.get('www-authenticate'),
        `Bearer error="invalid_token", error_description="${description}", resource_metadata="${METADATA}", ${dpopChallenge(METADATA)}`, 'challenge');
    });
  }
} catch (e) {
  console.log(`FAIL set-up: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}
finish();
