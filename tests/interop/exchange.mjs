// RFC 8693 token exchange against oidc-provider: the crate's TokenExchangeBroker (the Rust test
// `downstream::oidc_provider`, ignored in the plain test run) exchanges client-credentials
// tokens at the suite's authorization servers (as.mjs, client `exchanger`, the
// token-exchange grant registered with provider.registerGrantType). Started by run.sh; the
// servers are stopped by PID at the end. Last line: `N passed, M failed`.


import { check, eq, finish, freePort, run, startAuthorizationServers, stopAll } from './lib.mjs';

try {
  const [portA, portB, portX, portMcp] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const resource = `http://127.0.0.1:${portMcp}/mcp`;
  await startAuthorizationServers({ a: portA, b: portB, x: portX, resource });
  await check('TokenExchangeBroker at oidc-provider: resource and audience targets, refusals mapped, issuer-bound', async () => {
    const r = await run('cargo test', 'cargo', ['test', '--quiet', '--all-features', '--test', 'it', 'downstream::oidc_provider', '--', '--ignored'], {
      env: {
        PR_TEST_OIDC_A: `http://127.0.0.1:${portA}`, PR_TEST_OIDC_B: `http://127.0.0.1:${portB}`,
        PR_TEST_OIDC_RESOURCE: resource, CARGO_TERM_COLOR: 'never',
      },
      timeoutMs: 600000,
    });
    eq(r.code, 0, `cargo test:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
    eq(/1 passed/.test(r.stdout), true, 'the test ran');
  });
} catch (e) {
  console.log(`FAIL set-up: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}
finish();
