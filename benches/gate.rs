//! What the MCP tool gate (`McpScopesLayer`) adds to a request, next to a plain serde_json
//! pass over the same body (into `serde_json::Value` and into `IgnoredAny`), in one run of
//! interleaved rounds:
//!
//! ```sh
//! cargo bench --bench gate
//! ```
//!
//! Each round runs every variant back to back: the front door alone (`ProtectedResourceLayer`
//! around a service that reads the whole body), the front door with the gate between them,
//! and the two plain parses. Requests are built before the clock starts; the answer is
//! dropped inside it. "gate adds" is the median over rounds of (front door + gate) − (front
//! door alone). The peers' gates are measured in `benches/peers` (see BENCHMARKS.md).

use std::convert::Infallible;
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use http::Request;
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{
    McpScopesLayer, ProtectedResourceLayer, ResourceServerAuth, ScopeRequirement,
};
use tower::{Layer, Service, ServiceExt};

const CANON: &str = "http://127.0.0.1:8000/mcp";
const MIB: usize = 1 << 20;

/// A `tools/call` of `echo` whose `arguments` member is `value` (raw JSON text).
fn tools_call(value: &str) -> Bytes {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"v":{value}}}}}}}"#
    )
    .into()
}

/// `[0,0,…,0]` of about `bytes` bytes.
fn zeros(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 2);
    s.push('[');
    while s.len() + 2 < bytes {
        s.push_str("0,");
    }
    s.push_str("0]");
    s
}

/// The inner service: reads the whole body (as an MCP server does), answers 200.
async fn read_body(req: Request<Body>) -> Result<http::Response<Body>, Infallible> {
    let body = axum::body::to_bytes(req.into_body(), usize::MAX).await;
    assert!(body.is_ok());
    Ok(http::Response::new(Body::empty()))
}

fn request(token: &str, body: &Bytes) -> Request<Body> {
    Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(Body::from(body.clone()))
        .expect("a valid request")
}

/// Nanoseconds per request over `n` prebuilt requests through `svc`.
fn round<S>(rt: &tokio::runtime::Runtime, svc: &mut S, token: &str, body: &Bytes, n: usize) -> f64
where
    S: Service<Request<Body>, Response = http::Response<Body>>,
    S::Error: std::fmt::Debug,
{
    let reqs: Vec<_> = (0..n).map(|_| request(token, body)).collect();
    let t = Instant::now();
    for req in reqs {
        rt.block_on(async {
            let res = svc.ready().await.expect("ready").call(req).await;
            assert_eq!(res.expect("infallible").status(), 200);
        });
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn parse_round<T: serde::de::DeserializeOwned>(body: &Bytes, n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        assert!(serde_json::from_slice::<T>(std::hint::black_box(body)).is_ok());
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.strip_prefix("--rounds=").map(str::to_owned))
        .map_or(21, |r| r.parse().expect("--rounds=N"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (server, auth, token) = rt.block_on(async {
        let server = MockAuthorizationServer::start().await.expect("mock server");
        let auth = ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(server.entry())
            .build()
            .expect("configuration");
        let token = server
            .token()
            .audience(CANON)
            .expires_in(86_400)
            .scope("mcp:tools")
            .sign();
        auth.validate(&token).await.expect("warm key cache");
        (server, auth, token)
    });
    let mut door = ProtectedResourceLayer::new(auth.clone()).layer(tower::service_fn(read_body));
    let mut gated = ProtectedResourceLayer::new(auth).layer(
        McpScopesLayer::new()
            .tool(
                "echo",
                ScopeRequirement::all(["mcp:tools"]).expect("a valid scope"),
            )
            .layer(tower::service_fn(read_body)),
    );
    let cases = [
        ("small tools/call", tools_call("1"), 300),
        (
            "tools/call, 1 MiB string argument",
            tools_call(&format!("\"{}\"", "a".repeat(MIB - 100))),
            10,
        ),
        (
            "tools/call, 1 MiB [0,0,…] argument",
            tools_call(&zeros(MIB - 100)),
            4,
        ),
    ];
    println!(
        "\n| body | front door (µs) | front door + gate (µs) | gate adds (µs) | serde_json::Value (µs) | IgnoredAny (µs) | gate adds / IgnoredAny |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, body, n) in cases {
        let mut cols: [Vec<f64>; 5] = Default::default();
        let mut by_ignored = Vec::new();
        for _ in 0..rounds {
            let d = round(&rt, &mut door, &token, &body, n);
            let g = round(&rt, &mut gated, &token, &body, n);
            let v = parse_round::<serde_json::Value>(&body, n);
            let i = parse_round::<serde::de::IgnoredAny>(&body, n);
            for (c, x) in cols.iter_mut().zip([d, g, g - d, v, i]) {
                c.push(x);
            }
            by_ignored.push((g - d) / i);
        }
        let [d, g, added, v, i] = cols.map(median);
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            d / 1e3,
            g / 1e3,
            added / 1e3,
            v / 1e3,
            i / 1e3,
            median(by_ignored)
        );
    }
    drop(server);
}
