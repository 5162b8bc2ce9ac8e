//! Entries that give only an issuer: the `jwks_uri` comes from RFC 8414 or OpenID Connect
//! metadata, which must name exactly that issuer, and is cached and refreshed like key sets.

use std::time::Duration;

use crate::common::*;
use http::StatusCode;
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{
    Algorithm, AuthorizationServerEntry, ConfigErrorKind, ResourceServerAuth,
};

fn auth(entry: AuthorizationServerEntry) -> ResourceServerAuth {
    ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(entry)
        .build()
        .unwrap()
}

#[tokio::test]
async fn rfc8414_metadata_gives_the_jwks_uri() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = auth(server.discovery_entry());
    assert_eq!(auth.authorization_servers()[0].get_jwks_uri(), None);
    let app = App::new(auth.clone());
    let token = server.token().audience(CANON).sign();
    let a = app.with_token(&token).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["issuer"], server.issuer());
    assert_eq!((server.metadata_requests(), server.jwks_requests()), (1, 1));
    // The metadata advertises the issuer as authorization server.
    let meta = app.metadata().await;
    assert_eq!(
        meta.json()["authorization_servers"],
        serde_json::json!([server.issuer()])
    );
    let stats = &auth.key_set_stats()[0];
    assert!(stats.discovered);
    assert_eq!(stats.jwks_uri.as_deref(), Some(server.jwks_uri().as_str()));
}

#[tokio::test]
async fn openid_configuration_is_the_fallback() {
    let server = MockAuthorizationServer::start().await.unwrap();
    server.serve_rfc8414_metadata(false);
    let app = App::new(auth(server.discovery_entry()));
    let token = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    assert_eq!((server.metadata_requests(), server.jwks_requests()), (2, 1));
}

#[tokio::test]
async fn issuers_with_a_path_use_path_insertion() {
    let server = MockAuthorizationServer::start_at(&[Algorithm::ES256], "/tenant/a")
        .await
        .unwrap();
    assert!(server.issuer().ends_with("/tenant/a"));
    let app = App::new(auth(server.discovery_entry()));
    let token = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    assert_eq!((server.metadata_requests(), server.jwks_requests()), (1, 1));

    // Without RFC 8414, OpenID Connect discovery with path insertion answers.
    let server = MockAuthorizationServer::start_at(&[Algorithm::EdDSA], "/realms/x")
        .await
        .unwrap();
    server.serve_rfc8414_metadata(false);
    let app = App::new(auth(server.discovery_entry()));
    let token = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    assert_eq!((server.metadata_requests(), server.jwks_requests()), (2, 1));
}

#[tokio::test]
async fn metadata_naming_another_issuer_is_refused() {
    let server = MockAuthorizationServer::start().await.unwrap();
    // A trailing slash is a different issuer (exact comparison, RFC 8414 §3.3).
    server.set_metadata_issuer(Some(&format!("{}/", server.issuer())));
    let auth = auth(server.discovery_entry());
    let app = App::new(auth.clone());
    let token = server.token().audience(CANON).sign();
    let a = app.with_token(&token).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.headers.contains_key(http::header::RETRY_AFTER));
    assert_eq!(app.calls(), 0);
    assert_eq!(
        server.jwks_requests(),
        0,
        "no keys from an unverified document"
    );
    assert_eq!(server.metadata_requests(), 2, "both documents tried");
    let stats = &auth.key_set_stats()[0];
    let err = stats.last_error.as_deref().unwrap();
    assert!(err.contains("names issuer"), "{err}");
    assert_eq!(stats.jwks_uri, None);
    let err = auth.warm_up(Duration::from_secs(5)).await.unwrap_err();
    assert!(err.to_string().contains(server.issuer()), "{err}");
}

#[tokio::test]
async fn discovery_is_cached_and_refreshed_like_key_sets() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(auth(server.discovery_entry()));
    let token = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);

    // An unknown kid refetches the key set, not the metadata.
    let kid = server.add_key(Algorithm::RS256);
    skip(Duration::from_secs(6)).await;
    let t = server.token().key_id(&server, &kid).audience(CANON).sign();
    assert_eq!(app.with_token(&t).await.status, StatusCode::OK);
    assert_eq!((server.metadata_requests(), server.jwks_requests()), (1, 2));

    // After an hour both are fetched again; when rediscovery fails the known jwks_uri is kept.
    server.set_metadata_issuer(Some("https://evil.example.com"));
    skip(Duration::from_secs(3610)).await;
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    assert_eq!(server.jwks_requests(), 3);
    assert_eq!(server.metadata_requests(), 3);
}

#[tokio::test]
async fn discovery_entries_are_checked_at_build_time() {
    let err = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(AuthorizationServerEntry::new("http://auth.example.com"))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ConfigErrorKind::InvalidUrl);
    assert!(
        err.to_string().contains("authorization_servers[0].issuer"),
        "{err}"
    );
    assert!(err.to_string().contains("https"), "{err}");

    let err = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(AuthorizationServerEntry::new(
            "https://auth.example.com/?tenant=1",
        ))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("query"), "{err}");

    // From the environment, an entry without jwks_uri discovers it.
    let auth = ResourceServerAuth::builder()
        .with_env_vars([
            ("MCP_SERVER_AUTH_CANONICAL_URL", CANON),
            (
                "MCP_SERVER_AUTH_AUTHORIZATION_SERVERS",
                r#"[{"issuer": "https://tenant.eu.auth0.com/"}]"#,
            ),
        ])
        .build()
        .unwrap();
    let entry = &auth.authorization_servers()[0];
    assert_eq!(entry.get_jwks_uri(), None);
    assert_eq!(
        entry.get_authorization_server_url(),
        "https://tenant.eu.auth0.com/"
    );
}
