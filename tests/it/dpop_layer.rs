//! DPoP through the front door (RFC 9449 §7), over real HTTP on 127.0.0.1: a DPoP-bound token
//! with its proof is accepted and the owner names the key; every proof failure answers 401
//! with the exact `DPoP error="invalid_dpop_proof"` challenge (then `Bearer`) and never calls
//! the inner service; the policy modes, nonces and the metadata fields.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::any;
use protected_resource::testkit::{DpopProof, MockAuthorizationServer, SigningKey};
use protected_resource::{
    Algorithm, AuthorizationServerEntry, DpopPolicy, ProtectedResourceLayer, ResourceOwner,
    ResourceServerAuth, SealingKey,
};
use serde_json::{Value, json};

/// A resource on 127.0.0.1 behind the layer, whose handler counts its calls.
struct Resource {
    url: String,
    metadata: String,
    calls: Arc<AtomicUsize>,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Resource {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One answer: status, every `WWW-Authenticate` value in order, `DPoP-Nonce`, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    www: Vec<String>,
    nonce: Option<String>,
    body: String,
    /// How often the inner service ran for this request.
    calls: usize,
}

impl Resource {
    async fn start(
        idp: &MockAuthorizationServer,
        entry: impl FnOnce(AuthorizationServerEntry) -> AuthorizationServerEntry,
        builder: impl FnOnce(
            protected_resource::ResourceServerAuthBuilder,
        ) -> protected_resource::ResourceServerAuthBuilder,
    ) -> Self {
        Self::start_as(idp, None, entry, builder).await
    }

