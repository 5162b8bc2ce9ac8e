// The MCP Inspector web UI in a real browser against the zero-configuration example: headless
// Chromium (Debian's chromium, driven by playwright-core) opens the Inspector and switches on
// the seeded Streamable HTTP server (its normal Connect; 2.12's web UI has no separate guided
// OAuth flow); the Inspector's OAuth flow (discovery, dynamic registration, PKCE) sends the
// browser to the embedded development authorization server's consent page, the user logs in
// as `browser-user` and approves; back in the Inspector the session is connected, the Tools
// tab lists the tools and running whoami shows the user. A full-page screenshot of the result
// is kept in .logs/inspector-whoami.png; on a failure, .logs/inspector-failure.png, the page
// URL and text, the browser's console errors and the tails of the Inspector's and the
// example's output. Started by run.sh (which installs chromium); every process is stopped by
// PID at the end. Last line: `N passed, M failed`.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { chromium } from 'playwright-core';

import {
  HERE, NODE22, SERVER_BIN, assert, check, children, eq, finish, freePort, log, results, start, stopAll,
} from './lib.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
// The flags that work here (FIELD-NOTES "Headless browser"); without the background-networking
// ones Chromium floods the closed network with refused connections.
const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const INSPECTOR = path.join(HERE, 'node_modules', '@modelcontextprotocol', 'inspector', 'clients', 'launcher', 'build', 'index.js');
const LOGS = path.join(HERE, '.logs');
const RESULT_SHOT = path.join(LOGS, 'inspector-whoami.png');
const FAILURE_SHOT = path.join(LOGS, 'inspector-failure.png');
const USER = 'browser-user';
const WATCHDOG_MS = 180000;

const ZERO_CONFIG = {
  // Whatever MCP_SERVER_AUTH_* the caller's shell has, the example must see none of it.
  ...Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('MCP_SERVER_AUTH_')).map((k) => [k, ''])),
  MCP_SERVER_AUTH_AUTHORIZATION_SERVERS: '', MCP_RESOURCE_SERVER_AUTHORIZATION_SERVERS: '',
  MCP_SERVER_AUTH_CANONICAL_URL: '', MCP_SERVER_AUTH_SCOPES_SUPPORTED: '',
  MCP_SERVER_AUTH_DEFAULT_CHALLENGE_SCOPES: '', MCP_SERVER_DEV_AUTO_APPROVE: '',
  RUST_LOG: 'warn',
};

/** Keeps the last `max` lines a started process prints from now on on `streams` (for failure reports). */
function keepTail(child, { streams = ['stdout', 'stderr'], max = 40 } = {}) {
  const lines = [];
  const push = (d) => {
    // Without the colour codes of tracing's output.
    lines.push(...d.toString().replace(/\x1b\[[0-9;]*m/g, '').split('\n').filter((l) => l.trim()));
    lines.splice(0, Math.max(0, lines.length - max));
  };
  for (const stream of streams) child[stream].on('data', push);
  return lines;
}

/** Starts the example with no configuration on a free port. */
async function example() {
  const port = await freePort();
  const child = await start(`example:${port}`, SERVER_BIN, [], {
    env: { ...ZERO_CONFIG, MCP_SERVER_BIND: `127.0.0.1:${port}` },
    ready: (l) => l.startsWith('Protected MCP server on'),
  });
  const base = `http://127.0.0.1:${port}`;
  // Its logs (stderr); stdout is the start-up banner.
  return { base, mcp: `${base}/mcp`, issuer: `${base}/dev-auth`, output: keepTail(child, { streams: ['stderr'] }) };
}

/**
 * Starts the Inspector web UI (Node 22) with `mcp` as its one ad-hoc Streamable HTTP server, on
 * a free port, with a fresh HOME, secrets in memory, no browser opened, no proxy.
 */
async function inspector(mcp) {
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'interop-inspector-'));
  const child = await start(`inspector:${port}`, NODE22, [INSPECTOR, '--web', '--transport', 'http', '--server-url', mcp], {
    env: {
      HOME: home, MCP_STORAGE_DIR: path.join(home, 'storage'), MCP_INSPECTOR_SECRET_STORE: 'memory',
      HOST: '127.0.0.1', CLIENT_PORT: String(port), MCP_SANDBOX_PORT: '0', MCP_APP_ORIGIN_PORT: '0',
      MCP_AUTO_OPEN_ENABLED: 'false', MCP_INSPECTOR_API_TOKEN: token,
      DANGEROUSLY_OMIT_AUTH: '', MCP_PROXY_AUTH_TOKEN: '', ALLOWED_ORIGINS: '', MCP_CATALOG_PATH: '',
      HTTPS_PROXY: '', https_proxy: '', HTTP_PROXY: '', http_proxy: '',
    },
    ready: (l) => l.includes('MCP Inspector Web is up and running'),
  });
  const origin = `http://127.0.0.1:${port}`;
  // The page reads its API token from this parameter (the URL the Inspector's banner prints).
  return { origin, url: `${origin}/?MCP_INSPECTOR_API_TOKEN=${token}`, serverName: new URL(mcp).host, home, output: keepTail(child) };
}

