//! Key-set cache policy over real HTTP, with time driven by tokio's paused clock: lifetimes
//! from Cache-Control, refresh ahead of expiry, conditional requests, stale-if-error,
//! backoff, remembered unknown kids, warm-up, statistics, and background tasks stopping.
//!
//! Time is moved with `skip`, which pauses tokio's clock, advances it and resumes it, so no
//! test sleeps through a TTL, and network I/O only ever happens on a running clock.

use std::time::Duration;

use crate::common::*;
use futures_util::future::join_all;
use http::StatusCode;
use protected_resource::testkit::{JwksBehavior, MockAuthorizationServer, unsigned_token};
use protected_resource::{ResourceServerAuth, ResourceServerAuthBuilder};
use serde_json::json;

fn builder(server: &MockAuthorizationServer) -> ResourceServerAuthBuilder {
    ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(server.entry())
        .jwks_fetch_timeout(Duration::from_millis(500))
}

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn lifetime_comes_from_cache_control_within_bounds() {
    let server = MockAuthorizationServer::start().await.unwrap();
    server.set_jwks_cache_control(Some("public, max-age=600"));
    let auth = builder(&server).build().unwrap();
    let app = App::new(auth.clone());
    let token = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    assert_eq!(server.jwks_requests(), 1);

    // 600 s lifetime, refresh 60 s before: nothing at 530 s.
    skip(Duration::from_secs(530)).await;
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    assert_eq!(server.jwks_requests(), 1);

    // At 545 s a request is served at once and a background refresh starts; the server's
    // ETag makes it a conditional request answered 304.
    skip(Duration::from_secs(15)).await;
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    eventually("background refresh", || server.jwks_requests() == 2).await;
    eventually("304", || server.jwks_not_modified() == 1).await;
    eventually("stats", || auth.key_set_stats()[0].not_modified == 1).await;

    // max-age below the minimum bound is raised to one minute.
    server.set_jwks_cache_control(Some("max-age=1"));
    skip(Duration::from_secs(700)).await; // past expiry: the next request waits for a fetch
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    assert_eq!(server.jwks_requests(), 3);
    skip(Duration::from_secs(40)).await;
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    assert_eq!(
        server.jwks_requests(),
        3,
        "clamped to 60 s, still fresh at 40 s"
    );

    // no-store counts as zero, so also one minute; max-age above the maximum bound is cut.
    let auth = builder(&server)
        .jwks_cache_ttl_bounds(Duration::from_secs(30), Duration::from_secs(120))
        .build()
        .unwrap();
    server.set_jwks_cache_control(Some("max-age=86400"));
    let app = App::new(auth);
    let before = server.jwks_requests();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    skip(Duration::from_secs(125)).await;
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    assert_eq!(server.jwks_requests(), before + 2, "expired at 120 s");
}

#[tokio::test]
async fn without_headers_the_configured_ttl_applies() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(builder(&server).build().unwrap());
    let token = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    skip(50 * MIN).await;
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    assert_eq!(server.jwks_requests(), 1, "fresh for an hour by default");
    skip(11 * MIN).await;
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    assert_eq!(server.jwks_requests(), 2);
}

#[tokio::test]
async fn cache_hits_never_wait_on_a_refresh_in_flight() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = builder(&server)
        .jwks_fetch_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let app = App::new(auth.clone());
    let token = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);

    // The refresh that starts in the refresh window hangs; requests keep being served at once.
    server.set_jwks_behavior(JwksBehavior::Hang);
    skip(55 * MIN).await;
    let started = std::time::Instant::now();
    for _ in 0..50 {
        assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    }
    eventually("refresh started", || server.jwks_requests() == 2).await;
    for _ in 0..50 {
        assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "hits waited on the hanging refresh: {:?}",
        started.elapsed()
    );
    assert_eq!(
        server.jwks_requests(),
        2,
        "one background refresh at a time"
    );
    let stats = &auth.key_set_stats()[0];
    assert_eq!(stats.hits, 100);
    assert_eq!(stats.misses, 1);
}

