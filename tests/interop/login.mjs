// Scripted end-user login and consent on oidc-provider's development interaction pages:
// follows the authorization request's redirects with a cookie jar, submits the login form
// (any login is accepted; it becomes the `sub`) and the consent form, and returns the
// authorization response parameters from the redirect to `redirectUri`.

export async function scriptedLogin(authorizationUrl, redirectUri, login) {
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
    const form = html.includes('name="login"')
      ? { prompt: 'login', login, password: 'any' }
      : { prompt: 'consent' };
    url = new URL(action.replaceAll('&amp;', '&'), url).toString();
    init = {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    };
  }
  throw new Error('too many steps in the login flow');
}
