//! Issuers not known in advance: an issuer pattern (`…/{tenantid}/v2.0` like Microsoft
//! Entra, `…/realms/{realm}` like Keycloak) against a local server with one issuer per
//! tenant over real HTTP: each concrete issuer discovered on its first token, keys bound to
//! the issuer that published them, the tenant claim, allow-lists, made-up tenants costing at
//! most one lookup per cooldown, configuration from code and the environment.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{AuthorizationServerEntry, ResourceServerAuth};
use serde_json::json;

/// One host, one issuer per tenant (`{base}/{tenant}/v2.0`, keys at `{base}/{tenant}/keys`,
/// and `{base}/realms/{realm}` with keys at `…/certs`); each tenant's keys are a mock's.
#[derive(Clone)]
struct MultiTenant {
    base: String,
    keys: Arc<Mutex<HashMap<String, Arc<MockAuthorizationServer>>>>,
    metadata_calls: Arc<AtomicUsize>,
    key_calls: Arc<AtomicUsize>,
}

async fn metadata(State(s): State<MultiTenant>, Path(tenant): Path<String>) -> Response {
    s.metadata_calls.fetch_add(1, Ordering::SeqCst);
    if !s.keys.lock().unwrap().contains_key(&tenant) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let issuer = format!("{}/{tenant}/v2.0", s.base);
    axum::Json(json!({"issuer": issuer, "jwks_uri": format!("{}/{tenant}/keys", s.base)}))
        .into_response()
}

