//! Connected accounts over real HTTP: a development authorization server where MCP users log
//! in (`/as`), another playing the provider (`/gh`, auto-approving, refresh tokens rotated,
//! RFC 7009 revocation), the connect pages, and a browser played by reqwest (no redirects
//! followed, the one cookie carried by hand). Each test runs on the in-memory store; the
//! `redis_*` ones run the same bodies on a real Redis (`tests/interop/run.sh` starts one and
//! runs them with `PR_TEST_REDIS_URL`).

use std::sync::Arc;
use std::time::Duration;

use protected_resource::dev_auth::DevAuthorizationServer;
use protected_resource::downstream::{
    AccountKey, ConnectedAccounts, DenialKind, Disconnection, EncryptionKey, MemoryTokenStore,
    OAuthProvider, RedisTokenStore, TokenBroker, TokenNeed, TokenStore,
};
use protected_resource::{JwksTokenValidator, ResourceOwner, ResourceServerAuth};

use super::{Served, serve};

struct Fixture {
    served: Served,
    accounts: ConnectedAccounts,
    /// Another replica sharing the store and the key.
    replica: ConnectedAccounts,
    /// The same accounts with a rotated key.
    rotated: ConnectedAccounts,
    auth: ResourceServerAuth,
    mcp: DevAuthorizationServer,
    store: Arc<dyn TokenStore>,
}

async fn fixture(
    store: Arc<dyn TokenStore>,
    key: EncryptionKey,
    refresh_before: Duration,
) -> Fixture {
    let mut out = None;
    let served = serve(|base| {
        let mcp = DevAuthorizationServer::builder(format!("{base}/as"))
            .resource(format!("{base}/mcp"))
            .build()
            .unwrap();
        let gh = DevAuthorizationServer::builder(format!("{base}/gh"))
            .resource(format!("{base}/gh-api"))
            .scopes_supported(["repo", "read:user"])
            .auto_approve("octocat")
            .build()
            .unwrap();
        let auth = ResourceServerAuth::builder()
            .canonical_url(format!("{base}/mcp"))
            .authorization_server(mcp.entry())
            .build()
            .unwrap();
        let (login_id, login_secret) = mcp
            .register_web_client("connect pages", &[&format!("{base}/connect/login")])
            .unwrap();
        let (gh_id, gh_secret) = gh
            .register_web_client("mcp server", &[&format!("{base}/connect/callback")])
            .unwrap();
        let github = OAuthProvider::builder(
            "github",
            format!("{base}/gh/authorize"),
            format!("{base}/gh/token"),
        )
        .client_secret_basic(gh_id, gh_secret)
        .revocation_endpoint(format!("{base}/gh/revoke"))
        .build()
        .unwrap();
        let login = OAuthProvider::builder(
            "login",
            format!("{base}/as/authorize"),
            format!("{base}/as/token"),
        )
        .client_secret_basic(login_id, login_secret)
        .build()
        .unwrap();
        let build = |key: EncryptionKey| {
            ConnectedAccounts::builder(format!("{base}/connect"), key, store.clone(), auth.clone())
                .provider(github.clone())
                .login(mcp.issuer(), login.clone())
                .refresh_before(refresh_before)
                .build()
                .unwrap()
        };
        let accounts = build(key.clone());
        // Another replica: same key and store, its own process-local locks.
        let replica = build(key.clone());
        // A replica after a key rotation: a new key, the old one still accepted.
        let rotated = build(EncryptionKey::random().unwrap().with_previous(&key));
        let app = mcp.router().merge(gh.router()).merge(accounts.router());
        out = Some((accounts, replica, rotated, auth, mcp));
        app
    })
    .await;
    let (accounts, replica, rotated, auth, mcp) = out.unwrap();
    Fixture {
        served,
        accounts,
        replica,
        rotated,
        auth,
        mcp,
        store,
    }
}

impl Fixture {
    async fn owner(&self, user: &str) -> ResourceOwner {
        self.auth
            .validate(&self.mcp.access_token(user, ""))
            .await
            .unwrap()
    }

    /// `user`, with their account connected through the pages (asserted).
    async fn connected(&self, user: &str) -> ResourceOwner {
        let owner = self.owner(user).await;
        let denial = self.accounts.token(&owner, &need()).await.unwrap_err();
        let (status, page) = self.browse(denial.url().unwrap(), user, Cookie::Own).await;
        assert_eq!(status, 200, "{page}");
        owner
    }

