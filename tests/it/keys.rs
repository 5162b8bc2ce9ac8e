//! Key sets over real HTTP: caching, single flight, unknown-kid refetch with cooldown,
//! rotation, several issuers, and 503 when keys can not be obtained.

use std::time::Duration;

use crate::common::*;
use futures_util::future::join_all;
use http::StatusCode;
use protected_resource::testkit::{JwksBehavior, MockAuthorizationServer, SigningKey};
use protected_resource::{Algorithm, AuthorizationServerEntry, ResourceServerAuth};
use std::sync::Arc;

fn auth_with(server: &MockAuthorizationServer, cooldown: Duration) -> ResourceServerAuth {
    ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry())
        .jwks_refetch_cooldown(cooldown)
        .jwks_fetch_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

#[tokio::test]
async fn rotation_is_picked_up_by_one_refetch() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(auth_with(&server, Duration::from_secs(1)));
    let old = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&old).await.status, StatusCode::OK);
    assert_eq!(server.jwks_requests(), 1);

    // New key published next to the old one: the unknown kid triggers one refetch.
    skip(Duration::from_millis(1100)).await;
    let new_kid = server.add_key(Algorithm::RS256);
    let new = server
        .token()
        .key_id(&server, &new_kid)
        .audience(CANON)
        .sign();
    assert_eq!(app.with_token(&new).await.status, StatusCode::OK);
    assert_eq!(server.jwks_requests(), 2);
    assert_eq!(app.with_token(&old).await.status, StatusCode::OK);
    assert_eq!(server.jwks_requests(), 2);
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_cooldown() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(auth_with(&server, Duration::from_secs(60)));
    let good = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&good).await.status, StatusCode::OK);
    let stranger = Arc::new(SigningKey::generate(Algorithm::RS256, "x"));
    let mut tokens = Vec::new();
    for i in 0..300 {
        tokens.push(
            server
                .token()
                .audience(CANON)
                .key(stranger.clone())
                .header("kid", format!("random-{i}"))
                .sign(),
        );
    }
    for chunk in tokens.chunks(100) {
        let answers = join_all(chunk.iter().map(|t| app.with_token(t))).await;
        for a in answers {
            assert_eq!(a.status, StatusCode::UNAUTHORIZED);
            assert!(
                a.www()
                    .unwrap()
                    .contains("The access token signing key is unknown")
            );
        }
    }
    // One fetch at start; the cold fetch counts toward the cooldown, so no refetch at all.
    assert_eq!(server.jwks_requests(), 1);
    assert_eq!(app.calls(), 1);
    assert_eq!(app.with_token(&good).await.status, StatusCode::OK);
}

async fn assert_unavailable(app: &App, token: &str) {
    let before = app.calls();
    let a = app.with_token(token).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert!(a.www().is_none());
    assert!(a.headers.contains_key(http::header::RETRY_AFTER));
    assert_eq!(app.calls(), before);
}

#[tokio::test]
async fn unobtainable_keys_answer_503_not_401() {
    for behavior in [
        JwksBehavior::Status(500),
        JwksBehavior::Garbage,
        JwksBehavior::Hang,
        JwksBehavior::Body(vec![b' '; 5 * 1024 * 1024]),
        JwksBehavior::Redirect("http://127.0.0.1:1/jwks".into()),
    ] {
        let server = MockAuthorizationServer::start().await.unwrap();
        server.set_jwks_behavior(behavior.clone());
        let app = App::new(auth_with(&server, Duration::from_secs(1)));
        let token = server.token().audience(CANON).sign();
        let started = std::time::Instant::now();
        assert_unavailable(&app, &token).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{behavior:?} took too long"
        );
        // Within the cooldown a failed fetch is not repeated.
        let n = server.jwks_requests();
        assert_unavailable(&app, &token).await;
        assert_eq!(server.jwks_requests(), n, "{behavior:?}");
        // Once the server recovers, tokens are accepted again.
        server.set_jwks_behavior(JwksBehavior::Normal);
        skip(Duration::from_millis(1100)).await;
        assert_eq!(
            app.with_token(&token).await.status,
            StatusCode::OK,
            "{behavior:?}"
        );
    }
}

#[tokio::test]
async fn unreachable_jwks_is_503() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let token = server.token().audience(CANON).sign();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(
            AuthorizationServerEntry::new(server.issuer()).jwks_uri("http://127.0.0.1:1/jwks"),
        )
        .build()
        .unwrap();
    let app = App::new(auth);
    assert_unavailable(&app, &token).await;
}

