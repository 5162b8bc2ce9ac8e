// Connected accounts with real MCP clients: `examples/connected_accounts` (its own development
// authorization server for MCP users, a second one playing the provider "Acme Cloud", the
// connect pages). The tool `cloud_profile` needs the caller's Acme Cloud account: the TypeScript
// SDK v1 (2025-11-25) gets the -32042 URL-elicitation-required error, the SDK v2 pinned to
// 2026-07-28 an input_required result its elicitation handler fulfils, a client without
// elicitation a tool error carrying the link. The user connects in a scripted browser (login at
// the MCP users' server, then the provider), and the retried call succeeds; a link opened by
// another user connects nothing; disconnecting asks again. Once on the in-memory store and
// once on a real Redis (started here, stopped by PID). Last line: `N passed, M failed`.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { UrlElicitationRequiredError } from '@modelcontextprotocol/sdk/types.js';
import * as V2 from '@modelcontextprotocol/client';

import { codeProvider, connectV1 } from './login.mjs';
import { ROOT, assert, check, eq, finish, freePort, sleep, start, stopAll } from './lib.mjs';

const BIN = process.env.CONNECTED_ACCOUNTS_BIN || path.join(ROOT, 'target', 'debug', 'examples', 'connected_accounts');
const ELICITATION = { capabilities: { elicitation: { url: {} } } };

async function example(env = {}) {
  const port = await freePort();
  await start(`connected_accounts:${port}`, BIN, [], {
    env: { CONNECTED_ACCOUNTS_BIND: `127.0.0.1:${port}`, RUST_LOG: 'warn', REDIS_URL: '', ...env },
    ready: (l) => l.startsWith('Connected-accounts MCP server on'),
  });
  const base = `http://127.0.0.1:${port}`;
  return { base, mcp: `${base}/mcp` };
}

/**
 * A browser that opens `url`, follows redirects with a cookie jar, logs in as `user` on the
 * development server's page, and stops at the first page without a form: { status, html }.
 */
async function browse(url, user) {
  const jar = new Map();
  let init = {};
  for (let step = 0; step < 20; step += 1) {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers || {}), ...(cookie ? { cookie } : {}) } });
    init = {};
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i).trim(), pair.slice(i + 1));
    }
    if (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location'), url).toString();
      await res.body?.cancel();
      continue;
    }
    const html = await res.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (!action) return { status: res.status, html };
    const form = {};
    for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) form[m[1]] = m[2].replaceAll('&amp;', '&');
    form.user = user;
    form.approve = '1';
    url = new URL(action.replaceAll('&amp;', '&'), url).toString();
    init = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() };
  }
  throw new Error('too many steps in the browser');
}

const text = (result) => JSON.parse(result.content[0].text);

/** An SDK v2 client pinned to 2026-07-28 with URL elicitation, logged in as `user`. */
async function connectV2(server, user, onElicitation) {
  const provider = await codeProvider(user);
  const options = { versionNegotiation: { mode: { pin: '2026-07-28' } }, ...ELICITATION };
  const first = new V2.StreamableHTTPClientTransport(new URL(server.mcp), { authProvider: provider });
  try {
    await new V2.Client({ name: 'interop-accounts-v2', version: '1.0.0' }, options).connect(first);
  } catch (e) {
    if (!(e instanceof V2.UnauthorizedError)) throw e;
    await first.finishAuth(provider.response.code, provider.response.iss);
  }
  const client = new V2.Client({ name: 'interop-accounts-v2', version: '1.0.0' }, options);
  client.setRequestHandler('elicitation/create', onElicitation);
  await client.connect(new V2.StreamableHTTPClientTransport(new URL(server.mcp), { authProvider: provider }));
  return client;
}

/** The -32042 error of a v1 call, or a failure. */
async function elicitation(client) {
  try {
    const r = await client.callTool({ name: 'cloud_profile', arguments: {} });
    throw new Error(`expected -32042, got ${JSON.stringify(r)}`);
  } catch (e) {
    if (!(e instanceof UrlElicitationRequiredError)) throw e;
    eq(e.code, -32042, 'code');
    eq(e.elicitations.length, 1, 'one elicitation');
    eq(e.elicitations[0].mode, 'url', 'mode');
    assert(e.elicitations[0].elicitationId, 'an elicitation id');
    return e.elicitations[0];
  }
}

