//! Credentials only where they belong: a provider's token reaches its hosts and no other, not
//! through a redirect, not to a look-alike name; the caller's own token never leaves.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{any, get};
use protected_resource::downstream::{DownstreamClient, DownstreamToken, SendErrorKind};
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{ProtectedResourceLayer, ResourceOwner};
use serde_json::{Value, json};

use super::{CANONICAL, auth_for, serve};

/// A server recording the `Authorization` header of every request it gets.
async fn recording() -> (super::Served, Arc<Mutex<Vec<Option<String>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let served = serve(move |base| {
        let steal = format!("{base}/steal").replace("127.0.0.1", "localhost");
        Router::new()
            .route(
                "/redirect",
                get(move || async move { (axum::http::StatusCode::FOUND, [("location", steal)]) }),
            )
            .fallback(any(move |headers: HeaderMap| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push(
                        headers
                            .get("authorization")
                            .map(|v| v.to_str().unwrap().to_owned()),
                    );
                    "ok"
                }
            }))
    })
    .await;
    (served, seen)
}

#[tokio::test]
async fn tokens_reach_the_providers_hosts_only() {
    let (provider, provider_seen) = recording().await;
    let port = provider.base.rsplit(':').next().unwrap().to_owned();
    let other_port = port.parse::<u16>().unwrap().wrapping_add(1);
    let client = Arc::new(
        DownstreamClient::builder()
            .provider("acme", [format!("127.0.0.1:{port}")])
            .provider("lookalike", ["*.acme.test"])
            .provider("plain", ["example.com"])
            .build()
            .unwrap(),
    );
    let inbound = MockAuthorizationServer::start().await.unwrap();
    let canonical = CANONICAL;
    let auth = auth_for(&[&inbound]);
    let base = provider.base.clone();
    let app = Router::new()
        .route(
            "/tool",
            any(move |owner: ResourceOwner| {
                let (client, base, port) = (client.clone(), base.clone(), port.clone());
                let other_port = other_port;
                async move {
                    let down = DownstreamToken::new("down-secret");
                    let send = |provider: &'static str, url: String, token: DownstreamToken, extra: Option<(&'static str, &'static str)>| {
                        let client = client.clone();
                        let owner = owner.clone();
                        async move {
                            let mut req = client.request(reqwest::Method::GET, &url);
                            if let Some((name, value)) = extra {
                                req = req.header(name, value);
                            }
                            match client.send(&owner, provider, &token, req.build().unwrap()).await {
                                Ok(res) => json!(res.status().as_u16()),
                                Err(e) => json!(format!("{:?}", e.kind())),
                            }
                        }
                    };
                    let own = DownstreamToken::new(owner.bearer_token().unwrap().to_owned());
                    axum::Json(json!({
                        "ok": send("acme", format!("{base}/profile"), down.clone(), None).await,
                        "other_host": send("acme", format!("http://localhost:{port}/profile"), down.clone(), None).await,
                        "redirect": send("acme", format!("{base}/redirect"), down.clone(), None).await,
                        "lookalike": send("lookalike", "http://evilacme.test/x".to_owned(), down.clone(), None).await,
                        "lookalike2": send("lookalike", "http://a.acme.test.evil.example/x".to_owned(), down.clone(), None).await,
                        "insecure": send("plain", "http://example.com/x".to_owned(), down.clone(), None).await,
                        "unknown": send("nobody", format!("{base}/x"), down.clone(), None).await,
                        "smuggled": send("acme", format!("{base}/x"), down.clone(), Some(("authorization", "Bearer smuggled"))).await,
                        "host_header": send("acme", format!("{base}/x"), down.clone(), Some(("host", "other.example"))).await,
                        "other_port": send("acme", format!("http://127.0.0.1:{other_port}/x"), down.clone(), None).await,
                        "inbound": send("acme", format!("{base}/x"), own, None).await,
                    }))
                }
            }),
        )
        .layer(ProtectedResourceLayer::new(auth));
    let served = serve(|_| app).await;
    let token = inbound.token().audience(canonical).subject("alice").sign();
    let res = reqwest::Client::new()
        .post(format!("{}/tool", served.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    let kind = |k: SendErrorKind| json!(format!("{k:?}"));
    assert_eq!(v["ok"], 200);
    assert_eq!(v["other_host"], kind(SendErrorKind::HostNotAllowed));
    assert_eq!(v["redirect"], 302, "answered as it is, not followed");
    assert_eq!(v["lookalike"], kind(SendErrorKind::HostNotAllowed));
    assert_eq!(v["lookalike2"], kind(SendErrorKind::HostNotAllowed));
    assert_eq!(v["insecure"], kind(SendErrorKind::InsecureScheme));
    assert_eq!(v["unknown"], kind(SendErrorKind::UnknownProvider));
    assert_eq!(v["smuggled"], kind(SendErrorKind::CredentialsPresent));
    assert_eq!(v["inbound"], kind(SendErrorKind::InboundToken));
    assert_eq!(v["host_header"], kind(SendErrorKind::HostOverride));
    assert_eq!(
        v["other_port"],
        kind(SendErrorKind::HostNotAllowed),
        "another port of the same host"
    );
    // The provider saw the downstream token once (the redirect answer is a route, not logged);
    // the redirect target (the same server by another name) was never asked.
    assert_eq!(
        *provider_seen.lock().unwrap(),
        vec![Some("Bearer down-secret".to_owned())]
    );
}
