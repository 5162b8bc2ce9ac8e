// Three real OAuth 2.1 / OpenID Connect authorization servers (npm `oidc-provider`, an
// OpenID Certified implementation) on 127.0.0.1, for the interoperability suite:
//
//   A (trusted), B (trusted), X (not trusted by the MCP server)
//
// Each has RSA, P-256, P-384 and Ed25519 keys, open dynamic client registration, client
// credentials, authorization code + PKCE with the development login/consent pages, and
// resource indicators so that access tokens are JWTs (`typ: at+jwt`) whose `aud` is the
// requested resource. Static clients `cc-<alg>` (secret `secret`, HTTP Basic) get tokens signed with
// <alg>; `cc-hs256` gets HS256 tokens and `cc-opaque` opaque ones. The static client `exchanger`
// (same secret) may only use the RFC 8693 token-exchange grant: it trades a JWT access token of the
// same server (`subject_token`) for an RS256 `at+jwt` token whose `aud` is the `resource` or
// `audience` asked for, with the same `sub`, at most the subject's scope and expiry (and 600 s).
// RFC 7662 introspection is on (`/token/introspection`, advertised in the metadata) for the
// static client `introspector` (same secret); a registered client with
// `"access_token_format": "opaque"` gets opaque access tokens.
//
// Usage: node as.mjs '{"a":PORT,"b":PORT,"x":PORT,"resource":"http://127.0.0.1:P/mcp"}'
// Prints one line `READY` when all three listen. `POST /__rotate?alg=RS256` on a server
// publishes a new key for that algorithm, signs new tokens with it, and answers its kid.

import crypto from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';

import * as jose from 'jose'; // oidc-provider's own dependency
import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(process.argv[2]);
// `Ed25519` is RFC 9864's fully-specified name for EdDSA with Ed25519 keys.
const ALGS = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA', 'Ed25519'];
const SCOPES = 'mcp:tools mcp:admin';
const HS_SECRET = crypto.randomBytes(32);
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const TOKEN_TYPES = [ACCESS_TOKEN_TYPE, 'urn:ietf:params:oauth:token-type:jwt'];