#[tokio::test]
async fn failed_refreshes_serve_the_last_good_keys_then_503_after_the_window() {
    for behavior in [
        JwksBehavior::Status(500),
        JwksBehavior::Garbage,
        JwksBehavior::Hang,
        JwksBehavior::Body(vec![b' '; 5 * 1024 * 1024]),
        JwksBehavior::Redirect("http://127.0.0.1:1/jwks".into()),
        JwksBehavior::Body(br#"{"keys":"not a list"}"#.to_vec()),
    ] {
        let server = MockAuthorizationServer::start().await.unwrap();
        let auth = builder(&server).build().unwrap();
        let app = App::new(auth.clone());
        let token = server.token().audience(CANON).sign();
        assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
        server.set_jwks_behavior(behavior.clone());

        // Past expiry: the request waits for the refetch, which fails; the old keys serve.
        skip(HOUR + Duration::from_secs(1)).await;
        let a = app.with_token(&token).await;
        assert_eq!(a.status, StatusCode::OK, "{behavior:?}: {}", a.body);
        assert_eq!(server.jwks_requests(), 2, "{behavior:?}");
        let stats = &auth.key_set_stats()[0];
        assert!(stats.stale, "{behavior:?}");
        assert_eq!(stats.consecutive_failures, 1, "{behavior:?}");
        assert!(stats.last_error.is_some(), "{behavior:?}");

        // While the backoff runs, stale keys serve without network.
        for _ in 0..20 {
            assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
        }
        assert_eq!(server.jwks_requests(), 2, "{behavior:?}");
        assert_eq!(auth.key_set_stats()[0].stale_hits, 20, "{behavior:?}");

        // 24 h past expiry the old keys are no longer trusted: 503 with Retry-After.
        skip(24 * HOUR).await;
        let calls = app.calls();
        let a = app.with_token(&token).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{behavior:?}");
        assert!(a.www().is_none());
        let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=300).contains(&retry), "{behavior:?}: {retry}");
        assert_eq!(app.calls(), calls);
        assert_eq!(server.jwks_requests(), 3, "{behavior:?}");

        // Recovery: after the backoff, keys are fetched and accepted again.
        server.set_jwks_behavior(JwksBehavior::Normal);
        skip(Duration::from_secs(retry)).await;
        assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
        assert_eq!(server.jwks_requests(), 4, "{behavior:?}");
        assert_eq!(auth.key_set_stats()[0].consecutive_failures, 0);
    }
}

#[tokio::test]
async fn stale_if_error_is_configurable() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(
        builder(&server)
            .jwks_stale_if_error(Duration::ZERO)
            .build()
            .unwrap(),
    );
    let token = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    server.set_jwks_behavior(JwksBehavior::Status(503));
    skip(HOUR + Duration::from_secs(1)).await;
    let a = app.with_token(&token).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.jwks_requests(), 2);
}

