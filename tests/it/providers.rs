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

/// Microsoft Entra names an API's scopes in short form in its tokens (`scp: "files.read"`)
/// while clients request the full form (`api://<app-id>/files.read`): with `scope_prefix`
/// the resource advertises, challenges and checks the full form only.
#[tokio::test]
async fn entra_short_scopes_are_checked_in_the_advertised_form() {
    use axum::body::Body;
    use axum::routing::any;
    use http::{Request, StatusCode};
    use protected_resource::{McpScopesLayer, ProtectedResourceLayer, ResourceOwner};
    use tower::ServiceExt;

    const APP: &str = "11111111-1111-1111-1111-111111111111";
    let read = format!("api://{APP}/files.read");
    let write = format!("api://{APP}/files.write");
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(
            server
                .entry()
                .expected_audiences([APP])
                .scope_prefix(format!("api://{APP}/")),
        )
        .scopes_supported([read.as_str(), write.as_str()])
        .default_challenge_scopes([read.as_str()])
        .build()
        .unwrap();
    let tools = McpScopesLayer::new().tool(
        "save_file",
        ScopeRequirement::all([write.as_str()]).unwrap(),
    );
    let app = axum::Router::new()
        .route(
            "/mcp",
            any(|owner: ResourceOwner| async move { axum::Json(owner.scopes().to_vec()) }),
        )
        .layer(tools)
        .layer(ProtectedResourceLayer::new(auth.clone()));
    let call = |token: &str, tool: &str| {
        Request::post("/mcp")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(
                serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": tool, "arguments": {}}})
                .to_string(),
            ))
            .unwrap()
    };
    for shape in [ProviderShape::EntraId, ProviderShape::EntraIdV1] {
        let reader = server
            .token()
            .audience(APP)
            .shaped_like(shape, "client-42", &["files.read"])
            .sign();
        // The token's short scope is granted in the full form.
        let owner = auth.validate(&reader).await.unwrap();
        assert_eq!(owner.scopes(), [read.as_str()], "{shape:?}");
        let res = app
            .clone()
            .oneshot(call(&reader, "list_files"))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Vec<String>>(&body).unwrap(),
            [read.as_str()]
        );

        // A tool needing the write scope: 403 naming the full forms only.
        let res = app
            .clone()
            .oneshot(call(&reader, "save_file"))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            res.headers()["www-authenticate"],
            format!(
                "Bearer error=\"insufficient_scope\", scope=\"{write} {read}\", resource_metadata=\"{METADATA_URL}\""
            )
            .as_str()
        );

        // A token with the scope (short or already full) may call it.
        for scopes in [["files.write"], [write.as_str()]] {
            let writer = server
                .token()
                .audience(APP)
                .shaped_like(shape, "client-42", &scopes)
                .sign();
            let res = app
                .clone()
                .oneshot(call(&writer, "save_file"))
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{shape:?} {scopes:?}");
        }
    }
    // The 401 challenge and the metadata name the full form.
    let res = app
        .clone()
        .oneshot(Request::post("/mcp").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        format!("Bearer resource_metadata=\"{METADATA_URL}\", scope=\"{read}\"").as_str()
    );

    // A prefix that can not begin a scope token is refused at build time.
    let e = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry().scope_prefix("api://x y/"))
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "authorization_servers[0].scope_prefix");
}
