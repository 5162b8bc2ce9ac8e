//! Table B in instructions: the MCP tool gates and the serde_json passes on one body, counted
//! by callgrind, which code placement (what moves table B's wall-clock times from one build
//! to the next) does not move.
//!
//! ```sh
//! cargo build --release --manifest-path benches/peers/Cargo.toml --bin gate_work
//! valgrind --tool=callgrind --toggle-collect='*measure*' \
//!     benches/peers/target/release/gate_work 5 ours-gate zeros
//! ```
//!
//! `bash benches/gate_work.sh` runs every mode on every body and prints the table. Arguments:
//! the number of requests (after two unmeasured ones), the mode and the body.
//!
//! | mode | what runs `n` times inside `measure` |
//! |---|---|
//! | `ours-door`, `ours-gate` | a request through our front door, without and with `McpScopesLayer` |
//! | `its-door`, `its-gate` | the same through oauth-resource-server's `AuthLayer`, without and with its `McpToolScopes` |
//! | `pass` | `serde_json::from_slice::<IgnoredAny>` over the body |
//! | `floor` | simdutf8's UTF-8 check, then `from_str::<IgnoredAny>` (the least a strict gate on serde_json does) |
//!
//! Bodies (table B's): `small` (a 91-byte `tools/call`), `string` (a 1 MiB string argument),
//! `zeros` (a 1 MiB `[0,0,…]` argument). A gate adds `*-gate − *-door`.

use std::convert::Infallible;
use std::hint::black_box;

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use peers_bench::{mcp_requests, tools_call, zeros};
use protected_resource::{McpScopesLayer, ProtectedResourceLayer, ScopeRequirement};
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt};

const CANON: &str = "http://127.0.0.1:8000/mcp";
const MIB: usize = 1 << 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: gate_work N ours-door|ours-gate|its-door|its-gate|pass|floor small|string|zeros";
    let (Some(n), Some(mode), Some(body)) = (
        args.get(1).and_then(|n| n.parse::<usize>().ok()),
        args.get(2),
        args.get(3),
    ) else {
        panic!("{usage}");
    };
    let body = Bytes::from(match body.as_str() {
        "small" => tools_call("1"),
        "string" => tools_call(&format!("\"{}\"", "a".repeat(MIB - 100))),
        "zeros" => tools_call(&zeros(MIB - 100)),
        _ => panic!("{usage}"),
    });
    match mode.as_str() {
        "pass" => {
            let pass = |b: &Bytes| serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok();
            call_all(&body, 2, pass);
            measure_fn(&body, n, pass);
        }
        "floor" => {
            let floor = |b: &Bytes| {
                simdutf8::basic::from_utf8(b)
                    .is_ok_and(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok())
            };
            call_all(&body, 2, floor);
            measure_fn(&body, n, floor);
        }
        layer => layers(layer, &body, n, usage),
    }
}

/// Builds the layer `mode` names around a stand-in MCP server that reads the whole body, and
/// measures `n` requests after two.
fn layers(mode: &str, body: &Bytes, n: usize, usage: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (_server, token, auth, ors) = rt.block_on(peers_bench::gate_setup(CANON));
    let consume = tower::service_fn(peers_bench::consume);
    let echo = ScopeRequirement::all(["mcp:tools"]).expect("a scope");
    match mode {
        "ours-door" => run(
            &rt,
            ProtectedResourceLayer::new(auth).layer(consume),
            &token,
            body,
            n,
        ),
        "ours-gate" => run(
            &rt,
            ProtectedResourceLayer::new(auth)
                .layer(McpScopesLayer::new().tool("echo", echo).layer(consume)),
            &token,
            body,
            n,
        ),
        "its-door" => run(&rt, ors.layer(consume), &token, body, n),
        // Its limit raised from 1 MiB to our default 4 MiB, as in table B.
        "its-gate" => run(
            &rt,
            ors.layer(
                oauth_resource_server::mcp::McpToolScopes::new()
                    .tool("echo", ["mcp:tools"])
                    .body_limit(4 * MIB)
                    .layer(consume),
            ),
            &token,
            body,
            n,
        ),
        _ => panic!("{usage}"),
    }
}

/// Two unmeasured requests (key sets fetched, the token's reading remembered), then `n`.
fn run<S, RB>(rt: &Runtime, mut svc: S, token: &str, body: &Bytes, n: usize)
where
    S: Service<Request<Body>, Response = Response<RB>, Error = Infallible>,
{
    rt.block_on(peers_bench::wait_until_accepted(
        "the layer",
        &mut svc,
        || mcp_requests(token, body, 1).pop().expect("one request"),
    ));
    serve_all(rt, &mut svc, mcp_requests(token, body, 2));
    measure_layer(rt, &mut svc, mcp_requests(token, body, n));
}

/// What callgrind counts: the requests through `svc` (built beforehand: outside the count).
#[inline(never)]
fn measure_layer<S, RB>(rt: &Runtime, svc: &mut S, requests: Vec<Request<Body>>)
where
    S: Service<Request<Body>, Response = Response<RB>, Error = Infallible>,
{
    serve_all(rt, svc, requests);
}

/// The requests through `svc`, each answered 200.
fn serve_all<S, RB>(rt: &Runtime, svc: &mut S, requests: Vec<Request<Body>>)
where
    S: Service<Request<Body>, Response = Response<RB>, Error = Infallible>,
{
    for req in requests {
        let res = rt.block_on(async { svc.ready().await.expect("infallible").call(req).await });
        let status = res.expect("infallible").status();
        assert!(status == 200, "answered {status}");
    }
}

/// What callgrind counts: `n` calls of `f` on the body.
#[inline(never)]
fn measure_fn(body: &Bytes, n: usize, f: impl Fn(&Bytes) -> bool) {
    call_all(body, n, f);
}

/// `n` calls of `f` on the body, each true.
fn call_all(body: &Bytes, n: usize, f: impl Fn(&Bytes) -> bool) {
    for _ in 0..n {
        assert!(f(black_box(body)));
    }
}
