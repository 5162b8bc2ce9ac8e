//! Peak heap memory per request through `ProtectedResourceLayer` + `McpScopesLayer`, next to
//! what a `serde_json::Value` parse (what the tool gate did before 0.2) and an `IgnoredAny` pass
//! of the same body hold at their peak, measured in one run.
//!
//! ```sh
//! cargo bench --bench memory              # the table
//! cargo bench --bench memory -- --check   # and fail past the bounds (CI)
//! ```
//!
//! Every allocation goes through `peak_alloc`'s counting allocator. For each case the peak is
//! reset after the request and its body are built, the request runs to its answer, and the
//! peak above the level before the request is the request's own peak: the gate's copy of the
//! body, the classifier's work, the token check, the answer. The body arrives in 16 KiB chunks
//! (slices of one buffer, as hyper hands them on), so the copy the gate keeps is counted.
//! `peak_alloc` moves a block on every `realloc`, so a growing buffer counts old and new
//! together for a moment: the numbers are upper bounds. Each case runs 5 times after a
//! warm-up; the table shows the median and the spread (max − min). Each request is also sent
//! through the front door alone (its body left unread): the difference is what the gate adds,
//! the body's copy included.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::Request;
use peak_alloc::PeakAlloc;
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{
    McpScopesLayer, ProtectedResourceLayer, ResourceServerAuth, ScopeRequirement,
};
use tower::{Layer, Service, ServiceExt};

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

const CANON: &str = "http://127.0.0.1:8000/mcp";
const MIB: usize = 1 << 20;
const CHUNK: usize = 16 * 1024;
const RUNS: usize = 5;

type Reply = std::future::Ready<Result<http::Response<Body>, Infallible>>;

fn ok_service(_: Request<Body>) -> Reply {
    std::future::ready(Ok(http::Response::new(Body::empty())))
}

/// A `tools/call` of `echo` whose `arguments` member is `value` (raw JSON text).
fn tools_call(value: &str) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"v":{value}}}}}}}"#
    )
    .into_bytes()
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

