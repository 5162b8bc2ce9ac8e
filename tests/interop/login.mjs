// Scripted end-user login and consent: on oidc-provider's development interaction pages
// (login form, then consent form) and on the crate's development authorization server's page
// (one form: hidden inputs, a `user` text input, `approve` / `deny` buttons). Follows the
// authorization request's redirects with a cookie jar, submits the forms (any login is
// accepted; it becomes the `sub`), and returns the authorization response parameters from the
// redirect to `redirectUri`. `answer` is the dev page's button: `approve` or `deny`.

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