    /// [`start`](Self::start) with another canonical URL than its own address (a replica
    /// behind a load balancer: the proofs name the canonical URL).
    async fn start_as(
        idp: &MockAuthorizationServer,
        canonical: Option<&str>,
        entry: impl FnOnce(AuthorizationServerEntry) -> AuthorizationServerEntry,
        builder: impl FnOnce(
            protected_resource::ResourceServerAuthBuilder,
        ) -> protected_resource::ResourceServerAuthBuilder,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let url = format!("{origin}/mcp");
        let auth = builder(
            ResourceServerAuth::builder()
                .canonical_url(canonical.unwrap_or(&url))
                .authorization_server(entry(idp.entry())),
        )
        .build()
        .unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let app = Router::new()
            .route(
                "/mcp",
                any(move |owner: ResourceOwner, headers: http::HeaderMap| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async move {
                        // `x-need-scope`: the handler requires that scope (a 403 step-up).
                        if let Some(scope) = headers.get("x-need-scope") {
                            owner.require_scopes([scope.to_str().unwrap_or("")])?;
                        }
                        Ok::<_, protected_resource::InsufficientScope>(axum::Json(json!({
                            "user_id": owner.user_id(),
                            "dpop_thumbprint": owner.dpop_thumbprint(),
                            "sender_constrained": owner.is_sender_constrained(),
                            "saw_authorization": headers.contains_key("authorization"),
                            "saw_dpop": headers.contains_key("dpop"),
                        })))
                    }
                }),
            )
            .layer(ProtectedResourceLayer::new(auth));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let public = canonical.map_or(origin.clone(), |c| c.trim_end_matches("/mcp").to_owned());
        Self {
            metadata: format!("{public}/.well-known/oauth-protected-resource/mcp"),
            url,
            calls,
            http: reqwest::Client::new(),
            server,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// POSTs to /mcp with these headers.
    async fn post(&self, headers: &[(&str, &str)]) -> Answer {
        let before = self.calls();
        let mut req = self.http.post(&self.url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = tokio::time::timeout(std::time::Duration::from_secs(30), req.send())
            .await
            .expect("answer within 30 s")
            .expect("request");
        Answer {
            status: res.status().as_u16(),
            www: res
                .headers()
                .get_all("www-authenticate")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect(),
            nonce: res
                .headers()
                .get("dpop-nonce")
                .map(|v| v.to_str().unwrap().to_owned()),
            body: res.text().await.unwrap(),
            calls: self.calls() - before,
        }
    }

    /// A DPoP request: `Authorization: DPoP <token>` and the proof.
    async fn dpop(&self, token: &str, proof: &str) -> Answer {
        self.post(&[("authorization", &format!("DPoP {token}")), ("dpop", proof)])
            .await
    }

    /// The algorithms every default entry accepts for proofs, as in `algs="…"`.
    fn algs() -> String {
        Algorithm::supported()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The exact challenges of a refused DPoP request, and no call.
    fn assert_dpop_refusal(&self, a: &Answer, error: &str, description: &str) {
        assert_eq!(a.status, 401, "{a:?}");
        assert_eq!(
            a.www,
            [
                format!(
                    r#"DPoP error="{error}", error_description="{description}", algs="{}", resource_metadata="{}""#,
                    Self::algs(),
                    self.metadata
                ),
                format!(r#"Bearer resource_metadata="{}""#, self.metadata),
            ],
            "{a:?}"
        );
        assert_eq!(a.calls, 0, "the inner service must not be called");
    }
}

/// A good proof of `key` for a POST to `url` carrying `token`.
fn proof_for(key: &SigningKey, url: &str, token: &str) -> String {
    DpopProof::new(key, "POST", url).access_token(token).sign()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn same(entry: AuthorizationServerEntry) -> AuthorizationServerEntry {
    entry
}

fn defaults(
    b: protected_resource::ResourceServerAuthBuilder,
) -> protected_resource::ResourceServerAuthBuilder {
    b
}

#[tokio::test]
async fn a_bound_token_with_its_proof_is_accepted_once_and_never_as_bearer() {
    let idp = MockAuthorizationServer::start().await.unwrap();
    let rs = Resource::start(&idp, same, defaults).await;
    let key = SigningKey::generate(Algorithm::ES256, "client");
    let token = idp.token().audience(&rs.url).dpop_bound(&key).sign();
    let proof = proof_for(&key, &rs.url, &token);

    let ok = rs.dpop(&token, &proof).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let body: Value = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(body["dpop_thumbprint"], json!(DpopProof::thumbprint(&key)));
    assert_eq!(body["sender_constrained"], json!(true));
    assert_eq!(
        body["saw_authorization"],
        json!(false),
        "no token passthrough"
    );
    assert_eq!(body["saw_dpop"], json!(false), "nor its proof");
    assert_eq!(ok.calls, 1);
    assert_eq!(ok.nonce, None, "no nonces unless switched on");

    // The same proof again: replayed.
    let again = rs.dpop(&token, &proof).await;
    rs.assert_dpop_refusal(
        &again,
        "invalid_dpop_proof",
        "The DPoP proof was already used",
    );

    // The same token as a bearer token: refused, Bearer challenge first, DPoP beside it.
    let bearer = rs
        .post(&[("authorization", &format!("Bearer {token}"))])
        .await;
    assert_eq!(bearer.status, 401);
    assert_eq!(
        bearer.www,
        [
            format!(
                r#"Bearer error="invalid_token", error_description="The access token is sender-constrained and can not be used as a bearer token", resource_metadata="{}""#,
                rs.metadata
            ),
            format!(
                r#"DPoP algs="{}", resource_metadata="{}""#,
                Resource::algs(),
                rs.metadata
            ),
        ]
    );
    assert_eq!(bearer.calls, 0);

    // Without credentials: both challenges, Bearer first.
    let none = rs.post(&[]).await;
    assert_eq!(none.status, 401);
    assert_eq!(
        none.www,
        [
            format!(r#"Bearer resource_metadata="{}""#, rs.metadata),
            format!(
                r#"DPoP algs="{}", resource_metadata="{}""#,
                Resource::algs(),
                rs.metadata
            ),
        ]
    );

    // An unbound token still works as a bearer token (policy `allowed`).
    let plain = idp.token().audience(&rs.url).sign();
    let ok = rs
        .post(&[("authorization", &format!("Bearer {plain}"))])
        .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let body: Value = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(body["dpop_thumbprint"], Value::Null);
    assert_eq!(body["sender_constrained"], json!(false));
}

#[tokio::test]
async fn every_bad_proof_is_refused_with_the_exact_challenge() {
    let idp = MockAuthorizationServer::start().await.unwrap();
    let rs = Resource::start(&idp, same, defaults).await;
    let key = SigningKey::generate(Algorithm::ES256, "client");
    let other = SigningKey::generate(Algorithm::ES256, "other");
    let token = idp.token().audience(&rs.url).dpop_bound(&key).sign();
    let good = || DpopProof::new(&key, "POST", &rs.url).access_token(&token);
    let mut private_jwk = key.public_jwk().clone();
    private_jwk["d"] = json!("AAAA");
    let other_path = rs.url.replace("/mcp", "/other");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong method",
            DpopProof::new(&key, "GET", &rs.url)
                .access_token(&token)
                .sign(),
            "The DPoP proof is for another HTTP method",
        ),
        (
            "wrong URL",
            proof_for(&key, &other_path, &token),
            "The DPoP proof is for another URL",
        ),
        (
            "stale iat",
            good().claim("iat", now() - 310).sign(),
            "The DPoP proof is too old or from the future",
        ),
        (
            "future iat",
            good().claim("iat", now() + 310).sign(),
            "The DPoP proof is too old or from the future",
        ),
        (
            "wrong ath",
            DpopProof::new(&key, "POST", &rs.url)
                .access_token("another-token")
                .sign(),
            "The DPoP proof is for another access token",
        ),
        (
            "no ath",
            DpopProof::new(&key, "POST", &rs.url).sign(),
            "The DPoP proof is for another access token",
        ),
        (
            "key not the bound one",
            proof_for(&other, &rs.url, &token),
            "The DPoP proof key is not the key the access token is bound to",
        ),
        (
            "private jwk",
            good().header("jwk", private_jwk).sign(),
            "The DPoP proof key is not a usable public key",
        ),
        (
            "alg none",
            {
                let signed = good().header("alg", "none").sign();
                let cut = signed.rfind('.').unwrap();
                format!("{}.", &signed[..cut])
            },
            "The DPoP proof signing algorithm is not allowed",
        ),
        (
            "bad signature",
            {
                let signed = good().sign();
                let other_sig = good().sign();
                let cut = signed.rfind('.').unwrap();
                format!(
                    "{}{}",
                    &signed[..cut],
                    &other_sig[other_sig.rfind('.').unwrap()..]
                )
            },
            "The DPoP proof signature is invalid",
        ),
        (
            "typ jwt",
            good().header("typ", "jwt").sign(),
            "The DPoP proof type is not dpop+jwt",
        ),
        ("not a JWT", "abc".to_owned(), "The DPoP proof is malformed"),
    ];
    for (what, proof, description) in cases {
        let a = rs.dpop(&token, &proof).await;
        assert_eq!(a.status, 401, "{what}: {a:?}");
        rs.assert_dpop_refusal(&a, "invalid_dpop_proof", description);
        assert!(!a.body.contains(&token), "{what}: the token is not echoed");
    }

    // No proof, and two proofs.
    let a = rs
        .post(&[("authorization", &format!("DPoP {token}"))])
        .await;
    rs.assert_dpop_refusal(&a, "invalid_dpop_proof", "The request has no DPoP proof");
    let (p1, p2) = (good().sign(), good().sign());
    let a = rs
        .post(&[
            ("authorization", &format!("DPoP {token}")),
            ("dpop", &p1),
            ("dpop", &p2),
        ])
        .await;
    rs.assert_dpop_refusal(
        &a,
        "invalid_dpop_proof",
        "The request has more than one DPoP proof",
    );

    // A proof without a token: no credentials (both challenges, Bearer first).
    let a = rs.post(&[("dpop", &good().sign())]).await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.www,
        [
            format!(r#"Bearer resource_metadata="{}""#, rs.metadata),
            format!(
                r#"DPoP algs="{}", resource_metadata="{}""#,
                Resource::algs(),
                rs.metadata
            ),
        ]
    );
    assert_eq!(a.calls, 0);

    // A good proof with an unbound token: the token is not what the scheme says.
    let unbound = idp.token().audience(&rs.url).sign();
    let proof = proof_for(&key, &rs.url, &unbound);
    let a = rs.dpop(&unbound, &proof).await;
    rs.assert_dpop_refusal(
        &a,
        "invalid_token",
        "The access token is not bound to a DPoP key",
    );

    // A bad token with a good proof: the token's own refusal, in the DPoP challenge.
    let expired = idp
        .token()
        .audience(&rs.url)
        .dpop_bound(&key)
        .claim("exp", now() - 3600)
        .sign();
    let proof = proof_for(&key, &rs.url, &expired);
    let a = rs.dpop(&expired, &proof).await;
    rs.assert_dpop_refusal(&a, "invalid_token", "The access token expired");

    // Refused proofs are not remembered: the good proof is still accepted afterwards.
    let a = rs.dpop(&token, &good().sign()).await;
    assert_eq!(a.status, 200, "{a:?}");
}

#[tokio::test]
async fn policies_required_and_off_and_proof_algorithms_per_entry() {
    let idp = MockAuthorizationServer::start().await.unwrap();
    let key = SigningKey::generate(Algorithm::ES256, "client");

    // Required: a bearer token is refused; the metadata says so.
    let rs = Resource::start(&idp, |e| e.dpop(DpopPolicy::Required), defaults).await;
    let plain = idp.token().audience(&rs.url).sign();
    let a = rs
        .post(&[("authorization", &format!("Bearer {plain}"))])
        .await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.www[0],
        format!(
            r#"Bearer error="invalid_token", error_description="This resource requires a DPoP-bound access token", resource_metadata="{}""#,
            rs.metadata
        )
    );
    assert_eq!(a.calls, 0);
    let meta: Value = reqwest::get(&rs.metadata)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["dpop_bound_access_tokens_required"], json!(true));
    let bound = idp.token().audience(&rs.url).dpop_bound(&key).sign();
    let proof = proof_for(&key, &rs.url, &bound);
    assert_eq!(rs.dpop(&bound, &proof).await.status, 200);
    drop(rs);

    // Off: the DPoP scheme is unknown (no DPoP challenge), bound tokens are refused, the
    // metadata does not mention DPoP.
    let rs = Resource::start(&idp, |e| e.dpop(DpopPolicy::Off), defaults).await;
    let bound = idp.token().audience(&rs.url).dpop_bound(&key).sign();
    let proof = proof_for(&key, &rs.url, &bound);
    let a = rs.dpop(&bound, &proof).await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.www,
        [format!(r#"Bearer resource_metadata="{}""#, rs.metadata)]
    );
    assert_eq!(a.calls, 0);
    let meta: Value = reqwest::get(&rs.metadata)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        meta.get("dpop_signing_alg_values_supported").is_none(),
        "{meta}"
    );
    assert!(
        meta.get("dpop_bound_access_tokens_required").is_none(),
        "{meta}"
    );
    drop(rs);

    // Allowed (default): the metadata lists the proof algorithms, not required.
    let rs = Resource::start(&idp, same, defaults).await;
    let meta: Value = reqwest::get(&rs.metadata)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["dpop_bound_access_tokens_required"], json!(false));
    assert_eq!(
        meta["dpop_signing_alg_values_supported"],
        json!(Resource::algs().split(' ').collect::<Vec<_>>())
    );
    drop(rs);

    // Proof algorithms per entry: an ES256 proof for an EdDSA-only entry.
    let rs = Resource::start(&idp, |e| e.dpop_algorithms([Algorithm::EdDSA]), defaults).await;
    let bound = idp.token().audience(&rs.url).dpop_bound(&key).sign();
    let proof = proof_for(&key, &rs.url, &bound);
    let a = rs.dpop(&bound, &proof).await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.www[0],
        format!(
            r#"DPoP error="invalid_dpop_proof", error_description="The DPoP proof signing algorithm is not allowed", algs="EdDSA", resource_metadata="{}""#,
            rs.metadata
        )
    );
    let ed = SigningKey::generate(Algorithm::EdDSA, "ed");
    let bound = idp.token().audience(&rs.url).dpop_bound(&ed).sign();
    let proof = proof_for(&ed, &rs.url, &bound);
    assert_eq!(rs.dpop(&bound, &proof).await.status, 200);
}

#[tokio::test]
async fn nonces_are_asked_for_given_and_checked() {
    let idp = MockAuthorizationServer::start().await.unwrap();
    let nonce_key = SealingKey::from_bytes(&[9; 32]).unwrap();
    let rs = Resource::start(&idp, same, |b| b.dpop_nonce_key(nonce_key.clone())).await;
    let key = SigningKey::generate(Algorithm::ES256, "client");
    let token = idp.token().audience(&rs.url).dpop_bound(&key).sign();

    // No nonce: use_dpop_nonce with a fresh nonce.
    let proof = proof_for(&key, &rs.url, &token);
    let a = rs.dpop(&token, &proof).await;
    rs.assert_dpop_refusal(
        &a,
        "use_dpop_nonce",
        "The DPoP proof must carry a fresh nonce from this resource",
    );
    let nonce = a.nonce.clone().expect("a DPoP-Nonce header");

    // With it: accepted (a fresh nonce is not needed yet).
    let proof = DpopProof::new(&key, "POST", &rs.url)
        .access_token(&token)
        .claim("nonce", nonce.as_str())
        .sign();
    let ok = rs.dpop(&token, &proof).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.nonce, None);

