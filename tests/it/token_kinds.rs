//! Tokens that are signed by a trusted issuer for this resource but are not bearer access
//! tokens: sender-constrained (`cnf`), other JWT types, ID tokens, `crit` of any value; and
//! the canonical URL's character rules.

use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{AccessTokenValidationOptions, ConfigErrorKind, ResourceServerAuth};
use serde_json::json;

use crate::common::*;

async fn setup() -> (MockAuthorizationServer, App) {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(auth_for(&server));
    (server, app)
}

#[tokio::test]
async fn sender_constrained_tokens_are_not_bearer_tokens() {
    let (server, app) = setup().await;
    for cnf in [
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
        json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
        json!(null),
    ] {
        let token = server
            .token()
            .audience(CANON)
            .claim("cnf", cnf.clone())
            .sign();
        app.assert_invalid_token(
            &token,
            "The access token is sender-constrained and can not be used as a bearer token",
        )
        .await;
    }
}

#[tokio::test]
async fn tokens_naming_another_jwt_type_are_refused() {
    let (server, app) = setup().await;
    for typ in [
        "dpop+jwt",
        "logout+jwt",
        "id_token+jwt",
        "secevent+jwt",
        "application/dpop+jwt",
        "JWS",
        "",
    ] {
        let token = server.token().audience(CANON).header("typ", typ).sign();
        app.assert_invalid_token(&token, "The access token type is not at+jwt")
            .await;
    }
    for typ in [
        "JWT",
        "jwt",
        "application/jwt",
        "at+jwt",
        "AT+JWT",
        "application/at+jwt",
    ] {
        let token = server.token().audience(CANON).header("typ", typ).sign();
        assert_eq!(app.with_token(&token).await.status, 200, "{typ}");
    }
    let before = app.calls();
    let token = server
        .token()
        .audience(CANON)
        .header("typ", json!(42))
        .sign();
    assert_ne!(
        app.with_token(&token).await.status,
        200,
        "typ must be a string"
    );
    assert_eq!(app.calls(), before);
}

#[tokio::test]
async fn id_token_claims_are_refused_where_configured() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let mut options = AccessTokenValidationOptions::default();
    options.reject_id_token_claims = true;
    let strict = App::new(
        ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(
                server
                    .entry()
                    .expected_audiences(["my-client-id"])
                    .validation_options(options),
            )
            .build()
            .unwrap(),
    );
    for claim in ["nonce", "at_hash", "c_hash"] {
        let id_token = server
            .token()
            .audience("my-client-id")
            .claim(claim, "x")
            .sign();
        strict
            .assert_invalid_token(&id_token, "The token is an ID token, not an access token")
            .await;
    }
    let access = server.token().audience("my-client-id").sign();
    assert_eq!(strict.with_token(&access).await.status, 200);
    // Off by default.
    let (server, lenient) = setup().await;
    let with_nonce = server.token().audience(CANON).claim("nonce", "x").sign();
    assert_eq!(lenient.with_token(&with_nonce).await.status, 200);
}

#[tokio::test]
async fn crit_is_refused_whatever_its_value() {
    let (server, app) = setup().await;
    for crit in [
        json!(null),
        json!([]),
        json!(["exp"]),
        json!("b64"),
        json!({}),
    ] {
        let token = server
            .token()
            .audience(CANON)
            .header("crit", crit.clone())
            .sign();
        app.assert_invalid_token(
            &token,
            "The access token has unsupported critical header parameters",
        )
        .await;
    }
}

#[test]
fn the_canonical_url_is_ascii_without_quotes_or_backslashes() {
    for bad in [
        "https://bücher.example/mcp",
        "https://mcp.example.com/ünïcode",
        "https://mcp.example.com/m\"cp",
        "https://mcp.example.com/m\\cp",
    ] {
        let err = ResourceServerAuth::builder()
            .canonical_url(bad)
            .authorization_server(protected_resource::AuthorizationServerEntry::new(
                "https://as.example.com",
            ))
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::InvalidCanonicalUrl, "{bad}");
        assert_eq!(err.field(), "canonical_url");
    }
    // The same host in its ASCII (punycode) form is fine, and advertised as written.
    let auth = ResourceServerAuth::builder()
        .canonical_url("https://xn--bcher-kva.example/mcp")
        .authorization_server(protected_resource::AuthorizationServerEntry::new(
            "https://as.example.com",
        ))
        .build()
        .unwrap();
    assert_eq!(
        auth.resource_metadata_url(),
        Some("https://xn--bcher-kva.example/.well-known/oauth-protected-resource/mcp")
    );
}
