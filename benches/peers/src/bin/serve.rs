//! One HTTP server for the load test in `benches/http.sh`: `POST /mcp` (and `GET`) answering
//! 200 "ok" through one layer, on 127.0.0.1.
//!
//! ```sh
//! serve <mode> <port>   # mode: none, ours, tower-oauth2, oauth-resource-server, jwt-authorizer
//! ```
//!
//! Starts an in-process mock authorization server (one RS256 key) that lives as long as the
//! process, configures the mode's layer against it (see `src/lib.rs`), waits until the layer
//! accepts a token (at most 10 s), prints `TOKEN <jwt>` as the first line of stdout (audience
//! `http://127.0.0.1:<port>/mcp`, 24 h, scope `mcp:tools`) and serves until killed, with
//! `TCP_NODELAY` on every accepted connection.

use std::io::Write;

use axum::serve::ListenerExt;
use peers_bench::{
    jwt_authorizer, oauth_resource_server, ours, token, tower_oauth2, wait_until_accepted,
};
use protected_resource::ProtectedResourceLayer;
use protected_resource::testkit::MockAuthorizationServer;
use tokio::net::TcpListener;

const MODES: [&str; 5] = [
    "none",
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
