//! The per-user cache: keyed by (issuer, subject) and the whole need, so a user never gets
//! another's token, also when both have the same `sub` at different issuers; kept until
//! shortly before expiry; denials never kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use protected_resource::ResourceOwner;
use protected_resource::downstream::{
    BrokerFuture, CachedBroker, Denial, DownstreamToken, TokenBroker, TokenNeed,
};
use protected_resource::testkit::MockAuthorizationServer;

use super::{CANONICAL, auth_for, call, kind, serve, tool_app};

/// Mints `issuer|subject|provider|scopes|n` (n counts calls), valid for `lifetime`; denies
/// the provider `nope`.
struct Counting {
    calls: AtomicUsize,
    lifetime: Duration,
}

impl TokenBroker for Counting {
    fn token<'a>(&'a self, owner: &'a ResourceOwner, need: &'a TokenNeed) -> BrokerFuture<'a> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if need.get_provider() == "nope" {
                return Err(Denial::forbidden("no"));
            }
            Ok(DownstreamToken::new(format!(
                "{}|{}|{}|{}|{n}",
                owner.issuer(),
                owner.user_id(),
                need.get_provider(),
                need.get_scopes().join(",")
            ))
            .with_expires_at(SystemTime::now() + self.lifetime))
        })
    }
}