#[tokio::test]
async fn retries_back_off_exponentially_with_jitter() {
    let server = MockAuthorizationServer::start().await.unwrap();
    server.set_jwks_behavior(JwksBehavior::Status(500));
    let app = App::new(builder(&server).build().unwrap());
    let token = server.token().audience(CANON).sign();
    let s = Duration::from_secs;

    // Cold failures: 503 at once; the n-th retry waits cooldown·2^(n-1)·[0.5, 1], at least
    // the 5 s cooldown.
    let mut fetches = 0;
    for (n, least) in [(1, s(5)), (2, s(5)), (3, s(10)), (4, s(20)), (5, s(40))] {
        let a = app.with_token(&token).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
        fetches += 1;
        assert_eq!(server.jwks_requests(), fetches, "attempt {n}");
        let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(
            retry >= least.as_secs() && retry <= 2 * least.as_secs(),
            "attempt {n}: Retry-After {retry}"
        );
        // Just before the announced time: no network.
        skip(least - Duration::from_millis(100)).await;
        assert_eq!(
            app.with_token(&token).await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(server.jwks_requests(), fetches, "attempt {n}: too early");
        skip(Duration::from_secs(retry) - least + Duration::from_millis(100)).await;
    }
    server.set_jwks_behavior(JwksBehavior::Normal);
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    assert_eq!(server.jwks_requests(), fetches + 1);
}

#[tokio::test]
async fn removed_key_stops_verifying_after_the_next_refresh() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let first = server.kids()[0].clone();
    let app = App::new(builder(&server).build().unwrap());
    let old = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&old).await.status, StatusCode::OK);
    let new_kid = server.add_key(protected_resource::Algorithm::RS256);
    server.remove_key(&first);
    // Until the refresh, the cached set still has the old key.
    skip(30 * MIN).await;
    assert_eq!(app.with_token(&old).await.status, StatusCode::OK);
    skip(31 * MIN).await;
    app.assert_invalid_token(&old, "The access token signing key is unknown")
        .await;
    assert_eq!(server.jwks_requests(), 2);
    let new = server
        .token()
        .key_id(&server, &new_kid)
        .audience(CANON)
        .sign();
    assert_eq!(app.with_token(&new).await.status, StatusCode::OK);
    assert_eq!(server.jwks_requests(), 2);
}

#[tokio::test]
async fn thousand_concurrent_cold_requests_cause_one_fetch() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = builder(&server).build().unwrap();
    let app = App::new(auth.clone());
    let token = server.token().audience(CANON).sign();
    let answers = join_all((0..1000).map(|_| app.with_token(&token))).await;
    assert!(answers.iter().all(|a| a.status == StatusCode::OK));
    assert_eq!(app.calls(), 1000);
    assert_eq!(server.jwks_requests(), 1);
    let stats = &auth.key_set_stats()[0];
    assert_eq!(stats.fetches, 1);
    assert_eq!(stats.hits + stats.misses, 1000);
}

#[tokio::test]
async fn ten_thousand_random_kids_cost_at_most_one_fetch_per_cooldown() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = builder(&server).build().unwrap();
    let app = App::new(auth.clone());
    let good = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&good).await.status, StatusCode::OK);
    let claims = json!({"iss": server.issuer(), "sub": "x", "aud": CANON, "exp": 4_000_000_000u64});
    // 10,000 kids over 20 simulated seconds (cooldown 5 s): at most 4 refetches.
    for second in 0..20u32 {
        let tokens: Vec<String> = (0..500u32)
            .map(|i| {
                unsigned_token(
                    &json!({"alg": "RS256", "kid": format!("random-{second}-{i}")}),
                    &claims,
                    "c2ln",
                )
            })
            .collect();
        for chunk in tokens.chunks(250) {
            let answers = join_all(chunk.iter().map(|t| app.with_token(t))).await;
            for a in answers {
                assert_eq!(a.status, StatusCode::UNAUTHORIZED);
                assert!(
                    a.www()
                        .unwrap()
                        .contains("The access token signing key is unknown")
                );
            }
        }
        skip(Duration::from_secs(1)).await;
    }
    let refetches = server.jwks_requests() - 1;
    assert!(refetches <= 4, "{refetches} refetches in 20 s");
    assert!(
        refetches >= 3,
        "a refetch is allowed once per cooldown: {refetches}"
    );
    let stats = &auth.key_set_stats()[0];
    assert_eq!(stats.unknown_kid_refetches as usize, refetches);
    assert_eq!(stats.unknown_kid_rejections, 10_000);
    assert_eq!(app.calls(), 1);
    // The valid token was never disturbed.
    assert_eq!(app.with_token(&good).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_kid_still_unknown_after_a_refetch_is_remembered() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = builder(&server).build().unwrap();
    let app = App::new(auth.clone());
    let good = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&good).await.status, StatusCode::OK);
    let claims = json!({"iss": server.issuer(), "sub": "x", "aud": CANON, "exp": 4_000_000_000u64});
    let bogus = unsigned_token(&json!({"alg": "RS256", "kid": "bogus"}), &claims, "c2ln");
    skip(Duration::from_secs(6)).await;
    app.assert_invalid_token(&bogus, "The access token signing key is unknown")
        .await;
    assert_eq!(server.jwks_requests(), 2, "first sight: one refetch");
    // Long after the cooldown, the same kid costs nothing while the key set is unchanged.
    for _ in 0..5 {
        skip(Duration::from_secs(30)).await;
        app.assert_invalid_token(&bogus, "The access token signing key is unknown")
            .await;
    }
    assert_eq!(server.jwks_requests(), 2);
    // A kid that appears upstream later is found by the next refetch another kid causes.
    let added = server.add_key(protected_resource::Algorithm::RS256);
    let other = unsigned_token(&json!({"alg": "RS256", "kid": "other"}), &claims, "c2ln");
    app.assert_invalid_token(&other, "The access token signing key is unknown")
        .await;
    assert_eq!(server.jwks_requests(), 3);
    let t = server
        .token()
        .key_id(&server, &added)
        .audience(CANON)
        .sign();
    assert_eq!(app.with_token(&t).await.status, StatusCode::OK);
}

