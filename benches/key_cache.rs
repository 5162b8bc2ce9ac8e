//! Key handling under pressure, measured in one run:
//!
//! - **flood**: a valid RS256 request through the layer while another thread sends tokens with
//!   random `kid`s as fast as it can, against the same request on a quiet server;
//! - **issuers**: a valid request when 1, 10 or 100 issuers are configured (each its own
//!   authorization server on 127.0.0.1 with its own key set), token from the last one;
//! - **made-up tenants**: tokens naming made-up concrete issuers of an issuer pattern
//!   (`{base}/{tenant}`) as fast as one thread sends them for 3 s, and how many requests that
//!   costs the provider (one lookup per refetch cooldown at most), beside a random-kid flood.
//!
//! ```sh
//! cargo bench --bench key_cache
//! ```
//!
//! Criterion reports each variant; a table of medians and ratios follows (see BENCHMARKS.md).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use criterion::{Criterion, criterion_group};
use http::Request;
use protected_resource::testkit::{MockAuthorizationServer, unsigned_token};
use protected_resource::{Algorithm, ProtectedResourceLayer, ResourceServerAuth};
use serde_json::json;
use tower::{Layer, Service, ServiceExt};

const CANON: &str = "http://127.0.0.1:8000/mcp";

type Reply = std::future::Ready<Result<http::Response<Body>, std::convert::Infallible>>;
type Svc =
    protected_resource::ProtectedResource<tower::util::ServiceFn<fn(Request<Body>) -> Reply>>;

fn ok_service(_: Request<Body>) -> Reply {
    std::future::ready(Ok(http::Response::new(Body::empty())))
}

fn layered(auth: &ResourceServerAuth) -> Svc {
    ProtectedResourceLayer::new(auth.clone())
        .layer(tower::service_fn(ok_service as fn(Request<Body>) -> Reply))
}

async fn call(svc: &mut Svc, token: &str) -> http::StatusCode {
    let req = Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    svc.ready().await.unwrap().call(req).await.unwrap().status()
}

struct Setup {
    auth: ResourceServerAuth,
    token: String,
    flood_claims: serde_json::Value,
    _servers: Vec<MockAuthorizationServer>,
}

/// `n` issuers; the measured token comes from the last one.
fn setup(rt: &tokio::runtime::Runtime, n: usize) -> Setup {
    rt.block_on(async {
        let mut servers = Vec::new();
        for i in 0..n {
            // RS256 for the measured issuer, Ed25519 (fast to generate) for the others.
            let alg = if i + 1 == n {
                Algorithm::RS256
            } else {
                Algorithm::EdDSA
            };
            servers.push(MockAuthorizationServer::start_with(&[alg]).await.unwrap());
        }
        let auth = ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_servers(servers.iter().map(|s| s.entry()))
            .build()
            .unwrap();
        auth.warm_up(Duration::from_secs(30)).await.unwrap();
        let last = servers.last().unwrap();
        let token = last.token().audience(CANON).expires_in(86_400).sign();
        let flood_claims =
            json!({"iss": last.issuer(), "sub": "x", "aud": CANON, "exp": 4_000_000_000u64});
        Setup {
            auth,
            token,
            flood_claims,
            _servers: servers,
        }
    })
}