function keyFor(alg) {
  let pair;
  if (alg.startsWith('RS') || alg.startsWith('PS')) {
    pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  } else if (alg === 'ES256') {
    pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  } else if (alg === 'ES384') {
    pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' });
  } else {
    pair = crypto.generateKeyPairSync('ed25519'); // EdDSA, Ed25519
  }
  const jwk = pair.privateKey.export({ format: 'jwk' });
  return { ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${crypto.randomBytes(4).toString('hex')}` };
}

const clients = [...ALGS.map((alg) => `cc-${alg.toLowerCase()}`), 'cc-hs256', 'cc-opaque', 'exchanger', 'introspector'].map((client_id) => ({
  client_id,
  client_secret: 'secret',
  grant_types: [client_id === 'exchanger' ? TOKEN_EXCHANGE : 'client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: SCOPES,
}));

function algOf(client) {
  const m = /^cc-(.+)$/.exec(client.clientId);
  const wanted = m && ALGS.find((a) => a.toLowerCase() === m[1]);
  // Dynamically registered clients may ask for an algorithm in their metadata.
  return wanted || client['access_token_signed_response_alg'] || 'RS256';
}

function makeProvider(issuer, keys, currentKid) {
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys },
    // A registered client may ask for opaque access tokens (`access_token_format: "opaque"`).
    extraClientMetadata: { properties: ['access_token_signed_response_alg', 'access_token_format'] },
    scopes: ['openid', 'offline_access', ...SCOPES.split(' ')],
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      registration: { enabled: true },
      // RFC 7662, for the resource server's client `introspector` (and a client's own tokens).
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx, caller, token) => caller.clientId === 'introspector' || caller.clientId === token.clientId,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => config.resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource, client) => {
          const base = { scope: SCOPES, audience: resource, accessTokenTTL: 600 };
          if (client.clientId === 'cc-opaque' || client['access_token_format'] === 'opaque') {
            return { ...base, accessTokenFormat: 'opaque' };
          }
          if (client.clientId === 'cc-hs256') {
            return { ...base, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'HS256', key: HS_SECRET } } };
          }
          const alg = algOf(client);
          return { ...base, accessTokenFormat: 'jwt', jwt: { sign: { alg, kid: currentKid[alg] } } };
        },
      },
    },
    pkce: { required: () => true },
    clientBasedCORS: () => true,
    loadExistingGrant: async (ctx) => {
      // Consent once per client and account, like a user who already approved it.
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
  });
  provider.on('server_error', (ctx, err) => console.error(`[${issuer}] server_error`, err));
  registerTokenExchange(provider, issuer, keys, currentKid);
  return provider;
}

// RFC 8693 token exchange for `exchanger`; errors are those of RFC 8693 §2.2.2.
function registerTokenExchange(provider, issuer, keys, currentKid) {
  const { InvalidRequest, InvalidScope, InvalidTarget } = errors;
  // Every signing key this server has published (private members dropped).
  const jwks = jose.createLocalJWKSet({ keys: keys.map(({ d, p, q, dp, dq, qi, ...pub }) => pub) });
  provider.registerGrantType(TOKEN_EXCHANGE, async (ctx) => {
    const { params, client } = ctx.oidc;
    if (!params.subject_token) throw new InvalidRequest('missing required parameter \'subject_token\'');
    if (!TOKEN_TYPES.includes(params.subject_token_type)) throw new InvalidRequest('unsupported subject_token_type');
    if (params.requested_token_type !== undefined && !TOKEN_TYPES.includes(params.requested_token_type)) {
      throw new InvalidRequest('unsupported requested_token_type');
    }
    let subject;
    try {
      ({ payload: subject } = await jose.jwtVerify(params.subject_token, jwks, {
        issuer, typ: 'at+jwt', algorithms: ALGS, requiredClaims: ['sub', 'exp'],
      }));
    } catch (cause) {
      throw new InvalidRequest('subject_token is not a valid access token of this server', undefined, { cause });
    }
    const { resource, audience } = params;
    if (resource !== undefined && audience !== undefined) throw new InvalidTarget('give either resource or audience, not both');
    if (resource !== undefined && (!URL.canParse(resource) || resource.includes('#'))) {
      throw new InvalidTarget('resource must be an absolute URI without a fragment');
    }
    const aud = resource ?? audience;
    if (!aud) throw new InvalidTarget('resource or audience is required');
    const held = (subject.scope || '').split(' ').filter(Boolean);
    const asked = params.scope === undefined ? held : params.scope.split(' ').filter(Boolean);
    const wider = asked.filter((s) => !held.includes(s));
    if (wider.length) throw new InvalidScope('requested scope exceeds the subject token\'s scope', wider.join(' '));
    const now = Math.floor(Date.now() / 1000);
    const token = new provider.AccessToken({
      client,
      accountId: subject.sub,
      scope: asked.join(' ') || undefined,
      exp: Math.min(subject.exp, now + 600),
      gty: TOKEN_EXCHANGE,
      resourceServer: new provider.ResourceServer(aud, {
        scope: SCOPES, audience: aud, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256', kid: currentKid.RS256 } },
      }),
    });
    ctx.oidc.entity('AccessToken', token);
    const accessToken = await token.save();
    ctx.body = {
      access_token: accessToken,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: token.exp - now,
      scope: token.scope,
    };
  }, ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'resource', 'scope']);
  // oidc-provider answers invalid_request to a client without this grant; RFC 6749 §5.2 (and
  // RFC 8693) say unauthorized_client, so that is the answer here (other grants are untouched).
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'token' && ctx.oidc.params?.grant_type === TOKEN_EXCHANGE
      && ctx.body?.error === 'invalid_request' && ctx.oidc.client && !ctx.oidc.client.grantTypeAllowed(TOKEN_EXCHANGE)) {
      ctx.body = { ...ctx.body, error: 'unauthorized_client' };
    }
  });
}

function serve(port) {
  const issuer = `http://127.0.0.1:${port}`;
  const keys = ALGS.map(keyFor);
  const currentKid = Object.fromEntries(keys.map((k) => [k.alg, k.kid]));
  let provider = makeProvider(issuer, keys, currentKid);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, issuer);
    if (req.method === 'POST' && url.pathname === '/__rotate') {
      const alg = url.searchParams.get('alg') || 'RS256';
      const key = keyFor(alg);
      keys.unshift(key);
      currentKid[alg] = key.kid;
      provider = makeProvider(issuer, keys, currentKid);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kid: key.kid }));
      return;
    }
    if (req.method === 'POST' && url.pathname === '/reg') {
      // Registration may name a `scope`; oidc-provider then allows only those scopes to the
      // client forever. MCP clients register with the scope of their first challenge and ask
      // for more on step-up, so registered clients are not limited here (as at most IdPs).
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        let body = Buffer.concat(chunks);
        try {
          const json = JSON.parse(body.toString());
          delete json.scope;
          body = Buffer.from(JSON.stringify(json));
        } catch {
          // Not JSON: oidc-provider answers the error.
        }
        const replay = Readable.from([body]);
        Object.assign(replay, {
          headers: { ...req.headers, 'content-length': String(body.length) },
          rawHeaders: req.rawHeaders,
          method: req.method,
          url: req.url,
          httpVersion: req.httpVersion,
          socket: req.socket,
          connection: req.socket,
        });
        provider.callback()(replay, res);
      });
      return;
    }
    provider.callback()(req, res);
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

await Promise.all([serve(config.a), serve(config.b), serve(config.x)]);
console.log('READY');
