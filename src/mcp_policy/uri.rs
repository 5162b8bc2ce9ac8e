//! Matching resource URIs against the policy's rules: RFC 6570 templates matched in linear
//! time, and the spellings of one URI that a server might treat as the same resource.

use percent_encoding::percent_decode_str;

use crate::error::{ConfigError, ConfigErrorKind, printable};

/// One piece of a URI template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Text that must appear as is.
    Literal(String),
    /// `{var}`: one or more characters, none of `/`, `?`, `#`.
    Segment,
    /// `{+var}`, `{#var}` and the other operators: any characters, possibly none. Matching
    /// more than the server would is the safe side: a requirement then covers more URIs.
    Any,
}

/// A resource URI template (RFC 6570 expressions, matched without regard to variable names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UriTemplate {
    text: String,
    pieces: Vec<Piece>,
}

impl UriTemplate {
    /// Parses a template; an unclosed or empty expression is a configuration error.
    pub(crate) fn parse(text: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| {
            ConfigError::new(
                ConfigErrorKind::InvalidPolicy,
                "resource template",
                format!("`{}`: {why}", printable(text)),
            )
        };
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| bad("an unclosed `{`"))?;
            let expr = &after[..close];
            if expr.is_empty() || expr.contains('{') {
                return Err(bad("an empty or nested expression"));
            }
            pieces.push(if expr.starts_with(['+', '#', '/', '.', ';', '?', '&']) {
                Piece::Any
            } else {
                Piece::Segment
            });
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(bad("a `}` without `{`"));
        }
        if !rest.is_empty() {
            pieces.push(Piece::Literal(rest.to_owned()));
        }
        if pieces.is_empty() {
            return Err(bad("an empty template"));
        }
        Ok(Self {
            text: text.to_owned(),
            pieces,
        })
    }

    /// The template as configured.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `uri` is an expansion of the template: a set of reachable positions carried
    /// through the pieces, so time grows with the URI's length times the pieces, whatever
    /// the URI holds.
    pub(crate) fn matches(&self, uri: &str) -> bool {
        let bytes = uri.as_bytes();
        let n = bytes.len();
        let mut reach = vec![false; n + 1];
        reach[0] = true;
        for piece in &self.pieces {
            let mut next = vec![false; n + 1];
            match piece {
                Piece::Literal(text) => {
                    for i in (0..=n).filter(|&i| reach[i]) {
                        if bytes[i..].starts_with(text.as_bytes()) {
                            next[i + text.len()] = true;
                        }
                    }
                }
                Piece::Segment => {
                    // Reachable at j when some reachable i < j starts a run without
                    // separators that covers i..j.
                    let mut open = false;
                    for j in 0..=n {
                        if j > 0 {
                            if matches!(bytes[j - 1], b'/' | b'?' | b'#') {
                                open = false;
                            } else if open {
                                next[j] = true;
                            }
                        }
                        if reach[j] && j < n && !matches!(bytes[j], b'/' | b'?' | b'#') {
                            open = true;
                        }
                    }
                }
                Piece::Any => {
                    let mut seen = false;
                    for j in 0..=n {
                        seen |= reach[j];
                        next[j] = seen;
                    }
                }
            }
            reach = next;
        }
        reach[n]
    }
}

/// The spellings of `uri` a rule is matched against: as sent, percent-decoded (when that
/// is UTF-8), and each of those as a URL parser normalises it (lower-case scheme and host,
/// dot segments removed). A rule that matches any of them applies, so `admin://%72eport` and
/// `ADMIN://report` meet the rules of `admin://report`, `file:///a/../secret` those of
/// `file:///secret`.
pub(crate) fn spellings(uri: &str) -> Vec<String> {
    let mut out = vec![uri.to_owned()];
    if let Ok(decoded) = percent_decode_str(uri).decode_utf8()
        && decoded != uri
    {
        out.push(decoded.into_owned());
    }
    for i in 0..out.len() {
        if let Ok(url) = reqwest::Url::parse(&out[i]) {
            let normal = url.to_string();
            if !out.contains(&normal) {
                out.push(normal);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> UriTemplate {
        UriTemplate::parse(s).unwrap()
    }

    #[test]
    fn templates_match_their_expansions() {
        let report = t("admin://reports/{id}");
        assert!(report.matches("admin://reports/7"));
        assert!(!report.matches("admin://reports/"));
        assert!(!report.matches("admin://reports/7/raw"));
        assert!(!report.matches("admin://reports"));
        let files = t("file:///{+path}");
        assert!(files.matches("file:///etc/passwd"));
        assert!(files.matches("file:///"));
        let two = t("db://{schema}/{table}/rows");
        assert!(two.matches("db://a/b/rows"));
        assert!(!two.matches("db://a/rows"));
        assert!(t("{+all}").matches(""));
        // Repeated literals and runs: the set of positions finds the match a greedy scan
        // would miss.
        assert!(t("x{a}x{b}x").matches("xaxxbx"));
        // A long URI is linear work.
        let long = format!("file:///{}", "a/".repeat(500_000));
        assert!(files.matches(&long));
        assert!(!report.matches(&long));
    }

    #[test]
    fn bad_templates_are_configuration_errors() {
        for bad in ["", "a{", "a{}", "a}", "a{{b}}"] {
            assert!(UriTemplate::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn spellings_cover_encodings_case_and_dot_segments() {
        let s = spellings("ADMIN://%72eport");
        assert!(s.contains(&"admin://report".to_owned()), "{s:?}");
        let s = spellings("admin://host/x/../%72eport");
        assert!(s.contains(&"admin://host/report".to_owned()), "{s:?}");
        let s = spellings("file:///public/../secret/key");
        assert!(s.contains(&"file:///secret/key".to_owned()), "{s:?}");
        assert_eq!(spellings("admin://report"), ["admin://report"]);
        // Invalid UTF-8 after decoding: only the other spellings.
        assert!(!spellings("a://%ff").is_empty());
    }
}
