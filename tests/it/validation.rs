//! SPEC §1–§3 over real HTTP key fetching: each rejection checks status, the exact challenge
//! and that the inner service was not called.

use crate::common::*;
use axum::body::Body;
use http::{Request, StatusCode};
use protected_resource::testkit::{MockAuthorizationServer, SigningKey, unsigned_token};
use protected_resource::{
    AccessTokenValidationOptions, Algorithm, AuthorizationServerEntry, ResourceServerAuth,
};
use serde_json::json;
use std::sync::Arc;

async fn setup() -> (MockAuthorizationServer, App) {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(auth_for(&server));
    (server, app)
}

#[tokio::test]
async fn valid_token_reaches_handler_with_owner() {
    let (server, app) = setup().await;
    let token = server
        .token()
        .audience(CANON)
        .subject("alice")
        .claim("azp", "client-a")
        .scope("mcp:tools mcp:read")
        .sign();
    let a = app.with_token(&token).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.json(),
        json!({"user_id": "alice", "issuer": server.issuer(), "client_id": "client-a", "scopes": ["mcp:tools", "mcp:read"]})
    );
    assert_eq!(app.calls(), 1);
    // No `Origin`, no CORS headers; no `Vary` either, as no cache keeps this answer.
    assert!(!a.headers.contains_key("access-control-allow-origin"));
    assert!(!a.headers.contains_key("vary"));
    let mut req = bearer(&token);
    req.headers_mut()
        .insert("origin", "http://localhost:6274".parse().unwrap());
    let a = app.send(req).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.headers["access-control-allow-origin"], "*");
    assert_eq!(app.calls(), 2);
}