    // A made-up nonce, or one of another key: asked again.
    let other = Resource::start(&idp, same, |b| {
        b.dpop_nonce_key(SealingKey::from_bytes(&[8; 32]).unwrap())
    })
    .await;
    let foreign = other
        .dpop(&token, &proof_for(&key, &other.url, &token))
        .await
        .nonce
        .expect("nonce");
    for bad in [foreign.as_str(), "made-up-nonce", ""] {
        let proof = DpopProof::new(&key, "POST", &rs.url)
            .access_token(&token)
            .claim("nonce", bad)
            .sign();
        let a = rs.dpop(&token, &proof).await;
        rs.assert_dpop_refusal(
            &a,
            "use_dpop_nonce",
            "The DPoP proof must carry a fresh nonce from this resource",
        );
        assert!(a.nonce.is_some());
    }

    // A replica with the same key accepts the first one's nonce.
    let replica = Resource::start(&idp, same, |b| b.dpop_nonce_key(nonce_key)).await;
    let token = idp.token().audience(&replica.url).dpop_bound(&key).sign();
    let proof = DpopProof::new(&key, "POST", &replica.url)
        .access_token(&token)
        .claim("nonce", nonce.as_str())
        .sign();
    assert_eq!(replica.dpop(&token, &proof).await.status, 200);
}

