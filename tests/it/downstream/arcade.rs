//! Arcade as a backend, against a local fake of its authorization API: a completed
//! authorization gives the token, a pending one "authorization required" with its URL, a
//! failed one forbidden; what the broker sent (key, requirement, user id) is checked.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use protected_resource::downstream::{ArcadeBroker, ArcadeUserId, TokenNeed};
use protected_resource::testkit::MockAuthorizationServer;
use serde_json::{Value, json};

use super::{CANONICAL, auth_for, call, kind, serve, tool_app};

#[tokio::test]
async fn arcade_authorizations_become_tokens_or_denials() {
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log = bodies.clone();
    let arcade = serve(move |_| {
        Router::new().route(
            "/v1/auth/authorize",
            post(move |headers: HeaderMap, body: axum::Json<Value>| {
                let log = log.clone();
                async move {
                    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("arc_test") {
                        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "bad key"}))).into_response();
                    }
                    log.lock().unwrap().push(body.0.clone());
                    let user = body.0["user_id"].as_str().unwrap_or_default().rsplit(' ').next().unwrap_or_default().to_owned();
                    let scopes = body.0["auth_requirement"]["oauth2"]["scopes"].clone();
                    match user.as_str() {
                        "alice" => axum::Json(json!({"id": "az_1", "status": "pending", "url": "https://arcade.example/authorize/az_1", "user_id": body.0["user_id"]})).into_response(),
                        "bob" => axum::Json(json!({"id": "az_2", "status": "completed", "context": {"token": "gh-bob"}, "scopes": scopes})).into_response(),
                        "carol" => axum::Json(json!({"id": "az_3", "status": "failed"})).into_response(),
                        _ => (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "5")], "busy").into_response(),
                    }
                }
            }),
        )
    })
    .await;
    let inbound = MockAuthorizationServer::start().await.unwrap();
    let canonical = CANONICAL;
    let auth = auth_for(&[&inbound]);
    let need = TokenNeed::new("github").scopes(["repo", "read:user"]);
    let broker = |key: &str, user_id: ArcadeUserId| {
        Arc::new(
            ArcadeBroker::builder(key)
                .base_url(&arcade.base)
                .user_id(user_id)
                .build()
                .unwrap(),
        )
    };
    let at_inbound = ArcadeUserId::SubjectAt(inbound.issuer().to_owned());
    let app = tool_app(
        auth.clone(),
        broker("arc_test", at_inbound.clone()),
        need.clone(),
    );
    let served = serve(|_| app).await;
    let token = |sub: &str| inbound.token().audience(canonical).subject(sub).sign();

    let alice = call(&served.base, &token("alice")).await;
    assert_eq!(kind(&alice), Some("AuthorizationRequired"));
    assert_eq!(alice["url"], "https://arcade.example/authorize/az_1");
    let bob = call(&served.base, &token("bob")).await;
    assert_eq!(bob["secret"], "gh-bob");
    assert_eq!(bob["scopes"], json!(["read:user", "repo"]));
    assert_eq!(
        kind(&call(&served.base, &token("carol")).await),
        Some("Forbidden")
    );
    let dave = call(&served.base, &token("dave")).await;
    assert_eq!(
        (kind(&dave), dave["retry_after"].as_u64()),
        (Some("Unavailable"), Some(5))
    );
    // A caller of another trusted issuer with the same sub: refused before Arcade is asked.
    let asked = bodies.lock().unwrap().len();
    let other = MockAuthorizationServer::start().await.unwrap();
    let both = auth_for(&[&inbound, &other]);
    let app = tool_app(
        both,
        broker(
            "arc_test",
            ArcadeUserId::SubjectAt(inbound.issuer().to_owned()),
        ),
        need.clone(),
    );
    let two = serve(|_| app).await;
    let bob_elsewhere = other.token().audience(canonical).subject("bob").sign();
    assert_eq!(
        kind(&call(&two.base, &bob_elsewhere).await),
        Some("Forbidden")
    );
    assert_eq!(bodies.lock().unwrap().len(), asked, "Arcade was not asked");
    {
        let bodies = bodies.lock().unwrap();
        assert_eq!(
            bodies[0],
            json!({
                "auth_requirement": {"provider_id": "github", "provider_type": "oauth2", "oauth2": {"scopes": ["read:user", "repo"]}},
                "user_id": "alice",
            })
        );
    }

    // The issuer-qualified user id; a wrong API key.
    let app = tool_app(
        auth.clone(),
        broker("arc_test", ArcadeUserId::IssuerAndSubject),
        need.clone(),
    );
    let qualified = serve(|_| app).await;
    call(&qualified.base, &token("alice")).await;
    let encoded: String = form_urlencoded::byte_serialize(inbound.issuer().as_bytes()).collect();
    assert_eq!(
        bodies.lock().unwrap().last().unwrap()["user_id"],
        format!("{encoded} alice")
    );
    let app = tool_app(auth, broker("arc_wrong", at_inbound), need);
    let wrong = serve(|_| app).await;
    assert_eq!(
        kind(&call(&wrong.base, &token("bob")).await),
        Some("Unavailable")
    );

    let err = ArcadeBroker::builder("").build().unwrap_err();
    assert_eq!(err.field(), "api_key");
    let err = ArcadeBroker::builder("k").build().unwrap_err();
    assert_eq!(
        err.field(),
        "user_id",
        "no default: sub alone is only safe for one issuer"
    );
    let err = ArcadeBroker::builder("k")
        .user_id(ArcadeUserId::IssuerAndSubject)
        .base_url("http://arcade.example")
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "base_url");
    let broker = ArcadeBroker::builder("arc_secret_key")
        .user_id(ArcadeUserId::IssuerAndSubject)
        .build()
        .unwrap();
    assert!(!format!("{broker:?}").contains("arc_secret_key"));
}
