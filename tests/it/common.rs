//! Shared helpers: an app behind the layer whose handler counts its calls.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::routing::any;
use http::{HeaderMap, Request, StatusCode};
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{ProtectedResourceLayer, ResourceOwner, ResourceServerAuth};
use tower::ServiceExt;

pub const CANON: &str = "http://127.0.0.1:8000/mcp";
pub const METADATA_URL: &str = "http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp";

pub struct App {
    pub router: Router,
    pub calls: Arc<AtomicUsize>,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn www(&self) -> Option<&str> {
        self.headers
            .get(http::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

impl App {
    pub fn new(auth: ResourceServerAuth) -> Self {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let router = Router::new()
            .route(
                "/mcp",
                any(move |owner: ResourceOwner| {
                    let counter = counter.clone();
                    async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        axum::Json(serde_json::json!({
                            "user_id": owner.user_id(),
                            "issuer": owner.issuer(),
                            "client_id": owner.client_id(),
                            "scopes": owner.scopes(),
                        }))
                    }
                }),
            )
            .layer(ProtectedResourceLayer::new(auth));
        Self { router, calls }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub async fn send(&self, req: Request<Body>) -> Answer {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .expect("body");
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// GETs the protected-resource metadata document.
    pub async fn metadata(&self) -> Answer {
        self.send(
            Request::get("/.well-known/oauth-protected-resource/mcp")
                .body(Body::empty())
                .expect("request"),
        )
        .await
    }

    pub async fn with_token(&self, token: &str) -> Answer {
        self.send(bearer(token)).await
    }

    /// Sends `token` and checks a 401 `invalid_token` with the exact challenge and no call.
    pub async fn assert_invalid_token(&self, token: &str, description: &str) {
        let before = self.calls();
        let a = self.with_token(token).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "body: {}", a.body);
        assert_eq!(
            a.www(),
            Some(
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"{description}\", resource_metadata=\"{METADATA_URL}\""
                )
                .as_str()
            )
        );
        assert_eq!(self.calls(), before, "the inner service must not be called");
        assert!(!a.body.contains(token), "the token must not be echoed");
    }
}

pub fn bearer(token: &str) -> Request<Body> {
    Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request")
}

pub fn auth_for(server: &MockAuthorizationServer) -> ResourceServerAuth {
    ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry())
        .build()
        .expect("config")
}

/// Moves tokio's clock forward by `d` without waiting: pause, advance, resume, so that network
/// I/O only ever happens on a running clock (a paused clock would auto-advance through
/// connect and fetch timeouts while a socket waits).
pub async fn skip(d: std::time::Duration) {
    tokio::time::pause();
    tokio::time::advance(d).await;
    tokio::time::resume();
}

/// Waits (real time, generous bound) until `cond` holds.
pub async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
