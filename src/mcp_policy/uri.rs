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
    /// The same with lower-case literals, for the lower-case spellings of a URI.
    lower: Vec<Piece>,
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
        let lower = pieces
            .iter()
            .map(|p| match p {
                Piece::Literal(t) => Piece::Literal(t.to_ascii_lowercase()),
                other => other.clone(),
            })
            .collect();
        Ok(Self {
            text: text.to_owned(),
            pieces,
            lower,
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
        matches_pieces(&self.pieces, uri) || matches_pieces(&self.lower, uri)
    }
}

fn matches_pieces(pieces: &[Piece], uri: &str) -> bool {
    {
        let bytes = uri.as_bytes();
        let n = bytes.len();
        let mut reach = vec![false; n + 1];
        reach[0] = true;
        for piece in pieces {
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

/// Resource URIs longer than this are not spelled out: every resource rule applies to them.
pub(crate) const MAX_SPELLED_URI: usize = 16 * 1024;

/// The spellings of `uri` a rule is matched against, each of which a server might treat as
/// the same resource: as sent; percent-decoded (when that is UTF-8); as a URL parser
/// normalises it (dot segments removed; scheme and, for `http`, `https`, `file` and the
/// other special schemes, host in lower case); without query and fragment; with repeated
/// slashes after the authority collapsed; and every one of those in ASCII lower case. A rule
/// that matches any of them applies: `admin://%72eport`, `ADMIN://REPORT` and
/// `admin://report?x` meet the rules of `admin://report`; `file:///a/../secret//key` and
/// `file:////secret/key` those of `file:///secret/key`.
pub(crate) fn spellings(uri: &str) -> Vec<String> {
    fn push(out: &mut Vec<String>, s: String) {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    let mut out = vec![uri.to_owned()];
    if let Ok(decoded) = percent_decode_str(uri).decode_utf8() {
        push(&mut out, decoded.into_owned());
    }
    for i in 0..out.len() {
        if let Ok(url) = reqwest::Url::parse(&out[i]) {
            push(&mut out, url.to_string());
        }
    }
    for i in 0..out.len() {
        let bare = out[i]
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned();
        let collapsed = collapse_slashes(&out[i]);
        push(&mut out, collapse_slashes(&bare));
        push(&mut out, bare);
        push(&mut out, collapsed);
    }
    for i in 0..out.len() {
        let lower = out[i].to_ascii_lowercase();
        push(&mut out, lower);
    }
    out
}

/// `uri` with every run of `/` in its path collapsed to one (`scheme://authority` kept as is).
fn collapse_slashes(uri: &str) -> String {
    let split = match uri.find("://") {
        // The authority runs to the next `/`.
        Some(i) => uri[i + 3..].find('/').map_or(uri.len(), |j| i + 3 + j),
        None => uri.find(':').map_or(0, |i| i + 1),
    };
    let (head, path) = uri.split_at(split);
    let mut out = String::with_capacity(uri.len());
    out.push_str(head);
    let mut previous_slash = false;
    for c in path.chars() {
        if c == '/' && previous_slash {
            continue;
        }
        previous_slash = c == '/';
        out.push(c);
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
    fn spellings_cover_slashes_queries_and_case() {
        let has = |uri: &str, want: &str| {
            let s = spellings(uri);
            assert!(s.contains(&want.to_owned()), "{uri}: {s:?}");
        };
        has("admin://REPORT", "admin://report");
        has("admin://report?x=1#f", "admin://report");
        has("file:////secret/key", "file:///secret/key");
        has("file:///secret//key", "file:///secret/key");
        has("file:///a/../secret//key", "file:///secret/key");
        assert_eq!(collapse_slashes("file:////a//b"), "file:///a/b");
        assert_eq!(collapse_slashes("urn:a//b"), "urn:a/b");
        // Upper-case template literals meet lower-case spellings.
        assert!(
            UriTemplate::parse("ADMIN://reports/{id}")
                .unwrap()
                .matches("admin://reports/7")
        );
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
        assert_eq!(spellings("").len(), 1);
        // Invalid UTF-8 after decoding: only the other spellings.
        assert!(!spellings("a://%ff").is_empty());
    }
}
