// Scripted end-user login and consent: on oidc-provider's development interaction pages
// (login form, then consent form) and on the crate's development authorization server's page
// (one form: hidden inputs, a `user` text input, `approve` / `deny` buttons). Follows the
// authorization request's redirects with a cookie jar, submits the forms (any login is
// accepted; it becomes the `sub`), and returns the authorization response parameters from the
// redirect to `redirectUri`. `answer` is the dev page's button: `approve` or `deny`.
// Also: an OAuth client provider for the SDKs whose browser is this scripted login, and an SDK
// v1 connection that logs in when the server asks.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

import { assert, freePort } from './lib.mjs';

export async function scriptedLogin(authorizationUrl, redirectUri, login, { answer = 'approve' } = {}) {
  const jar = new Map();
  const go = async (url, init = {}) => {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers || {}), ...(cookie ? { cookie } : {}) },
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i).trim(), pair.slice(i + 1));
    }
    return res;
  };
  let url = authorizationUrl.toString();
  let init = {};
  for (let step = 0; step < 20; step += 1) {
    const res = await go(url, init);
    init = {};
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location'), url).toString();
      await res.body?.cancel();
      if (next.startsWith(redirectUri)) {
        return Object.fromEntries(new URL(next).searchParams);
      }
      url = next;
      continue;
    }
    const html = await res.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (!action) {
      throw new Error(`no form on ${url} (status ${res.status}): ${html.slice(0, 300)}`);
    }
    let form;
    if (html.includes('name="user"')) {
      form = {};
      for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
        form[m[1]] = m[2].replaceAll('&quot;', '"').replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&#39;', "'").replaceAll('&amp;', '&');
      }
      form.user = login;
      form[answer] = '1';
    } else if (html.includes('name="login"')) {
      form = { prompt: 'login', login, password: 'any' };
    } else {
      form = { prompt: 'consent' };
    }
    url = new URL(action.replaceAll('&amp;', '&'), url).toString();
    init = {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    };
  }
  throw new Error('too many steps in the login flow');
}

/** An OAuth client provider (SDK v1 and v2 share the shape) whose browser is the scripted login. */
export async function codeProvider(user, { answer = 'approve', metadata = {} } = {}) {
  const redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
  return {
    _tokens: undefined, _info: undefined, _verifier: undefined, response: undefined, requestedScope: undefined,
    get redirectUrl() { return redirectUri; },
    get clientMetadata() {
      return {
        client_name: 'interop-dev', redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
        token_endpoint_auth_method: 'none', ...metadata,
      };
    },
    clientInformation() { return this._info; },
    saveClientInformation(i) { this._info = i; },
    tokens() { return this._tokens; },
    saveTokens(t) { this._tokens = t; },
    async redirectToAuthorization(url) {
      this.requestedScope = url.searchParams.get('scope');
      this.response = await scriptedLogin(url, redirectUri, user, { answer });
    },
    saveCodeVerifier(v) { this._verifier = v; },
    codeVerifier() { return this._verifier; },
    // SDK v2 (SEP-2352): the authorization server the flow started with, checked on return.
    saveDiscoveryState(d) { this._discovery = d; },
    discoveryState() { return this._discovery; },
  };
}

/** Connects an SDK v1 client with `provider`, logging in first when the server asks. */
export async function connectV1(mcp, provider, options = {}) {
  const first = new StreamableHTTPClientTransport(new URL(mcp), { authProvider: provider });
  try {
    await new Client({ name: 'interop-dev', version: '1.0.0' }).connect(first);
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    assert(provider.response?.code, `no authorization code: ${JSON.stringify(provider.response)}`);
    await first.finishAuth(provider.response.code);
  }
  const client = new Client({ name: 'interop-dev', version: '1.0.0' }, options);
  const transport = new StreamableHTTPClientTransport(new URL(mcp), { authProvider: provider });
  await client.connect(transport);
  return { client, transport };
}
