//! Tokens shaped like those of common identity providers: `ResourceOwner` reads the scopes
//! and the client id from each shape, with the audience configuration the guide
//! (`docs/identity-providers.md`) gives for that provider.

use crate::common::*;
use protected_resource::testkit::{MockAuthorizationServer, ProviderShape};
use protected_resource::{ResourceServerAuth, ScopeRequirement};

#[tokio::test]
async fn owners_read_scopes_and_client_from_every_provider_shape() {
    let server = MockAuthorizationServer::start().await.unwrap();
    // Providers whose `aud` is an API identifier or client id, not the resource URL.
    let api_audience = "api://mcp-server";
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry().expected_audiences([CANON, api_audience]))
        .build()
        .unwrap();
    let cases = [
        (ProviderShape::WorkOsAuthKit, CANON),
        (ProviderShape::Auth0, api_audience),
        (ProviderShape::Keycloak, api_audience),
        (ProviderShape::Okta, api_audience),
        (ProviderShape::EntraId, api_audience),
        (ProviderShape::EntraIdV1, api_audience),
        (ProviderShape::Descope, CANON),
    ];
    let needs = ScopeRequirement::all(["mcp:tools", "mcp:admin"]).unwrap();
    for (shape, aud) in cases {
        let token = server
            .token()
            .audience(aud)
            .subject("user-1")
            .shaped_like(shape, "client-42", &["mcp:tools", "mcp:admin"])
            .sign();
        let owner = auth
            .validate(&token)
            .await
            .unwrap_or_else(|e| panic!("{shape:?}: {e}"));
        assert_eq!(owner.user_id(), "user-1", "{shape:?}");
        assert_eq!(owner.client_id(), Some("client-42"), "{shape:?}");
        assert!(
            owner.has_scope("mcp:admin"),
            "{shape:?}: {:?}",
            owner.scopes()
        );
        assert!(owner.satisfies(&needs), "{shape:?}");
        assert!(!owner.has_scope("mcp:other"), "{shape:?}");
    }
}

#[tokio::test]
async fn the_same_token_with_the_wrong_audience_is_refused() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(auth_for(&server));
    // An Okta-shaped token for its default API audience, at a server expecting its URL.
    let token = server
        .token()
        .audience("api://default")
        .shaped_like(ProviderShape::Okta, "client-42", &["mcp:tools"])
        .sign();
    app.assert_invalid_token(
        &token,
        "The access token audience does not include this resource",
    )
    .await;
}
