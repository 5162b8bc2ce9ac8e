//! One `tracing` span per decided request (`protected_resource::request`): issuer (configured
//! or `unknown`), outcome, reason and duration, never the token; metadata requests have none.
//! A capturing subscriber installed globally: its own test binary, since a thread-local one
//! races with other tests over tracing's per-callsite interest cache.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use protected_resource::testkit::MockAuthorizationServer;
use protected_resource::{ProtectedResourceLayer, ResourceOwner, ResourceServerAuth};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

type Fields = BTreeMap<String, String>;

/// Keeps the fields of every closed `protected_resource` span.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Fields>>>);

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Visitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(&mut Visitor(fields));
        }
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && span.name() == "protected_resource"
            && let Some(fields) = span.extensions().get::<Fields>()
        {
            self.0.lock().unwrap().push(fields.clone());
        }
    }
}

#[tokio::test]
async fn each_decided_request_has_one_span_with_outcome_reason_issuer_and_duration() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let a = MockAuthorizationServer::start().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let canonical = format!("{base}/mcp");
    let auth = ResourceServerAuth::builder()
        .canonical_url(&canonical)
        .authorization_server(a.entry())
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/mcp",
            axum::routing::post(|owner: ResourceOwner| async move { owner.user_id().to_owned() }),
        )
        .layer(ProtectedResourceLayer::new(auth));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let http = reqwest::Client::new();
    let good = a.token().audience(&canonical).subject("alice").sign();
    let expired = a
        .token()
        .audience(&canonical)
        .subject("bob")
        .expires_in(-600)
        .sign();
    for token in [Some(&good), None, Some(&expired)] {
        let mut req = http.post(&canonical);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap().text().await.unwrap();
    }
    http.get(format!("{base}/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    server.abort();
    let _ = server.await;

    let spans = capture.0.lock().unwrap().clone();
    assert_eq!(
        spans.len(),
        3,
        "one per decided request, none for metadata: {spans:?}"
    );
    let get = |i: usize, k: &str| spans[i].get(k).cloned().unwrap_or_default();
    assert_eq!(
        (get(0, "outcome"), get(0, "reason"), get(0, "issuer")),
        (
            "accepted".to_owned(),
            "none".to_owned(),
            a.issuer().to_owned()
        )
    );
    assert_eq!(
        (get(1, "outcome"), get(1, "reason"), get(1, "issuer")),
        ("refused".into(), "missing_token".into(), "unknown".into())
    );
    assert_eq!(
        (get(2, "outcome"), get(2, "reason")),
        ("refused".into(), "expired".into())
    );
    for span in &spans {
        assert!(span.contains_key("duration_ms"), "{span:?}");
        let all = format!("{span:?}");
        for secret in [good.as_str(), expired.as_str(), "alice", "bob"] {
            assert!(!all.contains(secret), "{secret} in {all}");
        }
    }
}
