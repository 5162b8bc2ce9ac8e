//! Our layer and every peer, measured in one run, in process (no sockets on the measured
//! path).
//!
//! ```sh
//! nice -n 10 cargo run --release --manifest-path benches/peers/Cargo.toml --bin table
//! # --rounds N (default 21), --quick (5 rounds)
//! ```
//!
//! **Table A**, per algorithm: the raw aws-lc-rs signature check with a pre-parsed key,
//! `jsonwebtoken::decode` with a prebuilt `DecodingKey`, and a full request through each layer
//! around a trivial service (keys fetched from the same mock authorization server before
//! measuring; how each layer is configured is in `src/lib.rs`).
//!
//! **Table B**, the MCP tool gate (RS256): our front door alone and with `McpScopesLayer`,
//! oauth-resource-server's `AuthLayer` alone and with its `McpToolScopes`, and plain
//! `serde_json` passes over the same bytes, for a small `tools/call` and two 1 MiB ones. The
//! inner service reads the whole body (`axum::body::to_bytes`) in every variant. "floor" is
//! the least a strict gate on serde_json can do: simdutf8's UTF-8 check, then an `IgnoredAny`
//! pass (which skips strings without checking their UTF-8).
//!
//! Fairness: each request is built just before its call, outside the clock (fresh in the
//! cache, like a request hyper has just parsed); the clock covers only `ready().await`,
//! `call(req).await`, the status check and dropping the response, one `block_on` per call,
//! for every layer alike. All variants run back to back in each round,
//! in an order rotated from round to round; the table shows medians over rounds, and ratios
//! are medians of per-round ratios, so a slow spell of this shared machine hits every variant
//! alike. Exception: table B's "gate adds" columns are medians of per-round differences, and
//! the two ratios built on them divide those medians (a per-round ratio of two small
//! differences is mostly noise).

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Instant;

use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response};
use peers_bench::{
    fetch_jwk, jwt_authorizer, mcp_requests, oauth_resource_server, ours, raw_key, token,
    tools_call, tower_oauth2, zeros,
};
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{Algorithm, McpScopesLayer, ProtectedResourceLayer, ScopeRequirement};
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt};

const CANON: &str = "http://127.0.0.1:8000/mcp";
const MIB: usize = 1 << 20;
// Every peer verifies all five: tower-oauth2-resource-server through jsonwebtoken 11 on
// aws-lc-rs (as we do), oauth-resource-server and jwt-authorizer through jsonwebtoken 9 on ring (the JWKS
// carries `alg`, so jwt-authorizer does not have to guess it from the key type). No cell is
// n/a.
const ALGS: [Algorithm; 5] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
const PEERS: [&str; 3] = [
    "tower-oauth2-resource-server",
    "oauth-resource-server",
    "jwt-authorizer",
];

fn main() {
    let rounds = rounds_from_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    println!(
        "{rounds} rounds per row; µs per call, medians; ratios are medians of per-round ratios\n\
         (table B's gate-adds ratios: ratios of medians).\n"
    );
    table_a(&rt, rounds);
    println!();
    table_b(&rt, rounds);
}

fn rounds_from_args() -> usize {
    let mut rounds = 21;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => rounds = 5,
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .expect("--rounds N, N > 0");
            }
            other => panic!("unknown argument {other:?} (use --rounds N or --quick)"),
        }
    }
    rounds
}

// ---------------------------------------------------------------------------------------------
// Measuring

/// Nanoseconds per call through `svc` over `n` calls; every answer must be 200. Each request
/// is built just before its call, outside the clock: fresh in the cache, as a request hyper
/// has just parsed is (a batch of requests built beforehand would be read back cold from
/// memory, charging the layers for the harness). The clock runs around each call alone.
fn time_service<S, RB>(
    rt: &Runtime,
    name: &str,
    svc: &mut S,
    n: usize,
    mut make: impl FnMut() -> Request<Body>,
) -> f64
where
    S: Service<Request<Body>, Response = Response<RB>, Error = Infallible>,
{
    let mut total = std::time::Duration::ZERO;
    for _ in 0..n {
        let req = make();
        let started = Instant::now();
        let res = rt.block_on(async { svc.ready().await.expect("infallible").call(req).await });
        let res = res.expect("infallible");
        assert!(res.status() == 200, "{name} answered {}", res.status());
        drop(res);
        total += started.elapsed();
    }
    total.as_nanos() as f64 / n as f64
}

