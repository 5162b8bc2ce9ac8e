//! Instructions per request, for callgrind: N requests (default 200) through
//! `ProtectedResourceLayer` around a trivial service, key set cached, RS256. Instruction
//! counts are repeatable on this noisy machine where wall-clock times are not:
//!
//! ```sh
//! cargo bench --bench instructions --no-run   # prints the binary's path
//! valgrind --tool=callgrind --toggle-collect='*measure_layer*' target/release/deps/instructions-… 200
//! callgrind_annotate --inclusive=yes callgrind.out.* | grep -E 'PROGRAM TOTALS|PublicKey::verify'
//! ```
//!
//! The total over 205 requests (5 warm-up) minus `PublicKey::verify` is the layer's own cost.
//! A second argument `raw` counts the bare signature check instead (`measure_raw`: the
//! floor); `gate` sends a small `tools/call` through `McpScopesLayer` behind the
//! layer instead (the gate's cost is the difference between the two runs); `gate-string`
//! one whose argument is a 1 MiB string (run it with N = 5); `gate-zeros` and `door-zeros` one
//! whose argument is a 1 MiB `[0,0,…]`, through the gate and through the front door alone,
//! and `pass-zeros` / `floor-zeros` the same body through an `IgnoredAny` pass alone / after
//! simdutf8's UTF-8 check (count `measure_pass`; table B's columns, in instructions, which
//! code placement does not move). `door` sends one token every
//! time, as a client does (its reading is remembered from the third request on:
//! `parsed_tokens.rs`); `door-fresh` a different token each time (every one read anew).
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Request;
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{
    McpScopesLayer, ProtectedResourceLayer, ResourceServerAuth, ScopeRequirement,
};
use tower::{Layer, Service, ServiceExt};

const CANON: &str = "http://127.0.0.1:8000/mcp";

const SMALL_CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"v":1}}}"#;

#[inline(never)]
fn measure_layer<S>(
    rt: &tokio::runtime::Runtime,
    svc: &mut S,
    tokens: &[String],
    body: &bytes::Bytes,
    n: usize,
) where
    S: Service<Request<Body>, Response = http::Response<Body>>,
    S::Error: std::fmt::Debug,
{
    for i in 0..n {
        let token = &tokens[i % tokens.len()];
        rt.block_on(async {
            let req = Request::post("/mcp")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(Body::from(body.clone()))
                .unwrap();
            let res = svc.ready().await.unwrap().call(req).await.unwrap();
            assert_eq!(res.status(), 200);
        });
    }
}

/// The floor: `n` checks of the token's signature with aws-lc-rs and a key parsed
/// beforehand (the signature part decoded each time, as any validator must).
#[inline(never)]
fn measure_raw(key: &ParsedPublicKey, token: &str, n: usize) {
    for _ in 0..n {
        let (message, signature) = token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        assert!(
            key.verify_sig(message.as_bytes(), std::hint::black_box(&signature))
                .is_ok()
        );
    }
}

/// `n` serde_json passes over `body` into `IgnoredAny`, after simdutf8's UTF-8 check when
/// `utf8` (the floor of a strict gate).
#[inline(never)]
fn measure_pass(body: &[u8], utf8: bool, n: usize) {
    for _ in 0..n {
        let body = std::hint::black_box(body);
        let ok = if utf8 {
            simdutf8::basic::from_utf8(body)
                .is_ok_and(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok())
        } else {
            serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
        };
        assert!(ok);
    }
}

/// Runs the requests; `measure_layer` is what callgrind counts.
/// Clones and drops the service `n` times: axum does this for every request.
#[inline(never)]
fn measure_clone<S: Clone>(svc: &S, n: usize) {
    for _ in 0..n {
        drop(std::hint::black_box(svc.clone()));
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let n: usize = std::env::args().nth(1).map_or(200, |s| s.parse().unwrap());
    let (server, auth) = rt.block_on(async {
        let server = MockAuthorizationServer::start().await.unwrap();
        let auth = ResourceServerAuth::builder()
            .canonical_url(CANON)
            .authorization_server(server.entry())
            .build()
            .unwrap();
        auth.warm_up(std::time::Duration::from_secs(5))
            .await
            .unwrap();
        (server, auth)
    });
    let token = server.token().audience(CANON).scope("mcp:tools").sign();
    let mode = std::env::args().nth(2).unwrap_or_default();
    // `door-fresh`: n + 5 tokens that differ in `jti` (5 for the warm-up), signed beforehand.
    let tokens: Vec<String> = if mode == "door-fresh" {
        (0..n + 5)
            .map(|i| {
                server
                    .token()
                    .audience(CANON)
                    .scope("mcp:tools")
                    .claim("jti", format!("t{i}"))
                    .sign()
            })
            .collect()
    } else {
        vec![token.clone()]
    };
    if mode == "raw" {
        let jwks: serde_json::Value = rt.block_on(async {
            reqwest::get(server.jwks_uri())
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        let b64 = |m: &str| {
            URL_SAFE_NO_PAD
                .decode(jwks["keys"][0][m].as_str().unwrap())
                .unwrap()
        };
        let (n_, e) = (b64("n"), b64("e"));
        let key = RsaPublicKeyComponents { n: &n_, e: &e }
            .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
            .unwrap();
        measure_raw(&key, &token, 5);
        measure_raw(&key, &token, n);
        return;
    }
    let inner = tower::service_fn(|req: Request<Body>| async {
        let body = axum::body::to_bytes(req.into_body(), usize::MAX).await;
        assert!(body.is_ok());
        Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
    });
    let layer = ProtectedResourceLayer::new(auth);
    // `gate-string`: the argument is one 1 MiB string instead; `…-zeros`: `[0,0,…]`.
    let body = bytes::Bytes::from(if mode == "gate-string" {
        SMALL_CALL.replace("\"v\":1", &format!("\"v\":\"{}\"", "a".repeat(1 << 20)))
    } else if mode.ends_with("-zeros") {
        let zeros = format!("[{}0]", "0,".repeat((1 << 20) / 2 - 1));
        SMALL_CALL.replace("\"v\":1", &format!("\"v\":{zeros}"))
    } else {
        SMALL_CALL.to_owned()
    });
    if mode == "pass-zeros" || mode == "floor-zeros" {
        measure_pass(&body, mode == "floor-zeros", 1);
        measure_pass(&body, mode == "floor-zeros", n);
        return;
    }
    if mode.starts_with("gate") {
        let gate =
            McpScopesLayer::new().tool("echo", ScopeRequirement::all(["mcp:tools"]).unwrap());
        let mut svc = layer.layer(gate.layer(inner));
        measure_layer(&rt, &mut svc, &tokens, &body, 5);
        measure_layer(&rt, &mut svc, &tokens, &body, n);
        measure_clone(&svc, n);
    } else {
        let mut svc = layer.layer(inner);
        let (warm, measured) = tokens.split_at(if tokens.len() > 1 { 5 } else { 0 });
        let warm = if warm.is_empty() { measured } else { warm };
        measure_layer(&rt, &mut svc, warm, &body, 5);
        measure_layer(&rt, &mut svc, measured, &body, n);
        measure_clone(&svc, n);
    }
}
