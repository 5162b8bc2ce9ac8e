//! The token endpoint: client authentication (public clients, `client_secret_basic`,
//! `client_secret_post`) and the authorization-code (PKCE), refresh-token (rotated),
//! client-credentials and token-exchange (`token_exchange.rs`) grants, with RFC 6749 §5.2
//! errors.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use serde_json::json;

use super::answer::{Refused, error, no_store, server_error, unauthorized};
use super::store::{AuthMethod, Client, Grant};
use super::{ACCESS_TOKEN_SECONDS, Inner, OFFLINE_ACCESS, params, token_exchange};

/// `POST {issuer}/token`.
pub(crate) async fn token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match form_body(&headers, &body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let client = match authenticate(&inner, &headers, &form).await {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let grant = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => authorization_code(&inner, &client, &form),
        Some("refresh_token") => refresh(&inner, &client, &form),
        Some("client_credentials") => client_credentials(&inner, &client, &form),
        Some(params::TOKEN_EXCHANGE) => token_exchange::exchange(&inner, &client, &form),
        Some(_) => Err(error(
            "unsupported_grant_type",
            "grant_type is not supported",
        )),
        None => Err(error("invalid_request", "grant_type is required")),
    };
    let exchanged = form.get("grant_type").map(String::as_str) == Some(params::TOKEN_EXCHANGE);
    match grant {
        Ok((access, refresh)) => issue(&inner, &access, refresh, exchanged),
        Err(r) => r.into_response(),
    }
}

