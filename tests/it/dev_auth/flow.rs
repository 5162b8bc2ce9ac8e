//! The flows: metadata, the consent page and its form, codes, refresh tokens, client
//! credentials, auto-approve.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::{VERIFIER, challenge, code_form, query, start};

#[tokio::test]
async fn metadata_is_served_at_every_discovery_url() {
    let dev = start(|b| b).await;
    // The protected resource's own metadata (the layer's) names this server.
    let prm: Value = dev
        .http
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp",
            dev.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], dev.resource);
    assert_eq!(prm["authorization_servers"], json!([dev.issuer]));
    for url in [
        format!(
            "{}/.well-known/oauth-authorization-server/dev-auth",
            dev.base
        ),
        format!("{}/.well-known/openid-configuration/dev-auth", dev.base),
        format!("{}/dev-auth/.well-known/openid-configuration", dev.base),
    ] {
        let res = dev.http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        let m: Value = res.json().await.unwrap();
        assert_eq!(m["issuer"], dev.issuer);
        assert_eq!(
            m["authorization_endpoint"],
            format!("{}/authorize", dev.issuer)
        );
        assert_eq!(m["token_endpoint"], format!("{}/token", dev.issuer));
        assert_eq!(
            m["registration_endpoint"],
            format!("{}/register", dev.issuer)
        );
        assert_eq!(m["jwks_uri"], format!("{}/jwks", dev.issuer));
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            m["scopes_supported"],
            json!(["mcp:tools", "mcp:admin", "offline_access"])
        );
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        assert_eq!(m["client_id_metadata_document_supported"], true);
        let grants = m["grant_types_supported"].as_array().unwrap();
        for g in [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ] {
            assert!(grants.contains(&json!(g)), "{g}");
        }
    }
    let jwks: Value = dev
        .http
        .get(format!("{}/jwks", dev.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert!(jwks["keys"][0].get("d").is_none(), "no private member");
}

#[tokio::test]
async fn a_public_client_logs_in_on_the_page_and_calls_the_protected_route() {
    let dev = start(|b| b).await;
    let client = dev.public_client().await;
    let c = challenge(VERIFIER);
    let params = dev.request(&client, &[("code_challenge", &c), ("scope", "mcp:tools")]);
    let (status, _, page) = dev.authorize(&params).await;
    assert_eq!(status, 200);
    // The automation contract: a plain POST form, relative action, `user`, approve / deny.
    assert!(page.contains("<form method=\"post\" action=\"authorize\">"));
    assert!(page.contains("name=\"user\" value=\"dev-user\""));
    assert!(page.contains("name=\"approve\""));
    assert!(page.contains("name=\"deny\""));
    assert!(
        page.contains("Test &lt;client&gt;"),
        "the client name, escaped"
    );
    assert!(!page.contains("<client>"));

    let code = dev.approve(&params, "alice").await;
    let form = code_form(&code, &client);
    let (status, body, _) = dev.token(&form, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "mcp:tools");
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    let token = body["access_token"].as_str().unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "at+jwt");
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], dev.resource);
    assert_eq!(claims["iss"], dev.issuer);
    assert!(claims["jti"].is_string() && claims["iat"].is_number());
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );

    let (status, who) = dev.whoami(token).await;
    assert_eq!(status, 200);
    assert_eq!(who["user_id"], "alice");
    assert_eq!(who["issuer"], dev.issuer);
    assert_eq!(who["client_id"], client);
    assert_eq!(who["scopes"], json!(["mcp:tools"]));

    // One use.
    let (status, body, _) = dev.token(&form, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn refresh_tokens_need_offline_access_rotate_and_never_widen() {
    let dev = start(|b| b).await;
    let client = dev.public_client().await;
    let c = challenge(VERIFIER);
    let params = dev.request(
        &client,
        &[
            ("code_challenge", &c),
            ("scope", "mcp:tools offline_access"),
        ],
    );
    let code = dev.approve(&params, "carol").await;
    let form = code_form(&code, &client);
    let (status, body, _) = dev.token(&form, None).await;
    assert_eq!(status, 200, "{body}");
    let first = body["refresh_token"].as_str().unwrap().to_owned();

    // Asking for more than was granted: invalid_scope, and the refresh token still works.
    let wider = [
        ("grant_type", "refresh_token"),
        ("refresh_token", first.as_str()),
        ("scope", "mcp:tools mcp:admin"),
        ("client_id", client.as_str()),
    ];
    let (status, body, _) = dev.token(&wider, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );

    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", first.as_str()),
        ("client_id", client.as_str()),
    ];
    let (status, body, _) = dev.token(&refresh, None).await;
    assert_eq!(status, 200, "{body}");
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second, "rotated");
    let (status, who) = dev.whoami(body["access_token"].as_str().unwrap()).await;
    assert_eq!((status, who["user_id"].as_str()), (200, Some("carol")));

    // The used refresh token is gone.
    let (status, body, _) = dev.token(&refresh, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // A narrower scope is fine.
    let narrower = [
        ("grant_type", "refresh_token"),
        ("refresh_token", second.as_str()),
        ("scope", "mcp:tools"),
        ("client_id", client.as_str()),
    ];
    let (status, body, _) = dev.token(&narrower, None).await;
    assert_eq!((status, body["scope"].as_str()), (200, Some("mcp:tools")));
    assert!(body["refresh_token"].is_string());
}