#[tokio::test]
async fn missing_credentials_get_plain_challenge() {
    let (_server, app) = setup().await;
    for req in [
        Request::post("/mcp").body(Body::empty()).unwrap(),
        Request::post("/mcp")
            .header("authorization", "Basic dXNlcjpwYXNz")
            .body(Body::empty())
            .unwrap(),
        Request::post("/mcp?access_token=abc.def.ghi")
            .body(Body::empty())
            .unwrap(),
    ] {
        let mut req = req;
        req.headers_mut()
            .insert("origin", "http://localhost:6274".parse().unwrap());
        let a = app.send(req).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            a.www(),
            Some(format!("Bearer resource_metadata=\"{METADATA_URL}\"").as_str())
        );
        // Header names are case-insensitive (tower-http sends them in lowercase).
        let expose = a.headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(expose.contains("www-authenticate") && expose.contains("mcp-session-id"));
    }
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn challenge_scopes_are_sent_when_configured() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry())
        .default_challenge_scopes(["mcp:tools", "mcp:read", "mcp:tools"])
        .build()
        .unwrap();
    let app = App::new(auth);
    let a = app
        .send(Request::get("/mcp").body(Body::empty()).unwrap())
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.www(),
        Some(
            format!("Bearer resource_metadata=\"{METADATA_URL}\", scope=\"mcp:tools mcp:read\"")
                .as_str()
        )
    );
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn malformed_requests_get_invalid_request() {
    let (server, app) = setup().await;
    let token = server.token().audience(CANON).sign();
    let dup = Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let two_places = Request::post(format!("/mcp?access_token={token}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    for req in [dup, two_places] {
        let a = app.send(req).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            a.www(),
            Some(
                format!("Bearer error=\"invalid_request\", resource_metadata=\"{METADATA_URL}\"")
                    .as_str()
            )
        );
    }
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn scheme_is_case_insensitive() {
    let (server, app) = setup().await;
    let token = server.token().audience(CANON).sign();
    for scheme in ["bearer", "BEARER", "Bearer  "] {
        let req = Request::post("/mcp")
            .header("authorization", format!("{scheme} {token}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(app.send(req).await.status, StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn bad_tokens_get_invalid_token() {
    let (server, app) = setup().await;
    let now = json!(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    let cases: Vec<(String, &str)> = vec![
        ("not-a-jwt".into(), "The access token is malformed"),
        ("a.b.c".into(), "The access token is malformed"),
        (
            format!("{}.extra", server.token().audience(CANON).sign()),
            "The access token is malformed",
        ),
        ("x".repeat(17 * 1024), "The access token is too large"),
        // Not a `b64token` (RFC 6750 §2.1), wherever the odd character sits: the three
        // parts' strict decoding reads every character (no scan before it).
        (
            format!("{}!", server.token().audience(CANON).sign()),
            "The access token is malformed",
        ),
        (
            format!("{}==", server.token().audience(CANON).sign()),
            "The access token is malformed",
        ),
        (
            server.token().audience(CANON).sign().replacen('.', ". ", 1),
            "The access token is malformed",
        ),
        (
            server.token().audience(CANON).sign().replacen('.', ",", 1),
            "The access token is malformed",
        ),
        (
            server.token().audience(CANON).sign().replacen('.', "!.", 1),
            "The access token is malformed",
        ),
        (
            {
                let t = server.token().audience(CANON).sign();
                let second = t.rfind('.').unwrap();
                format!("{}~{}", &t[..second - 4], &t[second - 3..])
            },
            "The access token is malformed",
        ),
        (
            format!("\t{}", server.token().audience(CANON).sign()),
            "The access token is malformed",
        ),
        (
            server
                .token()
                .audience(CANON)
                .claim("iss", "https://evil.example")
                .sign()
                + "+",
            "The access token is malformed",
        ),
        (
            server.token().audience(CANON).expires_in(-10).sign(),
            "The access token expired",
        ),
        (
            server
                .token()
                .audience(CANON)
                .claim("nbf", now.as_u64().unwrap() + 600)
                .sign(),
            "The access token is not yet valid",
        ),
        (
            server
                .token()
                .audience(CANON)
                .claim("iat", now.as_u64().unwrap() + 600)
                .sign(),
            "The access token was issued in the future",
        ),
        (
            server
                .token()
                .audience(CANON)
                .claim("exp", "9999999999")
                .sign(),
            "The access token has a claim of the wrong type",
        ),
        (
            server.token().audience(CANON).claim("nbf", "0").sign(),
            "The access token has a claim of the wrong type",
        ),
        (
            server.token().audience(CANON).without_claim("exp").sign(),
            "The access token lacks a required claim",
        ),
        (
            server.token().sign(),
            "The access token lacks a required claim",
        ),
        (
            server.token().audience("https://other.example/mcp").sign(),
            "The access token audience does not include this resource",
        ),
        (
            server.token().claim("aud", json!(["a", "b"])).sign(),
            "The access token audience does not include this resource",
        ),
        (
            server.token().claim("aud", json!([1])).sign(),
            "The access token has a claim of the wrong type",
        ),
        (
            server.token().audience(CANON).without_claim("sub").sign(),
            "The access token has no subject",
        ),
        (
            server.token().audience(CANON).subject("").sign(),
            "The access token has no subject",
        ),
        (
            server.token().audience(CANON).subject("   ").sign(),
            "The access token has no subject",
        ),
        (
            server.token().audience(CANON).claim("sub", 42).sign(),
            "The access token has a claim of the wrong type",
        ),
        (
            server
                .token()
                .audience(CANON)
                .claim("iss", "https://evil.example")
                .sign(),
            "The access token issuer is not trusted",
        ),
        (
            server.token().audience(CANON).without_claim("iss").sign(),
            "The access token issuer is not trusted",
        ),
        (
            server
                .token()
                .audience(CANON)
                .header("crit", json!(["exp"]))
                .sign(),
            "The access token has unsupported critical header parameters",
        ),
        (
            server.token().audience(CANON).header("alg", "RS384").sign(),
            "The access token signing algorithm is not allowed",
        ),
    ];
    for (token, description) in cases {
        app.assert_invalid_token(&token, description).await;
    }
    // A tampered payload: valid structure, wrong signature.
    let good = server.token().audience(CANON).subject("alice").sign();
    let parts: Vec<&str> = good.split('.').collect();
    let evil_claims = serde_json::to_vec(&json!({"iss": server.issuer(), "sub": "admin", "aud": CANON, "exp": now.as_u64().unwrap() + 600})).unwrap();
    use base64::Engine;
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(evil_claims),
        parts[2]
    );
    app.assert_invalid_token(&forged, "The access token signature is invalid")
        .await;
    assert_eq!(app.calls(), 0);
}

#[tokio::test]
async fn none_and_hmac_tokens_are_refused() {
    let (server, app) = setup().await;
    let claims = json!({"iss": server.issuer(), "sub": "u", "aud": CANON, "exp": 9_999_999_999u64});
    let none = unsigned_token(&json!({"alg": "none"}), &claims, "");
    app.assert_invalid_token(&none, "The access token signing algorithm is not allowed")
        .await;
    let none_sig = unsigned_token(
        &json!({"alg": "none", "kid": server.kids()[0]}),
        &claims,
        "c2ln",
    );
    app.assert_invalid_token(
        &none_sig,
        "The access token signing algorithm is not allowed",
    )
    .await;
    // Classic confusion: HS256 keyed with the public JWK text.
    let secret = serde_json::to_vec(&json!({"kid": server.kids()[0]})).unwrap();
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .unwrap();
    app.assert_invalid_token(&hs, "The access token signing algorithm is not allowed")
        .await;
}

#[tokio::test]
async fn header_key_parameters_are_ignored() {
    let (server, app) = setup().await;
    let attacker = Arc::new(SigningKey::generate(Algorithm::RS256, "attacker"));
    // jku/jwk pointing at the attacker's key: ignored, so the attacker's signature fails.
    let forged = server
        .token()
        .audience(CANON)
        .key(attacker.clone())
        .header("kid", server.kids()[0].clone())
        .header("jku", "http://127.0.0.1:1/jwks")
        .header("jwk", attacker.public_jwk().clone())
        .sign();
    app.assert_invalid_token(&forged, "The access token signature is invalid")
        .await;
    // The same parameters on a genuine token change nothing.
    let genuine = server
        .token()
        .audience(CANON)
        .header("jku", "http://127.0.0.1:1/jwks")
        .header("x5u", "http://127.0.0.1:1/cert")
        .sign();
    assert_eq!(app.with_token(&genuine).await.status, StatusCode::OK);
}

#[tokio::test]
async fn every_algorithm_verifies() {
    let algorithms: Vec<Algorithm> = Algorithm::supported().collect();
    let server = MockAuthorizationServer::start_with(&algorithms)
        .await
        .unwrap();
    let app = App::new(auth_for(&server));
    for kid in server.kids() {
        let token = server.token().key_id(&server, &kid).audience(CANON).sign();
        let a = app.with_token(&token).await;
        assert_eq!(a.status, StatusCode::OK, "{kid}: {}", a.body);
    }
    assert_eq!(app.calls(), algorithms.len());
    assert_eq!(server.jwks_requests(), 1);
}

#[tokio::test]
async fn algorithm_must_be_allowed_and_fit_the_key() {
    let server = MockAuthorizationServer::start_with(&[
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::PS256,
    ])
    .await
    .unwrap();
    let kids = server.kids();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(
            AuthorizationServerEntry::new(server.issuer())
                .jwks_uri(server.jwks_uri())
                .algorithms([Algorithm::RS256, Algorithm::PS256]),
        )
        .build()
        .unwrap();
    let app = App::new(auth);
    let es = server
        .token()
        .key_id(&server, &kids[1])
        .audience(CANON)
        .sign();
    app.assert_invalid_token(&es, "The access token signing algorithm is not allowed")
        .await;
    // A PS256 key (JWK alg PS256) presented as RS256: the JWK's alg must match.
    let lying = server
        .token()
        .key_id(&server, &kids[2])
        .header("alg", "RS256")
        .audience(CANON)
        .sign();
    app.assert_invalid_token(&lying, "The access token algorithm does not match its key")
        .await;
    // An RSA kid used with an EC alg.
    let cross = server
        .token()
        .key_id(&server, &kids[1])
        .header("kid", kids[0].clone())
        .header("alg", "ES256")
        .audience(CANON)
        .sign();
    app.assert_invalid_token(&cross, "The access token signing algorithm is not allowed")
        .await;
}

#[tokio::test]
async fn token_without_kid_needs_exactly_one_fitting_key() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(auth_for(&server));
    let token = server.token().audience(CANON).without_kid().sign();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);

    let two = MockAuthorizationServer::start_with(&[Algorithm::RS256, Algorithm::RS256])
        .await
        .unwrap();
    let app = App::new(auth_for(&two));
    let token = two.token().audience(CANON).without_kid().sign();
    app.assert_invalid_token(
        &token,
        "The access token has no key id and several keys match",
    )
    .await;
}

#[tokio::test]
async fn typ_policy_requires_at_jwt_when_on() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let mut options = AccessTokenValidationOptions::default();
    options.require_at_jwt_type = true;
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry().validation_options(options))
        .build()
        .unwrap();
    let app = App::new(auth);
    app.assert_invalid_token(
        &server.token().audience(CANON).sign(),
        "The access token type is not at+jwt",
    )
    .await;
    for typ in ["at+jwt", "application/at+JWT"] {
        let t = server.token().audience(CANON).header("typ", typ).sign();
        assert_eq!(app.with_token(&t).await.status, StatusCode::OK, "{typ}");
    }
}

