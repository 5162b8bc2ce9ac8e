//! One HTTP server for the load test in `benches/http.sh`: `POST /mcp` (and `GET`) answering
//! 200 "ok" through one layer, on 127.0.0.1.
//!
//! ```sh
//! serve <mode> <port>   # mode: none, raw, ours, tower-oauth2, oauth-resource-server, jwt-authorizer
//! ```
//!
//! `raw` is the floor of any layer: no layer, the handler itself takes the bearer token and
//! checks its signature alone (base64url of the signature part, aws-lc-rs with the key parsed
//! once), answering 401 when it fails.
//!
//! Starts an in-process mock authorization server (one RS256 key) that lives as long as the
//! process, configures the mode's layer against it (see `src/lib.rs`), waits until the layer
//! accepts a token (at most 10 s), prints `TOKEN <jwt>` as the first line of stdout (audience
//! `http://127.0.0.1:<port>/mcp`, 24 h, scope `mcp:tools`) and serves until killed, with
//! `TCP_NODELAY` on every accepted connection.

use std::io::Write;

use axum::serve::ListenerExt;
use std::sync::Arc;

use aws_lc_rs::signature::ParsedPublicKey;
use peers_bench::{
    fetch_jwk, jwt_authorizer, oauth_resource_server, ours, raw_key, raw_verify, token,
    tower_oauth2, wait_until_accepted,
};
use protected_resource::Algorithm;
use protected_resource::ProtectedResourceLayer;
use protected_resource::testkit::MockAuthorizationServer;
use tokio::net::TcpListener;

const MODES: [&str; 6] = [
    "none",
    "raw",
    "ours",
    "tower-oauth2",
    "oauth-resource-server",
    "jwt-authorizer",
];

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(mode), Some(port)) = (args.next(), args.next().and_then(|p| p.parse::<u16>().ok()))
    else {
        eprintln!("usage: serve <{}> <port>", MODES.join("|"));
        std::process::exit(2);
    };
    if !MODES.contains(&mode.as_str()) {
        eprintln!("unknown mode {mode:?}; one of {}", MODES.join(", "));
        std::process::exit(2);
    }
    let canon = format!("http://127.0.0.1:{port}/mcp");
    // Lives until the process is killed: the peers refetch keys from it.
    let server = MockAuthorizationServer::start()
        .await
        .expect("mock authorization server");
    let token = token(&server, &canon);
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the port is free");
    let app = axum::Router::new().route("/mcp", axum::routing::post(ok).get(ok));
    match mode.as_str() {
        "none" => serve(&mode, listener, app, &token).await,
        "raw" => {
            let key = Arc::new(raw_key(Algorithm::RS256, &fetch_jwk(&server).await));
            let app = axum::Router::new()
                .route("/mcp", axum::routing::post(checked).get(checked))
                .with_state(key);
            serve(&mode, listener, app, &token).await;
        }
        "ours" => {
            let app = app.layer(ProtectedResourceLayer::new(ours(&server, &canon)));
            serve(&mode, listener, app, &token).await;
        }
        "tower-oauth2" => {
            let t2 = tower_oauth2(&server, &canon).await;
            let app = app.layer(t2.into_layer::<axum::body::Body>());
            serve(&mode, listener, app, &token).await;
        }
        "oauth-resource-server" => {
            let (validator, layer) = oauth_resource_server(&server, &canon).await;
            // As its README's quickstart: keys re-read every hour in the background.
            let _refresh = validator.spawn_background_refresh();
            serve(&mode, listener, app.layer(layer), &token).await;
        }
        _ => {
            // jwt-authorizer 0.15 exists for axum 0.7 only: the same route on axum 0.7.
            let layer = jwt_authorizer(&server, &canon).await;
            let app = axum07::Router::new()
                .route("/mcp", axum07::routing::post(ok).get(ok))
                .layer(layer);
            let mut svc = app.clone();
            wait_until_accepted(&mode, &mut svc, || {
                request(&token, axum07::body::Body::empty())
            })
            .await;
            announce(&mode, port, &token);
            axum07::serve(listener, app)
                .tcp_nodelay(true)
                .await
                .expect("serving");
        }
    }
    drop(server);
}

async fn ok() -> &'static str {
    "ok"
}

/// The `raw` mode's handler: "ok" when the bearer token's signature verifies, else 401.
async fn checked(
    axum::extract::State(key): axum::extract::State<Arc<ParsedPublicKey>>,
    req: axum::extract::Request,
) -> Result<&'static str, http::StatusCode> {
    let token = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(token) if raw_verify(&key, token) => Ok("ok"),
        _ => Err(http::StatusCode::UNAUTHORIZED),
    }
}

fn request<B>(token: &str, body: B) -> http::Request<B> {
    http::Request::post("/mcp")
        .header("authorization", format!("Bearer {token}"))
        .body(body)
        .expect("a request")
}

fn announce(mode: &str, port: u16, token: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "TOKEN {token}").expect("stdout");
    out.flush().expect("stdout");
    eprintln!("serve: {mode} on http://127.0.0.1:{port}/mcp");
}

async fn serve(mode: &str, listener: TcpListener, app: axum::Router, token: &str) {
    let port = listener.local_addr().expect("bound").port();
    let mut svc = app.clone();
    wait_until_accepted(mode, &mut svc, || request(token, axum::body::Body::empty())).await;
    announce(mode, port, token);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await.expect("serving");
}