/// A task on the runtime's worker threads that sends random-kid tokens through the layer
/// whenever `active` is set, counting them.
struct Flood {
    active: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    not_401: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Flood {
    fn start(
        rt: &tokio::runtime::Runtime,
        auth: ResourceServerAuth,
        claims: serde_json::Value,
    ) -> Self {
        let active = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let not_401 = Arc::new(AtomicU64::new(0));
        let (a, c, bad) = (active.clone(), sent.clone(), not_401.clone());
        let task = rt.spawn(async move {
            let mut svc = layered(&auth);
            let mut i = 0u64;
            loop {
                if !a.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                i += 1;
                let token = unsigned_token(
                    &json!({"alg": "RS256", "kid": format!("flood-{i}")}),
                    &claims,
                    "c2ln",
                );
                if call(&mut svc, &token).await != 401 {
                    bad.fetch_add(1, Ordering::Relaxed);
                }
                c.fetch_add(1, Ordering::Relaxed);
                if i.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
            }
        });
        Self {
            active,
            sent,
            not_401,
            task,
        }
    }

    fn set(&self, on: bool) {
        self.active.store(on, Ordering::Relaxed);
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Two worker threads (the machine's cores) host the authorization servers and the flood;
/// measured requests run on the main thread with `block_on`.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("key_cache");
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));

    let s = setup(&rt, 1);
    let mut svc = layered(&s.auth);
    group.bench_function("RS256/quiet", |b| {
        b.iter(|| rt.block_on(async { assert_eq!(call(&mut svc, black_box(&s.token)).await, 200) }))
    });
    let flood = Flood::start(&rt, s.auth.clone(), s.flood_claims.clone());
    flood.set(true);
    group.bench_function("RS256/random_kid_flood", |b| {
        b.iter(|| rt.block_on(async { assert_eq!(call(&mut svc, black_box(&s.token)).await, 200) }))
    });
    drop(flood);

    for n in [1, 10, 100] {
        let s = setup(&rt, n);
        let mut svc = layered(&s.auth);
        group.bench_function(format!("RS256/issuers_{n}"), |b| {
            b.iter(|| {
                rt.block_on(async { assert_eq!(call(&mut svc, black_box(&s.token)).await, 200) })
            })
        });
    }
    group.finish();
}

/// Nanoseconds per call over one round of `n` calls.
fn round_ns(rt: &tokio::runtime::Runtime, svc: &mut Svc, token: &str, n: u32) -> f64 {
    let t = Instant::now();
    rt.block_on(async {
        for _ in 0..n {
            assert_eq!(call(svc, token).await, 200);
        }
    });
    t.elapsed().as_nanos() as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ratios() {
    let rt = runtime();
    let s = setup(&rt, 1);
    let mut svc = layered(&s.auth);
    let flood = Flood::start(&rt, s.auth.clone(), s.flood_claims.clone());
    // Interleave quiet and flooded rounds so drift on a shared machine hits both alike.
    let (mut quiet, mut flooded) = (Vec::new(), Vec::new());
    let mut flood_rate = Vec::new();
    for _ in 0..30 {
        flood.set(false);
        std::thread::sleep(Duration::from_millis(5));
        quiet.push(round_ns(&rt, &mut svc, &s.token, 2000));
        flood.set(true);
        std::thread::sleep(Duration::from_millis(5));
        let before = (flood.sent.load(Ordering::Relaxed), Instant::now());
        flooded.push(round_ns(&rt, &mut svc, &s.token, 2000));
        let sent = flood.sent.load(Ordering::Relaxed) - before.0;
        flood_rate.push(sent as f64 / before.1.elapsed().as_secs_f64());
    }
    let not_401 = flood.not_401.load(Ordering::Relaxed);
    drop(flood);
    let stats = &s.auth.key_set_stats()[0];
    let (q, f) = (median(quiet), median(flooded));
    println!("\n| RS256 valid request | µs |\n|---|---|");
    println!("| quiet | {:.1} |", q / 1e3);
    println!("| during random-kid flood | {:.1} |", f / 1e3);
    println!("| flood / quiet | {:.2} |", f / q);
    println!(
        "\nflood: {:.0} tokens/s on a worker thread; {} answered other than 401; key-set \
         fetches during the whole run: {} ({} caused by unknown kids, {} unknown-kid tokens \
         refused)",
        median(flood_rate),
        not_401,
        stats.fetches,
        stats.unknown_kid_refetches,
        stats.unknown_kid_rejections
    );

    println!("\n| issuers configured | µs | / 1 issuer |\n|---|---|---|");
    let mut one = 0.0;
    for n in [1, 10, 100] {
        let s = setup(&rt, n);
        let mut svc = layered(&s.auth);
        let v = median(
            (0..15)
                .map(|_| round_ns(&rt, &mut svc, &s.token, 500))
                .collect(),
        );
        if n == 1 {
            one = v;
        }
        println!("| {n} | {:.1} | {:.2} |", v / 1e3, v / one);
    }
    tenant_flood(&rt);
}

/// Tokens naming made-up tenants of a pattern for 3 s: what the provider sees.
fn tenant_flood(rt: &tokio::runtime::Runtime) {
    use std::sync::atomic::AtomicUsize;
    let (sent, provider, answered_503) = rt.block_on(async {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().fallback(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            async { http::StatusCode::NOT_FOUND }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let auth = ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(
                protected_resource::AuthorizationServerEntry::new(format!("{base}/{{tenant}}"))
                    .authorization_server_url(base.clone()),
            )
            .build()
            .unwrap();
        let mut svc = layered(&auth);
        let (mut sent, mut unavailable) = (0u64, 0u64);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            sent += 1;
            let claims = json!({"iss": format!("{base}/fake-{sent}"), "sub": "x", "aud": CANON,
                                "exp": 4_000_000_000u64});
            let token = unsigned_token(&json!({"alg": "RS256", "kid": "k"}), &claims, "c2ln");
            if call(&mut svc, &token).await == 503 {
                unavailable += 1;
            }
        }
        server.abort();
        (sent, hits.load(Ordering::Relaxed), unavailable)
    });
    println!(
        "\nmade-up tenants: {sent} tokens in 3 s ({answered_503} answered 503); requests to \
         the provider: {provider} (3 metadata locations per lookup; one lookup per 5 s \
         cooldown at most)"
    );
}

criterion_group!(key_cache, benches);

fn main() {
    key_cache();
    Criterion::default().configure_from_args().final_summary();
    ratios();
}
