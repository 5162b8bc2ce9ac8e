//! The configured issuers as label values of metrics and spans, built once: a label is never
//! copied from a token, and an accepted request's counter key is ready-made (no allocation per
//! request).

use std::sync::Arc;

use crate::config::AuthorizationServerEntry;
use crate::config::pattern::IssuerPattern;

/// One configured issuer (or issuer pattern, as configured) as a label value.
pub(crate) struct IssuerLabel {
    pub(crate) name: Arc<str>,
    /// `protected_resource_requests_total{outcome="accepted",reason="none",issuer=name}`.
    #[cfg(feature = "metrics")]
    pub(crate) accepted: ::metrics::Key,
}

impl IssuerLabel {
    fn new(issuer: &str) -> Self {
        let name: Arc<str> = Arc::from(issuer);
        Self {
            #[cfg(feature = "metrics")]
            accepted: accepted_key(&name),
            name,
        }
    }
}

/// The accepted-request counter of a configured issuer (or pattern).
#[cfg(feature = "metrics")]
fn accepted_key(issuer: &Arc<str>) -> ::metrics::Key {
    ::metrics::Key::from_parts(
        crate::metric_names::REQUESTS,
        vec![
            ::metrics::Label::from_static_parts("outcome", "accepted"),
            ::metrics::Label::from_static_parts("reason", "none"),
            ::metrics::Label::new("issuer", ::metrics::SharedString::from(Arc::clone(issuer))),
        ],
    )
}

/// Every configured issuer's label.
pub(crate) struct IssuerLabels {
    exact: Vec<IssuerLabel>,
    patterns: Vec<(IssuerPattern, IssuerLabel)>,
}

impl IssuerLabels {
    pub(crate) fn new(entries: &[AuthorizationServerEntry]) -> Self {
        Self {
            exact: entries
                .iter()
                .map(|e| IssuerLabel::new(e.get_issuer()))
                .collect(),
            patterns: entries
                .iter()
                .filter_map(|e| {
                    let pattern = IssuerPattern::parse(e.get_issuer(), "issuer").ok()??;
                    Some((pattern, IssuerLabel::new(e.get_issuer())))
                })
                .collect(),
        }
    }

    /// The configured issuer equal to `issuer`, or the pattern it fits, if any.
    pub(crate) fn find(&self, issuer: &str) -> Option<&IssuerLabel> {
        self.exact.iter().find(|l| &*l.name == issuer).or_else(|| {
            // A concrete issuer of a pattern is labelled with the pattern.
            self.patterns
                .iter()
                .find(|(p, _)| p.matches(issuer).is_some())
                .map(|(_, label)| label)
        })
    }
}