#[tokio::test]
async fn validation_options_and_leeway_apply() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let mut options = AccessTokenValidationOptions::default();
    options.verify_exp = false;
    options.verify_iat = false;
    let lax = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry().validation_options(options))
        .build()
        .unwrap();
    let app = App::new(lax);
    let expired = server
        .token()
        .audience(CANON)
        .expires_in(-100)
        .claim("iat", 9_999_999_999u64)
        .sign();
    assert_eq!(app.with_token(&expired).await.status, StatusCode::OK);

    let mut options = AccessTokenValidationOptions::default();
    options.leeway = std::time::Duration::from_secs(60);
    let skew = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry().validation_options(options))
        .build()
        .unwrap();
    let app = App::new(skew);
    let recent = server.token().audience(CANON).expires_in(-30).sign();
    assert_eq!(app.with_token(&recent).await.status, StatusCode::OK);
    let old = server.token().audience(CANON).expires_in(-90).sign();
    app.assert_invalid_token(&old, "The access token expired")
        .await;
}

#[tokio::test]
async fn audience_arrays_and_configured_audiences() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(auth_for(&server));
    let t = server.token().claim("aud", json!(["other", CANON])).sign();
    assert_eq!(app.with_token(&t).await.status, StatusCode::OK);
    let upper = server.token().audience("HTTP://127.0.0.1:8000/mcp").sign();
    assert_eq!(app.with_token(&upper).await.status, StatusCode::OK);

    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry().expected_audiences(["client-1", "client-2"]))
        .build()
        .unwrap();
    let app = App::new(auth);
    assert_eq!(
        app.with_token(&server.token().audience("client-2").sign())
            .await
            .status,
        StatusCode::OK
    );
    app.assert_invalid_token(
        &server.token().audience(CANON).sign(),
        "The access token audience does not include this resource",
    )
    .await;
}

