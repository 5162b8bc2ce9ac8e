//! The HTML of the development authorization server: the login and consent page and the
//! error page shown when no redirect can be trusted. Every value from a request or a client
//! registration is HTML-escaped.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::store::Grant;
use crate::html::{escape, page_headers};

/// The user logged in as unless the form says otherwise.
pub(crate) const DEFAULT_USER: &str = "dev-user";

/// A user name the page accepts: 1 to 128 characters, no control characters, not blank.
pub(crate) fn acceptable_user(user: &str) -> bool {
    !user.trim().is_empty() && user.chars().count() <= 128 && !user.chars().any(char::is_control)
}

/// The login and consent page for the authorization request `handle`.
pub(crate) fn consent(handle: &str, grant: &Grant, user: &str, problem: Option<&str>) -> Response {
    // The name is the client's own claim: always beside its id and where the answer goes.
    let name = grant
        .client_name
        .as_deref()
        .map(displayable)
        .filter(|n| !n.trim().is_empty());
    let client = match name {
        Some(name) => format!(
            "<b>{}</b> (client <code>{}</code>)",
            escape(&name),
            escape(&grant.client_id)
        ),
        None => format!("Client <code>{}</code>", escape(&grant.client_id)),
    };
    let destination = escape(&destination(&grant.redirect_uri));
    let scopes: String = grant
        .scopes
        .iter()
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    let problem = problem.map_or(String::new(), |p| {
        format!("<p class=\"problem\">{}</p>", escape(p))
    });
    let status = if problem.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let body = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Development authorization server</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:34em;margin:3em auto;padding:0 1em}}
.warn{{background:#fff3cd;padding:.6em;border-radius:4px}}.problem{{color:#b00020}}
input[type=text]{{font-size:1em;padding:.3em;width:100%;box-sizing:border-box}}
button{{font-size:1em;padding:.4em 1.2em;margin:.8em .6em 0 0}}</style></head>
<body><h1>Log in and authorize</h1>
<p class="warn">Development authorization server: anyone can log in as anyone. Not for production.</p>
{problem}<p>{client} asks to act as you on <code>{resource}</code> with the scopes:</p>
<ul>{scopes}</ul>
<p>Approving sends you back to <code>{destination}</code>.</p>
<form method="post" action="authorize">
<input type="hidden" name="request" value="{handle}">
<label for="user">Log in as</label>
<input type="text" id="user" name="user" value="{user}" autocomplete="username">
<button type="submit" name="approve" value="1">Approve</button>
<button type="submit" name="deny" value="1">Deny</button>
</form></body></html>
"#,
        resource = escape(&grant.resource),
        handle = escape(handle),
        user = escape(user),
    );
    (status, page_headers(), Html(body)).into_response()
}

/// A 400 page for a request that can not be answered with a redirect (unknown client,
/// unregistered redirect URI, malformed request): the user agent is not sent anywhere.
pub(crate) fn error(message: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authorization failed</title></head>\n<body><h1>Authorization failed</h1><p>{}</p></body></html>\n",
        escape(message)
    );
    (StatusCode::BAD_REQUEST, page_headers(), Html(body)).into_response()
}

/// A client name without control and bidirectional-formatting characters (which could make
/// it read as another name).
fn displayable(name: &str) -> String {
    name.chars()
        .filter(|c| {
            !c.is_control() && !matches!(*c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

/// Where a redirect URI sends the user: its scheme and authority.
fn destination(redirect_uri: &str) -> String {
    match reqwest::Url::parse(redirect_uri) {
        Ok(url) => match url.host_str() {
            Some(host) => match url.port() {
                Some(port) => format!("{}://{host}:{port}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            },
            None => format!("{}:", url.scheme()),
        },
        Err(_) => String::from("?"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_destinations() {
        assert_eq!(displayable("Cl\u{202e}aude\u{0007}"), "Claude");
        assert_eq!(
            destination("https://app.example:8443/cb?x=1"),
            "https://app.example:8443"
        );
        assert_eq!(destination("http://127.0.0.1:5/cb"), "http://127.0.0.1:5");
        assert_eq!(destination("com.example.app:/cb"), "com.example.app:");
    }

    #[test]
    fn user_names() {
        assert!(acceptable_user("dev-user"));
        assert!(acceptable_user("alice@example.com"));
        assert!(!acceptable_user(""));
        assert!(!acceptable_user("   "));
        assert!(!acceptable_user("a\nb"));
        assert!(!acceptable_user(&"x".repeat(129)));
    }
}
