//! Every refusal of the authorization, token and registration endpoints, and the builder's
//! configuration errors.

use protected_resource::ConfigErrorKind;
use protected_resource::dev_auth::DevAuthorizationServer;
use serde_json::json;

use super::{VERIFIER, challenge, hidden_request, query, start};

#[tokio::test]
async fn refusals_on_the_page_and_by_redirect() {
    let dev = start(|b| b).await;
    let client = dev.public_client().await;
    let c = challenge(VERIFIER);

    // No trusted redirect: a 400 page, nobody sent anywhere.
    for params in [
        dev.request("no-such-client", &[("code_challenge", &c)]),
        dev.request(
            &client,
            &[
                ("code_challenge", &c),
                ("redirect_uri", "http://127.0.0.1/other"),
            ],
        ),
        dev.request(
            &client,
            &[
                ("code_challenge", &c),
                ("redirect_uri", "https://evil.example/callback"),
            ],
        ),
    ] {
        let (status, location, page) = dev.authorize(&params).await;
        assert_eq!((status, location), (400, None), "{params:?}");
        assert!(page.contains("Authorization failed"));
    }

    // Redirected back with the error, `state` and `iss`.
    for (extra, error) in [
        (vec![], "invalid_request"),
        (
            vec![
                ("code_challenge", c.as_str()),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            vec![("code_challenge", c.as_str()), ("scope", "mcp:tools other")],
            "invalid_scope",
        ),
        (
            vec![
                ("code_challenge", c.as_str()),
                ("resource", "http://127.0.0.1:1/elsewhere"),
            ],
            "invalid_target",
        ),
        (
            vec![("code_challenge", c.as_str()), ("response_type", "token")],
            "unsupported_response_type",
        ),
    ] {
        let params = dev.request(&client, &extra);
        let (status, location, _) = dev.authorize(&params).await;
        assert_eq!(status, 302, "{extra:?}");
        let location = location.unwrap();
        assert!(
            location.starts_with("http://localhost:51000/callback?"),
            "{location}"
        );
        let q = query(&location);
        assert_eq!(q["error"], error, "{extra:?}");
        assert_eq!(q["state"], "st&te");
        assert_eq!(q["iss"], dev.issuer);
        assert!(!q.contains_key("code"));
    }

    // Deny.
    let params = dev.request(&client, &[("code_challenge", &c)]);
    let (_, _, page) = dev.authorize(&params).await;
    let handle = hidden_request(&page);
    let (status, location, _) = dev
        .submit(&[("request", &handle), ("user", "alice"), ("deny", "1")])
        .await;
    assert_eq!(status, 303);
    let q = query(&location.unwrap());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["iss"], dev.issuer);
    // The request was answered: approving it now is refused.
    let (status, location, _) = dev
        .submit(&[("request", &handle), ("user", "alice"), ("approve", "1")])
        .await;
    assert_eq!((status, location), (400, None));
    // An unknown request handle.
    let (status, location, _) = dev
        .submit(&[("request", "forged"), ("user", "alice"), ("approve", "1")])
        .await;
    assert_eq!((status, location), (400, None));
}

#[tokio::test]
async fn token_endpoint_refusals() {
    let dev = start(|b| b).await;
    let client = dev.public_client().await;
    let c = challenge(VERIFIER);
    let params = dev.request(&client, &[("code_challenge", &c)]);

    // A wrong verifier: invalid_grant, and the code is used up.
    let code = dev.approve(&params, "alice").await;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:51000/callback"),
        (
            "code_verifier",
            "another-verifier-of-forty-three-characters-0000",
        ),
        ("client_id", client.as_str()),
    ];
    let (status, body, _) = dev.token(&form, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    form[3].1 = VERIFIER;
    let (status, body, _) = dev.token(&form, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "burnt"
    );

    // A redirect URI other than the request's.
    let code = dev.approve(&params, "alice").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:51001/callback"),
        ("code_verifier", VERIFIER),
        ("client_id", client.as_str()),
    ];
    let (status, body, _) = dev.token(&form, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // An unknown client.
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "x"),
        ("code_verifier", VERIFIER),
        ("client_id", "nobody"),
    ];
    let (status, body, www) = dev.token(&form, None).await;
    assert_eq!(
        (status, body["error"].as_str(), www),
        (401, Some("invalid_client"), None)
    );
    let (status, body, www) = dev.token(&form[..3], Some(("nobody", "secret"))).await;
    assert_eq!(
        (status, body["error"].as_str(), www.as_deref()),
        (
            401,
            Some("invalid_client"),
            Some("Basic realm=\"dev-auth\"")
        )
    );
    let (status, body, _) = dev
        .token(&[("grant_type", "password"), ("client_id", &client)], None)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn registration_refusals() {
    let dev = start(|b| b).await;
    for (metadata, error) in [
        (
            json!({"redirect_uris": ["http://app.example/cb"], "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["http://127.0.0.1/cb"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (json!(["not an object"]), "invalid_client_metadata"),
    ] {
        let (status, body) = dev.register(metadata.clone()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{metadata}"
        );
    }
    // Not JSON (a cross-site form post would be text/plain): refused.
    let res = dev
        .http
        .post(format!("{}/register", dev.issuer))
        .header("content-type", "text/plain")
        .body(r#"{"redirect_uris": ["http://127.0.0.1/cb"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Token exchange is open to public clients too (client credentials is not, above).
    let (status, body) = dev
        .register(json!({"grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"], "token_endpoint_auth_method": "none"}))
        .await;
    assert_eq!(status, 201, "{body}");
    // RFC 7591's default method is client_secret_basic: a secret is issued.
    let (status, body) = dev
        .register(json!({"redirect_uris": ["https://app.example/cb"]}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert!(body["client_secret"].is_string());
}

#[test]
fn configuration_errors_name_the_field() {
    let err = DevAuthorizationServer::builder("http://192.0.2.1:8000/dev-auth")
        .resource("http://192.0.2.1:8000/mcp")
        .build()
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.field()),
        (ConfigErrorKind::InvalidUrl, "issuer")
    );
    assert!(
        DevAuthorizationServer::builder("http://192.0.2.1:8000/dev-auth")
            .resource("http://192.0.2.1:8000/mcp")
            .dangerous_allow_non_loopback()
            .build()
            .is_ok()
    );
    for unspecified in [
        "http://0.0.0.0:8000/dev-auth",
        "http://[::]:8000/dev-auth",
        "http://a.localhost/dev-auth",
    ] {
        let err = DevAuthorizationServer::builder(unspecified)
            .resource("http://127.0.0.1:8000/mcp")
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "issuer", "{unspecified}");
    }
    let err = DevAuthorizationServer::builder("http://127.0.0.1:8000/dev-auth")
        .build()
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.field()),
        (ConfigErrorKind::Missing, "resource")
    );
    let err = DevAuthorizationServer::builder("http://127.0.0.1:8000/dev-auth")
        .resource("http://127.0.0.1:8000/mcp")
        .scopes_supported(["a b"])
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "scopes_supported");
    let err = DevAuthorizationServer::builder("http://127.0.0.1:8000/dev-auth")
        .resource("http://127.0.0.1:8000/mcp")
        .scopes_supported(["a"])
        .default_scopes(["b"])
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "default_scopes");
    let err = DevAuthorizationServer::builder("http://127.0.0.1:8000/dev-auth")
        .resource("http://127.0.0.1:8000/mcp")
        .auto_approve("")
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "auto_approve");
}
