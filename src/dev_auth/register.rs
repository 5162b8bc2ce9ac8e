//! Dynamic client registration (RFC 7591) and the redirect-URI rules: what a client may
//! register, and when a redirect URI in a request is one it registered.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use reqwest::Url;
use serde_json::{Value, json};

use super::Inner;
use super::answer::no_store;
use super::store::{AuthMethod, Client, random_handle};

/// Grant types a client may register.
pub(crate) const GRANT_TYPES: [&str; 4] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    super::params::TOKEN_EXCHANGE,
];
/// Longest `client_name` kept.
const MAX_NAME_CHARS: usize = 200;
/// Most redirect URIs one client may register.
const MAX_REDIRECT_URIS: usize = 16;

/// `POST {issuer}/register`: open registration of public and confidential clients.
pub(crate) async fn register(
    State(inner): State<Arc<Inner>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    // JSON only: a cross-site form post (no preflight) can not register.
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return error(
            "invalid_client_metadata",
            "the body must be application/json",
        );
    }
    let Ok(Value::Object(meta)) = serde_json::from_slice::<Value>(&body) else {
        return error("invalid_client_metadata", "the body is not a JSON object");
    };
    let auth_method = match meta.get("token_endpoint_auth_method") {
        // RFC 7591 §2: the default is client_secret_basic.
        None => AuthMethod::ClientSecretBasic,
        Some(Value::String(m)) => match AuthMethod::parse(m) {
            Some(m) => m,
            None => {
                return error(
                    "invalid_client_metadata",
                    "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post",
                );
            }
        },
        Some(_) => return error("invalid_client_metadata", "token_endpoint_auth_method"),
    };
    let grant_types = match strings(meta.get("grant_types")) {
        Some(g) if g.is_empty() => vec!["authorization_code".to_owned()],
        Some(g) if g.iter().all(|g| GRANT_TYPES.contains(&g.as_str())) => g,
        _ => {
            return error(
                "invalid_client_metadata",
                "grant_types may hold authorization_code, refresh_token, client_credentials and urn:ietf:params:oauth:grant-type:token-exchange",
            );
        }
    };
    // Token exchange is open to any client registered for it (a public one too: whoever
    // holds a token here could log in as its user anyway); client credentials are not.
    if auth_method == AuthMethod::None && grant_types.iter().any(|g| g == "client_credentials") {
        return error(
            "invalid_client_metadata",
            "client_credentials needs a confidential client",
        );
    }
    match strings(meta.get("response_types")) {
        Some(r) if r.iter().all(|r| r == "code") => {}
        _ => {
            return error(
                "invalid_client_metadata",
                "response_types may only hold code",
            );
        }
    }
    let Some(redirect_uris) = strings(meta.get("redirect_uris")) else {
        return error(
            "invalid_redirect_uri",
            "redirect_uris must be an array of strings",
        );
    };
    if grant_types.iter().any(|g| g == "authorization_code") && redirect_uris.is_empty() {
        return error("invalid_redirect_uri", "redirect_uris is required");
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return error("invalid_redirect_uri", "too many redirect_uris");
    }
    if let Some(bad) = redirect_uris.iter().find(|u| !acceptable_redirect(u)) {
        return error(
            "invalid_redirect_uri",
            &format!(
                "`{}`: redirect URIs must be https, http on a loopback host, or a private-use scheme, without a fragment",
                bad.escape_debug()
            ),
        );
    }
    let name = match meta.get("client_name") {
        None => None,
        Some(Value::String(n)) => Some(n.chars().take(MAX_NAME_CHARS).collect::<String>()),
        Some(_) => return error("invalid_client_metadata", "client_name must be a string"),
    };
    let (Some(id), secret) = (
        random_handle(),
        if auth_method == AuthMethod::None {
            None
        } else {
            random_handle()
        },
    ) else {
        return unavailable();
    };
    if auth_method != AuthMethod::None && secret.is_none() {
        return unavailable();
    }
    let client = Client {
        id: id.clone(),
        secret: secret.clone(),
        name: name.clone(),
        redirect_uris: redirect_uris.clone(),
        grant_types: grant_types.clone(),
        auth_method,
    };
    if !inner.clients.insert_as(id.clone(), Arc::new(client)) {
        return unavailable();
    }
    let mut answer = json!({
        "client_id": id,
        "client_id_issued_at": super::store::now_secs(),
        "redirect_uris": redirect_uris,
        "grant_types": grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": auth_method.as_str(),
    });
    if let Some(name) = name {
        answer["client_name"] = json!(name);
    }
    if let Some(secret) = secret {
        answer["client_secret"] = json!(secret);
        answer["client_secret_expires_at"] = json!(0);
    }
    (StatusCode::CREATED, no_store(), Json(answer)).into_response()
}