    /// Follows a connect link in a browser that logs in as `user`: the status and text of
    /// the last page, and whether the browser sent its cookie to the callback (`cookie`).
    async fn browse(&self, link: &str, user: &str, cookie: Cookie) -> (u16, String) {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let res = http.get(link).send().await.unwrap();
        if res.status() != 303 {
            return (res.status().as_u16(), res.text().await.unwrap());
        }
        let jar = res.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        assert!(
            res.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .contains("HttpOnly")
        );
        let login = location(&res);
        assert!(login.starts_with(&format!("{}/as/authorize?", self.served.base)));
        // The login page of the user's authorization server: log in as `user`.
        let page = http.get(&login).send().await.unwrap().text().await.unwrap();
        let start = page.find("name=\"request\" value=\"").unwrap() + 22;
        let handle = page[start..].split('"').next().unwrap();
        let res = http
            .post(format!("{}/as/authorize", self.served.base))
            .form(&[("request", handle), ("user", user), ("approve", "1")])
            .send()
            .await
            .unwrap();
        let back = location(&res);
        assert!(back.starts_with(&format!("{}/connect/login?", self.served.base)));
        let res = http.get(&back).header("cookie", &jar).send().await.unwrap();
        if res.status() != 303 {
            return (res.status().as_u16(), res.text().await.unwrap());
        }
        let provider = location(&res);
        assert!(provider.starts_with(&format!("{}/gh/authorize?", self.served.base)));
        assert!(provider.contains("code_challenge_method=S256"));
        let res = http.get(&provider).send().await.unwrap();
        let callback = location(&res);
        assert!(callback.starts_with(&format!("{}/connect/callback?", self.served.base)));
        let mut req = http.get(&callback);
        match cookie {
            Cookie::Own => req = req.header("cookie", &jar),
            Cookie::Other => req = req.header("cookie", "pr_connect_github=someone-elses"),
            Cookie::None => {}
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// The provider's view of a token it issued: its subject and audience.
    async fn provider_sees(&self, secret: &str) -> String {
        let base = &self.served.base;
        let v = JwksTokenValidator::builder(format!("{base}/gh"))
            .jwks_uri(format!("{base}/gh/jwks"))
            .audience(format!("{base}/gh-api"))
            .build()
            .unwrap();
        v.validate(secret).await.unwrap().user_id().to_owned()
    }
}

#[derive(Clone, Copy)]
enum Cookie {
    Own,
    Other,
    None,
}

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

fn need() -> TokenNeed {
    TokenNeed::new("github").scopes(["repo", "offline_access"])
}

async fn connect_use_refresh_disconnect(store: Arc<dyn TokenStore>) {
    let f = fixture(
        store,
        EncryptionKey::random().unwrap(),
        Duration::from_secs(60),
    )
    .await;
    let alice = f.owner("alice").await;
    let denial = f.accounts.token(&alice, &need()).await.unwrap_err();
    assert_eq!(denial.kind(), DenialKind::AuthorizationRequired);
    assert_eq!(denial.message(), "connect your github account");
    let link = denial.url().unwrap().to_owned();
    assert!(link.starts_with(&format!("{}/connect/start?link=", f.served.base)));
    // The link names nobody in clear text.
    assert!(!link.contains("alice") && !link.contains("github"));

    let (status, page) = f.browse(&link, "alice", Cookie::Own).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Your github account is connected"));
    assert!(f.accounts.is_connected(&alice, "github").await.unwrap());

    let token = f.accounts.token(&alice, &need()).await.unwrap();
    assert_eq!(f.provider_sees(token.secret()).await, "octocat");
    assert!(token.scopes().iter().any(|s| s == "repo"));
    // Fresh: the same token again, no refresh.
    let again = f.accounts.token(&alice, &need()).await.unwrap();
    assert_eq!(again.secret(), token.secret());
    // The provider refused it (a tool saw 401): the next use refreshes.
    f.accounts
        .token_rejected(&alice, "github", &token)
        .await
        .unwrap();
    let renewed = f.accounts.token(&alice, &need()).await.unwrap();
    assert_ne!(renewed.secret(), token.secret());
    assert_eq!(f.provider_sees(renewed.secret()).await, "octocat");
    let token = renewed;
    // The store holds ciphertext only.
    let sealed = f
        .store
        .load(&AccountKey::of(&alice, "github"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !sealed
            .windows(token.secret().len())
            .any(|w| w == token.secret().as_bytes())
    );
    // A wider need asks the user to connect again, with both scope sets.
    let wider = TokenNeed::new("github").scopes(["repo", "read:user", "offline_access"]);
    let denial = f.accounts.token(&alice, &wider).await.unwrap_err();
    assert_eq!(denial.kind(), DenialKind::AuthorizationRequired);

    // Disconnect: revoked at the provider and deleted.
    assert_eq!(
        f.accounts.disconnect(&alice, "github").await.unwrap(),
        Disconnection::RevokedAndDeleted
    );
    assert!(!f.accounts.is_connected(&alice, "github").await.unwrap());
    assert_eq!(
        f.accounts.disconnect(&alice, "github").await.unwrap(),
        Disconnection::NotConnected
    );
    let denial = f.accounts.token(&alice, &need()).await.unwrap_err();
    assert_eq!(denial.kind(), DenialKind::AuthorizationRequired);
}

async fn refresh_is_single_flight_and_rotates(store: Arc<dyn TokenStore>) {
    // Every token counts as expiring (the provider's last an hour): each use refreshes.
    let f = fixture(
        store,
        EncryptionKey::random().unwrap(),
        Duration::from_secs(7200),
    )
    .await;
    let alice = f.connected("alice").await;
    let first = f.accounts.token(&alice, &need()).await.unwrap();
    let second = f.accounts.token(&alice, &need()).await.unwrap();
    assert_ne!(first.secret(), second.secret(), "refreshed");
    // Eight at once: the provider rotates refresh tokens (a used one is refused), so
    // concurrent refreshes of one account would fail; one at a time, all succeed.
    let need = need();
    let calls = (0..8).map(|_| f.accounts.token(&alice, &need));
    for result in futures_util::future::join_all(calls).await {
        assert_eq!(f.provider_sees(result.unwrap().secret()).await, "octocat");
    }
    assert!(f.accounts.is_connected(&alice, "github").await.unwrap());
}

async fn replicas_refresh_one_at_a_time(store: Arc<dyn TokenStore>) {
    // Every use refreshes; the provider rotates refresh tokens and refuses a used one. Two
    // replicas (process-local locks of their own) refresh one account at once: the store's
    // lock makes them take turns, and every call gets a token.
    let f = fixture(
        store,
        EncryptionKey::random().unwrap(),
        Duration::from_secs(7200),
    )
    .await;
    let alice = f.connected("alice").await;
    let need = need();
    for _ in 0..3 {
        let calls = (0..6).map(|i| {
            let replica = if i % 2 == 0 { &f.accounts } else { &f.replica };
            replica.token(&alice, &need)
        });
        for result in futures_util::future::join_all(calls).await {
            let token = result.unwrap();
            assert_eq!(f.provider_sees(token.secret()).await, "octocat");
        }
    }
}

async fn links_connect_only_their_user(store: Arc<dyn TokenStore>) {
    let f = fixture(
        store,
        EncryptionKey::random().unwrap(),
        Duration::from_secs(60),
    )
    .await;
    let alice = f.owner("alice").await;
    let mallory = f.owner("mallory").await;
    let link = f
        .accounts
        .token(&alice, &need())
        .await
        .unwrap_err()
        .url()
        .unwrap()
        .to_owned();
    // Mallory opens Alice's link and logs in as herself: nothing is connected for anyone.
    let (status, page) = f.browse(&link, "mallory", Cookie::Own).await;
    assert_eq!(status, 403);
    assert!(page.contains("different user"), "{page}");
    assert!(!f.accounts.is_connected(&alice, "github").await.unwrap());
    assert!(!f.accounts.is_connected(&mallory, "github").await.unwrap());
    // Alice's flow whose callback arrives without her browser's cookie (a link sent to her
    // by someone else's browser): refused.
    for cookie in [Cookie::None, Cookie::Other] {
        let (status, page) = f.browse(&link, "alice", cookie).await;
        assert_eq!(status, 403, "{page}");
        assert!(page.contains("another browser"));
        assert!(!f.accounts.is_connected(&alice, "github").await.unwrap());
    }
    // A changed link, or one sealed with another key: refused before any login.
    let mut tampered = link.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (status, _) = f.browse(&tampered, "alice", Cookie::Own).await;
    assert_eq!(status, 400);
    let other = fixture(
        Arc::new(MemoryTokenStore::new(10)),
        EncryptionKey::random().unwrap(),
        Duration::from_secs(60),
    )
    .await;
    let foreign = link.replace(&f.served.base, &other.served.base);
    assert_eq!(other.browse(&foreign, "alice", Cookie::Own).await.0, 400);
    // Same subject at another issuer: not Alice's account.
    let stranger = other.owner("alice").await;
    assert_ne!(stranger.issuer(), alice.issuer());
    assert!(
        !other
            .accounts
            .is_connected(&stranger, "github")
            .await
            .unwrap()
    );
}

async fn records_are_bound_to_their_user_and_key(store: Arc<dyn TokenStore>) {
    let key = EncryptionKey::random().unwrap();
    let f = fixture(store.clone(), key.clone(), Duration::from_secs(60)).await;
    let alice = f.connected("alice").await;
    let bob = f.owner("bob").await;
    // Alice's sealed record copied under Bob's key does not open for Bob.
    let sealed = store
        .load(&AccountKey::of(&alice, "github"))
        .await
        .unwrap()
        .unwrap();
    store
        .save(&AccountKey::of(&bob, "github"), sealed)
        .await
        .unwrap();
    let denial = f.accounts.token(&bob, &need()).await.unwrap_err();
    assert_eq!(denial.kind(), DenialKind::AuthorizationRequired);
    // Rotation: the replica with the new key (the old one still accepted) opens Alice's
    // fresh record and seals it again under the new key: the old key alone no longer opens it.
    assert!(f.rotated.token(&alice, &need()).await.is_ok());
    let denial = f.accounts.token(&alice, &need()).await.unwrap_err();
    assert_eq!(denial.kind(), DenialKind::AuthorizationRequired);
    assert!(f.rotated.token(&alice, &need()).await.is_ok());
}

async fn rotation_reseals_under_the_new_key(store: Arc<dyn TokenStore>) {
    let f = fixture(
        store,
        EncryptionKey::random().unwrap(),
        Duration::from_secs(7200),
    )
    .await;
    let alice = f.connected("alice").await;
    // Every use refreshes here: the rotated replica opens the old record, refreshes and
    // seals the new one with the new key, which the old key alone does not open.
    assert!(f.rotated.token(&alice, &need()).await.is_ok());
    let denial = f.accounts.token(&alice, &need()).await.unwrap_err();
    assert_eq!(denial.kind(), DenialKind::AuthorizationRequired);
    assert!(f.rotated.token(&alice, &need()).await.is_ok());
}

macro_rules! both_stores {
    ($($name:ident => $body:ident;)*) => {
        mod memory {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$body(Arc::new(MemoryTokenStore::new(1000))).await;
            })*
        }
        mod redis {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs Redis: tests/interop/run.sh starts one and runs these"]
            async fn $name() {
                super::$body(redis_store().await).await;
            })*
        }
    };
}

/// The Redis at `PR_TEST_REDIS_URL`, under a fresh prefix per test.
async fn redis_store() -> Arc<dyn TokenStore> {
    let url = std::env::var("PR_TEST_REDIS_URL")
        .expect("PR_TEST_REDIS_URL: run these through tests/interop/run.sh");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("test:{}:{nanos}:", std::process::id());
    Arc::new(RedisTokenStore::connect(&url, prefix).await.unwrap())
}

both_stores! {
    connect_use_refresh_disconnect => connect_use_refresh_disconnect;
    refresh_is_single_flight_and_rotates => refresh_is_single_flight_and_rotates;
    links_connect_only_their_user => links_connect_only_their_user;
    records_are_bound_to_their_user_and_key => records_are_bound_to_their_user_and_key;
    rotation_reseals_under_the_new_key => rotation_reseals_under_the_new_key;
    replicas_refresh_one_at_a_time => replicas_refresh_one_at_a_time;
}