/// Found by the interoperability suite: oidc-provider signs with `alg: "Ed25519"` (RFC 9864's
/// fully-specified name for EdDSA over Ed25519) and publishes JWKs with that `alg`.
#[tokio::test]
async fn rfc9864_ed25519_alg_name_is_eddsa() {
    let server = MockAuthorizationServer::start_with(&[Algorithm::EdDSA])
        .await
        .unwrap();
    let app = App::new(auth_for(&server));
    let token = server
        .token()
        .audience(CANON)
        .header("alg", "Ed25519")
        .sign();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);

    // The key published with `"alg": "Ed25519"` is used too.
    let key = Arc::new(SigningKey::generate(Algorithm::EdDSA, "fully-specified"));
    let mut public = key.public_jwk().clone();
    public["alg"] = json!("Ed25519");
    let other = MockAuthorizationServer::start_with(&[Algorithm::EdDSA])
        .await
        .unwrap();
    other.set_jwks_behavior(protected_resource::testkit::JwksBehavior::Body(
        serde_json::to_vec(&json!({ "keys": [public] })).unwrap(),
    ));
    let app = App::new(auth_for(&other));
    let token = other
        .token()
        .audience(CANON)
        .key(key)
        .header("alg", "Ed25519")
        .sign();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    // An Ed25519 key never verifies another algorithm's token.
    let forged = other.token().audience(CANON).header("alg", "Ed448").sign();
    app.assert_invalid_token(&forged, "The access token signing algorithm is not allowed")
        .await;
}
