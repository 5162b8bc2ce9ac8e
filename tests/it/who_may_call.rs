//! Who may call, per entry: the allowed clients (`client_id`, else `azp`, `cid`, `appid`)
//! and a maximum token age from `iat`, in code and in the environment JSON. A disallowed
//! client gets 403 `insufficient_scope` with a fixed description (the rule is not named); a
//! token too old gets 401 `invalid_token`; the inner service is never called.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{
    AccessTokenValidationOptions, ConfigErrorKind, RequiredClaim, ResourceServerAuth,
};
use serde_json::json;

use crate::common::{App, CANON, METADATA_URL};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn app_with(options: AccessTokenValidationOptions) -> (MockAuthorizationServer, App) {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry().validation_options(options))
        .build()
        .unwrap();
    (server, App::new(auth))
}

#[tokio::test]
async fn only_allowed_clients_get_in_and_others_get_a_403_that_names_no_rule() {
    let mut options = AccessTokenValidationOptions::default();
    options.allowed_clients = vec![
        "claude-desktop".into(),
        "https://app.example/client.json".into(),
    ];
    let (server, app) = app_with(options).await;
    let token =
        |claim: &str, client: &str| server.token().audience(CANON).claim(claim, client).sign();
    for (claim, client) in [
        ("client_id", "claude-desktop"),
        ("azp", "claude-desktop"),
        ("cid", "https://app.example/client.json"),
        ("appid", "claude-desktop"),
    ] {
        assert_eq!(
            app.with_token(&token(claim, client)).await.status,
            StatusCode::OK,
            "{claim}"
        );
    }
    let calls = app.calls();
    let other = server
        .token()
        .audience(CANON)
        .claim("client_id", "other")
        .claim("azp", "claude-desktop")
        .sign();
    for refused in [
        token("client_id", "other"),
        other,
        token("client_id", "Claude-Desktop"),
        server.token().audience(CANON).sign(),
    ] {
        let a = app.with_token(&refused).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
        assert_eq!(
            a.www(),
            Some(format!("Bearer error=\"insufficient_scope\", error_description=\"The access token is not allowed for this resource\", resource_metadata=\"{METADATA_URL}\"").as_str())
        );
        assert!(
            !a.body.contains("client"),
            "the rule is not named: {}",
            a.body
        );
    }
    assert_eq!(app.calls(), calls, "the inner service was not called");
}

