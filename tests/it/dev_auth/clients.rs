//! Clients named by a client ID metadata document, and token exchange.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use axum::Router;

use super::{VERIFIER, challenge, code_form, start};

/// Serves client ID metadata documents at `/{name}.json` on another loopback port.
async fn documents(docs: Vec<(&'static str, Value)>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut app = Router::new();
    for (name, mut doc) in docs {
        if doc.get("client_id") == Some(&json!("SELF")) {
            doc["client_id"] = json!(format!("{base}/{name}.json"));
        }
        app = app.route(
            &format!("/{name}.json"),
            axum::routing::get(move || async move { axum::Json(doc) }),
        );
    }
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, task)
}

#[tokio::test]
async fn a_client_id_metadata_document_names_the_client() {
    let dev = start(|b| b).await;
    let redirect = json!(["http://127.0.0.1/callback"]);
    let (docs, task) = documents(vec![
        ("good", json!({"client_id": "SELF", "client_name": "Doc client", "redirect_uris": redirect})),
        ("other", json!({"client_id": "https://elsewhere.example/c.json", "redirect_uris": redirect})),
        ("secret", json!({"client_id": "SELF", "client_secret": "x", "redirect_uris": redirect})),
        ("basic", json!({"client_id": "SELF", "token_endpoint_auth_method": "client_secret_basic", "redirect_uris": redirect})),
        ("noredirect", json!({"client_id": "SELF"})),
    ])
    .await;
    let c = challenge(VERIFIER);
    let good = format!("{docs}/good.json");
    let params = dev.request(&good, &[("code_challenge", &c)]);
    let (status, _, page) = dev.authorize(&params).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Doc client"));
    let code = dev.approve(&params, "ivan").await;
    let form = code_form(&code, &good);
    let (status, body, _) = dev.token(&form, None).await;
    assert_eq!(status, 200, "{body}");
    let (_, who) = dev.whoami(body["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (who["user_id"].as_str(), who["client_id"].as_str()),
        (Some("ivan"), Some(good.as_str()))
    );

    for name in ["other", "secret", "basic", "noredirect", "missing"] {
        let url = format!("{docs}/{name}.json");
        let (status, location, page) = dev
            .authorize(&dev.request(&url, &[("code_challenge", &c)]))
            .await;
        assert_eq!((status, location), (400, None), "{name}: {page}");
    }
    task.abort();
}

#[tokio::test]
async fn token_exchange_gives_the_same_user_a_token_for_another_resource() {
    const OTHER: &str = "http://127.0.0.1:1/other-api";
    const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
    const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
    let dev = start(|b| b.resource(OTHER)).await;
    let client = dev.public_client().await;
    let c = challenge(VERIFIER);
    let code = dev
        .approve(&dev.request(&client, &[("code_challenge", &c)]), "kim")
        .await;
    let form = code_form(&code, &client);
    let (_, body, _) = dev.token(&form, None).await;
    let subject = body["access_token"].as_str().unwrap().to_owned();

    let (status, reg) = dev
        .register(
            json!({"grant_types": [EXCHANGE], "token_endpoint_auth_method": "client_secret_basic"}),
        )
        .await;
    assert_eq!(status, 201, "{reg}");
    let (id, secret) = (
        reg["client_id"].as_str().unwrap(),
        reg["client_secret"].as_str().unwrap(),
    );
    let exchange = |extra: Vec<(&'static str, String)>| {
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", EXCHANGE.to_owned()),
            ("subject_token", subject.clone()),
            ("subject_token_type", ACCESS.to_owned()),
            ("audience", OTHER.to_owned()),
        ];
        for (k, v) in extra {
            form.retain(|(name, _)| *name != k);
            form.push((k, v));
        }
        form
    };
    let send = |form: Vec<(&'static str, String)>| {
        let dev = &dev;
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            dev.token(&pairs, Some((id, secret))).await
        }
    };
    let (status, body, _) = send(exchange(vec![])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["issued_token_type"], ACCESS);
    let token = body["access_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            claims["sub"].as_str(),
            claims["aud"].as_str(),
            claims["client_id"].as_str()
        ),
        (Some("kim"), Some(OTHER), Some(id))
    );
    assert_eq!(claims["scope"], "mcp:tools");
    let subject_claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(subject.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(
        claims["exp"].as_u64() <= subject_claims["exp"].as_u64(),
        "never outlives the subject token"
    );
    // Issued for the other resource: this one refuses it.
    assert_eq!(dev.whoami(token).await.0, 401);

    let mut forged = subject.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    for (extra, expected) in [
        (vec![("subject_token", forged)], "invalid_request"),
        (
            vec![("subject_token", "not.a.token".to_owned())],
            "invalid_request",
        ),
        (
            vec![("scope", "mcp:tools mcp:admin".to_owned())],
            "invalid_scope",
        ),
        (
            vec![("audience", "http://127.0.0.1:2/unknown".to_owned())],
            "invalid_target",
        ),
        (
            vec![(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:id_token".to_owned(),
            )],
            "invalid_request",
        ),
    ] {
        let (status, body, _) = send(exchange(extra.clone())).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(expected)),
            "{extra:?}"
        );
    }
    // A client that did not register the grant.
    let (status, body, _) = dev
        .token(
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", subject.as_str()),
                ("subject_token_type", ACCESS),
                ("client_id", client.as_str()),
            ],
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
}