async fn keys(State(s): State<MultiTenant>, Path(tenant): Path<String>) -> Response {
    s.key_calls.fetch_add(1, Ordering::SeqCst);
    let mock = s.keys.lock().unwrap().get(&tenant).cloned();
    match mock {
        Some(m) => (
            [(http::header::CONTENT_TYPE, "application/json")],
            m.jwks_json(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

impl MultiTenant {
    async fn start(tenants: &[&str]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut map = HashMap::new();
        for t in tenants {
            map.insert(
                (*t).to_owned(),
                Arc::new(MockAuthorizationServer::start().await.unwrap()),
            );
        }
        let state = Self {
            base,
            keys: Arc::new(Mutex::new(map)),
            metadata_calls: Arc::default(),
            key_calls: Arc::default(),
        };
        let app = axum::Router::new()
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(metadata),
            )
            .route("/{tenant}/keys", get(keys))
            .route("/realms/{realm}/certs", get(keys))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        state
    }

    fn issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.base)
    }

    fn pattern(&self) -> AuthorizationServerEntry {
        AuthorizationServerEntry::new(format!("{}/{{tenantid}}/v2.0", self.base))
            .authorization_server_url(format!("{}/organizations/v2.0", self.base))
            .tenant_claim("tid")
    }

    fn mock(&self, tenant: &str) -> Arc<MockAuthorizationServer> {
        self.keys.lock().unwrap()[tenant].clone()
    }

    /// A token of `tenant`'s issuer signed by `signer`'s keys, with `tid`.
    fn token(&self, tenant: &str, signer: &str, tid: Option<&str>) -> String {
        let mut t = self
            .mock(signer)
            .token()
            .claim("iss", self.issuer(tenant))
            .audience(CANON);
        if let Some(tid) = tid {
            t = t.claim("tid", tid);
        }
        t.sign()
    }

    fn calls(&self) -> (usize, usize) {
        (
            self.metadata_calls.load(Ordering::SeqCst),
            self.key_calls.load(Ordering::SeqCst),
        )
    }
}

fn auth(entry: AuthorizationServerEntry) -> ResourceServerAuth {
    ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(entry)
        .jwks_refetch_cooldown(Duration::from_secs(1))
        .build()
        .unwrap()
}

#[tokio::test]
async fn each_tenant_is_discovered_once_and_its_keys_verify_only_its_tokens() {
    let mt = MultiTenant::start(&["t1", "t2"]).await;
    let auth = auth(mt.pattern());
    // Nothing to fetch before the first token: ready.
    assert!(auth.readiness().is_ready());
    let app = App::new(auth);

    let a = app.with_token(&mt.token("t1", "t1", Some("t1"))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["issuer"], mt.issuer("t1"));
    assert_eq!(mt.calls(), (1, 1));
    // Known now: no more lookups.
    for _ in 0..3 {
        let a = app.with_token(&mt.token("t1", "t1", Some("t1"))).await;
        assert_eq!(a.status, StatusCode::OK);
    }
    assert_eq!(mt.calls(), (1, 1));

    // Another tenant, after the lookup cooldown.
    skip(Duration::from_millis(1100)).await;
    let a = app.with_token(&mt.token("t2", "t2", Some("t2"))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["issuer"], mt.issuer("t2"));
    assert_eq!(mt.calls().0, 2);

    // t1's key does not verify a token naming t2 (keys are bound to their issuer).
    app.assert_invalid_token(
        &mt.token("t2", "t1", Some("t2")),
        "The access token signing key is unknown",
    )
    .await;
    // The tenant claim must name the issuer's tenant.
    for tid in [Some("t2"), None] {
        app.assert_invalid_token(
            &mt.token("t1", "t1", tid),
            "The access token issuer is not trusted",
        )
        .await;
    }
}

#[tokio::test]
async fn made_up_tenants_cost_at_most_one_lookup_per_cooldown() {
    let mt = MultiTenant::start(&["t1"]).await;
    let app = App::new(auth(mt.pattern()));
    let signer = mt.mock("t1");
    let made_up = |n: usize| {
        signer
            .token()
            .claim("iss", mt.issuer(&format!("fake-{n}")))
            .claim("tid", format!("fake-{n}"))
            .audience(CANON)
            .sign()
    };
    // A flood of made-up tenants: one lookup (its metadata 404s), every token 503.
    for n in 0..50 {
        let a = app.with_token(&made_up(n)).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{n}: {}", a.body);
        assert!(a.headers.contains_key(http::header::RETRY_AFTER));
    }
    assert_eq!(app.calls(), 0);
    // Discovery tries the three metadata locations of an issuer with a path: one lookup.
    assert_eq!(mt.calls(), (1, 0));
    // The failed one is not looked up again within the cooldown.
    let a = app.with_token(&made_up(0)).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(mt.calls(), (1, 0));
    // A real tenant is found once the cooldown has passed.
    skip(Duration::from_millis(1100)).await;
    let a = app.with_token(&mt.token("t1", "t1", Some("t1"))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

#[tokio::test]
async fn an_allow_list_refuses_other_tenants_without_any_lookup() {
    let mt = MultiTenant::start(&["t1", "t2"]).await;
    let app = App::new(auth(mt.pattern().tenants(["t1"])));
    app.assert_invalid_token(
        &mt.token("t2", "t2", Some("t2")),
        "The access token issuer is not trusted",
    )
    .await;
    assert_eq!(mt.calls(), (0, 0));
    let a = app.with_token(&mt.token("t1", "t1", Some("t1"))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

#[tokio::test]
async fn a_jwks_uri_pattern_needs_no_metadata() {
    let mt = MultiTenant::start(&["demo"]).await;
    let entry = AuthorizationServerEntry::new(format!("{}/realms/{{realm}}", mt.base))
        .jwks_uri(format!("{}/realms/{{realm}}/certs", mt.base))
        .authorization_server_url(format!("{}/realms/demo", mt.base));
    let app = App::new(auth(entry));
    let token = mt
        .mock("demo")
        .token()
        .claim("iss", format!("{}/realms/demo", mt.base))
        .audience(CANON)
        .sign();
    let a = app.with_token(&token).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(mt.calls(), (0, 1));
}

#[tokio::test]
async fn a_shared_key_set_needs_no_lookup_and_made_up_tenants_cost_nothing() {
    // Like Entra's common keys: one jwks_uri (no placeholder) for every tenant.
    let mt = MultiTenant::start(&["t1"]).await;
    let app = App::new(auth(mt.pattern().jwks_uri(format!("{}/t1/keys", mt.base))));
    // Two tenants signed with the shared keys, at once: no metadata lookup, no cooldown.
    for tenant in ["t1", "t2", "t3"] {
        let a = app.with_token(&mt.token(tenant, "t1", Some(tenant))).await;
        assert_eq!(a.status, StatusCode::OK, "{tenant}: {}", a.body);
        assert_eq!(a.json()["issuer"], mt.issuer(tenant));
    }
    assert_eq!(mt.calls(), (0, 1));
    // Made-up tenants with a key not in the set: refused as such, no lookup, one refetch at
    // most per cooldown.
    let other = MockAuthorizationServer::start().await.unwrap();
    for n in 0..50 {
        let token = other
            .token()
            .claim("iss", mt.issuer(&format!("fake-{n}")))
            .claim("tid", format!("fake-{n}"))
            .audience(CANON)
            .sign();
        app.assert_invalid_token(&token, "The access token signing key is unknown")
            .await;
    }
    let (metadata, keys) = mt.calls();
    assert_eq!(metadata, 0);
    assert!(keys <= 2, "{keys} key fetches");
}

#[tokio::test]
async fn patterns_are_checked_at_build_and_read_from_the_environment() {
    let mt = MultiTenant::start(&["t1"]).await;
    let err = |entry: AuthorizationServerEntry| {
        ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(entry)
            .build()
            .unwrap_err()
    };
    let base = "https://login.example.com";
    for (entry, field) in [
        (
            AuthorizationServerEntry::new("https://{tenant}.example.com/"),
            "authorization_servers[0].issuer",
        ),
        (
            AuthorizationServerEntry::new(format!("{base}/{{tid}}/v2.0")),
            "authorization_servers[0].authorization_server_url",
        ),
        (
            AuthorizationServerEntry::new(base).tenants(["a"]),
            "authorization_servers[0].tenants",
        ),
        (
            AuthorizationServerEntry::new(format!("{base}/{{tid}}/v2.0"))
                .authorization_server_url(base)
                .tenants(["a/b"]),
            "authorization_servers[0].tenants",
        ),
        (
            AuthorizationServerEntry::new(format!("{base}/{{tid}}/v2.0"))
                .authorization_server_url(base)
                .jwks_uri(format!("{base}/{{other}}/keys")),
            "authorization_servers[0].jwks_uri",
        ),
        (
            AuthorizationServerEntry::new("http://login.example.com/{tid}/v2.0")
                .authorization_server_url(base),
            "authorization_servers[0].issuer",
        ),
        // A token's value never picks the host keys come from.
        (
            AuthorizationServerEntry::new(format!("{base}/{{tid}}/v2.0"))
                .authorization_server_url(base)
                .jwks_uri("https://{tid}.example.com/keys"),
            "authorization_servers[0].jwks_uri",
        ),
    ] {
        assert_eq!(err(entry).field(), field);
    }
    let twice = AuthorizationServerEntry::new(format!("{base}/{{tid}}/v2.0"))
        .authorization_server_url(base);
    let e = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_servers([twice.clone(), twice])
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "authorization_servers[1].issuer");

    // The environment: a pattern with its tenants.
    let servers = json!([{
        "issuer": format!("{}/{{tenantid}}/v2.0", mt.base),
        "authorization_server_url": format!("{}/organizations/v2.0", mt.base),
        "tenants": ["t1"], "tenant_claim": "tid", "max_tenants": 10
    }])
    .to_string();
    let auth = ResourceServerAuth::builder()
        .with_env_vars([
            ("MCP_SERVER_AUTH_CANONICAL_URL", CANON),
            ("MCP_SERVER_AUTH_AUTHORIZATION_SERVERS", servers.as_str()),
        ])
        .build()
        .unwrap();
    assert_eq!(auth.authorization_servers()[0].get_tenants(), ["t1"]);
    let app = App::new(auth);
    let a = app.with_token(&mt.token("t1", "t1", Some("t1"))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}