/// A JSON-RPC batch of `n` `ping` requests (MCP 2025-03-26 allowed batches).
fn pings(n: usize) -> Vec<u8> {
    let list: Vec<String> = (0..n)
        .map(|id| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#))
        .collect();
    format!("[{}]", list.join(",")).into_bytes()
}

struct Case {
    name: &'static str,
    body: Option<Vec<u8>>,
}

fn cases() -> Vec<Case> {
    let long_string = format!("\"{}\"", "a".repeat(MIB - 100));
    vec![
        Case {
            name: "GET, no body (the front door alone)",
            body: None,
        },
        Case {
            name: "small tools/call",
            body: Some(tools_call("1")),
        },
        Case {
            name: "tools/call, 1 MiB [0,0,…] argument",
            body: Some(tools_call(&zeros(MIB - 100))),
        },
        Case {
            name: "tools/call, 1 MiB string argument",
            body: Some(tools_call(&long_string)),
        },
        Case {
            name: "a batch of 256 pings (the most a batch may hold)",
            body: Some(pings(256)),
        },
        Case {
            name: "1 MiB [0,0,…] as the whole body (a batch over 256 messages: refused, 400)",
            body: Some(zeros(MIB).into_bytes()),
        },
    ]
}

/// The body in `CHUNK`-sized slices of one buffer, as a streaming request body.
fn chunked(body: &Bytes) -> Body {
    let chunks: Vec<Result<Bytes, Infallible>> = (0..body.len())
        .step_by(CHUNK)
        .map(|at| Ok(body.slice(at..(at + CHUNK).min(body.len()))))
        .collect();
    Body::from_stream(futures_util::stream::iter(chunks))
}

fn request(token: &str, body: Option<&Bytes>) -> Request<Body> {
    let builder = Request::builder()
        .uri("/mcp")
        .header("authorization", format!("Bearer {token}"));
    match body {
        None => builder.method("GET").body(Body::empty()),
        Some(body) => builder
            .method("POST")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(chunked(body)),
    }
    .expect("a valid request")
}

/// The heap peak above the level at the start of `f`, in bytes.
fn peak_of<T>(f: impl FnOnce() -> T) -> usize {
    let before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let out = f();
    let peak = HEAP.peak_usage().saturating_sub(before);
    drop(out);
    peak
}

fn median_spread(mut v: Vec<usize>) -> (usize, usize) {
    v.sort_unstable();
    (v[v.len() / 2], v[v.len() - 1] - v[0])
}

fn kib(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// The median and spread of the peaks of `RUNS` requests through `svc` (after a warm-up),
/// each answered `expected`.
fn median_peak<S>(
    rt: &tokio::runtime::Runtime,
    svc: &S,
    token: &str,
    body: Option<&Bytes>,
    expected: u16,
) -> (usize, usize)
where
    S: Service<Request<Body>, Response = http::Response<Body>, Error = Infallible> + Clone,
{
    let mut peaks = Vec::with_capacity(RUNS);
    for run in 0..=RUNS {
        let req = request(token, body);
        let mut svc = svc.clone();
        let peak = peak_of(|| {
            rt.block_on(async {
                let res = svc
                    .ready()
                    .await
                    .expect("ready")
                    .call(req)
                    .await
                    .expect("infallible");
                assert_eq!(res.status(), expected);
                res
            })
        });
        if run > 0 {
            peaks.push(peak);
        }
    }
    median_spread(peaks)
}

fn main() {
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
    let door = ProtectedResourceLayer::new(auth.clone())
        .layer(tower::service_fn(ok_service as fn(Request<Body>) -> Reply));
    let stack = ProtectedResourceLayer::new(auth).layer(
        McpScopesLayer::new()
            .tool(
                "echo",
                ScopeRequirement::all(["mcp:tools"]).expect("a valid scope"),
            )
            .layer(tower::service_fn(ok_service as fn(Request<Body>) -> Reply)),
    );

    println!(
        "\n| case | body | request peak (median) | peak / body | spread | front door alone | the gate adds | gate adds / body | serde_json::Value peak | IgnoredAny peak |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut over = Vec::new();
    for case in cases() {
        let body = case.body.map(Bytes::from);
        let expected = if case.name.contains("refused") {
            400
        } else {
            200
        };
        let (peak, spread) = median_peak(&rt, &stack, &token, body.as_ref(), expected);
        // The same request through the front door alone (its body left unread).
        let (alone, _) = median_peak(&rt, &door, &token, body.as_ref(), 200);
        let adds = peak.saturating_sub(alone);
        let (len, ratio, adds_ratio, value, ignored) = match &body {
            None => (
                "0 B".to_owned(),
                "–".to_owned(),
                "–".to_owned(),
                "–".to_owned(),
                "–".to_owned(),
            ),
            Some(b) => {
                let value = peak_of(|| serde_json::from_slice::<serde_json::Value>(b).ok());
                let ignored =
                    peak_of(|| serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok());
                (
                    kib(b.len()),
                    format!("{:.2}×", peak as f64 / b.len() as f64),
                    format!("{:.2}×", adds as f64 / b.len() as f64),
                    kib(value),
                    kib(ignored),
                )
            }
        };
        println!(
            "| {} | {len} | {} | {ratio} | {} | {} | {} | {adds_ratio} | {value} | {ignored} |",
            case.name,
            kib(peak),
            kib(spread),
            kib(alone),
            kib(adds),
        );
        let bound = guard_bound(body.as_ref().map(Bytes::len));
        if adds > bound {
            over.push(format!(
                "{}: the gate adds {} (bound {})",
                case.name,
                kib(adds),
                kib(bound)
            ));
        }
    }
    // Keep the mock server alive until every request is done.
    std::thread::sleep(Duration::from_millis(1));
    drop(server);
    if std::env::args().any(|a| a == "--check") {
        if !over.is_empty() {
            eprintln!("memory-guard: the gate holds more than it should per request:");
            for line in &over {
                eprintln!("  {line}");
            }
            std::process::exit(1);
        }
        println!("memory-guard: every case within its bound");
    }
}

/// What `--check` (CI) allows the gate to add to a request: 1 KiB of fixed state (the
/// request's boxed future: 815 bytes measured on 2026-11-30, 1.1 KiB before the timer and the
/// list filter were boxed only when needed), plus the body's copy and 1 % when the body
/// arrives in pieces (over one `CHUNK`; one piece is not copied). Nothing grows with the
/// number of messages: a batch that arrives in one piece gets 1 KiB. A `GET`, passed on
/// unread: 256 bytes (119 measured).
fn guard_bound(body: Option<usize>) -> usize {
    match body {
        None => 256,
        Some(len) if len > CHUNK => 1024 + len + len / 100,
        Some(_) => 1024,
    }
}