async function suite(name, server) {
  await check(`${name}: SDK v1 (2025-11-25): -32042 with a connect link; connect in the browser; the retry succeeds; disconnect asks again`, async () => {
    const { client } = await connectV1(server.mcp, await codeProvider('alice'), ELICITATION);
    try {
      const ask = await elicitation(client);
      assert(ask.url.startsWith(`${server.base}/connect/start?link=`), `url ${ask.url}`);
      assert(/connect your cloud account/.test(ask.message), `message ${ask.message}`);
      const page = await browse(ask.url, 'alice');
      eq(page.status, 200, `connect page: ${page.html}`);
      assert(page.html.includes('Your cloud account is connected'), page.html);
      const profile = text(await client.callTool({ name: 'cloud_profile', arguments: {} }));
      eq(JSON.stringify(profile), JSON.stringify({ cloud_user: 'cloud-user', mcp_user: 'alice' }), 'profile');
      const gone = text(await client.callTool({ name: 'cloud_disconnect', arguments: {} }));
      eq(gone.disconnection, 'RevokedAndDeleted', 'disconnection');
      await elicitation(client);
    } finally {
      await client.close();
    }
  });

  await check(`${name}: a link opened by someone logged in as another user connects nothing`, async () => {
    const { client } = await connectV1(server.mcp, await codeProvider('bob'), ELICITATION);
    try {
      const ask = await elicitation(client);
      const page = await browse(ask.url, 'mallory');
      eq(page.status, 403, 'status');
      assert(page.html.includes('different user'), page.html);
      await elicitation(client);
    } finally {
      await client.close();
    }
  });

  await check(`${name}: SDK v2 pinned to 2026-07-28: input_required with a URL elicitation; the handler connects; callTool answers`, async () => {
    const asked = [];
    const client = await connectV2(server, 'carol', async (request) => {
      asked.push(request.params);
      const page = await browse(request.params.url, 'carol');
      eq(page.status, 200, `connect page: ${page.html}`);
      return { action: 'accept' };
    });
    try {
      const result = await client.callTool({ name: 'cloud_profile', arguments: {} });
      assert(!result.isError, JSON.stringify(result));
      eq(JSON.stringify(text(result)), JSON.stringify({ cloud_user: 'cloud-user', mcp_user: 'carol' }), 'profile');
      eq(asked.length, 1, 'asked once');
      eq(asked[0].mode, 'url', 'URL mode');
    } finally {
      await client.close();
    }
  });

  for (const [action, expected] of [['accept', /finish authorizing in the browser/], ['decline', /declined/]]) {
    await check(`${name}: SDK v2: the user ${action}s but does not connect: asked once, then a tool error (no loop)`, async () => {
      let asked = 0;
      const client = await connectV2(server, `erin-${action}`, async () => { asked += 1; return { action }; });
      try {
        const result = await client.callTool({ name: 'cloud_profile', arguments: {} });
        eq(result.isError, true, `isError: ${JSON.stringify(result)}`);
        assert(expected.test(result.content[0].text), result.content[0].text);
        eq(asked, 1, 'asked once');
      } finally {
        await client.close();
      }
    });
  }

  await check(`${name}: a client without elicitation gets a tool error carrying the link`, async () => {
    const { client } = await connectV1(server.mcp, await codeProvider('dave'));
    try {
      const result = await client.callTool({ name: 'cloud_profile', arguments: {} });
      eq(result.isError, true, 'isError');
      const message = result.content[0].text;
      assert(message.includes(`${server.base}/connect/start?link=`), message);
      const url = /(http:\/\/\S+\/connect\/start\?link=[A-Za-z0-9_-]+)/.exec(message)[1];
      eq((await browse(url, 'dave')).status, 200, 'connected through the link in the text');
      const profile = text(await client.callTool({ name: 'cloud_profile', arguments: {} }));
      eq(profile.mcp_user, 'dave', 'then the tool works');
    } finally {
      await client.close();
    }
  });
}

const redisDir = fs.mkdtempSync(path.join(os.tmpdir(), 'accounts-redis-'));
try {
  await suite('memory store', await example());
  const socket = path.join(redisDir, 'redis.sock');
  await start('redis', 'redis-server', ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no'], {
    ready: (l) => /ready to accept connections/i.test(l),
  });
  for (let i = 0; i < 50 && !fs.existsSync(socket); i += 1) await sleep(100);
  const key = Buffer.alloc(32, 7).toString('base64url');
  const env = { REDIS_URL: `unix://${socket}`, CONNECTED_ACCOUNTS_KEY: key };
  await suite('Redis store', await example(env));
} catch (e) {
  console.log(`FAIL set-up: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await stopAll();
  fs.rmSync(redisDir, { recursive: true, force: true });
}
finish();