/// An array of strings; `Some(empty)` when absent; `None` when not an array of strings.
fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    match value {
        None => Some(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(_) => None,
    }
}

/// https, http on a loopback host (RFC 8252 §7.3: `localhost`, `127.0.0.0/8`, `[::1]`), or a
/// private-use scheme (RFC 8252 §7.1); absolute, without a fragment.
pub(crate) fn acceptable_redirect(uri: &str) -> bool {
    let Ok(url) = Url::parse(uri) else {
        return false;
    };
    if url.fragment().is_some() || uri.len() > 2048 {
        return false;
    }
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => super::guard::strict_loopback(&url),
        // Schemes a browser would run or read instead of handing to an application.
        "javascript" | "data" | "file" | "vbscript" | "about" | "blob" | "ftp" | "ws" | "wss" => {
            false
        }
        _ => true,
    }
}

/// Whether `requested` is one of the client's redirect URIs: the same string, or, for
/// loopback `http` redirects (RFC 8252 §7.3), the same but for the port and for
/// `localhost` / `127.0.0.1` / `[::1]`.
pub(crate) fn registered_redirect(client: &Client, requested: &str) -> bool {
    client.redirect_uris.iter().any(|r| r == requested)
        || client
            .redirect_uris
            .iter()
            .any(|r| same_loopback_redirect(r, requested))
}

fn same_loopback_redirect(registered: &str, requested: &str) -> bool {
    let (Ok(a), Ok(b)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    let loopback = |u: &Url| {
        u.scheme() == "http"
            && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
            && u.username().is_empty()
            && u.password().is_none()
            && u.fragment().is_none()
    };
    loopback(&a) && loopback(&b) && a.path() == b.path() && a.query() == b.query()
}

fn error(code: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        no_store(),
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        no_store(),
        Json(json!({"error": "temporarily_unavailable", "error_description": "too many clients"})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(uris: &[&str]) -> Client {
        Client {
            id: "c".into(),
            secret: None,
            name: None,
            redirect_uris: uris.iter().map(|s| (*s).to_owned()).collect(),
            grant_types: vec![],
            auth_method: AuthMethod::None,
        }
    }

    #[test]
    fn redirect_rules() {
        for ok in [
            "https://app.example/cb",
            "http://127.0.0.1:3000/cb",
            "http://localhost/cb",
            "http://[::1]:9/cb",
            "cursor://anysphere.cursor-retrieval/oauth/callback",
            "com.example.app:/cb",
        ] {
            assert!(acceptable_redirect(ok), "{ok}");
        }
        for bad in [
            "http://app.example/cb",
            "https://app.example/cb#x",
            "javascript:alert(1)",
            "data:text/html,x",
            "file:///etc/passwd",
            "/relative",
            "",
        ] {
            assert!(!acceptable_redirect(bad), "{bad}");
        }
    }

    #[test]
    fn loopback_redirects_match_any_port_and_either_name() {
        let c = client(&["http://127.0.0.1/callback", "https://app.example/cb"]);
        assert!(registered_redirect(&c, "http://127.0.0.1:51234/callback"));
        assert!(registered_redirect(&c, "http://localhost:8080/callback"));
        assert!(registered_redirect(&c, "https://app.example/cb"));
        assert!(!registered_redirect(&c, "http://127.0.0.1:51234/other"));
        assert!(!registered_redirect(&c, "http://127.0.0.1:1/callback?x=1"));
        assert!(!registered_redirect(&c, "https://app.example:444/cb"));
        assert!(!registered_redirect(&c, "https://app.example/cb/"));
        assert!(!registered_redirect(&c, "http://evil.example/callback"));
    }
}
