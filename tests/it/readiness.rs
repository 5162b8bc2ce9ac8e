//! Readiness without I/O: before any fetch, after a warm-up, with an issuer whose keys can
//! not be fetched (only that one named), over real HTTP on 127.0.0.1.

use std::time::Duration;

use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{AuthorizationServerEntry, NotReadyReason, ResourceServerAuth};
use serde_json::json;

#[tokio::test]
async fn ready_when_every_issuer_has_keys_and_names_those_without() {
    let good = MockAuthorizationServer::start().await.unwrap();
    // A closed loopback port: fetching fails at once.
    let dead =
        AuthorizationServerEntry::new("http://127.0.0.1:9").jwks_uri("http://127.0.0.1:9/jwks");
    let auth = ResourceServerAuth::builder()
        .canonical_url("http://127.0.0.1:8000/mcp")
        .authorization_server(good.entry())
        .authorization_server(dead)
        .build()
        .unwrap();

    let before = auth.readiness();
    assert!(!before.is_ready());
    let reasons: Vec<_> = before
        .not_ready()
        .iter()
        .map(|n| (n.issuer().to_owned(), n.reason()))
        .collect();
    assert_eq!(
        reasons,
        [
            (good.issuer().to_owned(), NotReadyReason::NotFetchedYet),
            (
                "http://127.0.0.1:9".to_owned(),
                NotReadyReason::NotFetchedYet
            ),
        ]
    );

    assert!(auth.warm_up(Duration::from_secs(5)).await.is_err());
    let after = auth.readiness();
    assert!(!after.is_ready());
    assert_eq!(
        after.to_json(),
        json!({"ready": false, "issuers": [{"issuer": "http://127.0.0.1:9", "reason": "fetch_failing"}]})
    );

    let only_good = ResourceServerAuth::builder()
        .canonical_url("http://127.0.0.1:8000/mcp")
        .authorization_server(good.entry())
        .build()
        .unwrap();
    only_good.warm_up(Duration::from_secs(5)).await.unwrap();
    assert!(only_good.readiness().is_ready());
    assert_eq!(only_good.readiness().to_json(), json!({"ready": true}));
}