/// The status `svc` answers `req` with.
async fn refused<S, RB>(svc: &mut S, req: Request<Body>) -> u16
where
    S: Service<Request<Body>, Response = Response<RB>, Error = Infallible>,
{
    let res = svc.ready().await.expect("infallible").call(req).await;
    res.expect("infallible").status().as_u16()
}

/// Nanoseconds per call of `f`, `n` calls.
fn time_fn(n: usize, mut f: impl FnMut() -> bool) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        assert!(f());
    }
    started.elapsed().as_nanos() as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Per-variant times of each round (`times[variant][round]`), running `variant(i)` for every
/// variant in each round, the order rotated by one each round.
fn interleaved(
    rounds: usize,
    variants: usize,
    mut variant: impl FnMut(usize) -> f64,
) -> Vec<Vec<f64>> {
    let mut times = vec![Vec::with_capacity(rounds); variants];
    for round in 0..rounds {
        for k in 0..variants {
            let i = (round + k) % variants;
            times[i].push(variant(i));
        }
    }
    times
}

/// The median over rounds of `f(round)`.
fn median_by(rounds: usize, f: impl Fn(usize) -> f64) -> f64 {
    median((0..rounds).map(f).collect())
}

fn us(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.0}", ns / 1e3)
    } else {
        format!("{:.1}", ns / 1e3)
    }
}

// ---------------------------------------------------------------------------------------------
// Table A: the token check

fn bearer_request(token: &str) -> Request<Body> {
    Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("a request")
}

type Reply = std::future::Ready<Result<Response<Body>, Infallible>>;

fn ok_service(_: Request<Body>) -> Reply {
    std::future::ready(Ok(Response::new(Body::empty())))
}

/// jwt-authorizer's layer needs the inner service to answer with axum 0.7's response type
/// (it builds its refusals with axum 0.7); the body is as empty as the others'.
type Reply07 = std::future::Ready<Result<axum07::response::Response, Infallible>>;

fn ok_service07(_: Request<Body>) -> Reply07 {
    std::future::ready(Ok(axum07::response::Response::new(
        axum07::body::Body::empty(),
    )))
}

fn table_a(rt: &Runtime, rounds: usize) {
    println!("### A. Token check, full request through each layer (µs per call)\n");
    println!(
        "| alg | raw signature | jsonwebtoken decode | ours | tower-oauth2-resource-server | oauth-resource-server | jwt-authorizer | ours / raw | ours / decode | ours / tower-oauth2 | ours / oauth-resource-server | ours / jwt-authorizer | ours / best peer | raw as a service | ours / raw as a service |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for alg in ALGS {
        row_a(rt, rounds, alg);
    }
}

