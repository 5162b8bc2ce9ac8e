//! The authorization endpoint: checks an authorization request (client, redirect URI, PKCE,
//! scopes, resource), shows the login and consent page (or approves at once with
//! auto-approve), and answers the page's form with a redirect carrying a code or an error.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use reqwest::Url;

use super::register::registered_redirect;
use super::store::{Client, Grant};
use super::{Inner, page, params};

/// The longest `state` kept (it travels in every code and pending request).
const MAX_STATE_BYTES: usize = 2048;

/// `GET {issuer}/authorize`.
pub(crate) async fn show(State(inner): State<Arc<Inner>>, RawQuery(query): RawQuery) -> Response {
    let Some(p) = params::unique(query.unwrap_or_default().as_bytes()) else {
        return page::error("The authorization request repeats a parameter or has too many.");
    };
    let client = match p.get("client_id") {
        Some(id) => inner.client(id).await,
        None => Err("The request has no client_id."),
    };
    let grant = match client
        .map_err(Refusal::Page)
        .and_then(|c| check(&inner, &c, &p))
    {
        Ok(grant) => grant,
        Err(Refusal::Page(message)) => return page::error(message),
        Err(Refusal::Redirect {
            uri,
            state,
            error,
            description,
        }) => {
            return inner.redirect(
                &uri,
                &[("error", error), ("error_description", description)],
                state.as_deref(),
                StatusCode::FOUND,
            );
        }
    };
    if let Some(user) = inner.auto_approve.clone() {
        return inner.approve(grant, user, StatusCode::FOUND);
    }
    let Some(handle) = inner.pending.insert(grant.clone()) else {
        return page::error("Too many authorization requests are waiting; try again later.");
    };
    page::consent(&handle, &grant, page::DEFAULT_USER, None)
}

/// `POST {issuer}/authorize`: the page's form (`request`, `user`, and `approve` or `deny`).
pub(crate) async fn answer(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let Some(form) = params::unique(&body) else {
        return page::error("The form repeats a field.");
    };
    let Some(handle) = form.get("request") else {
        return page::error("The form names no authorization request.");
    };
    let Some(grant) = inner.pending.get(handle) else {
        return page::error("This authorization request expired or was already answered.");
    };
    match (form.contains_key("approve"), form.contains_key("deny")) {
        (false, true) => {
            if inner.pending.take(handle).is_none() {
                return page::error("This authorization request was already answered.");
            }
            inner.redirect(
                &grant.redirect_uri,
                &[
                    ("error", "access_denied"),
                    ("error_description", "the user denied the request"),
                ],
                grant.state.as_deref(),
                StatusCode::SEE_OTHER,
            )
        }
        (true, false) => {
            let user = form.get("user").map_or("", String::as_str).trim();
            if !page::acceptable_user(user) {
                return page::consent(
                    handle,
                    &grant,
                    page::DEFAULT_USER,
                    Some("A user name is 1 to 128 characters, without control characters."),
                );
            }
            if inner.pending.take(handle).is_none() {
                return page::error("This authorization request was already answered.");
            }
            inner.approve(grant, user.to_owned(), StatusCode::SEE_OTHER)
        }
        _ => page::error("The form must say approve or deny."),
    }
}