#[tokio::test]
async fn rotation_with_overlap_accepts_old_and_new_within_the_cooldown() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(builder(&server).build().unwrap());
    let old = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&old).await.status, StatusCode::OK);
    let new_kid = server.add_key(protected_resource::Algorithm::RS256);
    let new = server
        .token()
        .key_id(&server, &new_kid)
        .audience(CANON)
        .sign();
    // Within the cooldown of the cold fetch, the new kid is refused without network.
    app.assert_invalid_token(&new, "The access token signing key is unknown")
        .await;
    assert_eq!(server.jwks_requests(), 1);
    skip(Duration::from_secs(5)).await;
    assert_eq!(app.with_token(&new).await.status, StatusCode::OK);
    assert_eq!(server.jwks_requests(), 2);
    assert_eq!(app.with_token(&old).await.status, StatusCode::OK);
    assert_eq!(server.jwks_requests(), 2);
}

#[tokio::test]
async fn building_fetches_nothing_and_warm_up_fetches_everything() {
    let a = MockAuthorizationServer::start().await.unwrap();
    let b = MockAuthorizationServer::start().await.unwrap();
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_server(a.entry())
        .authorization_server(b.discovery_entry())
        .build()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        a.jwks_requests() + b.jwks_requests(),
        0,
        "non-blocking default"
    );
    auth.warm_up(Duration::from_secs(5)).await.unwrap();
    assert_eq!((a.jwks_requests(), b.jwks_requests()), (1, 1));
    assert_eq!(b.metadata_requests(), 1);
    let app = App::new(auth.clone());
    for s in [&a, &b] {
        let t = s.token().audience(CANON).sign();
        assert_eq!(app.with_token(&t).await.status, StatusCode::OK);
    }
    assert_eq!((a.jwks_requests(), b.jwks_requests()), (1, 1));
    let stats = auth.key_set_stats();
    assert_eq!(stats.len(), 2);
    assert_eq!(stats[0].issuers, [a.issuer()]);
    assert_eq!(stats[0].jwks_uri.as_deref(), Some(a.jwks_uri().as_str()));
    assert!(!stats[0].discovered);
    assert_eq!(stats[1].jwks_uri.as_deref(), Some(b.jwks_uri().as_str()));
    assert!(stats[1].discovered);
    assert!(
        stats
            .iter()
            .all(|s| s.keys == 1 && s.fetches == 1 && s.hits == 1)
    );
    assert!(stats.iter().all(|s| s.age.is_some_and(|a| a < HOUR)));
}