#[tokio::test]
async fn one_user_never_gets_anothers_token_even_with_the_same_sub() {
    let (a, b) = (
        MockAuthorizationServer::start().await.unwrap(),
        MockAuthorizationServer::start().await.unwrap(),
    );
    let canonical = CANONICAL;
    let auth = auth_for(&[&a, &b]);
    let broker = Arc::new(CachedBroker::new(Counting {
        calls: AtomicUsize::new(0),
        lifetime: Duration::from_secs(3600),
    }));
    let need = TokenNeed::new("github").scopes(["repo"]);
    let app = tool_app(auth.clone(), broker.clone(), need.clone());
    let served = serve(|_| app).await;
    let token = |server: &MockAuthorizationServer, sub: &str| {
        server.token().audience(canonical).subject(sub).sign()
    };

    let alice_a = call(&served.base, &token(&a, "alice")).await;
    let alice_b = call(&served.base, &token(&b, "alice")).await;
    let bob_a = call(&served.base, &token(&a, "bob")).await;
    assert_eq!(
        alice_a["secret"],
        format!("{}|alice|github|repo|0", a.issuer())
    );
    assert_eq!(
        alice_b["secret"],
        format!("{}|alice|github|repo|1", b.issuer()),
        "same sub, other issuer: its own token"
    );
    assert_eq!(bob_a["secret"], format!("{}|bob|github|repo|2", a.issuer()));
    // Cached per user: a new token of the same user gets the same downstream token.
    assert_eq!(
        call(&served.base, &token(&a, "alice")).await["secret"],
        alice_a["secret"]
    );
    assert_eq!(
        call(&served.base, &token(&b, "alice")).await["secret"],
        alice_b["secret"]
    );
    assert_eq!(broker.get_ref().calls.load(Ordering::SeqCst), 3);

    // The same user through a token with other scopes (or of another client): its own entry,
    // so a token obtained through an admin session never serves a narrower one.
    let admin = a
        .token()
        .audience(canonical)
        .subject("alice")
        .scope("mcp:tools mcp:admin")
        .sign();
    assert_eq!(
        call(&served.base, &admin).await["secret"],
        format!("{}|alice|github|repo|3", a.issuer())
    );
    let other_client = a
        .token()
        .audience(canonical)
        .subject("alice")
        .claim("client_id", "other")
        .sign();
    assert_eq!(
        call(&served.base, &other_client).await["secret"],
        format!("{}|alice|github|repo|4", a.issuer())
    );

    // Another need (other scopes) is another entry.
    let other = tool_app(
        auth.clone(),
        broker.clone(),
        TokenNeed::new("github").scopes(["repo", "user"]),
    );
    let served_other = serve(|_| other).await;
    assert_eq!(
        call(&served_other.base, &token(&a, "alice")).await["secret"],
        format!("{}|alice|github|repo,user|5", a.issuer())
    );

    // Denials are not kept: each call asks again.
    let denied = tool_app(auth, broker.clone(), TokenNeed::new("nope"));
    let served_denied = serve(|_| denied).await;
    for _ in 0..2 {
        assert_eq!(
            kind(&call(&served_denied.base, &token(&a, "alice")).await),
            Some("Forbidden")
        );
    }
    assert_eq!(broker.get_ref().calls.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn tokens_near_expiry_are_fetched_again() {
    let a = MockAuthorizationServer::start().await.unwrap();
    let canonical = CANONICAL;
    let auth = auth_for(&[&a]);
    // Tokens live 30 s: inside the default minute before expiry, so never kept.
    let broker = Arc::new(CachedBroker::new(Counting {
        calls: AtomicUsize::new(0),
        lifetime: Duration::from_secs(30),
    }));
    let app = tool_app(auth, broker.clone(), TokenNeed::new("github"));
    let served = serve(|_| app).await;
    let token = a.token().audience(canonical).subject("alice").sign();
    let first = call(&served.base, &token).await;
    let second = call(&served.base, &token).await;
    assert_ne!(first["secret"], second["secret"]);
    assert_eq!(broker.get_ref().calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn forget_drops_one_users_tokens() {
    let a = MockAuthorizationServer::start().await.unwrap();
    let canonical = CANONICAL;
    let auth = auth_for(&[&a]);
    let broker = Arc::new(CachedBroker::new(Counting {
        calls: AtomicUsize::new(0),
        lifetime: Duration::from_secs(3600),
    }));
    let forgetting = broker.clone();
    let app = axum::Router::new()
        .route(
            "/forget",
            axum::routing::post(move |owner: ResourceOwner| {
                let broker = forgetting.clone();
                async move {
                    broker.forget(&owner);
                    broker.get_ref().calls.load(Ordering::SeqCst).to_string()
                }
            }),
        )
        .layer(protected_resource::ProtectedResourceLayer::new(
            auth.clone(),
        ))
        .merge(tool_app(auth, broker.clone(), TokenNeed::new("github")));
    let served = serve(|_| app).await;
    let (alice, bob) = (
        a.token().audience(canonical).subject("alice").sign(),
        a.token().audience(canonical).subject("bob").sign(),
    );
    let alice_first = call(&served.base, &alice).await["secret"].clone();
    let bob_first = call(&served.base, &bob).await["secret"].clone();
    let res = reqwest::Client::new()
        .post(format!("{}/forget", served.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // moka runs invalidation closures lazily; reads check them at once.
    assert_ne!(
        call(&served.base, &alice).await["secret"],
        alice_first,
        "alice's token was dropped"
    );
    assert_eq!(
        call(&served.base, &bob).await["secret"],
        bob_first,
        "bob's was kept"
    );
}

/// [`Counting`], taking 200 ms per token.
struct Slow(Counting);

impl TokenBroker for Slow {
    fn token<'a>(&'a self, owner: &'a ResourceOwner, need: &'a TokenNeed) -> BrokerFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            self.0.token(owner, need).await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_of_one_user_share_one_fetch() {
    let a = MockAuthorizationServer::start().await.unwrap();
    let auth = auth_for(&[&a]);
    let broker = Arc::new(CachedBroker::new(Slow(Counting {
        calls: AtomicUsize::new(0),
        lifetime: Duration::from_secs(3600),
    })));
    let app = tool_app(auth, broker.clone(), TokenNeed::new("github"));
    let served = serve(|_| app).await;
    let alice = a.token().audience(CANONICAL).subject("alice").sign();
    let bob = a.token().audience(CANONICAL).subject("bob").sign();
    let calls = (0..10).map(|i| call(&served.base, if i % 2 == 0 { &alice } else { &bob }));
    let answers = futures_util::future::join_all(calls).await;
    // One fetch per user, however many asked at once; each user got their own token.
    assert_eq!(broker.get_ref().0.calls.load(Ordering::SeqCst), 2);
    for (i, answer) in answers.iter().enumerate() {
        let user = if i % 2 == 0 { "alice" } else { "bob" };
        assert!(
            answer["secret"]
                .as_str()
                .unwrap()
                .contains(&format!("|{user}|")),
            "{answer}"
        );
    }
}
