//! The connect pages: `GET {connect}/start?link=…` (a connect link), `GET {connect}/login`
//! (back from the login at the user's authorization server) and `GET {connect}/callback`
//! (back from the provider). Each step's state is sealed into the OAuth `state` and bound to
//! the browser by a cookie; the login must prove the same issuer and subject as the link.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::record::{self, Account, FlowState, Link};
use super::{AccountKey, ConnectedAccounts, Inner, OAuthProvider};
use crate::html::{escape, page_headers};
use std::sync::Arc;

/// The cookie that binds a flow to the browser that started it: one per provider (two
/// connects at once do not disturb each other); `__Host-` on https (no sibling subdomain can
/// set it).
fn cookie_name(inner: &Inner, provider: &str) -> String {
    if inner.secure {
        format!("__Host-pr_connect_{provider}")
    } else {
        format!("pr_connect_{provider}")
    }
}

/// `Set-Cookie` for the binding `value`, or clearing it (`None`).
fn set_cookie(inner: &Inner, provider: &str, value: Option<&str>) -> Option<HeaderValue> {
    let name = cookie_name(inner, provider);
    let (path, secure) = if inner.secure {
        ("/".to_owned(), "; Secure")
    } else {
        (format!("{}/", inner.path), "")
    };
    let (value, age) = match value {
        Some(v) => (v, STEP_SECONDS),
        None => ("", 0),
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={age}; HttpOnly; SameSite=Lax{secure}"
    ))
    .ok()
}

/// `response` with the flow's cookie cleared (the flow ended, well or not).
fn finish(inner: &Inner, provider: &str, mut response: Response) -> Response {
    if let Some(v) = set_cookie(inner, provider, None) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}
/// Each browser step must finish within this time.
const STEP_SECONDS: u64 = 600;

impl ConnectedAccounts {
    /// The connect pages, at the path of the connect URL: merge this router into the
    /// application outside the [`ProtectedResourceLayer`](crate::ProtectedResourceLayer)
    /// (browsers carry no bearer token).
    pub fn router<S>(&self) -> Router<S> {
        let p = &self.inner.path;
        Router::new()
            .route(&format!("{p}/start"), get(start))
            .route(&format!("{p}/login"), get(login))
            .route(&format!("{p}/callback"), get(callback))
            .with_state(self.inner.clone())
    }
}

/// `GET {connect}/start?link=…`: checks the link, then sends the browser to log in.
async fn start(State(inner): State<Arc<Inner>>, RawQuery(query): RawQuery) -> Response {
    let Some(q) = Query::parse(query.as_deref()) else {
        return page(StatusCode::BAD_REQUEST, "This connect link is malformed.");
    };
    let Some(link) = q
        .get("link")
        .and_then(|l| record::open_json::<Link>(&inner.key, record::LINK, &inner.base, l))
        .filter(|l| l.exp > record::now_secs())
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "This connect link is not valid or has expired. Ask your MCP client again.",
        );
    };
    let Some(login) = inner.logins.get(link.iss.trim_end_matches('/')) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Users of this authorization server can not connect accounts here.",
        );
    };
    let Some(binding) = record::random() else {
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No randomness available.",
        );
    };
    let mut params = vec![("resource", inner.auth.canonical_url().to_owned())];
    if let Some(scope) = &inner.login_scope {
        params.push(("scope", scope.clone()));
    }
    let redirect = format!("{}/login", inner.base);
    let provider = link.provider.clone();
    let mut response = authorize(
        &inner,
        login,
        link,
        &redirect,
        &binding,
        record::LOGIN_STATE,
        params,
    );
    if response.status() == StatusCode::SEE_OTHER
        && let Some(v) = set_cookie(&inner, &provider, Some(&binding))
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// `GET {connect}/login`: the login's code; the logged-in user must be the link's user.
async fn login(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (q, state, binding) = match step(&inner, &headers, query.as_deref(), record::LOGIN_STATE) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let provider_name = state.link.provider.clone();
    let response = login_step(&inner, &q, state, &binding).await;
    if response.status() == StatusCode::SEE_OTHER {
        response
    } else {
        finish(&inner, &provider_name, response)
    }
}

async fn login_step(inner: &Inner, q: &Query, state: FlowState, binding: &str) -> Response {
    let issuer = state.link.iss.trim_end_matches('/');
    let Some(client) = inner.logins.get(issuer) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Users of this authorization server can not connect accounts here.",
        );
    };
    // RFC 9207: an `iss` in the answer must be the server the request went to.
    if q.get("iss")
        .is_some_and(|i| i.trim_end_matches('/') != issuer)
    {
        return page(
            StatusCode::BAD_REQUEST,
            "The login answer came from another authorization server.",
        );
    }
    let Some(code) = q.get("code") else {
        return page(
            StatusCode::FORBIDDEN,
            "The login was not completed. Nothing was connected.",
        );
    };
    let redirect = format!("{}/login", inner.base);
    let resource = inner.auth.canonical_url();
    let token = match client
        .redeem(code, &state.verifier, &redirect, Some(resource))
        .await
    {
        Ok(issued) => issued.access_token,
        Err(_) => {
            return page(
                StatusCode::BAD_GATEWAY,
                "The login could not be completed. Try again.",
            );
        }
    };
    let same_user = match inner.auth.validate(&token).await {
        Ok(who) => who.issuer().trim_end_matches('/') == issuer && who.user_id() == state.link.sub,
        Err(e) => {
            tracing::warn!(kind = ?e.kind(), "the connect page's login token was not accepted");
            return page(
                StatusCode::BAD_GATEWAY,
                "The login's token was not accepted. Nothing was connected.",
            );
        }
    };
    if !same_user {
        return page(
            StatusCode::FORBIDDEN,
            "You are logged in as a different user than the one whose MCP client asked to connect \
             this account. Nothing was connected.",
        );
    }
    let Some(provider) = inner.providers.get(&state.link.provider) else {
        return page(
            StatusCode::BAD_REQUEST,
            "This provider is no longer configured.",
        );
    };
    let mut params: Vec<(&str, String)> = Vec::new();
    if !state.link.scopes.is_empty() {
        params.push(("scope", state.link.scopes.join(" ")));
    }
    params.extend(
        provider
            .authorize_params
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone())),
    );
    let redirect = format!("{}/callback", inner.base);
    authorize(
        inner,
        provider,
        state.link,
        &redirect,
        binding,
        record::PROVIDER_STATE,
        params,
    )
}

