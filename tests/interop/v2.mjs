// The TypeScript SDK v2 client (`@modelcontextprotocol/client` 2.4, MCP 2026-07-28: no
// sessions, `server/discover`, `Mcp-Method` / `Mcp-Name` headers) against the example
// server: filtered lists, whoami, the 403 step-up on admin_report, a prompt and a resource
// with requirements, a header/body mismatch refused, note handles across users. Called by
// replicas.mjs with a running server.

import { Client, ClientCredentialsProvider, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

import { assert, check, eq } from './lib.mjs';

/**
 * `url`: the MCP endpoint; `issuer`: the authorization server (static clients `cc-<alg>`,
 * secret `secret`).
 */
export async function v2Checks({ url, issuer, label = '' }) {
  /** A connected v2 client for `clientId`, with `options` for its transport. */
  async function connect(clientId, { scope = 'mcp:tools', fetch: customFetch } = {}) {
    const authProvider = new ClientCredentialsProvider({
      clientId, clientSecret: 'secret', scope, expectedIssuer: issuer,
    });
    // Pinned: 2026-07-28 from the server/discover probe, no fallback to initialize.
    const client = new Client({ name: 'interop-v2', version: '1.0.0' }, {
      versionNegotiation: { mode: { pin: '2026-07-28' } },
    });
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      authProvider, ...(customFetch ? { fetch: customFetch } : {}),
    });
    await client.connect(transport);
    return { client, authProvider, transport };
  }
  const text = (result) => JSON.parse(result.content[0].text);

  await check(`TS SDK v2${label} (2026-07-28): filtered tools/list and whoami`, async () => {
    const { client, transport } = await connect('cc-rs256');
    try {
      eq(client.getNegotiatedProtocolVersion(), '2026-07-28', 'negotiated version');
      eq(transport.sessionId, undefined, 'no session');
      const { tools } = await client.listTools();
      eq(JSON.stringify(tools.map((t) => t.name).sort()), JSON.stringify(['acme_profile', 'note_create', 'note_read', 'whoami']), 'tools');
      const me = text(await client.callTool({ name: 'whoami', arguments: {} }));
      eq(me.user_id, 'cc-rs256', 'user_id');
      eq(me.issuer, issuer, 'issuer');
    } finally {
      await client.close();
    }
  });

  await check(`TS SDK v2${label}: 403 on admin_report, admin_brief and admin://report, step-up, success`, async () => {
    const { client, authProvider } = await connect('cc-es256');
    try {
      const before = authProvider.tokens()?.access_token;
      const report = text(await client.callTool({ name: 'admin_report', arguments: {} }));
      eq(report.requested_by, 'cc-es256', 'requested_by after step-up');
      assert(authProvider.tokens()?.access_token !== before, 'a new token with mcp:admin');
      const prompt = await client.getPrompt({ name: 'admin_brief' });
      assert(prompt.messages[0].content.text.includes('cc-es256'), JSON.stringify(prompt));
      const resource = await client.readResource({ uri: 'admin://report' });
      eq(JSON.parse(resource.contents[0].text).requested_by, 'cc-es256', 'resource');
      const { tools } = await client.listTools();
      assert(tools.some((t) => t.name === 'admin_report'), 'admin_report listed once allowed');
    } finally {
      await client.close();
    }
  });

  await check(`TS SDK v2${label}: a request whose Mcp-Name disagrees with its body gets -32020`, async () => {
    // A client (or a proxy) that names one tool in the header and calls another.
    const lying = async (input, init) => {
      const headers = new Headers(init?.headers);
      if (headers.get('mcp-name') === 'admin_report') headers.set('mcp-name', 'whoami');
      return fetch(input, { ...init, headers });
    };
    const { client } = await connect('cc-ps256', { scope: 'mcp:tools mcp:admin', fetch: lying });
    try {
      let error;
      try {
        await client.callTool({ name: 'admin_report', arguments: {} });
      } catch (e) {
        error = e;
      }
      assert(error, 'the call must fail');
      eq(error.code, -32020, `error code (${error})`);
    } finally {
      await client.close();
    }
  });

  await check(`TS SDK v2${label}: a note handle opens only for the user who made it`, async () => {
    const alice = await connect('cc-eddsa');
    const bob = await connect('cc-es384');
    try {
      const { handle } = text(await alice.client.callTool({ name: 'note_create', arguments: { text: 'v2 note' } }));
      eq(text(await alice.client.callTool({ name: 'note_read', arguments: { handle } })).text, 'v2 note', 'owner reads');
      const theirs = await bob.client.callTool({ name: 'note_read', arguments: { handle } });
      const never = await bob.client.callTool({ name: 'note_read', arguments: { handle: `${handle}x` } });
      eq(JSON.stringify(theirs), JSON.stringify(never), 'same answer as a handle that never existed');
      eq(theirs.isError, true, 'isError');
    } finally {
      await alice.client.close();
      await bob.client.close();
    }
  });
}