/// The parameters of an `application/x-www-form-urlencoded` body, each once.
pub(super) fn form_body(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<HashMap<String, String>, Refused> {
    let form_urlencoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_urlencoded {
        return Err(error(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    params::unique(body).ok_or_else(|| error("invalid_request", "a parameter is repeated"))
}

/// The client the request authenticates as; refusals are 401 `invalid_client` (with a
/// `Basic` challenge when the request used Basic) or 400 `invalid_request`.
pub(super) async fn authenticate(
    inner: &Inner,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Arc<Client>, Refused> {
    let mut authorizations = headers.get_all(header::AUTHORIZATION).iter();
    let basic = match (authorizations.next(), authorizations.next()) {
        (None, _) => None,
        (Some(v), None) => Some(basic_credentials(v.as_bytes()).ok_or_else(|| {
            unauthorized(
                true,
                "the Authorization header is not valid Basic credentials",
            )
        })?),
        (Some(_), Some(_)) => {
            return Err(error("invalid_request", "several Authorization headers"));
        }
    };
    if basic.is_some() && form.contains_key("client_secret") {
        return Err(error(
            "invalid_request",
            "use one client authentication method",
        ));
    }
    let (id, secret, used_basic) = match &basic {
        Some((id, secret)) => {
            if form.get("client_id").is_some_and(|f| f != id) {
                return Err(error(
                    "invalid_request",
                    "client_id differs from the Basic credentials",
                ));
            }
            (id.as_str(), Some(secret.as_str()), true)
        }
        None => (
            form.get("client_id").map_or("", String::as_str),
            form.get("client_secret").map(String::as_str),
            false,
        ),
    };
    if id.is_empty() {
        return Err(unauthorized(used_basic, "no client authentication"));
    }
    let client = inner
        .client(id)
        .await
        .map_err(|_| unauthorized(used_basic, "unknown client"))?;
    let authenticated = match (&client.secret, secret) {
        (None, None) => client.auth_method == AuthMethod::None,
        (Some(expected), Some(given)) => {
            verify_slices_are_equal(expected.as_bytes(), given.as_bytes()).is_ok()
        }
        _ => false,
    };
    if !authenticated {
        return Err(unauthorized(used_basic, "client authentication failed"));
    }
    Ok(client)
}

/// `Basic base64(urlencoded id ":" urlencoded secret)` (RFC 6749 §2.3.1).
fn basic_credentials(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let form_decode = |s: &str| {
        let s = s.replace('+', " ");
        percent_encoding::percent_decode_str(&s)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    Some((form_decode(id)?, form_decode(secret)?))
}

fn authorization_code(
    inner: &Inner,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<(Grant, Option<Grant>), Refused> {
    let code = form
        .get("code")
        .ok_or_else(|| error("invalid_request", "code is required"))?;
    // One use: the code is gone whatever happens next.
    let grant = inner.codes.take(code).ok_or_else(|| {
        error(
            "invalid_grant",
            "the code is unknown, expired or already used",
        )
    })?;
    if grant.client_id != client.id {
        return Err(error(
            "invalid_grant",
            "the code was issued to another client",
        ));
    }
    let redirect_named = grant.redirect_given || form.contains_key("redirect_uri");
    if redirect_named && form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return Err(error(
            "invalid_grant",
            "redirect_uri differs from the authorization request's",
        ));
    }
    let verifier = form.get("code_verifier").map_or("", String::as_str);
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
    if !verifier_ok
        || verify_slices_are_equal(computed.as_bytes(), grant.code_challenge.as_bytes()).is_err()
    {
        return Err(error(
            "invalid_grant",
            "code_verifier does not match (PKCE)",
        ));
    }
    same_resource(inner, form, &grant)?;
    // A refresh token only for offline_access, and only to a client registered for the
    // grant; it carries what the refresh needs, nothing of the authorization request.
    let refresh = (grant.scopes.iter().any(|s| s == OFFLINE_ACCESS)
        && client.grant_types.iter().any(|g| g == "refresh_token"))
    .then(|| Grant {
        state: None,
        code_challenge: String::new(),
        ..grant.clone()
    });
    Ok((grant, refresh))
}

fn refresh(
    inner: &Inner,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<(Grant, Option<Grant>), Refused> {
    let handle = form
        .get("refresh_token")
        .ok_or_else(|| error("invalid_request", "refresh_token is required"))?;
    let granted = inner
        .refresh_tokens
        .get(handle)
        .ok_or_else(|| error("invalid_grant", "the refresh token is unknown or expired"))?;
    if granted.client_id != client.id {
        return Err(error(
            "invalid_grant",
            "the refresh token was issued to another client",
        ));
    }
    let mut access = granted.clone();
    if let Some(scope) = form.get("scope") {
        // RFC 6749 §6: no scope beyond what was granted (checked before the token is used
        // up, so a client may retry without it).
        access.scopes = params::scopes(scope)
            .filter(|asked| asked.iter().all(|s| granted.scopes.contains(s)))
            .ok_or_else(|| error("invalid_scope", "the scope exceeds what was granted"))?;
    }
    same_resource(inner, form, &granted)?;
    // Rotation: this refresh token is used up; the new one carries the original grant.
    if inner.refresh_tokens.take(handle).is_none() {
        return Err(error("invalid_grant", "the refresh token was already used"));
    }
    Ok((access, Some(granted)))
}

fn client_credentials(
    inner: &Inner,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<(Grant, Option<Grant>), Refused> {
    if client.secret.is_none() || !client.grant_types.iter().any(|g| g == "client_credentials") {
        return Err(error(
            "unauthorized_client",
            "the client did not register client_credentials",
        ));
    }
    let scopes = match form.get("scope") {
        None => inner.default_scopes.clone(),
        Some(s) => params::scopes(s)
            .filter(|s| {
                s.iter()
                    .all(|s| s != OFFLINE_ACCESS && inner.scopes.contains(s))
            })
            .ok_or_else(|| error("invalid_scope", "a requested scope is not supported"))?,
    };
    let resource = inner
        .served_resource(form.get("resource").map(String::as_str))
        .ok_or_else(|| error("invalid_target", "the resource is not served here"))?;
    let grant = Grant {
        client_id: client.id.clone(),
        client_name: client.name.clone(),
        redirect_uri: String::new(),
        redirect_given: false,
        not_after: None,
        scopes,
        resource,
        code_challenge: String::new(),
        state: None,
        user: Some(client.id.clone()),
    };
    Ok((grant, None))
}

/// A `resource` parameter at the token endpoint must name the grant's resource.
fn same_resource(
    inner: &Inner,
    form: &HashMap<String, String>,
    grant: &Grant,
) -> Result<(), Refused> {
    match form.get("resource") {
        Some(r) if inner.served_resource(Some(r)).as_ref() != Some(&grant.resource) => Err(error(
            "invalid_target",
            "the resource differs from the one authorized",
        )),
        _ => Ok(()),
    }
}

/// The access token for `grant`, and a refresh token for `refresh` when there is one.
/// A token exchange also says what it issued (RFC 8693 §2.2.1).
fn issue(inner: &Inner, grant: &Grant, refresh: Option<Grant>, exchanged: bool) -> Response {
    let scope = grant.scopes.join(" ");
    let user = grant.user.as_deref().unwrap_or(&grant.client_id);
    let Some(access_token) = inner.mint(
        user,
        &grant.client_id,
        &grant.scopes,
        &grant.resource,
        grant.not_after,
    ) else {
        return server_error();
    };
    let mut answer = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "scope": scope,
    });
    if exchanged {
        answer["issued_token_type"] = json!(params::ACCESS_TOKEN_TYPE);
    }
    if let Some(refresh) = refresh {
        let Some(refresh) = inner.refresh_tokens.insert(refresh) else {
            return server_error();
        };
        answer["refresh_token"] = json!(refresh);
    }
    (StatusCode::OK, no_store(), Json(answer)).into_response()
}
