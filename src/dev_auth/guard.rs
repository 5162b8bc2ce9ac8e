//! Who may reach the development authorization server. Anyone who can read its answers can
//! log in as anyone, so: CORS answers only for loopback origins (a page on another site must
//! not read a registration or a token through the developer's browser), and every request's
//! host must be the issuer's or a loopback name (a DNS-rebinding page talks to 127.0.0.1 under
//! its own name).

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use reqwest::Url;

use super::Inner;

/// `localhost`, `127.0.0.0/8` or `::1`: not `0.0.0.0`, `[::]` or `*.localhost` (names some
/// resolvers send to DNS).
pub(crate) fn strict_loopback(url: &Url) -> bool {
    // `host_str` is normalised: `127.1` is `127.0.0.1`, IPv6 in brackets, names lower case.
    url.host_str().is_some_and(loopback_name)
}

/// `localhost`, or an IPv4 or IPv6 (bracketed or not) loopback address.
fn loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An `Origin` the server answers CORS requests from: `http(s)` on a loopback host.
pub(crate) fn loopback_origin(origin: &HeaderValue) -> bool {
    origin
        .to_str()
        .ok()
        .and_then(|o| Url::parse(o).ok())
        .is_some_and(|u| matches!(u.scheme(), "http" | "https") && strict_loopback(&u))
}

/// Refuses (421) a request whose host is neither the issuer's nor a loopback name.
pub(crate) async fn check_host(
    State(inner): State<Arc<Inner>>,
    request: Request,
    next: Next,
) -> Response {
    let authority = request
        .uri()
        .authority()
        .map(|a| a.host().to_owned())
        .or_else(|| {
            request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .and_then(|h| Url::parse(&format!("http://{h}")).ok())
                .and_then(|u| u.host_str().map(str::to_owned))
        });
    let allowed = authority
        .is_some_and(|host| host.eq_ignore_ascii_case(&inner.issuer_host) || loopback_name(&host));
    if allowed {
        next.run(request).await
    } else {
        (
            StatusCode::MISDIRECTED_REQUEST,
            "This development authorization server answers only on its own or a loopback host name.",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_rules() {
        for ok in [
            "http://localhost:6274",
            "http://127.0.0.1:1",
            "http://127.8.9.1",
            "http://[::1]:3000",
            "https://localhost",
        ] {
            assert!(loopback_origin(&HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "http://0.0.0.0:8000",
            "http://[::]:8000",
            "http://a.localhost",
            "null",
            "http://127.0.0.1.evil.example",
            "file:///x",
        ] {
            assert!(!loopback_origin(&HeaderValue::from_static(bad)), "{bad}");
        }
    }
}
