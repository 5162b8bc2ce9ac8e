//! The development authorization server over real HTTP on 127.0.0.1, mounted beside a
//! protected route as the example mounts it: metadata, registration, the consent page's form,
//! codes with PKCE, refresh-token rotation, client credentials, and every refusal the issue
//! names, each checked for its exact status and error.

use std::collections::HashMap;

use aws_lc_rs::digest::{SHA256, digest};
use axum::Router;
use axum::routing::any;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use protected_resource::dev_auth::DevAuthorizationServer;
use protected_resource::{
    ConfigErrorKind, ProtectedResourceLayer, ResourceOwner, ResourceServerAuth,
};
use reqwest::redirect::Policy;
use serde_json::{Value, json};

const VERIFIER: &str = "a-verifier-of-forty-three-characters-or-more-0123456789";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

struct Dev {
    base: String,
    issuer: String,
    resource: String,
    http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(
    configure: impl FnOnce(
        protected_resource::dev_auth::DevAuthorizationServerBuilder,
    ) -> protected_resource::dev_auth::DevAuthorizationServerBuilder,
) -> Dev {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{base}/dev-auth");
    let resource = format!("{base}/mcp");
    let dev = configure(
        DevAuthorizationServer::builder(&issuer)
            .resource(&resource)
            .scopes_supported(["mcp:tools", "mcp:admin"])
            .default_scopes(["mcp:tools"]),
    )
    .build()
    .unwrap();
    let auth = ResourceServerAuth::builder()
        .canonical_url(&resource)
        .authorization_server(dev.entry())
        .build()
        .unwrap();
    let protected = Router::new()
        .route(
            "/mcp",
            any(|owner: ResourceOwner| async move {
                axum::Json(json!({
                    "user_id": owner.user_id(),
                    "issuer": owner.issuer(),
                    "client_id": owner.client_id(),
                    "scopes": owner.scopes(),
                }))
            }),
        )
        .layer(ProtectedResourceLayer::new(auth));
    let app = dev.router().fallback_service(protected);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    Dev {
        base,
        issuer,
        resource,
        http,
        task,
    }
}

impl Dev {
    async fn register(&self, metadata: Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}/register", self.issuer))
            .json(&metadata)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    async fn public_client(&self) -> String {
        let (status, body) = self
            .register(json!({
                "client_name": "Test <client>",
                "redirect_uris": ["http://127.0.0.1/callback"],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
            }))
            .await;
        assert_eq!(status, 201, "{body}");
        assert!(body.get("client_secret").is_none());
        body["client_id"].as_str().unwrap().to_owned()
    }

    /// `GET /authorize` with `params`: (status, Location, body).
    async fn authorize(&self, params: &[(&str, &str)]) -> (u16, Option<String>, String) {
        let res = self
            .http
            .get(format!("{}/authorize", self.issuer))
            .query(params)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, location, res.text().await.unwrap())
    }

    async fn submit(&self, form: &[(&str, &str)]) -> (u16, Option<String>, String) {
        let res = self
            .http
            .post(format!("{}/authorize", self.issuer))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, location, res.text().await.unwrap())
    }

    async fn token(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (u16, Value, Option<String>) {
        let mut req = self.http.post(format!("{}/token", self.issuer)).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        assert_eq!(res.headers()["cache-control"], "no-store");
        let www = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, res.json().await.unwrap(), www)
    }

    async fn whoami(&self, token: &str) -> (u16, Value) {
        let res = self
            .http
            .get(format!("{}/mcp", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Authorization-request parameters for `client`, with `extra` replacing or adding.
    fn request<'a>(
        &'a self,
        client: &'a str,
        extra: &[(&'a str, &'a str)],
    ) -> Vec<(&'a str, &'a str)> {
        let mut p: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", "http://localhost:51000/callback"),
            ("code_challenge_method", "S256"),
            ("state", "st&te"),
            ("resource", &self.resource),
        ];
        for (k, v) in extra {
            p.retain(|(name, _)| name != k);
            if !v.is_empty() {
                p.push((k, v));
            }
        }
        p
    }

    /// Approves `params` on the page as `user`: the code.
    async fn approve(&self, params: &[(&str, &str)], user: &str) -> String {
        let (status, _, page) = self.authorize(params).await;
        assert_eq!(status, 200, "{page}");
        let handle = hidden_request(&page);
        let (status, location, _) = self
            .submit(&[("request", &handle), ("user", user), ("approve", "1")])
            .await;
        assert_eq!(status, 303);
        let q = query(location.as_deref().unwrap());
        assert_eq!(q["state"], "st&te");
        assert_eq!(q["iss"], self.issuer);
        q["code"].clone()
    }
}

fn hidden_request(page: &str) -> String {
    let start = page.find("name=\"request\" value=\"").unwrap() + 22;
    page[start..].split('"').next().unwrap().to_owned()
}

fn query(location: &str) -> HashMap<String, String> {
    let url = reqwest::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

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
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:51000/callback"),
        ("code_verifier", VERIFIER),
        ("client_id", client.as_str()),
    ];
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
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:51000/callback"),
        ("code_verifier", VERIFIER),
        ("client_id", client.as_str()),
    ];
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
    // RFC 7591's default method is client_secret_basic: a secret is issued.
    let (status, body) = dev
        .register(json!({"redirect_uris": ["https://app.example/cb"]}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert!(body["client_secret"].is_string());
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
    let form = [
        ("grant_type", "authorization_code"),
        ("code", q["code"].as_str()),
        ("redirect_uri", "http://localhost:51000/callback"),
        ("code_verifier", VERIFIER),
        ("client_id", client.as_str()),
    ];
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
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:51000/callback"),
        ("code_verifier", VERIFIER),
        ("client_id", good.as_str()),
    ];
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
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://localhost:51000/callback"),
        ("code_verifier", VERIFIER),
        ("client_id", client.as_str()),
    ];
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