fn row_a(rt: &Runtime, rounds: usize, alg: Algorithm) {
    let n = if alg == Algorithm::ES384 { 100 } else { 300 };
    let (server, token, jwk, auth, t2, (_validator, ors), ja) = rt.block_on(async {
        let server = MockAuthorizationServer::start_with(&[alg])
            .await
            .expect("mock authorization server");
        let token = token(&server, CANON);
        let auth = ours(&server, CANON);
        auth.validate(&token).await.expect("our key cache warmed");
        let jwk = fetch_jwk(&server).await;
        let t2 = tower_oauth2(&server, CANON).await;
        let ors = oauth_resource_server(&server, CANON).await;
        let ja = jwt_authorizer(&server, CANON).await;
        (server, token, jwk, auth, t2, ors, ja)
    });

    let raw = raw_key(alg, &jwk);
    let (signing_input, signature) = token.rsplit_once('.').expect("a JWS");
    let raw_verify = || {
        let sig = URL_SAFE_NO_PAD
            .decode(black_box(signature))
            .expect("base64url");
        raw.verify_sig(black_box(signing_input).as_bytes(), &sig)
            .is_ok()
    };
    let jwt_key =
        jsonwebtoken::DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).expect("a JWK"))
            .expect("a decoding key");
    let mut validation =
        jsonwebtoken::Validation::new(alg.as_str().parse().expect("a jsonwebtoken algorithm"));
    validation.set_audience(&[CANON]);
    validation.set_issuer(&[server.issuer()]);
    let decode = || {
        jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &jwt_key, &validation).is_ok()
    };

    let mut ours_svc = ProtectedResourceLayer::new(auth)
        .layer(tower::service_fn(ok_service as fn(Request<Body>) -> Reply));
    let mut t2_svc = t2
        .into_layer::<Body>()
        .layer(tower::service_fn(ok_service as fn(Request<Body>) -> Reply));
    let mut ors_svc = ors.layer(tower::service_fn(ok_service as fn(Request<Body>) -> Reply));
    let mut ja_svc = ja.layer(tower::service_fn(
        ok_service07 as fn(Request<Body>) -> Reply07,
    ));
    let one = || bearer_request(&token);
    rt.block_on(async {
        use peers_bench::wait_until_accepted as wait;
        wait("ours", &mut ours_svc, one).await;
        wait(PEERS[0], &mut t2_svc, one).await;
        wait(PEERS[1], &mut ors_svc, one).await;
        wait(PEERS[2], &mut ja_svc, one).await;
        // Each layer really checks issuer, audience and expiry: tokens signed with the
        // trusted key but wrong in one of them must all be refused.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs();
        let wrong = [
            (
                "issuer",
                server
                    .token()
                    .audience(CANON)
                    .claim("iss", "http://127.0.0.1:1"),
            ),
            (
                "audience",
                server.token().audience("http://127.0.0.1:1/mcp"),
            ),
            (
                "expiry",
                server.token().audience(CANON).claim("exp", now - 3600),
            ),
        ];
        for (what, builder) in wrong {
            let bad = builder.scope("mcp:tools").claim("nbf", now - 7200).sign();
            let req = || bearer_request(&bad);
            for (name, status) in [
                ("ours", refused(&mut ours_svc, req()).await),
                (PEERS[0], refused(&mut t2_svc, req()).await),
                (PEERS[1], refused(&mut ors_svc, req()).await),
                (PEERS[2], refused(&mut ja_svc, req()).await),
            ] {
                assert!(
                    status != 200,
                    "{name} accepted a token with the wrong {what}"
                );
            }
        }
    });

    // The raw check as a service, in the harness every layer runs in (a request built per
    // call, `block_on`, the clock around each call): the floor of any layer here.
    let mut floor_svc = tower::service_fn(|req: Request<Body>| {
        let ok = req.headers().contains_key(http::header::AUTHORIZATION) && raw_verify();
        std::future::ready(Ok::<_, Infallible>(if ok {
            Response::new(Body::empty())
        } else {
            let mut res = Response::new(Body::empty());
            *res.status_mut() = http::StatusCode::UNAUTHORIZED;
            res
        }))
    });
    // raw, decode, ours, then the peers in PEERS order, then the floor.
    let t = interleaved(rounds, 7, |i| match i {
        0 => time_fn(n, raw_verify),
        1 => time_fn(n, decode),
        2 => time_service(rt, "ours", &mut ours_svc, n, || bearer_request(&token)),
        3 => time_service(rt, PEERS[0], &mut t2_svc, n, || bearer_request(&token)),
        4 => time_service(rt, PEERS[1], &mut ors_svc, n, || bearer_request(&token)),
        5 => time_service(rt, PEERS[2], &mut ja_svc, n, || bearer_request(&token)),
        _ => time_service(rt, "raw as a service", &mut floor_svc, n, || {
            bearer_request(&token)
        }),
    });
    let ratio = |j: usize| median_by(rounds, |r| t[2][r] / t[j][r]);
    let best = median_by(rounds, |r| t[2][r] / t[3][r].min(t[4][r]).min(t[5][r]));
    let cells: Vec<String> = t[..6].iter().map(|v| us(median(v.clone()))).collect();
    println!(
        "| {alg} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {best:.2} | {} | {:.2} |",
        cells.join(" | "),
        ratio(0),
        ratio(1),
        ratio(3),
        ratio(4),
        ratio(5),
        us(median(t[6].clone())),
        ratio(6),
    );
    // Keep the mock server alive until every request is done.
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// Table B: the MCP tool gate