/// `GET {connect}/callback`: the provider's code; the tokens are stored for the link's user.
async fn callback(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (q, state, _) = match step(&inner, &headers, query.as_deref(), record::PROVIDER_STATE) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let provider_name = state.link.provider.clone();
    finish(
        &inner,
        &provider_name,
        callback_step(&inner, &q, state).await,
    )
}

async fn callback_step(inner: &Inner, q: &Query, state: FlowState) -> Response {
    let Some(provider) = inner.providers.get(&state.link.provider) else {
        return page(
            StatusCode::BAD_REQUEST,
            "This provider is no longer configured.",
        );
    };
    let Some(code) = q.get("code") else {
        return page(
            StatusCode::FORBIDDEN,
            "The provider did not authorize the access. Nothing was connected.",
        );
    };
    let redirect = format!("{}/callback", inner.base);
    let issued = match provider
        .redeem(code, &state.verifier, &redirect, None)
        .await
    {
        Ok(i) => i,
        Err(_) => {
            return page(
                StatusCode::BAD_GATEWAY,
                "The provider's tokens could not be obtained. Try again.",
            );
        }
    };
    let account = Account::from_issued(issued, &state.link.scopes, None, record::now_secs());
    let key = AccountKey::new(&state.link.iss, &state.link.sub, &state.link.provider);
    if inner.save(&key, &account).await.is_err() {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The account could not be saved. Try again.",
        );
    }
    page(
        StatusCode::OK,
        &format!(
            "Your {} account is connected. Go back to your MCP client and try again.",
            state.link.provider
        ),
    )
}

/// A redirect (303) to `client`'s authorization endpoint with PKCE and the sealed state.
fn authorize(
    inner: &Inner,
    client: &OAuthProvider,
    link: Link,
    redirect_uri: &str,
    binding: &str,
    purpose: &str,
    extra: Vec<(&str, String)>,
) -> Response {
    let Some(verifier) = record::random() else {
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No randomness available.",
        );
    };
    let challenge = record::sha256_b64(&verifier);
    let flow = FlowState {
        link,
        verifier,
        binding: record::sha256_b64(binding),
        exp: record::now_secs() + STEP_SECONDS,
    };
    let Some(state) = record::seal_json(&inner.key, purpose, &inner.base, &flow) else {
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The request could not be sealed.",
        );
    };
    let Ok(mut url) = reqwest::Url::parse(&client.authorization_endpoint) else {
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The authorization endpoint is not a URL.",
        );
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client.client_id())
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .extend_pairs(extra);
    match HeaderValue::from_str(url.as_str()) {
        Ok(location) => {
            let mut response = (StatusCode::SEE_OTHER, page_headers()).into_response();
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        Err(_) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The redirect could not be made.",
        ),
    }
}

/// Opens a step's state (sealed for `purpose`, not expired, this browser's); the page to
/// answer otherwise.
fn step(
    inner: &Inner,
    headers: &HeaderMap,
    query: Option<&str>,
    purpose: &str,
) -> Result<(Query, FlowState, String), Box<Response>> {
    let q = Query::parse(query)
        .ok_or_else(|| Box::new(page(StatusCode::BAD_REQUEST, "This answer is malformed.")))?;
    let state = q
        .get("state")
        .and_then(|s| record::open_json::<FlowState>(&inner.key, purpose, &inner.base, s))
        .filter(|s| s.exp > record::now_secs())
        .ok_or_else(|| {
            Box::new(page(StatusCode::BAD_REQUEST, "This connection attempt is not valid or has expired. Start again from your MCP client."))
        })?;
    let binding = cookie(headers, &cookie_name(inner, &state.link.provider))
        .filter(|b| record::sha256_b64(b) == state.binding)
        .ok_or_else(|| {
            Box::new(page(
                StatusCode::FORBIDDEN,
                "This connection was started in another browser. Nothing was connected.",
            ))
        })?;
    if q.get("error").is_some() {
        let refused = page(
            StatusCode::FORBIDDEN,
            "The authorization was refused. Nothing was connected.",
        );
        return Err(Box::new(finish(inner, &state.link.provider, refused)));
    }
    Ok((q, state, binding))
}

/// The value of the cookie `name` (the only one of that name, or none).
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            pair.trim()
                .strip_prefix(name)?
                .strip_prefix('=')
                .map(str::to_owned)
        });
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// A query string whose parameters appear at most once each (a repeated one is refused).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Option<Self> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .into_owned()
            .take(32)
            .collect();
        for (i, (k, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(j, _)| j == k) {
                return None;
            }
        }
        Some(Self(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn page(status: StatusCode, message: &str) -> Response {
    let title = if status.is_success() {
        "Connected"
    } else {
        "Not connected"
    };
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body><h1>{title}</h1><p>{}</p></body></html>\n",
        escape(message)
    );
    (status, page_headers(), Html(body)).into_response()
}