/// Why an authorization request is refused: on a page when the redirect URI can not be
/// trusted, else by redirecting back with an error.
enum Refusal {
    Page(&'static str),
    Redirect {
        uri: String,
        state: Option<String>,
        error: &'static str,
        description: &'static str,
    },
}

/// The grant an authorization request of `client` asks for, or why it is refused (RFC 6749
/// §4.1.2.1 order: the redirect URI first, answered on a page).
fn check(inner: &Inner, client: &Client, p: &HashMap<String, String>) -> Result<Grant, Refusal> {
    let redirect_given = p.contains_key("redirect_uri");
    let redirect_uri = match p.get("redirect_uri") {
        Some(uri) if registered_redirect(client, uri) => uri.clone(),
        Some(_) => {
            return Err(Refusal::Page(
                "The redirect_uri is not one the client registered.",
            ));
        }
        None => match client.redirect_uris.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(Refusal::Page(
                    "The request has no redirect_uri and the client registered several.",
                ));
            }
        },
    };
    let state = p.get("state").cloned();
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_BYTES) {
        // Not echoed: it is what is wrong.
        return Err(Refusal::Redirect {
            uri: redirect_uri,
            state: None,
            error: "invalid_request",
            description: "state is longer than 2048 bytes",
        });
    }
    let refuse = |error, description| Refusal::Redirect {
        uri: redirect_uri.clone(),
        state: state.clone(),
        error,
        description,
    };
    match p.get("response_type").map(String::as_str) {
        Some("code") => {}
        None => return Err(refuse("invalid_request", "response_type is required")),
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        return Err(refuse(
            "unauthorized_client",
            "the client did not register the authorization_code grant",
        ));
    }
    let code_challenge = p
        .get("code_challenge")
        .ok_or_else(|| refuse("invalid_request", "code_challenge is required (PKCE)"))?;
    if p.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return Err(refuse(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    if code_challenge.len() != 43
        || !code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(refuse(
            "invalid_request",
            "code_challenge is not a base64url SHA-256 digest",
        ));
    }
    let scopes = match p.get("scope") {
        None => inner.default_scopes.clone(),
        Some(s) => params::scopes(s)
            .filter(|s| s.iter().all(|s| inner.scopes.contains(s)))
            .ok_or_else(|| refuse("invalid_scope", "a requested scope is not supported"))?,
    };
    let resource = inner
        .served_resource(p.get("resource").map(String::as_str))
        .ok_or_else(|| refuse("invalid_target", "the resource is not served here"))?;
    Ok(Grant {
        client_id: client.id.clone(),
        client_name: client.name.clone(),
        redirect_uri,
        redirect_given,
        not_after: None,
        scopes,
        resource,
        code_challenge: code_challenge.clone(),
        state,
        user: None,
    })
}

impl Inner {
    /// The configured resource a `resource` parameter names (the same URL, also in another
    /// spelling of it); with no parameter, the only resource when there is one.
    pub(crate) fn served_resource(&self, requested: Option<&str>) -> Option<String> {
        match requested {
            None => match self.resources.as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            },
            Some(r) => {
                let normal = |s: &str| Url::parse(s).ok().map(String::from);
                let wanted = normal(r)?;
                self.resources
                    .iter()
                    .find(|c| c.as_str() == r || normal(c).as_deref() == Some(wanted.as_str()))
                    .cloned()
            }
        }
    }

    /// Issues a code for the approved grant and redirects to the client with it.
    fn approve(&self, mut grant: Grant, user: String, status: StatusCode) -> Response {
        grant.user = Some(user);
        let (uri, state) = (grant.redirect_uri.clone(), grant.state.clone());
        match self.codes.insert(grant) {
            Some(code) => self.redirect(&uri, &[("code", &code)], state.as_deref(), status),
            None => self.redirect(
                &uri,
                &[
                    ("error", "temporarily_unavailable"),
                    ("error_description", "too many codes outstanding"),
                ],
                state.as_deref(),
                status,
            ),
        }
    }

    /// A redirect to the client's `uri` with `pairs`, `state` and `iss` (RFC 9207) added to
    /// its query.
    fn redirect(
        &self,
        uri: &str,
        pairs: &[(&str, &str)],
        state: Option<&str>,
        status: StatusCode,
    ) -> Response {
        let Ok(mut url) = Url::parse(uri) else {
            return page::error("The redirect_uri can not be used.");
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            if let Some(state) = state {
                q.append_pair("state", state);
            }
            q.append_pair("iss", &self.issuer);
        }
        (
            status,
            [
                (header::LOCATION, String::from(url)),
                (header::CACHE_CONTROL, "no-store".to_owned()),
                (header::REFERRER_POLICY, "no-referrer".to_owned()),
            ],
        )
            .into_response()
    }
}
