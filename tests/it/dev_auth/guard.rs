//! Who may reach the development authorization server, and the limits that keep one client
//! from using another's codes or refresh tokens.

use serde_json::json;

use super::{Dev, VERIFIER, challenge, code_form, hidden_request, query, start};

/// A code for `client` approved as `user`, with the default request.
async fn code_for(dev: &Dev, client: &str, extra: &[(&str, &str)]) -> String {
    let c = challenge(VERIFIER);
    let mut params = dev.request(client, &[("code_challenge", &c)]);
    params.extend_from_slice(extra);
    dev.approve(&params, "lee").await
}

#[tokio::test]
async fn cors_answers_loopback_origins_only() {
    let dev = start(|b| b).await;
    for (origin, allowed) in [
        ("http://localhost:6274", true),
        ("http://127.0.0.1:3000", true),
        ("https://evil.example", false),
        ("http://0.0.0.0:8000", false),
        ("null", false),
    ] {
        for path in ["token", "register", "jwks"] {
            let res = dev
                .http
                .request(reqwest::Method::OPTIONS, format!("{}/{path}", dev.issuer))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type")
                .send()
                .await
                .unwrap();
            let acao = res
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(acao, allowed.then(|| origin.to_owned()), "{origin} {path}");
        }
    }
    let res = dev
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server/dev-auth",
            dev.base
        ))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn requests_for_another_host_name_are_refused() {
    let dev = start(|b| b).await;
    for (host, status) in [
        ("evil.example:8000", 421),
        ("127.0.0.1.evil.example", 421),
        ("localhost:1234", 200),
        ("[::1]:9", 200),
        ("127.0.0.1", 200),
    ] {
        let res = dev
            .http
            .get(format!("{}/jwks", dev.issuer))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{host}");
    }
    // The same for the page and the token endpoint: a rebinding page can not read a handle.
    let res = dev
        .http
        .get(format!("{}/authorize?client_id=x", dev.issuer))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 421);
}

#[tokio::test]
async fn codes_and_refresh_tokens_stay_with_their_client() {
    let dev = start(|b| b).await;
    let (a, b) = (dev.public_client().await, dev.public_client().await);
    let code = code_for(&dev, &a, &[("scope", "mcp:tools offline_access")]).await;
    let (status, body, _) = dev.token(&code_form(&code, &b), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "B redeems A's code"
    );
    let (status, body, _) = dev.token(&code_form(&code, &a), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "and the code is gone"
    );

    let code = code_for(&dev, &a, &[("scope", "mcp:tools offline_access")]).await;
    let (status, body, _) = dev.token(&code_form(&code, &a), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "mcp:tools offline_access");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let (_, who) = dev.whoami(body["access_token"].as_str().unwrap()).await;
    assert_eq!(
        who["scopes"],
        json!(["mcp:tools"]),
        "offline_access is not a resource scope"
    );
    let use_as = |client| {
        [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", client),
        ]
    };
    let (status, body, _) = dev.token(&use_as(b.as_str()), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "B uses A's refresh token"
    );
    assert_eq!(
        dev.token(&use_as(a.as_str()), None).await.0,
        200,
        "A still can"
    );
}

#[tokio::test]
async fn more_token_request_refusals() {
    let dev = start(|b| b).await;
    let client = dev.public_client().await;

    // No code_verifier at all.
    let code = code_for(&dev, &client, &[]).await;
    let form: Vec<_> = code_form(&code, &client)
        .into_iter()
        .filter(|(k, _)| *k != "code_verifier")
        .collect();
    let (status, body, _) = dev.token(&form, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // A resource other than the authorized one.
    let code = code_for(&dev, &client, &[]).await;
    let mut form = code_form(&code, &client);
    form.push(("resource", "http://127.0.0.1:1/elsewhere"));
    let (status, body, _) = dev.token(&form, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );

    // offline_access for a client that did not register refresh_token: no refresh token.
    let (_, reg) = dev
        .register(json!({
            "redirect_uris": ["http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let plain = reg["client_id"].as_str().unwrap();
    let code = code_for(&dev, plain, &[("scope", "mcp:tools offline_access")]).await;
    let (status, body, _) = dev.token(&code_form(&code, plain), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none());

    // A redirect URI omitted at both steps (the client registered one).
    let c = challenge(VERIFIER);
    let params: Vec<_> = dev
        .request(plain, &[("code_challenge", &c)])
        .into_iter()
        .filter(|(k, _)| *k != "redirect_uri")
        .collect();
    let code = dev.approve(&params, "lee").await;
    let form: Vec<_> = code_form(&code, plain)
        .into_iter()
        .filter(|(k, _)| *k != "redirect_uri")
        .collect();
    assert_eq!(dev.token(&form, None).await.0, 200);
}

#[tokio::test]
async fn more_authorization_request_refusals() {
    let dev = start(|b| b).await;
    let c = challenge(VERIFIER);
    // A client that registered only client_credentials (with a redirect URI) may not use
    // the authorization endpoint.
    let (_, reg) = dev
        .register(json!({
            "redirect_uris": ["http://127.0.0.1/callback"],
            "grant_types": ["client_credentials"],
        }))
        .await;
    let service = reg["client_id"].as_str().unwrap();
    let (status, location, _) = dev
        .authorize(&dev.request(service, &[("code_challenge", &c)]))
        .await;
    assert_eq!(status, 302);
    assert_eq!(query(&location.unwrap())["error"], "unauthorized_client");

    // A state over 2 KiB: refused, not echoed.
    let client = dev.public_client().await;
    let long = "s".repeat(2049);
    let (status, location, _) = dev
        .authorize(&dev.request(&client, &[("code_challenge", &c), ("state", &long)]))
        .await;
    assert_eq!(status, 302);
    let q = query(&location.unwrap());
    assert_eq!(q["error"], "invalid_request");
    assert!(!q.contains_key("state"));

    // Over 64 scope tokens.
    let many: String = (0..65).map(|i| format!("s{i} ")).collect();
    let (status, location, _) = dev
        .authorize(&dev.request(&client, &[("code_challenge", &c), ("scope", &many)]))
        .await;
    assert_eq!(status, 302);
    assert_eq!(query(&location.unwrap())["error"], "invalid_scope");

    // Deny keeps state, gives no code.
    let params = dev.request(&client, &[("code_challenge", &c)]);
    let (_, _, page) = dev.authorize(&params).await;
    assert!(page.contains("Approving sends you back to <code>http://localhost:51000</code>"));
    let handle = hidden_request(&page);
    let (_, location, _) = dev
        .submit(&[("request", &handle), ("user", "lee"), ("deny", "1")])
        .await;
    let q = query(&location.unwrap());
    assert_eq!(q["state"], "st&te");
    assert!(!q.contains_key("code"));
}