/** Chromium as a process of our own (stopped by PID), and playwright-core connected to it. */
async function launchChromium() {
  const server = await chromium.launchServer({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, timeout: 30000 });
  children.push({ name: 'chromium', child: server.process() });
  const browser = await chromium.connect(server.wsEndpoint(), { timeout: 15000 });
  return { server, browser };
}

/** Whether `url` is on this machine (127.0.0.1, localhost, [::1]). */
function isLoopback(url) {
  try {
    return ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname);
  } catch {
    return false;
  }
}
const NOT_LOOPBACK = /^https?:\/\/(?!(127\.0\.0\.1|localhost|\[::1\])[:/])/;

/** Resolves with `promise`, or rejects after `ms`. */
function within(ms, promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

const started = Date.now();
const seen = { navigations: [], consoleErrors: [] };
let dev;
let insp;
let chrome;
let page;
let failed = false;

async function report() {
  const indent = (lines) => lines.map((l) => `        ${l}`).join('\n');
  log(`      page URL: ${page ? page.url() : '(no page)'}`);
  if (page) {
    try {
      const bar = page.getByTestId('connection-status');
      if (await bar.count()) {
        log(`      Inspector status: ${await bar.getAttribute('data-status')}, error: ${await bar.getAttribute('data-error-message')}`);
      }
      await within(10000, page.screenshot({ path: FAILURE_SHOT, fullPage: true }), 'screenshot');
      log(`      screenshot: ${FAILURE_SHOT}`);
    } catch (e) {
      log(`      (no screenshot: ${e.message})`);
    }
    const text = await within(5000, page.locator('body').innerText(), 'page text').catch((e) => e.message);
    log(`      page text: ${text.replace(/\s+/g, ' ').slice(0, 800)}`);
  }
  if (seen.navigations.length) log(`      navigations:\n${indent(seen.navigations)}`);
  if (seen.consoleErrors.length) log(`      browser console errors:\n${indent(seen.consoleErrors.slice(-20))}`);
  if (insp?.output.length) log(`      Inspector output (tail):\n${indent(insp.output)}`);
  if (dev?.output.length) log(`      example logs (tail):\n${indent(dev.output)}`);
}

/** One step of the flow: a check; after a failure the rest are skipped. */
async function step(name, fn) {
  if (failed) {
    log(`skip  ${name}`);
    return;
  }
  await check(name, fn);
  if (!results[results.length - 1]) {
    failed = true;
    await report();
  }
}

const watchdog = setTimeout(async () => {
  results.push(false);
  log(`FAIL  watchdog: the flow did not end in ${WATCHDOG_MS} ms`);
  await report();
  await stopAll();
  finish();
}, WATCHDOG_MS);
watchdog.unref();

try {
  fs.mkdirSync(LOGS, { recursive: true });
  fs.rmSync(RESULT_SHOT, { force: true });
  fs.rmSync(FAILURE_SHOT, { force: true });
  assert(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (run.sh does)`);
  dev = await example();
  insp = await inspector(dev.mcp);
  chrome = await launchChromium();
  const context = await chrome.browser.newContext({ viewport: { width: 1400, height: 900 } });
  context.setDefaultTimeout(15000);
  context.setDefaultNavigationTimeout(20000);
  // Loopback only: the Inspector's page asks for Google Fonts, which this network can't reach.
  await context.route(NOT_LOOPBACK, (route) => route.abort());
  page = await context.newPage();
  page.on('framenavigated', (frame) => { if (frame === page.mainFrame()) seen.navigations.push(frame.url()); });
  // Console errors and failed requests, less the fonts we refuse and what a navigation cancels.
  page.on('console', (m) => {
    if (m.type() === 'error' && isLoopback(m.location().url || page.url())) seen.consoleErrors.push(`${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => seen.consoleErrors.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    const why = r.failure()?.errorText;
    if (isLoopback(r.url()) && why !== 'net::ERR_ABORTED') seen.consoleErrors.push(`request failed: ${r.method()} ${r.url()}: ${why}`);
  });
  log(`example ${dev.mcp}, Inspector ${insp.origin}, Chromium pid ${chrome.server.process().pid}`);

  // The Inspector's header (status attributes, the Servers/Tools/... tabs) and its server card's
  // switch, named for the server (its URL's host).
  const statusBar = page.getByTestId('connection-status');
  const connectSwitch = page.getByRole('switch', { name: `Connect or disconnect "${insp.serverName}"` });
  let authorizeUrl;

  await step('Inspector web UI lists the example as a disconnected Streamable HTTP server', async () => {
    await page.goto(insp.url);
    await connectSwitch.waitFor();
    eq(await connectSwitch.isChecked(), false, 'switch on before Connect');
    await page.getByText(dev.mcp, { exact: true }).waitFor();
    await page.getByText('Streamable HTTP', { exact: true }).waitFor();
  });

  await step('Connect: the Inspector registers and sends the browser to our consent page', async () => {
    // Mantine draws its track over the checkbox: click through it.
    await connectSwitch.click({ force: true });
    await page.waitForURL((u) => u.href.startsWith(`${dev.issuer}/authorize?`));
    authorizeUrl = new URL(page.url());
    const q = authorizeUrl.searchParams;
    eq(q.get('response_type'), 'code', 'response_type');
    eq(q.get('redirect_uri'), `${insp.origin}/oauth/callback`, 'redirect_uri (the Inspector\'s callback)');
    eq(q.get('resource'), dev.mcp, 'resource');
    eq(q.get('code_challenge_method'), 'S256', 'PKCE');
    assert(q.get('client_id'), 'a client_id (from dynamic registration)');
    assert(q.get('scope')?.split(' ').includes('mcp:tools'), `scope asked: ${q.get('scope')}`);
    eq(await page.locator('input[name="user"]').inputValue(), 'dev-user', 'default user on the page');
    await page.locator('[name="approve"]').waitFor();
    await page.locator('[name="deny"]').waitFor();
    assert((await page.locator('body').innerText()).includes(dev.mcp), 'the page names the resource');
  });

  await step(`Approve as ${USER}: back in the Inspector, connected`, async () => {
    await page.locator('input[name="user"]').fill(USER);
    await page.locator('[name="approve"]').click();
    await page.waitForURL((u) => u.origin === insp.origin);
    // Connected, or the server card says Failed (an OAuth error: fail fast, report() shows it).
    await statusBar.and(page.locator('[data-status="connected"]'))
      .or(page.getByText('Failed', { exact: true })).first().waitFor({ timeout: 30000 });
    eq(await statusBar.getAttribute('data-status'), 'connected', `Inspector status (error: ${await statusBar.getAttribute('data-error-message')})`);
    const callback = seen.navigations.map((u) => new URL(u)).find((u) => u.href.startsWith(`${insp.origin}/oauth/callback?`));
    assert(callback, `no navigation to the callback: ${seen.navigations.join(' ')}`);
    assert(callback.searchParams.get('code'), 'a code on the callback');
    eq(callback.searchParams.get('iss'), dev.issuer, 'iss on the callback');
    eq(callback.searchParams.get('state'), authorizeUrl.searchParams.get('state'), 'state on the callback');
    eq(await connectSwitch.isChecked(), true, 'switch on');
  });

  const tools = page.getByTestId('tools-screen');

  await step('Tools tab lists the tools, whoami among them', async () => {
    await statusBar.locator('label').filter({ hasText: /^Tools$/ }).click();
    await tools.waitFor();
    const count = Number(await tools.getAttribute('data-tool-count'));
    assert(count > 0, `tools listed: ${count}`);
    await tools.getByRole('button', { name: 'whoami', exact: true }).waitFor();
    const names = await tools.getByRole('button').allInnerTexts();
    log(`      ${count} tools: ${names.map((n) => n.trim()).filter(Boolean).join(', ')}`);
  });

  await step(`whoami runs in the Inspector and shows ${USER}; screenshot kept`, async () => {
    await tools.getByRole('button', { name: 'whoami', exact: true }).click();
    await page.getByRole('button', { name: 'Execute Tool' }).click();
    await page.locator('[data-testid="tools-screen"]:is([data-call-status="ok"], [data-call-status="error"])').waitFor();
    eq(await tools.getAttribute('data-call-status'), 'ok', 'call status');
    // The result is shown as formatted JSON in a read-only editor under "Results".
    const resultCard = tools.locator('.mantine-Card-root').filter({ has: page.getByRole('heading', { name: 'Results', exact: true }) });
    const text = (await resultCard.locator('.ace_text-layer').innerText()).trim();
    assert(text.includes(`"user_id": "${USER}"`), `the result shown: ${text}`);
    const me = JSON.parse(text);
    eq(me.user_id, USER, 'user_id');
    eq(me.issuer, dev.issuer, 'issuer');
    eq(me.client_id, authorizeUrl.searchParams.get('client_id'), 'client_id (the Inspector\'s registration)');
    assert(me.scopes.includes('mcp:tools'), `scopes: ${me.scopes}`);
    await page.screenshot({ path: RESULT_SHOT, fullPage: true });
    assert(fs.statSync(RESULT_SHOT).size > 0, 'screenshot written');
    log(`      screenshot: ${RESULT_SHOT}`);
  });
} catch (e) {
  results.push(false);
  log(`FAIL  set-up: ${e?.stack || e}`);
  await report();
} finally {
  await within(10000, chrome?.server.close() ?? Promise.resolve(), 'closing Chromium').catch((e) => log(`      ${e.message}`));
  await stopAll();
  if (insp) fs.rmSync(insp.home, { recursive: true, force: true });
}
log(`browser.mjs: ${((Date.now() - started) / 1000).toFixed(1)} s`);
finish();