#[tokio::test]
async fn keys_belong_to_their_issuer() {
    let a = MockAuthorizationServer::start().await.unwrap();
    let b = MockAuthorizationServer::start().await.unwrap();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(a.entry())
        .authorization_server(b.entry())
        .build()
        .unwrap();
    let app = App::new(auth);
    for s in [&a, &b] {
        let t = s.token().audience(CANON).subject("u").sign();
        let ans = app.with_token(&t).await;
        assert_eq!(ans.status, StatusCode::OK);
        assert_eq!(ans.json()["issuer"], s.issuer());
    }
    // Signed by A (with A's kid) but claiming to be from B: B's keys are used, and fail.
    let confused = a.token().audience(CANON).claim("iss", b.issuer()).sign();
    app.assert_invalid_token(&confused, "The access token signing key is unknown")
        .await;
}

#[tokio::test]
async fn regional_entries_share_one_issuer_and_key_set() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_servers([
            AuthorizationServerEntry::new(server.issuer())
                .jwks_uri(server.jwks_uri())
                .authorization_server_url("https://auth-us.example.com"),
            AuthorizationServerEntry::new(server.issuer())
                .jwks_uri(server.jwks_uri())
                .authorization_server_url("https://auth-eu.example.com"),
        ])
        .build()
        .unwrap();
    let app = App::new(auth);
    let token = server.token().audience(CANON).sign();
    let answers = join_all((0..20).map(|_| app.with_token(&token))).await;
    assert!(answers.iter().all(|a| a.status == StatusCode::OK));
    assert_eq!(server.jwks_requests(), 1);
    let meta = app.metadata().await;
    assert_eq!(
        meta.json()["authorization_servers"],
        serde_json::json!(["https://auth-us.example.com", "https://auth-eu.example.com"])
    );
}

#[tokio::test]
async fn verify_iss_false_uses_only_that_entry() {
    let trusted = MockAuthorizationServer::start().await.unwrap();
    let lax = MockAuthorizationServer::start().await.unwrap();
    let mut options = protected_resource::AccessTokenValidationOptions::default();
    options.verify_iss = false;
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(trusted.entry())
        .authorization_server(lax.entry().validation_options(options))
        .build()
        .unwrap();
    let app = App::new(auth);
    let odd = lax
        .token()
        .audience(CANON)
        .claim("iss", "https://whatever")
        .sign();
    let a = app.with_token(&odd).await;
    assert_eq!(a.status, StatusCode::OK);
    // The owner names the token's own issuer, so that users of different real issuers
    // (same `sub`) are never merged under the configured one.
    assert_eq!(a.json()["issuer"], "https://whatever");
    let plain = lax.token().audience(CANON).without_claim("iss").sign();
    let a = app.with_token(&plain).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json()["issuer"],
        lax.issuer(),
        "no iss: the configured one"
    );
    // A token signed by the trusted server but with an unknown iss is checked against the
    // lax entry's keys only, and fails.
    let t = trusted
        .token()
        .audience(CANON)
        .claim("iss", "https://whatever")
        .sign();
    app.assert_invalid_token(&t, "The access token signing key is unknown")
        .await;
}

#[tokio::test]
async fn an_issuer_with_several_key_sources_answers_from_any_healthy_one() {
    // Regional entries: one issuer, two key sets (servers `eu` and `us`), `eu` failing.
    let eu = MockAuthorizationServer::start().await.unwrap();
    let us = MockAuthorizationServer::start().await.unwrap();
    let issuer = eu.issuer().to_owned();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(eu.entry())
        .authorization_server(AuthorizationServerEntry::new(issuer.clone()).jwks_uri(us.jwks_uri()))
        .build()
        .unwrap();
    let app = App::new(auth);
    eu.set_jwks_behavior(JwksBehavior::Status(500));

    // The key sits in the healthy source: accepted, not 503.
    let from_us = us
        .token()
        .audience(CANON)
        .claim("iss", issuer.as_str())
        .sign();
    let a = app.with_token(&from_us).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    // A key found nowhere while a source can not answer: it may sit there, so 503.
    let from_eu = eu.token().audience(CANON).sign();
    let a = app.with_token(&from_eu).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.headers.contains_key("retry-after"));
    assert!(a.www().is_none());

    // Once every source answers, an unknown kid in one source does not stop the search in
    // the other, and a kid found nowhere is unknown (401).
    eu.set_jwks_behavior(JwksBehavior::Normal);
    skip(Duration::from_secs(301)).await;
    assert_eq!(app.with_token(&from_eu).await.status, StatusCode::OK);
    assert_eq!(app.with_token(&from_us).await.status, StatusCode::OK);
    let nowhere = us
        .token()
        .audience(CANON)
        .claim("iss", issuer.as_str())
        .header("kid", "nowhere")
        .sign();
    app.assert_invalid_token(&nowhere, "The access token signing key is unknown")
        .await;

    // Without a kid, "exactly one fitting key" is judged over the issuer: two sources with
    // one RS256 key each make it ambiguous.
    let no_kid = us
        .token()
        .audience(CANON)
        .claim("iss", issuer.as_str())
        .without_kid()
        .sign();
    app.assert_invalid_token(
        &no_kid,
        "The access token has no key id and several keys match",
    )
    .await;
}