#[tokio::test]
async fn rfc7009_revocation_ends_a_refresh_token_for_its_own_client_only() {
    let dev = start(|b| b).await;
    let client = dev.public_client().await;
    let other = dev.public_client().await;
    let c = challenge(VERIFIER);
    let params = dev.request(
        &client,
        &[
            ("code_challenge", &c),
            ("scope", "mcp:tools offline_access"),
        ],
    );
    let code = dev.approve(&params, "dave").await;
    let (status, body, _) = dev.token(&code_form(&code, &client), None).await;
    assert_eq!(status, 200, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let revoke = |form: Vec<(&'static str, String)>| {
        let req = dev.http.post(format!("{}/revoke", dev.issuer)).form(&form);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.text().await.unwrap())
        }
    };
    // Another client may not revoke it (RFC 7009 §2.1); unknown tokens answer 200 (§2.2).
    let (status, body) = revoke(vec![
        ("token", refresh.clone()),
        ("client_id", other.clone()),
    ])
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unauthorized_client"));
    let (status, _) = revoke(vec![
        ("token", "no-such-token".into()),
        ("client_id", client.clone()),
    ])
    .await;
    assert_eq!(status, 200);
    let (status, body) = revoke(vec![("client_id", client.clone())]).await;
    assert_eq!((status, body.contains("invalid_request")), (400, true));
    // The still-valid token, revoked by its client: refreshing with it fails from now on.
    let (status, _) = revoke(vec![
        ("token", refresh.clone()),
        ("token_type_hint", "refresh_token".into()),
        ("client_id", client.clone()),
    ])
    .await;
    assert_eq!(status, 200);
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", client.as_str()),
    ];
    let (status, body, _) = dev.token(&form, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn confidential_clients_get_client_credentials_tokens() {
    let dev = start(|b| b).await;
    let (status, body) = dev
        .register(json!({
            "client_name": "service",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["client_id"].as_str().unwrap();
    let secret = body["client_secret"].as_str().unwrap();
    assert_eq!(body["client_secret_expires_at"], 0);

    let form = [("grant_type", "client_credentials"), ("scope", "mcp:tools")];
    let (status, body, _) = dev.token(&form, Some((id, secret))).await;
    assert_eq!(status, 200, "{body}");
    let (status, who) = dev.whoami(body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(who["user_id"], id, "sub is the client");

    let (status, body, www) = dev.token(&form, Some((id, "wrong"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert_eq!(www.as_deref(), Some("Basic realm=\"dev-auth\""));
    // client_secret_post works too; two methods at once do not.
    let post = [
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
    ];
    assert_eq!(dev.token(&post, None).await.0, 200);
    let (status, body, _) = dev.token(&post, Some((id, secret))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // A public client may not use client_credentials, nor register for it.
    let (status, body) = dev
        .register(
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client_metadata"))
    );
    let public = dev.public_client().await;
    let (status, body, _) = dev
        .token(
            &[("grant_type", "client_credentials"), ("client_id", &public)],
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
}

#[tokio::test]
async fn auto_approve_skips_the_page() {
    let dev = start(|b| b.auto_approve("bot")).await;
    let client = dev.public_client().await;
    let c = challenge(VERIFIER);
    let params = dev.request(&client, &[("code_challenge", &c)]);
    let (status, location, _) = dev.authorize(&params).await;
    assert_eq!(status, 302);
    let q = query(&location.unwrap());
    let form = code_form(&q["code"], &client);
    let (status, body, _) = dev.token(&form, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["scope"], "mcp:tools", "the default scopes");
    let (_, who) = dev.whoami(body["access_token"].as_str().unwrap()).await;
    assert_eq!(who["user_id"], "bot");
    // Errors still redirect before any code is made.
    let (status, location, _) = dev.authorize(&dev.request(&client, &[])).await;
    assert_eq!(status, 302);
    assert_eq!(query(&location.unwrap())["error"], "invalid_request");
}
