//! The exchange profiles, each against a local server at the vendor's token path: Keycloak's
//! standard token exchange, Okta (with `private_key_jwt`, the assertion verified), Auth0
//! Token Vault, Microsoft Entra on-behalf-of; what each sent is checked field by field.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use protected_resource::Algorithm;
use protected_resource::downstream::{TokenExchangeBroker, TokenNeed};
use protected_resource::testkit::MockAuthorizationServer;
use serde_json::{Value, json};

use super::{CANONICAL, auth_for, call, serve, tool_app};

type Seen = Arc<Mutex<HashMap<String, (HashMap<String, String>, Option<String>)>>>;

/// Answers every token path with a vendor-shaped success (or, for `/fail/...`, the JSON
/// error in the path's last segment), recording each request's form and Authorization.
async fn vendor() -> (super::Served, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let served = serve(move |_| {
        Router::new().fallback(post(
            move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
                let log = log.clone();
                async move {
                    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
                        .into_owned()
                        .collect();
                    let auth = headers
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_owned());
                    log.lock()
                        .unwrap()
                        .insert(uri.path().to_owned(), (form, auth));
                    let name = uri.path().split('/').nth(1).unwrap_or_default().to_owned();
                    axum::Json(json!({
                        "access_token": format!("{name}-down"),
                        "token_type": "Bearer",
                        "expires_in": 300,
                        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                    }))
                }
            },
        ))
    })
    .await;
    (served, seen)
}

#[tokio::test]
async fn each_profile_sends_its_vendors_shape() {
    let (vendor, seen) = vendor().await;
    let inbound = MockAuthorizationServer::start().await.unwrap();
    let canonical = CANONICAL;
    let auth = auth_for(&[&inbound]);
    let user = inbound.token().audience(canonical).subject("alice").sign();
    let v = &vendor.base;

    // An EC key for private_key_jwt, as PEM.
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(pkcs8.as_ref())
    );
    let public = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();

    let cases = [
        (
            "realms",
            TokenExchangeBroker::keycloak(&format!("{v}/realms/demo"))
                .client_secret_basic("kc-client", "kc-secret"),
            TokenNeed::new("target").audience("target-client"),
            "/realms/demo/protocol/openid-connect/token",
        ),
        (
            "oauth2",
            TokenExchangeBroker::okta(&format!("{v}/oauth2/default")).private_key_jwt(
                "okta-client",
                pem.as_bytes(),
                Algorithm::ES256,
                Some("k1"),
            ),
            TokenNeed::new("api")
                .audience("api://acme")
                .scopes(["acme:read"]),
            "/oauth2/default/v1/token",
        ),
        (
            "auth0",
            TokenExchangeBroker::auth0_token_vault(&format!("{v}/auth0"), "google-oauth2")
                .client_secret_post("a0-client", "a0-secret"),
            TokenNeed::new("google"),
            "/auth0/oauth/token",
        ),
        (
            "tenant",
            TokenExchangeBroker::entra_on_behalf_of(&format!("{v}/tenant"))
                .client_secret_post("entra-client", "entra-secret"),
            TokenNeed::new("graph").scopes(["https://graph.microsoft.com/User.Read"]),
            "/tenant/oauth2/v2.0/token",
        ),
    ];
    for (name, builder, need, path) in cases {
        // The vendor constructors name the vendor's issuer; these callers' tokens come from
        // the test kit's server.
        let builder = builder.issuer(inbound.issuer());
        let app = tool_app(auth.clone(), Arc::new(builder.build().unwrap()), need);
        let served = serve(|_| app).await;
        let answer = call(&served.base, &user).await;
        assert_eq!(answer["secret"], format!("{name}-down"), "{path}: {answer}");
        let (form, authorization) = seen.lock().unwrap().get(path).cloned().expect(path);
        let f = |k: &str| form.get(k).map(String::as_str);
        match name {
            "realms" => {
                assert_eq!(
                    f("grant_type"),
                    Some("urn:ietf:params:oauth:grant-type:token-exchange")
                );
                assert_eq!(f("subject_token"), Some(user.as_str()));
                assert_eq!(
                    f("subject_token_type"),
                    Some("urn:ietf:params:oauth:token-type:access_token")
                );
                assert_eq!(f("audience"), Some("target-client"));
                assert_eq!(f("client_secret"), None);
                let basic = authorization.unwrap();
                assert_eq!(
                    STANDARD
                        .decode(basic.strip_prefix("Basic ").unwrap())
                        .unwrap(),
                    b"kc-client:kc-secret"
                );
            }
            "oauth2" => {
                assert_eq!(
                    f("grant_type"),
                    Some("urn:ietf:params:oauth:grant-type:token-exchange")
                );
                assert_eq!(
                    (f("audience"), f("scope")),
                    (Some("api://acme"), Some("acme:read"))
                );
                assert_eq!(authorization, None);
                assert_eq!(
                    f("client_assertion_type"),
                    Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                );
                assert_eq!(f("client_id"), Some("okta-client"));
                let assertion = f("client_assertion").unwrap();
                let parts: Vec<&str> = assertion.split('.').collect();
                let header: Value =
                    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
                let claims: Value =
                    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
                assert_eq!(
                    (header["alg"].as_str(), header["kid"].as_str()),
                    (Some("ES256"), Some("k1"))
                );
                assert_eq!(
                    (claims["iss"].as_str(), claims["sub"].as_str()),
                    (Some("okta-client"), Some("okta-client"))
                );
                assert_eq!(
                    claims["aud"],
                    format!("{v}/oauth2/default/v1/token"),
                    "aud is the token endpoint"
                );
                assert_eq!(
                    claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
                    60
                );
                assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
                    .verify(
                        format!("{}.{}", parts[0], parts[1]).as_bytes(),
                        &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
                    )
                    .expect("the assertion verifies with the client's public key");
            }
            "auth0" => {
                assert_eq!(
                    f("grant_type"),
                    Some(
                        "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
                    )
                );
                assert_eq!(
                    f("requested_token_type"),
                    Some("http://auth0.com/oauth/token-type/federated-connection-access-token")
                );
                assert_eq!(
                    f("subject_token_type"),
                    Some("urn:ietf:params:oauth:token-type:access_token")
                );
                assert_eq!(
                    (f("connection"), f("subject_token")),
                    (Some("google-oauth2"), Some(user.as_str()))
                );
                assert_eq!(
                    (f("client_id"), f("client_secret")),
                    (Some("a0-client"), Some("a0-secret"))
                );
            }
            _ => {
                assert_eq!(
                    f("grant_type"),
                    Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
                );
                assert_eq!(f("assertion"), Some(user.as_str()));
                assert_eq!(f("requested_token_use"), Some("on_behalf_of"));
                assert_eq!(f("scope"), Some("https://graph.microsoft.com/User.Read"));
                assert_eq!(f("subject_token"), None);
                assert_eq!(
                    (f("client_id"), f("client_secret")),
                    (Some("entra-client"), Some("entra-secret"))
                );
            }
        }
    }
}

#[test]
fn a_private_key_that_can_not_sign_is_a_configuration_error() {
    let err = TokenExchangeBroker::okta("https://acme.okta.com/oauth2/default")
        .private_key_jwt("c", b"not a pem", Algorithm::RS256, None)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "private_key_jwt");
    let err = TokenExchangeBroker::okta("https://acme.okta.com/oauth2/default")
        .private_key_jwt("c", b"x", Algorithm::ES512, None)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "private_key_jwt");
}
