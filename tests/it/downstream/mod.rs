//! Tool-level authorization over real HTTP on 127.0.0.1: RFC 8693 exchange against the
//! development authorization server and against a local token endpoint answering each error
//! shape (`exchange.rs`), each vendor's exchange shape (`profiles.rs`), the per-user cache (`cache.rs`), and where credentials may go
//! (`client.rs`), and Arcade as a backend (`arcade.rs`).

mod accounts;
mod arcade;
mod cache;
mod client;
mod exchange;
mod oidc_provider;
mod profiles;

use std::sync::Arc;

use axum::Router;
use axum::routing::any;
use protected_resource::downstream::{TokenBroker, TokenNeed};
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{ProtectedResourceLayer, ResourceOwner, ResourceServerAuth};
use serde_json::{Value, json};

/// Serves `app` on a free loopback port; the base URL and the task (aborted on drop).
pub(super) struct Served {
    pub(super) base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(super) async fn serve(app: impl FnOnce(&str) -> Router) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = app(&base);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Served { base, task }
}

/// The canonical URL of the protected `/tool` in these tests.
pub(super) const CANONICAL: &str = "http://127.0.0.1:8000/tool";

/// The front door's configuration for [`CANONICAL`], trusting `servers`.
pub(super) fn auth_for(servers: &[&MockAuthorizationServer]) -> ResourceServerAuth {
    servers
        .iter()
        .fold(
            ResourceServerAuth::builder().canonical_url(CANONICAL),
            |b, s| b.authorization_server(s.entry()),
        )
        .build()
        .unwrap()
}

/// A protected `/tool` whose handler asks `broker` for `need` for the caller and answers the
/// token's secret and scopes, or the denial's kind, message and URL.
pub(super) fn tool_app<B: TokenBroker + 'static>(
    auth: ResourceServerAuth,
    broker: Arc<B>,
    need: TokenNeed,
) -> Router {
    Router::new()
        .route(
            "/tool",
            any(move |owner: ResourceOwner| {
                let (broker, need) = (broker.clone(), need.clone());
                async move {
                    axum::Json(match broker.token(&owner, &need).await {
                        Ok(t) => json!({"secret": t.secret(), "scopes": t.scopes(), "expires": t.expires_at().is_some()}),
                        Err(d) => json!({"denied": format!("{:?}", d.kind()), "message": d.message(), "url": d.url(), "retry_after": d.retry_after().map(|r| r.as_secs())}),
                    })
                }
            }),
        )
        .layer(ProtectedResourceLayer::new(auth))
}

pub(super) async fn call(base: &str, token: &str) -> Value {
    let res = reqwest::Client::new()
        .post(format!("{base}/tool"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the front door let the caller in");
    res.json().await.unwrap()
}

pub(super) fn kind(v: &Value) -> Option<&str> {
    v["denied"].as_str()
}
