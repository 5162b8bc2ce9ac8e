//! The development authorization server over real HTTP on 127.0.0.1, in front of a protected
//! route as the example mounts it: the flows (`flow.rs`), every refusal the issue names with
//! its exact status and error (`refusals.rs`), client ID metadata documents and token exchange
//! (`clients.rs`), and who may reach it (`guard.rs`). Shared helpers here.

mod clients;
mod flow;
mod guard;
mod refusals;

use std::collections::HashMap;

use aws_lc_rs::digest::{SHA256, digest};
use axum::Router;
use axum::routing::any;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use protected_resource::dev_auth::DevAuthorizationServer;
use protected_resource::{ProtectedResourceLayer, ResourceOwner, ResourceServerAuth};
use reqwest::redirect::Policy;
use serde_json::{Value, json};

pub(super) const VERIFIER: &str = "a-verifier-of-forty-three-characters-or-more-0123456789";

pub(super) fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

pub(super) struct Dev {
    pub(super) base: String,
    pub(super) issuer: String,
    pub(super) resource: String,
    pub(super) http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(super) async fn start(
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
    pub(super) async fn register(&self, metadata: Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}/register", self.issuer))
            .json(&metadata)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    pub(super) async fn public_client(&self) -> String {
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
    pub(super) async fn authorize(&self, params: &[(&str, &str)]) -> (u16, Option<String>, String) {
        let res = self
            .http
            .get(format!("{}/authorize", self.issuer))
            .query(params)
            .send()
            .await
            .unwrap();
        page_answer(res).await
    }

    pub(super) async fn submit(&self, form: &[(&str, &str)]) -> (u16, Option<String>, String) {
        let res = self
            .http
            .post(format!("{}/authorize", self.issuer))
            .form(form)
            .send()
            .await
            .unwrap();
        page_answer(res).await
    }

    pub(super) async fn token(
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

    pub(super) async fn whoami(&self, token: &str) -> (u16, Value) {
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
    pub(super) fn request<'a>(
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
    pub(super) async fn approve(&self, params: &[(&str, &str)], user: &str) -> String {
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

/// (status, Location, body) of an answer of the authorization endpoint.
async fn page_answer(res: reqwest::Response) -> (u16, Option<String>, String) {
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, location, res.text().await.unwrap())
}

/// The token request redeeming `code` for public `client` (the default redirect, `VERIFIER`).
pub(super) fn code_form<'a>(code: &'a str, client: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", "http://localhost:51000/callback"),
        ("code_verifier", VERIFIER),
        ("client_id", client),
    ]
}

pub(super) fn hidden_request(page: &str) -> String {
    let start = page.find("name=\"request\" value=\"").unwrap() + 22;
    page[start..].split('"').next().unwrap().to_owned()
}

pub(super) fn query(location: &str) -> HashMap<String, String> {
    let url = reqwest::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}
