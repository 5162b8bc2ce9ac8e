//! A thread remembers how it read the tokens it accepted last (`parsed_tokens.rs`); every
//! check but the reading is made again for each request. Each test sends a token often enough
//! to be remembered (a tokio test runs on one thread), then changes what the other checks see.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::*;
use axum::body::Body;
use http::Request;
use http::StatusCode;
use protected_resource::testkit::{
    DpopProof, MockAuthorizationServer, SigningKey, remembered_token_reads,
};
use protected_resource::{Algorithm, ResourceServerAuth};
use serde_json::json;

/// Sends `token` until this thread answers it from memory (the fourth time: the first waits
/// for the keys, the next two are accepted without waiting and keep it), checking that every
/// answer is the first one; returns the one from memory.
async fn remembered(app: &App, token: &str) -> Answer {
    let first = app.with_token(token).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    for _ in 0..4 {
        let before = remembered_token_reads();
        let a = app.with_token(token).await;
        assert_eq!(a.body, first.body, "a remembered token reads as before");
        if remembered_token_reads() > before {
            return a;
        }
    }
    panic!("never answered from memory");
}

/// Awaits `answer`, asserting that it was decided with a remembered reading.
async fn recalled<T>(answer: impl std::future::Future<Output = T>) -> T {
    let before = remembered_token_reads();
    let a = answer.await;
    assert_eq!(remembered_token_reads(), before + 1, "not from memory");
    a
}

/// The token with one character of its signature changed, past the first eight (the slot
/// stays the same) and before the last (the part stays canonical base64url).
fn forge(token: &str) -> String {
    let at = token.rfind('.').unwrap() + 20;
    let flip = if token.as_bytes()[at] == b'A' {
        "B"
    } else {
        "A"
    };
    let mut forged = token.to_owned();
    forged.replace_range(at..=at, flip);
    forged
}

#[tokio::test]
async fn a_remembered_token_has_its_signature_checked_every_time() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(auth_for(&server));
    let token = server
        .token()
        .audience(CANON)
        .subject("alice")
        .claim("azp", "client-a")
        .scope("mcp:tools")
        .sign();
    let a = remembered(&app, &token).await;
    assert_eq!(
        a.json(),
        json!({"user_id": "alice", "issuer": server.issuer(), "client_id": "client-a", "scopes": ["mcp:tools"]})
    );
    // The same header and claims under another signature at the same slot.
    recalled(app.assert_invalid_token(&forge(&token), "The access token signature is invalid"))
        .await;
    // A signature part that is not canonical base64url is malformed, as before it was seen.
    app.assert_invalid_token(&format!("{token}="), "The access token is malformed")
        .await;
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_remembered_token_expires_on_time() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(auth_for(&server));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = now + 2;
    let token = server.token().audience(CANON).claim("exp", exp).sign();
    assert_eq!(remembered(&app, &token).await.status, StatusCode::OK);
    // Past `exp` (no leeway by default): refused, though its reading is remembered.
    let started = std::time::Instant::now();
    while SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        <= exp as f64
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the clock stands"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    recalled(app.assert_invalid_token(&token, "The access token expired")).await;
}

#[tokio::test]
async fn a_token_remembered_for_one_resource_is_checked_against_another() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let here = App::new(auth_for(&server));
    let token = server.token().audience(CANON).scope("read write").sign();
    assert_eq!(remembered(&here, &token).await.status, StatusCode::OK);

    // Another resource in the same thread: its audience is not the token's.
    let elsewhere = App::new(
        ResourceServerAuth::builder()
            .canonical_url("http://127.0.0.1:9000/mcp")
            .authorization_server(server.entry())
            .build()
            .unwrap(),
    );
    let a = recalled(elsewhere.with_token(&token)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.www(),
        Some(
            "Bearer error=\"invalid_token\", error_description=\"The access token audience does not include this resource\", resource_metadata=\"http://127.0.0.1:9000/.well-known/oauth-protected-resource/mcp\""
        )
    );
    assert_eq!(elsewhere.calls(), 0);

    // A third with a scope prefix: its owner's scopes, not the first one's.
    let prefixed = App::new(
        ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(server.entry().scope_prefix("api://x/"))
            .build()
            .unwrap(),
    );
    let a = recalled(prefixed.with_token(&token)).await;
    assert_eq!(a.json()["scopes"], json!(["api://x/read", "api://x/write"]));
    let a = recalled(here.with_token(&token)).await;
    assert_eq!(a.json()["scopes"], json!(["read", "write"]));
}

#[tokio::test]
async fn a_remembered_token_whose_key_is_gone_is_refused() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(
        ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(server.entry())
            .jwks_refetch_cooldown(Duration::from_secs(1))
            .build()
            .unwrap(),
    );
    let old = server.token().audience(CANON).sign();
    assert_eq!(remembered(&app, &old).await.status, StatusCode::OK);

    // The authorization server replaces its key; a token of the new key makes us refetch.
    let new_kid = server.rotate(Algorithm::RS256);
    skip(Duration::from_millis(1100)).await;
    let new = server
        .token()
        .key_id(&server, &new_kid)
        .audience(CANON)
        .sign();
    assert_eq!(app.with_token(&new).await.status, StatusCode::OK);
    // Looked up in the keys held now, as any token: the fast path finds no key, the
    // validator refetches (cooldown over) and refuses.
    recalled(app.assert_invalid_token(&old, "The access token signing key is unknown")).await;
}

#[tokio::test]
async fn a_remembered_dpop_bound_token_still_needs_its_key() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(auth_for(&server));
    let key = SigningKey::generate(Algorithm::ES256, "client");
    let token = server.token().audience(CANON).dpop_bound(&key).sign();
    let dpop = |key: &SigningKey| {
        let proof = DpopProof::new(key, "POST", CANON)
            .access_token(&token)
            .sign();
        Request::post("/mcp")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .body(Body::empty())
            .unwrap()
    };
    let mut from_memory = false;
    for _ in 0..5 {
        let before = remembered_token_reads();
        let a = app.send(dpop(&key)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        if remembered_token_reads() > before {
            from_memory = true;
            break;
        }
    }
    assert!(from_memory, "never answered from memory");
    let calls = app.calls();

    // As a bearer token: refused, as before it was remembered.
    let a = recalled(app.with_token(&token)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges(&a),
        [
            format!(
                "Bearer error=\"invalid_token\", error_description=\"The access token is sender-constrained and can not be used as a bearer token\", resource_metadata=\"{METADATA_URL}\""
            ),
            format!(
                "DPoP algs=\"{}\", resource_metadata=\"{METADATA_URL}\"",
                algs()
            ),
        ]
    );

    // With the proof of another key: refused.
    let other = SigningKey::generate(Algorithm::ES256, "other");
    let a = recalled(app.send(dpop(&other))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges(&a),
        [
            format!(
                "DPoP error=\"invalid_dpop_proof\", error_description=\"The DPoP proof key is not the key the access token is bound to\", algs=\"{}\", resource_metadata=\"{METADATA_URL}\"",
                algs()
            ),
            format!("Bearer resource_metadata=\"{METADATA_URL}\""),
        ]
    );
    assert_eq!(app.calls(), calls, "the inner service must not be called");
}

/// Every `WWW-Authenticate` value of an answer, in order.
fn challenges(a: &Answer) -> Vec<String> {
    a.headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The algorithms a default entry accepts for proofs, as in `algs="…"`.
fn algs() -> String {
    Algorithm::supported()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}
