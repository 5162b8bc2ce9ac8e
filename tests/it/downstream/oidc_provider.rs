//! RFC 8693 token exchange against oidc-provider (npm, an OpenID Certified authorization
//! server) with the token-exchange grant the interoperability suite registers on it
//! (`tests/interop/as.mjs`, client `exchanger`). Ignored here: `tests/interop/exchange.mjs`
//! starts the servers and runs these with `PR_TEST_OIDC_A`, `PR_TEST_OIDC_B` and
//! `PR_TEST_OIDC_RESOURCE`.

use protected_resource::downstream::{DenialKind, TokenBroker, TokenExchangeBroker, TokenNeed};
use protected_resource::{
    AuthorizationServerEntry, JwksTokenValidator, ResourceOwner, ResourceServerAuth,
};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}: run through tests/interop/exchange.mjs"))
}

/// A client-credentials token of `client` at `issuer` for `resource` (its `sub` is the client).
async fn client_token(issuer: &str, client: &str, resource: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(client, Some("secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", resource),
            ("scope", "mcp:tools"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn owner(issuer: &str, resource: &str, auth: &ResourceServerAuth) -> ResourceOwner {
    auth.validate(&client_token(issuer, "cc-rs256", resource).await)
        .await
        .unwrap()
}

fn broker(issuer: &str, client: &str) -> TokenExchangeBroker {
    TokenExchangeBroker::builder(format!("{issuer}/token"))
        .issuer(issuer)
        .client_secret_basic(client, "secret")
        .build()
        .unwrap()
}

#[tokio::test]
#[ignore = "needs oidc-provider: tests/interop/exchange.mjs runs it"]
async fn exchanges_at_oidc_provider() {
    let (a, b, resource) = (
        env("PR_TEST_OIDC_A"),
        env("PR_TEST_OIDC_B"),
        env("PR_TEST_OIDC_RESOURCE"),
    );
    let auth = ResourceServerAuth::builder()
        .canonical_url(&resource)
        .authorization_server(AuthorizationServerEntry::new(&a))
        .authorization_server(AuthorizationServerEntry::new(&b))
        .build()
        .unwrap();
    let caller = owner(&a, &resource, &auth).await;
    let exchanger = broker(&a, "exchanger");

    // For a resource: a token of A for it, for the same subject, issued to the exchanger.
    let acme = format!("{}/acme", resource.trim_end_matches("/mcp"));
    let token = exchanger
        .token(&caller, &TokenNeed::new("acme").resource(&acme))
        .await
        .unwrap();
    let seen = JwksTokenValidator::builder(&a)
        .audience(&acme)
        .build()
        .unwrap()
        .validate(token.secret())
        .await
        .unwrap();
    assert_eq!(seen.user_id(), caller.user_id());
    assert_eq!(seen.client_id(), Some("exchanger"));
    assert!(token.expires_at().is_some());
    assert_ne!(token.secret(), caller.bearer_token().unwrap());

    // For a logical audience, with a narrower scope.
    let need = TokenNeed::new("acme")
        .audience("acme-api")
        .scopes(["mcp:tools"]);
    let token = exchanger.token(&caller, &need).await.unwrap();
    assert_eq!(token.scopes(), ["mcp:tools"]);
    let seen = JwksTokenValidator::builder(&a)
        .audience("acme-api")
        .build()
        .unwrap()
        .validate(token.secret())
        .await
        .unwrap();
    assert_eq!(seen.user_id(), caller.user_id());

    // Refusals, mapped: a scope beyond the subject's, no target, a client without the grant.
    let wider = TokenNeed::new("acme")
        .audience("acme-api")
        .scopes(["mcp:admin"]);
    let denial = exchanger.token(&caller, &wider).await.unwrap_err();
    assert_eq!(denial.kind(), DenialKind::Forbidden, "{denial}");
    assert!(denial.message().contains("invalid_scope"));
    let denial = exchanger
        .token(&caller, &TokenNeed::new("acme"))
        .await
        .unwrap_err();
    assert_eq!(denial.kind(), DenialKind::Forbidden, "{denial}");
    assert!(denial.message().contains("invalid_target"));
    let denial = broker(&a, "cc-rs256")
        .token(&caller, &TokenNeed::new("acme").resource(&acme))
        .await
        .unwrap_err();
    assert_eq!(denial.kind(), DenialKind::Unavailable, "{denial}");
    assert!(denial.message().contains("unauthorized_client"));

    // A caller of B: its token is not sent to A at all; B's own exchange works for it.
    let other = owner(&b, &resource, &auth).await;
    let denial = exchanger
        .token(&other, &TokenNeed::new("acme").resource(&acme))
        .await
        .unwrap_err();
    assert_eq!(denial.kind(), DenialKind::Forbidden);
    let token = broker(&b, "exchanger")
        .token(&other, &TokenNeed::new("acme").resource(&acme))
        .await
        .unwrap();
    let seen = JwksTokenValidator::builder(&b)
        .audience(&acme)
        .build()
        .unwrap()
        .validate(token.secret())
        .await
        .unwrap();
    assert_eq!(seen.issuer(), b.as_str());
}