#[test]
fn dpop_settings_from_the_environment_and_their_errors() {
    let env = |servers: &str, nonce: Option<&str>| {
        let mut vars = vec![
            (
                "MCP_SERVER_AUTH_CANONICAL_URL",
                "http://127.0.0.1:8000/mcp".to_owned(),
            ),
            ("MCP_SERVER_AUTH_AUTHORIZATION_SERVERS", servers.to_owned()),
        ];
        if let Some(n) = nonce {
            vars.push(("MCP_SERVER_AUTH_DPOP_NONCE_KEY", n.to_owned()));
        }
        ResourceServerAuth::builder().with_env_vars(vars).build()
    };
    let entry = |extra: &str| {
        format!(
            r#"[{{"issuer": "https://as.example.com", "jwks_uri": "https://as.example.com/jwks"{extra}}}]"#
        )
    };
    let auth = env(
        &entry(r#", "dpop": "required", "dpop_algorithms": ["ES256", "EdDSA"]"#),
        Some("c2l4dHktZm91ci1ieXRlcy1vZi1rZXktbWF0ZXJpYWwtZm9yLXRlc3Rpbmch"),
    )
    .unwrap();
    let e = &auth.authorization_servers()[0];
    assert_eq!(e.get_dpop(), DpopPolicy::Required);
    assert_eq!(
        e.get_dpop_algorithms(),
        [Algorithm::ES256, Algorithm::EdDSA]
    );

    let err = env(&entry(r#", "dpop": "sometimes""#), None).unwrap_err();
    assert!(err.to_string().contains("dpop"), "{err}");
    let err = env(&entry(r#", "dpop_algorithms": ["HS256"]"#), None).unwrap_err();
    assert!(err.to_string().contains("dpop_algorithms"), "{err}");
    let err = env(&entry(r#", "dpop_algorithms": []"#), None).unwrap_err();
    assert!(err.to_string().contains("dpop_algorithms"), "{err}");
    let secret = "c2hvcnQ";
    let err = env(&entry(""), Some(secret)).unwrap_err();
    assert!(
        err.to_string().contains("MCP_SERVER_AUTH_DPOP_NONCE_KEY"),
        "{err}"
    );
    assert!(!err.to_string().contains(secret), "the key is never shown");

    let build = |b: protected_resource::ResourceServerAuthBuilder| {
        b.canonical_url("http://127.0.0.1:8000/mcp")
            .authorization_server(
                AuthorizationServerEntry::new("https://as.example.com")
                    .jwks_uri("https://as.example.com/jwks"),
            )
            .build()
    };
    for (b, field) in [
        (
            ResourceServerAuth::builder().dpop_iat_window(std::time::Duration::ZERO),
            "dpop_iat_window",
        ),
        (
            ResourceServerAuth::builder().dpop_nonce_lifetime(std::time::Duration::from_secs(1)),
            "dpop_nonce_lifetime",
        ),
        (
            ResourceServerAuth::builder().dpop_replay_cache_capacity(10),
            "dpop_replay_cache_capacity",
        ),
    ] {
        let err = build(b).unwrap_err();
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_proof_sent_many_times_at_once_is_accepted_once() {
    let idp = MockAuthorizationServer::start().await.unwrap();
    let rs = Arc::new(Resource::start(&idp, same, defaults).await);
    let key = SigningKey::generate(Algorithm::ES256, "client");
    let token = idp.token().audience(&rs.url).dpop_bound(&key).sign();
    for _ in 0..5 {
        let proof = proof_for(&key, &rs.url, &token);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (rs, token, proof) = (rs.clone(), token.clone(), proof.clone());
                tokio::spawn(async move { rs.dpop(&token, &proof).await.status })
            })
            .collect();
        let mut accepted = 0;
        for t in tasks {
            match t.await.unwrap() {
                200 => accepted += 1,
                401 => {}
                other => panic!("status {other}"),
            }
        }
        assert_eq!(accepted, 1, "exactly one of the racing requests wins");
    }
}

#[tokio::test]
async fn a_full_replay_cache_refuses_instead_of_forgetting() {
    let idp = MockAuthorizationServer::start().await.unwrap();
    let rs = Resource::start(&idp, same, |b| b.dpop_replay_cache_capacity(1000)).await;
    let key = SigningKey::generate(Algorithm::ES256, "client");
    let token = idp.token().audience(&rs.url).dpop_bound(&key).sign();
    let mut accepted = Vec::new();
    let mut full = None;
    for _ in 0..3000 {
        let proof = proof_for(&key, &rs.url, &token);
        let a = rs.dpop(&token, &proof).await;
        match a.status {
            200 => accepted.push(proof),
            _ => {
                full = Some(a);
                break;
            }
        }
    }
    let a = full.expect("the set fills up within 3000 proofs");
    assert_eq!(a.status, 503, "{a:?}");
    assert!(a.www.is_empty(), "no challenge: retry later");
    assert_eq!(a.calls, 0);
    assert!(accepted.len() >= 60, "{} accepted", accepted.len());
    // Nothing accepted was forgotten: each is still a replay.
    for proof in accepted.iter().take(100) {
        let again = rs.dpop(&token, proof).await;
        assert_eq!(again.status, 401);
        assert_eq!(again.calls, 0);
    }
}

#[tokio::test]
async fn refusals_after_the_front_door_use_the_scheme_of_the_request() {
    let idp = MockAuthorizationServer::start().await.unwrap();
    let rs = Resource::start(&idp, same, defaults).await;
    let key = SigningKey::generate(Algorithm::ES256, "client");
    let token = idp
        .token()
        .audience(&rs.url)
        .scope("mcp:tools")
        .dpop_bound(&key)
        .sign();
    let proof = proof_for(&key, &rs.url, &token);
    let a = rs
        .post(&[
            ("authorization", &format!("DPoP {token}")),
            ("dpop", &proof),
            ("x-need-scope", "mcp:admin"),
        ])
        .await;
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(
        a.www,
        [format!(
            r#"DPoP error="insufficient_scope", scope="mcp:admin", resource_metadata="{}""#,
            rs.metadata
        )]
    );
    // A bearer token gets the Bearer step-up challenge.
    let plain = idp.token().audience(&rs.url).scope("mcp:tools").sign();
    let a = rs
        .post(&[
            ("authorization", &format!("Bearer {plain}")),
            ("x-need-scope", "mcp:admin"),
        ])
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.www,
        [format!(
            r#"Bearer error="insufficient_scope", scope="mcp:admin", resource_metadata="{}""#,
            rs.metadata
        )]
    );
    // Browsers may read the nonce header.
    let res = rs
        .http
        .post(&rs.url)
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("dpop-nonce"), "{exposed}");
}

#[test]
fn one_issuer_has_one_dpop_policy() {
    let entry = || {
        AuthorizationServerEntry::new("https://as.example.com")
            .jwks_uri("https://as.example.com/jwks")
    };
    let err = ResourceServerAuth::builder()
        .canonical_url("http://127.0.0.1:8000/mcp")
        .authorization_servers([
            entry().dpop(DpopPolicy::Required),
            entry().expected_audiences(["other"]),
        ])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("dpop"), "{err}");
}

#[tokio::test]
async fn an_unreachable_replay_store_refuses_dpop_requests_with_503() {
    let idp = MockAuthorizationServer::start().await.unwrap();
    // Nothing listens on port 1.
    let rs = Resource::start(&idp, same, |b| b.dpop_replay_redis("redis://127.0.0.1:1/0")).await;
    let key = SigningKey::generate(Algorithm::ES256, "client");
    let token = idp.token().audience(&rs.url).dpop_bound(&key).sign();
    let proof = proof_for(&key, &rs.url, &token);
    let a = rs.dpop(&token, &proof).await;
    assert_eq!(a.status, 503, "{a:?}");
    assert!(a.www.is_empty());
    assert_eq!(a.calls, 0);
    // Bearer tokens do not need the store.
    let plain = idp.token().audience(&rs.url).sign();
    let ok = rs
        .post(&[("authorization", &format!("Bearer {plain}"))])
        .await;
    assert_eq!(ok.status, 200);
    let err = ResourceServerAuth::builder()
        .canonical_url("http://127.0.0.1:8000/mcp")
        .authorization_server(idp.entry())
        .dpop_replay_redis("http://secret@127.0.0.1/")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("dpop_replay_redis"), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
}

/// Two replicas sharing a real Redis (`PR_TEST_REDIS_URL`; `tests/interop/run.sh` starts one):
/// a proof one accepted is refused by the other, and racing requests across both are
/// accepted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Redis server: PR_TEST_REDIS_URL (run by tests/interop/run.sh)"]
async fn redis_replicas_share_the_replay_check() {
    let url = std::env::var("PR_TEST_REDIS_URL").expect("PR_TEST_REDIS_URL");
    let idp = MockAuthorizationServer::start().await.unwrap();
    let canonical = "http://127.0.0.1:9/mcp";
    let shared = |b: protected_resource::ResourceServerAuthBuilder| b.dpop_replay_redis(&url);
    let a = Arc::new(Resource::start_as(&idp, Some(canonical), same, shared).await);
    let b = Arc::new(Resource::start_as(&idp, Some(canonical), same, shared).await);
    let key = SigningKey::generate(Algorithm::ES256, "client");
    let token = idp.token().audience(canonical).dpop_bound(&key).sign();
    let proof = || proof_for(&key, canonical, &token);
    let p = proof();
    assert_eq!(a.dpop(&token, &p).await.status, 200);
    let again = b.dpop(&token, &p).await;
    assert_eq!(again.status, 401, "{again:?}");
    assert!(
        again.www[0].contains("The DPoP proof was already used"),
        "{again:?}"
    );
    assert_eq!(again.calls, 0);
    for _ in 0..3 {
        let p = proof();
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let rs = if i % 2 == 0 { a.clone() } else { b.clone() };
                let (token, p) = (token.clone(), p.clone());
                tokio::spawn(async move { rs.dpop(&token, &p).await.status })
            })
            .collect();
        let mut accepted = 0;
        for t in tasks {
            if t.await.unwrap() == 200 {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 1, "one request wins across both replicas");
    }
}

#[tokio::test]
async fn a_nonce_past_half_its_life_is_renewed_on_success() {
    let idp = MockAuthorizationServer::start().await.unwrap();
    let rs = Resource::start(&idp, same, |b| {
        b.dpop_nonce_key(SealingKey::from_bytes(&[7; 32]).unwrap())
            .dpop_nonce_lifetime(std::time::Duration::from_secs(10))
    })
    .await;
    let key = SigningKey::generate(Algorithm::ES256, "client");
    let token = idp.token().audience(&rs.url).dpop_bound(&key).sign();
    let first = rs.dpop(&token, &proof_for(&key, &rs.url, &token)).await;
    let nonce = first.nonce.expect("use_dpop_nonce hands out a nonce");
    let with_nonce = || {
        DpopProof::new(&key, "POST", &rs.url)
            .access_token(&token)
            .claim("nonce", nonce.as_str())
            .sign()
    };
    let fresh = rs.dpop(&token, &with_nonce()).await;
    assert_eq!(fresh.status, 200);
    assert_eq!(fresh.nonce, None, "a young nonce is not renewed");
    // Past half of its 10 s life (whole seconds: wait 7 s).
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    let old = rs.dpop(&token, &with_nonce()).await;
    assert_eq!(old.status, 200, "{old:?}");
    let renewed = old.nonce.expect("a fresh nonce on the answer");
    assert_ne!(renewed, nonce);
    let proof = DpopProof::new(&key, "POST", &rs.url)
        .access_token(&token)
        .claim("nonce", renewed.as_str())
        .sign();
    assert_eq!(rs.dpop(&token, &proof).await.status, 200);
}