#[tokio::test]
async fn required_claim_values_must_all_be_there() {
    let mut options = AccessTokenValidationOptions::default();
    options.required_claims = vec![
        RequiredClaim::new("realm_access.roles", "mcp-user"),
        RequiredClaim::new("tid", "tenant-1"),
    ];
    let (server, app) = app_with(options).await;
    let token = |roles: serde_json::Value, tid: &str| {
        server
            .token()
            .audience(CANON)
            .claim("realm_access", json!({ "roles": roles }))
            .claim("tid", tid)
            .sign()
    };
    assert_eq!(
        app.with_token(&token(json!(["viewer", "mcp-user"]), "tenant-1"))
            .await
            .status,
        StatusCode::OK
    );
    let calls = app.calls();
    for refused in [
        token(json!(["viewer"]), "tenant-1"),
        token(json!(["mcp-user"]), "tenant-2"),
        token(json!("mcp-user"), "tenant-2"),
        server.token().audience(CANON).sign(),
    ] {
        let a = app.with_token(&refused).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
        assert_eq!(
            a.www(),
            Some(format!("Bearer error=\"insufficient_scope\", error_description=\"The access token is not allowed for this resource\", resource_metadata=\"{METADATA_URL}\"").as_str())
        );
    }
    // A single string value counts too.
    assert_eq!(
        app.with_token(&token(json!("mcp-user"), "tenant-1"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(app.calls(), calls + 1);
}

#[tokio::test]
async fn tokens_older_than_the_maximum_age_are_refused() {
    let mut options = AccessTokenValidationOptions::default();
    options.max_token_age = Some(Duration::from_secs(60));
    let (server, app) = app_with(options).await;
    let fresh = server
        .token()
        .audience(CANON)
        .claim("iat", now() - 30)
        .sign();
    assert_eq!(app.with_token(&fresh).await.status, StatusCode::OK);
    let calls = app.calls();
    let old = server
        .token()
        .audience(CANON)
        .claim("iat", now() - 120)
        .sign();
    app.assert_invalid_token(&old, "The access token is too old")
        .await;
    let without = server.token().audience(CANON).without_claim("iat").sign();
    app.assert_invalid_token(&without, "The access token is too old")
        .await;
    assert_eq!(app.calls(), calls);
}

#[test]
fn the_environment_sets_both_and_names_bad_values() {
    let server = |options: &str| {
        format!(
            r#"[{{"issuer":"https://as.example","jwks_uri":"https://as.example/jwks","validation_options":{options}}}]"#
        )
    };
    let build = |options: &str| {
        ResourceServerAuth::builder()
            .with_env_vars([
                ("MCP_SERVER_AUTH_CANONICAL_URL".to_owned(), CANON.to_owned()),
                (
                    "MCP_SERVER_AUTH_AUTHORIZATION_SERVERS".to_owned(),
                    server(options),
                ),
            ])
            .build()
    };
    let auth = build(
        r#"{"allowed_clients":["a","b"],"max_token_age":300,"required_claims":{"groups":["x","y"],"tid":"t"}}"#,
    )
    .unwrap();
    let options = auth.authorization_servers()[0].get_validation_options();
    assert_eq!(options.allowed_clients, ["a", "b"]);
    assert_eq!(options.max_token_age, Some(Duration::from_secs(300)));
    assert_eq!(
        options.required_claims,
        [
            RequiredClaim::new("groups", "x"),
            RequiredClaim::new("groups", "y"),
            RequiredClaim::new("tid", "t"),
        ]
    );
    for (bad, field) in [
        (r#"{"max_token_age":0}"#, "validation_options.max_token_age"),
        (
            r#"{"allowed_clients":[""]}"#,
            "validation_options.allowed_clients",
        ),
    ] {
        let e = build(bad).unwrap_err();
        assert_eq!(e.kind(), ConfigErrorKind::InvalidValue);
        assert!(e.field().contains(field), "{e}");
        assert!(
            e.to_string()
                .contains("MCP_SERVER_AUTH_AUTHORIZATION_SERVERS"),
            "{e}"
        );
    }
}

/// Who may call, per tool: `McpRequirement::allowed_clients`, `required_claims` and
/// `max_token_age` in `McpScopesLayer`, beside scopes; refused calls never reach the server,
/// and `tools/list` hides what the caller may not call.
#[tokio::test]
async fn per_tool_rules_refuse_callers_with_the_exact_challenge() {
    use axum::body::Body;
    use axum::routing::any;
    use http::Request;
    use protected_resource::{
        McpRequirement, McpScopesLayer, ProtectedResourceLayer, ScopeRequirement,
    };
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::ServiceExt;

    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry())
        .scopes_supported(["mcp:tools", "mcp:admin"])
        .build()
        .unwrap();
    let tools = McpScopesLayer::new()
        .tool(
            "deploy",
            McpRequirement::from(ScopeRequirement::all(["mcp:admin"]).unwrap())
                .allowed_clients(["console"])
                .required_claims([RequiredClaim::new("realm_access.roles", "ops")]),
        )
        .tool(
            "rotate_keys",
            McpRequirement::caller().max_token_age(Duration::from_secs(60)),
        )
        .filter_lists(true);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new()
        .route(
            "/mcp",
            any(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async {
                    axum::Json(json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [
                        {"name": "deploy", "inputSchema": {"type": "object"}},
                        {"name": "rotate_keys", "inputSchema": {"type": "object"}},
                        {"name": "whoami", "inputSchema": {"type": "object"}}]}}))
                }
            }),
        )
        .layer(tools)
        .layer(ProtectedResourceLayer::new(auth));
    let send = |token: String, body: serde_json::Value| {
        let app = app.clone();
        async move {
            let res = app
                .oneshot(
                    Request::post("/mcp")
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .header("accept", "application/json, text/event-stream")
                        .body(Body::from(body.to_string()))
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = res.status();
            let www = res
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, www, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let call = |tool: &str| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": tool, "arguments": {}}})
    };
    let token = |client: &str, roles: &[&str], age: u64| {
        server
            .token()
            .audience(CANON)
            .scope("mcp:tools mcp:admin")
            .claim("client_id", client)
            .claim("realm_access", json!({"roles": roles}))
            .claim("iat", now() - age)
            .sign()
    };
    let not_allowed = format!(
        "Bearer error=\"insufficient_scope\", error_description=\"The access token is not allowed for this resource\", resource_metadata=\"{METADATA_URL}\""
    );

    // Allowed client with the role: in.
    let (status, _, _) = send(token("console", &["ops"], 0), call("deploy")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Another client, or the role missing: 403 naming no rule, the server not reached.
    for t in [token("other", &["ops"], 0), token("console", &["dev"], 0)] {
        let (status, www, body) = send(t, call("deploy")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(www.as_deref(), Some(not_allowed.as_str()));
        assert!(!body.contains("console") && !body.contains("realm_access"));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // A token older than the tool accepts: 401 "too old" (a fresh token helps).
    let (status, www, _) = send(token("any", &[], 120), call("rotate_keys")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        www.as_deref(),
        Some(
            format!(
                "Bearer error=\"invalid_token\", error_description=\"The access token is too old\", resource_metadata=\"{METADATA_URL}\""
            )
            .as_str()
        )
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let (status, _, _) = send(token("any", &[], 5), call("rotate_keys")).await;
    assert_eq!(status, StatusCode::OK);

    // tools/list hides what the caller may not call.
    let (status, _, body) = send(
        token("other", &[], 0),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rotate_keys", "whoami"]);
}