#[tokio::test]
async fn warm_up_reports_failed_issuers_within_its_deadline() {
    let good = MockAuthorizationServer::start().await.unwrap();
    let broken = MockAuthorizationServer::start().await.unwrap();
    let hanging = MockAuthorizationServer::start().await.unwrap();
    broken.set_jwks_behavior(JwksBehavior::Status(500));
    hanging.set_jwks_behavior(JwksBehavior::Hang);
    let auth = ResourceServerAuth::builder()
        .canonical_url(CANON)
        .authorization_servers([good.entry(), broken.entry(), hanging.entry()])
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = auth.warm_up(Duration::from_millis(300)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    let failed: Vec<&str> = err
        .failures()
        .iter()
        .map(|f| f.issuers[0].as_str())
        .collect();
    assert_eq!(failed, [broken.issuer(), hanging.issuer()]);
    assert!(err.failures()[0].reason.contains("500"), "{err}");
    assert!(err.failures()[1].reason.contains("within"), "{err}");
    assert!(err.to_string().contains(broken.issuer()));
    // The good issuer is served, the broken one answers 503.
    let app = App::new(auth);
    let t = good.token().audience(CANON).sign();
    assert_eq!(app.with_token(&t).await.status, StatusCode::OK);
    let t = broken.token().audience(CANON).sign();
    assert_eq!(
        app.with_token(&t).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(good.jwks_requests(), 1);
}

#[tokio::test]
async fn background_tasks_stop_when_the_last_clone_is_dropped() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let auth = builder(&server)
        .jwks_fetch_timeout(Duration::from_secs(30))
        .jwks_connect_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let app = App::new(auth.clone());
    let token = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    server.set_jwks_behavior(JwksBehavior::Hang);
    skip(55 * MIN).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    assert_eq!(app.with_token(&token).await.status, StatusCode::OK);
    eventually("refresh started", || server.jwks_requests() == 2).await;
    // Let connection tasks that the clock skip expired wind down, then count.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let busy = metrics.num_alive_tasks();
    assert_eq!(
        auth.key_set_stats()[0].fetches,
        2,
        "the refresh is in flight (the server hangs)"
    );
    drop(app);
    drop(auth);
    // The refresh would hang for 30 s; dropping the last clone ends it at once.
    // (A running refresh keeps its connection tasks alive too, so any decrease means it ended.)
    eventually("background task ended", || metrics.num_alive_tasks() < busy).await;
}

#[tokio::test]
async fn unknown_kids_respect_the_backoff_while_the_server_fails() {
    let server = MockAuthorizationServer::start().await.unwrap();
    let app = App::new(builder(&server).build().unwrap());
    let good = server.token().audience(CANON).sign();
    assert_eq!(app.with_token(&good).await.status, StatusCode::OK);
    let claims = json!({"iss": server.issuer(), "sub": "x", "aud": CANON, "exp": 4_000_000_000u64});
    let new_kid = unsigned_token(&json!({"alg": "RS256", "kid": "new"}), &claims, "c2ln");
    server.set_jwks_behavior(JwksBehavior::Status(500));
    skip(Duration::from_secs(6)).await;
    // The kid may be a new key the server can not show us: 503, not 401.
    let a = app.with_token(&new_kid).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.jwks_requests(), 2);
    // Known keys are unaffected.
    assert_eq!(app.with_token(&good).await.status, StatusCode::OK);
    skip(Duration::from_secs(6)).await;
    assert_eq!(
        app.with_token(&new_kid).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(server.jwks_requests(), 3);
    // After the second failure the backoff (5–10 s) holds every unknown kid back.
    for _ in 0..3 {
        skip(Duration::from_millis(1600)).await;
        let a = app.with_token(&new_kid).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(a.headers.contains_key(http::header::RETRY_AFTER));
    }
    assert_eq!(server.jwks_requests(), 3);
    assert_eq!(app.with_token(&good).await.status, StatusCode::OK);
    assert_eq!(app.calls(), 3);
}
