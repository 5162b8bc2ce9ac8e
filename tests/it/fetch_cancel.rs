//! Fail closed at the key store: clients that hang up in the middle of a key-set fetch (h1
//! connection closed, h2 stream reset) never make the authorization server see another
//! fetch; an empty key set is an authoritative answer; remembered unknown kids and the
//! refetch cooldown have sane bounds.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::any;
use http::StatusCode;
use protected_resource::testkit::{JwksBehavior, MockAuthorizationServer};
use protected_resource::{
    ConfigErrorKind, ProtectedResourceLayer, ResourceOwner, ResourceServerAuth,
};

use crate::common::*;

/// The layer on a real listener on 127.0.0.1 (stopped when the handle is dropped).
async fn serve(auth: ResourceServerAuth) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route(
            "/mcp",
            any(|o: ResourceOwner| async move { o.user_id().to_owned() }),
        )
        .layer(ProtectedResourceLayer::new(auth));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

/// Sends the token and gives up after 50 ms, mid-fetch: reqwest then closes the h1
/// connection or resets the h2 stream.
async fn hang_up(client: &reqwest::Client, url: &str, token: &str) {
    let sent = client.post(url).bearer_auth(token).send();
    assert!(
        tokio::time::timeout(Duration::from_millis(50), sent)
            .await
            .is_err(),
        "the request should still be waiting for the key set"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_hanging_up_mid_fetch_cause_no_further_fetch() {
    for h2 in [false, true] {
        let server = MockAuthorizationServer::start().await.unwrap();
        let auth = ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(server.entry())
            .jwks_refetch_cooldown(Duration::from_secs(2))
            .build()
            .unwrap();
        let (addr, task) = serve(auth).await;
        let url = format!("http://{addr}/mcp");
        let client = if h2 {
            reqwest::Client::builder().http2_prior_knowledge().build()
        } else {
            reqwest::Client::builder().build()
        }
        .unwrap();
        server.set_jwks_behavior(JwksBehavior::Delay(Duration::from_millis(600)));

        // Cold: ten clients in a row hang up while the first fetch runs.
        let good = server.token().audience(CANON).subject("alice").sign();
        for _ in 0..10 {
            hang_up(&client, &url, &good).await;
        }
        eventually("the fetch ends", || server.jwks_requests() == 1).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        // The fetch went on without its clients, and its keys serve the next request.
        let res = client.post(&url).bearer_auth(&good).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "h2={h2}");
        assert_eq!(res.text().await.unwrap(), "alice");
        assert_eq!(server.jwks_requests(), 1, "cold, h2={h2}");

        // Within the cooldown (2 s from the *start* of the cold fetch) a made-up kid causes
        // no fetch at all.
        let t = server.token().audience(CANON).header("kid", "early").sign();
        let res = client.post(&url).bearer_auth(&t).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(server.jwks_requests(), 1, "h2={h2}");

        // Warm, past the cooldown: made-up kids of the trusted issuer, each client hanging
        // up during the refetch. One refetch per cooldown whatever the clients do.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for i in 0..10 {
            let t = server
                .token()
                .audience(CANON)
                .header("kid", format!("made-up-{i}"))
                .sign();
            let sent = client.post(&url).bearer_auth(&t).send();
            let _ = tokio::time::timeout(Duration::from_millis(50), sent).await;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(server.jwks_requests(), 2, "warm, h2={h2}");
        // And the refetch's outcome counts: the same made-up kid is refused without network.
        let t = server
            .token()
            .audience(CANON)
            .header("kid", "made-up-0")
            .sign();
        let res = client.post(&url).bearer_auth(&t).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers()["www-authenticate"],
            format!(
                "Bearer error=\"invalid_token\", error_description=\"The access token signing key is unknown\", resource_metadata=\"{METADATA_URL}\""
            )
            .as_str()
        );
        assert_eq!(server.jwks_requests(), 2, "h2={h2}");
        task.abort();
    }
}

#[tokio::test]
async fn an_empty_key_set_is_authoritative() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry())
        .jwks_cache_ttl(Duration::from_secs(60))
        .build()
        .unwrap();
    let app = App::new(auth.clone());
    let token = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    // Emergency revocation: the server empties its key set. Once it is fetched (after the
    // lifetime), the old key no longer verifies: 401, not stale keys, not 503.
    server.set_jwks_behavior(JwksBehavior::Body(br#"{"keys":[]}"#.to_vec()));
    skip(Duration::from_secs(61)).await;
    app.assert_invalid_token(&token, "The access token signing key is unknown")
        .await;
    let stats = &auth.key_set_stats()[0];
    assert_eq!(stats.keys, 0);
    assert!(!stats.stale);
    assert_eq!(stats.consecutive_failures, 0);
}

#[tokio::test]
async fn a_kid_published_after_it_was_first_seen_is_accepted_after_one_cooldown() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(
        ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(server.entry())
            .jwks_refetch_cooldown(Duration::from_secs(5))
            .build()
            .unwrap(),
    );
    let good = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&good).await.status, StatusCode::OK);
    // A client presents a kid before the server publishes it: refetched, still unknown, so
    // remembered and refused without network...
    skip(Duration::from_secs(6)).await;
    let early = server.token().audience(CANON).header("kid", "next").sign();
    app.assert_invalid_token(&early, "The access token signing key is unknown")
        .await;
    assert_eq!(server.jwks_requests(), 2);
    // ...but only for about a cooldown: once the key is published, the next refetch finds it.
    let kid = server.add_key(protected_resource::Algorithm::RS256);
    let late = server
        .token()
        .key_id(&server, &kid)
        .audience(CANON)
        .header("kid", kid.as_str())
        .sign();
    skip(Duration::from_secs(6)).await;
    assert_eq!(app.with_token(&late).await.status, StatusCode::OK);
    assert_eq!(server.jwks_requests(), 3);
}

#[test]
fn durations_beyond_a_year_are_refused_at_build() {
    let year = Duration::from_secs(366 * 86_400);
    let base = || {
        ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(protected_resource::AuthorizationServerEntry::new(
                "https://as.example.com",
            ))
    };
    for (field, builder) in [
        ("jwks_stale_if_error", base().jwks_stale_if_error(year)),
        ("jwks_max_backoff", base().jwks_max_backoff(year)),
        ("jwks_cache_ttl", base().jwks_cache_ttl(year)),
    ] {
        let err = builder.build().unwrap_err();
        assert_eq!(err.field(), field);
        assert_eq!(err.kind(), ConfigErrorKind::InvalidValue);
    }
}

#[test]
fn the_refetch_cooldown_is_at_least_a_second() {
    for short in [Duration::ZERO, Duration::from_millis(999)] {
        let err = ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(protected_resource::AuthorizationServerEntry::new(
                "https://as.example.com",
            ))
            .jwks_refetch_cooldown(short)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::InvalidValue);
        assert_eq!(err.field(), "jwks_refetch_cooldown");
    }
}
