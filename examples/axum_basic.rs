//! A plain axum JSON API protected by the layer; handlers use the `ResourceOwner` extractor.
//!
//! ```sh
//! cargo run --example axum_basic
//! ```
//!
//! Starts the test kit's authorization server in-process, prints a token, and serves
//! `GET /api/me` and `GET /api/public-info` (the latter reachable without a token because the
//! layer is applied with `route_layer` to the protected routes only).

use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{ProtectedResourceLayer, ResourceOwner, ResourceServerAuth};
use serde_json::{Value, json};

async fn me(owner: ResourceOwner) -> Json<Value> {
    Json(json!({
        "user_id": owner.user_id(),
        "issuer": owner.issuer(),
        "scopes": owner.scopes(),
        "expires_at": owner.expires_at().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs()),
    }))
}

async fn public_info(owner: Option<ResourceOwner>) -> Json<Value> {
    Json(json!({ "authenticated": owner.is_some() }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let idp = MockAuthorizationServer::start().await?;
    let canonical = "http://127.0.0.1:8001/api";
    let auth = ResourceServerAuth::builder()
        .canonical_url(canonical)
        .authorization_server(idp.entry())
        .scopes_supported(["api:read"])
        .build()?;

    let protected = Router::new()
        .route("/api/me", get(me))
        .route_layer(ProtectedResourceLayer::new(auth.clone()));
    let app = Router::new()
        .route("/api/public-info", get(public_info))
        .merge(protected)
        .merge(auth.metadata_router());

    let token = idp
        .token()
        .audience(canonical)
        .subject("alice")
        .scope("api:read")
        .expires_in(3600)
        .sign();
    println!("curl -s http://127.0.0.1:8001/api/me -H 'Authorization: Bearer {token}'");
    println!("curl -s http://127.0.0.1:8001/.well-known/oauth-protected-resource/api");
    // TCP_NODELAY: answers written in pieces must not wait for the client's delayed ACK.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8001")
        .await?
        .tap_io(|tcp| drop(tcp.set_nodelay(true)));
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
