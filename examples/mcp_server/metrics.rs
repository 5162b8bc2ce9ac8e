//! Prometheus text at `/metrics` on `MCP_SERVER_METRICS_BIND` (host:port; off when unset):
//! the crate's counters through the `metrics` facade, rendered by
//! `metrics-exporter-prometheus`, with the key sets' state published before each scrape.

use std::net::SocketAddr;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusBuilder;
use protected_resource::ResourceServerAuth;

pub const METRICS_BIND: &str = "MCP_SERVER_METRICS_BIND";

/// The metrics address, when set (a bad value is an error naming the variable).
pub fn bind() -> Result<Option<SocketAddr>, String> {
    match std::env::var(METRICS_BIND) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v.trim().parse().map(Some).map_err(|e| {
            format!(
                "invalid {METRICS_BIND} `{}`: {e} (expected host:port)",
                v.escape_debug()
            )
        }),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(format!("invalid {METRICS_BIND}: not valid UTF-8"))
        }
    }
}

/// Installs the recorder and binds the listener now (so that a bad address stops the
/// start); serves `/metrics` in a task.
pub async fn serve(bind: SocketAddr, auth: ResourceServerAuth) -> Result<SocketAddr, String> {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;
    protected_resource::metrics::describe_metrics();
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("could not bind {METRICS_BIND}={bind}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            protected_resource::metrics::record_key_sets(&auth.key_set_stats());
            let text = handle.render();
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text) }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("the metrics listener stopped: {e}");
        }
    });
    Ok(local)
}
