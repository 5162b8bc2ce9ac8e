//! Metrics (feature `metrics`) through the [`metrics`](https://docs.rs/metrics) facade: the
//! application installs the recorder (Prometheus, OpenTelemetry, …). Names and labels are
//! fixed; label values are bounded and never copied from a token: `issuer` is a configured
//! issuer or `unknown`.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `protected_resource_requests_total` | counter | `outcome` (`accepted`, `refused`, `unavailable`), `reason` (`none`, or one word per refusal: [`reason`]), `issuer` |
//! | `protected_resource_tool_decisions_total` | counter | `decision` (`allowed`, `insufficient_scope`, `not_allowed`: a per-operation rule about the caller, `refused_body`) |
//! | `protected_resource_key_fetches_total` | counter | `issuer`, `result` (`sent`, `failed`, `not_modified`) |
//! | `protected_resource_unknown_kid_refetches_total` | counter | `issuer` |
//! | `protected_resource_keys` | gauge | `issuer` |
//! | `protected_resource_key_set_age_seconds` | gauge | `issuer` |
//! | `protected_resource_introspection_calls_total` | counter | `issuer`, `result` (`active`, `inactive`, `failed`) |
//! | `protected_resource_introspection_cache_hits_total` | counter | `issuer` |
//!
//! Request counters are recorded as requests are decided (metadata, health and probe
//! requests are not counted: they never reach a decision); the key-set ones are published
//! from [`KeySetStats`] by [`record_key_sets`], which an exporter calls
//! before each scrape. Refused requests carry `issuer="unknown"`: the layer does not attribute
//! a token it did not accept to an issuer.
//!
//! ```
//! use protected_resource::metrics;
//!
//! // Once, after installing the recorder: names, units and help texts.
//! metrics::describe_metrics();
//! ```

use crate::auth::ResourceServerAuth;
use crate::challenge::Rejection;
use crate::error::ValidationErrorKind;
use crate::keys::KeySetStats;

pub use crate::metric_names::*;

/// Describes every metric to the installed recorder (units and help texts).
pub fn describe_metrics() {
    use ::metrics::{Unit, describe_counter, describe_gauge};
    describe_counter!(
        REQUESTS,
        Unit::Count,
        "Requests decided by the protected-resource front door"
    );
    describe_counter!(
        TOOL_DECISIONS,
        Unit::Count,
        "MCP operations decided by the scope gate"
    );
    describe_counter!(KEY_FETCHES, Unit::Count, "Key-set fetches by result");
    describe_counter!(
        UNKNOWN_KID_REFETCHES,
        Unit::Count,
        "Key-set fetches caused by unknown key ids"
    );
    describe_counter!(
        INTROSPECTION_CALLS,
        Unit::Count,
        "Token introspection calls by result"
    );
    describe_counter!(
        INTROSPECTION_CACHE_HITS,
        Unit::Count,
        "Requests decided from a cached introspection answer"
    );
    describe_gauge!(KEYS, Unit::Count, "Usable signing keys held per issuer");
    describe_gauge!(
        KEY_SET_AGE,
        Unit::Seconds,
        "Seconds since the issuer's keys were last confirmed"
    );
}

/// The `reason` label of a refusal kind (snake_case, one per [`ValidationErrorKind`]).
#[must_use]
pub fn reason(kind: ValidationErrorKind) -> &'static str {
    crate::request_span::reason(kind)
}

/// Where the request counters are registered (the recorder's view of every call site here).
static METADATA: ::metrics::Metadata<'static> =
    ::metrics::Metadata::new(module_path!(), ::metrics::Level::INFO, Some(module_path!()));

/// Adds one to the counter `key` (a key built once: no allocation per request).
fn increment(key: &::metrics::Key) {
    ::metrics::with_recorder(|r| r.register_counter(key, &METADATA).increment(1));
}

/// An accepted request of a token of `issuer` (one of the configured issuers).
pub(crate) fn accepted(auth: &ResourceServerAuth, issuer: &str) {
    static LABELS: [::metrics::Label; 3] = [
        ::metrics::Label::from_static_parts("outcome", "accepted"),
        ::metrics::Label::from_static_parts("reason", "none"),
        ::metrics::Label::from_static_parts("issuer", "unknown"),
    ];
    static UNKNOWN: ::metrics::Key = ::metrics::Key::from_static_parts(REQUESTS, &LABELS);
    match crate::request_span::configured_issuer(auth, issuer) {
        Some(label) => increment(&label.accepted),
        None => increment(&UNKNOWN),
    }
}

/// A refused (or, keys unavailable, unanswerable) request.
pub(crate) fn refused(rejection: &Rejection) {
    let (outcome, reason) = crate::request_span::labels(rejection);
    ::metrics::counter!(REQUESTS, "outcome" => outcome, "reason" => reason, "issuer" => "unknown")
        .increment(1);
}

/// A scope-gate decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToolDecision {
    Allowed,
    InsufficientScope,
    /// A per-operation rule about the caller.
    NotAllowed,
    /// A body the gate can not read strictly.
    RefusedBody,
}

/// Counts a scope-gate decision (static keys: no allocation per request).
pub(crate) fn tool_decision(decision: ToolDecision) {
    macro_rules! key {
        ($value:literal) => {{
            static LABELS: [::metrics::Label; 1] =
                [::metrics::Label::from_static_parts("decision", $value)];
            static KEY: ::metrics::Key = ::metrics::Key::from_static_parts(TOOL_DECISIONS, &LABELS);
            &KEY
        }};
    }
    increment(match decision {
        ToolDecision::Allowed => key!("allowed"),
        ToolDecision::InsufficientScope => key!("insufficient_scope"),
        ToolDecision::NotAllowed => key!("not_allowed"),
        ToolDecision::RefusedBody => key!("refused_body"),
    });
}

/// Publishes the key sets' state ([`ResourceServerAuth::key_set_stats`]) as the key-set
/// metrics: call it before each scrape (cheap: a few atomics per key set).
///
/// ```
/// # fn run(auth: protected_resource::ResourceServerAuth) {
/// protected_resource::metrics::record_key_sets(&auth.key_set_stats());
/// # }
/// ```
pub fn record_key_sets(stats: &[KeySetStats]) {
    for s in stats {
        for issuer in &s.issuers {
            let issuer = ::metrics::SharedString::from(issuer.clone());
            let fetches = |result: &'static str, value: u64| {
                ::metrics::counter!(KEY_FETCHES, "issuer" => issuer.clone(), "result" => result)
                    .absolute(value);
            };
            fetches("sent", s.fetches);
            fetches("failed", s.failures);
            fetches("not_modified", s.not_modified);
            ::metrics::counter!(UNKNOWN_KID_REFETCHES, "issuer" => issuer.clone())
                .absolute(s.unknown_kid_refetches);
            #[allow(clippy::cast_precision_loss)] // a key count
            ::metrics::gauge!(KEYS, "issuer" => issuer.clone()).set(s.keys as f64);
            if let Some(age) = s.age {
                ::metrics::gauge!(KEY_SET_AGE, "issuer" => issuer).set(age.as_secs_f64());
            }
        }
    }
}