fn table_b(rt: &Runtime, rounds: usize) {
    let long_string = format!("\"{}\"", "a".repeat(MIB - 100));
    let cases = [
        ("small tools/call", tools_call("1"), 300),
        (
            "tools/call, 1 MiB string argument",
            tools_call(&long_string),
            20,
        ),
        (
            "tools/call, 1 MiB [0,0,…] argument",
            tools_call(&zeros(MIB - 100)),
            10,
        ),
    ];
    let (server, token, auth, ors) = rt.block_on(peers_bench::gate_setup(CANON));
    let consume = tower::service_fn(peers_bench::consume);
    let echo = ScopeRequirement::all(["mcp:tools"]).expect("a scope");
    let mut ours_front = ProtectedResourceLayer::new(auth.clone()).layer(consume);
    let mut ours_gate = ProtectedResourceLayer::new(auth)
        .layer(McpScopesLayer::new().tool("echo", echo).layer(consume));
    let mut ors_front = ors.clone().layer(consume);
    // Its limit raised from 1 MiB to our default 4 MiB so both gates read the same bodies
    // under the same cap.
    let mut ors_gate = ors.layer(
        oauth_resource_server::mcp::McpToolScopes::new()
            .tool("echo", ["mcp:tools"])
            .body_limit(4 * MIB)
            .layer(consume),
    );

    println!(
        "### B. MCP tool gate, RS256 (µs per request; \"gate adds\" = front door + gate − front door alone)\n"
    );
    println!(
        "| body | bytes | calls/round | ours: front door | ours: + McpScopesLayer | ours: gate adds | oauth-resource-server: AuthLayer | + McpToolScopes | its gate adds | serde_json::Value pass | IgnoredAny pass | floor: UTF-8 check + IgnoredAny | ours+gate / its+gate | ours gate adds / its gate adds | ours gate adds / IgnoredAny | ours gate adds / floor | floor / its gate adds |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, body, n) in cases {
        let body = Bytes::from(body);
        let reqs = |n| mcp_requests(&token, &body, n);
        let one = || reqs(1).pop().expect("one request");
        rt.block_on(async {
            use peers_bench::wait_until_accepted as wait;
            wait("ours + gate", &mut ours_gate, one).await;
            wait("oauth-resource-server + gate", &mut ors_gate, one).await;
        });
        let t = interleaved(rounds, 7, |i| match i {
            0 => time_service(rt, "ours", &mut ours_front, n, one),
            1 => time_service(rt, "ours + gate", &mut ours_gate, n, one),
            2 => time_service(rt, PEERS[1], &mut ors_front, n, one),
            3 => time_service(rt, "oauth-resource-server + gate", &mut ors_gate, n, one),
            4 => time_fn(n, || {
                serde_json::from_slice::<serde_json::Value>(black_box(&body)).is_ok()
            }),
            5 => time_fn(n, || {
                serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&body)).is_ok()
            }),
            // The floor of a strict gate on serde_json: `IgnoredAny` skips a string without
            // checking its UTF-8, which a gate must check (a lenient server could read other
            // bytes into the message), so the least it can do is the fastest UTF-8 check here
            // (simdutf8, as the gate) and then that pass.
            _ => time_fn(n, || {
                simdutf8::basic::from_utf8(black_box(&body))
                    .is_ok_and(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok())
            }),
        });
        let ours_adds = median_by(rounds, |r| t[1][r] - t[0][r]);
        let its_adds = median_by(rounds, |r| t[3][r] - t[2][r]);
        let full = median_by(rounds, |r| t[1][r] / t[3][r]);
        let m: Vec<f64> = t.iter().map(|v| median(v.clone())).collect();
        // A gate's cost is a difference of two request times; for the small body it is a few
        // µs under a few µs of noise per round, so a per-round ratio of two such differences
        // swings wildly. These two ratios divide the medians instead.
        let adds = ours_adds / its_adds;
        let by_ignored = ours_adds / m[5];
        let by_floor = ours_adds / m[6];
        let floor_by_its = m[6] / its_adds;
        println!(
            "| {name} | {} | {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {full:.2} | {adds:.2} | {by_ignored:.2} | {by_floor:.2} | {floor_by_its:.2} |",
            body.len(),
            us(m[0]),
            us(m[1]),
            us(ours_adds),
            us(m[2]),
            us(m[3]),
            us(its_adds),
            us(m[4]),
            us(m[5]),
            us(m[6]),
        );
    }
    drop(server);
}
