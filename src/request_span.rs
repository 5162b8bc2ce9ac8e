//! One `tracing` span per request the front door decides (target
//! `protected_resource::request`, level INFO): `issuer` (a configured issuer or `unknown`),
//! `outcome`, `reason` and `duration_ms`, never the token. The inner service runs inside it.
//! Without a subscriber interested in it, it costs a disabled-callsite check.

use std::time::Instant;

use tracing::Span;
use tracing::field::Empty;

use crate::auth::ResourceServerAuth;
use crate::challenge::Rejection;
use crate::dpop::DpopErrorKind;
use crate::error::ValidationErrorKind;

/// A request's span and when it started (only when the span is enabled).
pub(crate) struct RequestSpan {
    span: Span,
    started: Option<Instant>,
}

impl RequestSpan {
    /// The span of a request about to be decided.
    pub(crate) fn start() -> Self {
        let span = tracing::info_span!(
            target: "protected_resource::request",
            "protected_resource",
            issuer = Empty,
            outcome = Empty,
            reason = Empty,
            duration_ms = Empty,
        );
        let started = (!span.is_disabled()).then(Instant::now);
        Self { span, started }
    }

    /// No span (requests the front door answers without deciding: metadata, preflights).
    pub(crate) fn none() -> Self {
        Self {
            span: Span::none(),
            started: None,
        }
    }

    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    /// Admitted with a token of `issuer`.
    pub(crate) fn accepted(&self, auth: &ResourceServerAuth, issuer: &str) {
        if self.started.is_some() {
            self.span.record("issuer", issuer_label(auth, issuer));
            self.span.record("outcome", "accepted");
            self.span.record("reason", "none");
        }
    }

    /// Refused (or unanswerable).
    pub(crate) fn refused(&self, rejection: &Rejection) {
        if self.started.is_some() {
            let (outcome, reason) = labels(rejection);
            self.span.record("issuer", "unknown");
            self.span.record("outcome", outcome);
            self.span.record("reason", reason);
        }
    }

    /// The request is answered: records its duration (once).
    pub(crate) fn finish(&mut self) {
        if let Some(started) = self.started.take() {
            #[allow(clippy::cast_possible_truncation)] // milliseconds of one request
            let ms = started.elapsed().as_millis() as u64;
            self.span.record("duration_ms", ms);
        }
    }
}

/// The configured issuer equal to `issuer`, or the pattern it fits, if any (a label value
/// never copied from a token).
pub(crate) fn configured_issuer<'a>(
    auth: &'a ResourceServerAuth,
    issuer: &str,
) -> Option<&'a crate::issuer_labels::IssuerLabel> {
    auth.inner.issuer_labels.find(issuer)
}

/// The configured issuer equal to `issuer`, or `unknown`.
fn issuer_label<'a>(auth: &'a ResourceServerAuth, issuer: &str) -> &'a str {
    configured_issuer(auth, issuer).map_or("unknown", |l| &*l.name)
}

/// `(outcome, reason)` of a refusal: `refused` or `unavailable`, and one snake_case word.
pub(crate) fn labels(rejection: &Rejection) -> (&'static str, &'static str) {
    match rejection {
        Rejection::NoCredentials => ("refused", "missing_token"),
        Rejection::InvalidRequest(_) => ("refused", "invalid_request"),
        Rejection::InvalidToken(e) | Rejection::DpopToken(e) if e.kind().is_unavailable() => {
            ("unavailable", reason(e.kind()))
        }
        Rejection::InvalidToken(e) | Rejection::DpopToken(e) => ("refused", reason(e.kind())),
        Rejection::DpopProof(kind) => ("refused", dpop_reason(*kind)),
        Rejection::ReplayUnavailable(reason) => ("unavailable", reason),
    }
}

/// One snake_case word per DPoP proof refusal.
fn dpop_reason(kind: DpopErrorKind) -> &'static str {
    use DpopErrorKind as D;
    match kind {
        D::Malformed => "dpop_malformed",
        D::InvalidType => "dpop_invalid_type",
        D::AlgorithmNotAllowed => "dpop_algorithm_not_allowed",
        D::InvalidKey => "dpop_invalid_key",
        D::InvalidSignature => "dpop_invalid_signature",
        D::MethodMismatch => "dpop_method_mismatch",
        D::UrlMismatch => "dpop_url_mismatch",
        D::Stale => "dpop_stale",
        D::TokenHashMismatch => "dpop_token_hash_mismatch",
        D::Missing => "dpop_missing",
        D::Multiple => "dpop_multiple",
        D::Replayed => "dpop_replayed",
        D::NonceRequired => "dpop_nonce_required",
    }
}

/// One snake_case word per refusal kind.
pub(crate) fn reason(kind: ValidationErrorKind) -> &'static str {
    use ValidationErrorKind as K;
    match kind {
        K::Malformed => "malformed",
        K::TooLarge => "too_large",
        K::AlgorithmNotAllowed => "algorithm_not_allowed",
        K::CriticalHeader => "critical_header",
        K::InvalidType => "invalid_type",
        K::IdToken => "id_token",
        K::SenderConstrained => "sender_constrained",
        K::UnknownIssuer => "untrusted_issuer",
        K::UnknownKey => "unknown_key",
        K::KeyAlgorithmMismatch => "key_algorithm_mismatch",
        K::AmbiguousKey => "ambiguous_key",
        K::InvalidSignature => "invalid_signature",
        K::Expired => "expired",
        K::NotYetValid => "not_yet_valid",
        K::IssuedInFuture => "issued_in_future",
        K::MissingClaim => "missing_claim",
        K::InvalidClaim => "invalid_claim",
        K::InvalidAudience => "invalid_audience",
        K::MissingSubject => "missing_subject",
        K::KeysUnavailable => "keys_unavailable",
        K::ClientNotAllowed => "client_not_allowed",
        K::ClaimsNotAllowed => "claims_not_allowed",
        K::TooOld => "too_old",
        K::Inactive => "inactive",
        K::IntrospectionUnavailable => "introspection_unavailable",
        K::DpopRequired => "dpop_required",
        K::NotDpopBound => "not_dpop_bound",
        K::DpopKeyMismatch => "dpop_key_mismatch",
        K::DpopAlgorithmNotAllowed => "dpop_algorithm_not_allowed",
    }
}
