//! RFC 9449 §4.3 item 9: a proof's `htu` names the request's URI, ignoring query and
//! fragment, compared after syntax-based and scheme-based normalisation (RFC 3986 §6.2.2,
//! §6.2.3): scheme and host case-insensitive, default port dropped, an empty path is `/`, dot
//! segments removed, percent-encoded unreserved characters decoded and the others' hex digits
//! compared in upper case. The URL parser also takes `%2E` segments as dot segments and `\`
//! as `/` (WHATWG), on both sides of the comparison: the request URI compared is the one the
//! server routes, so the router must resolve paths the same way (axum does not decode `%2E`).

/// `uri` normalised for comparison, without query and fragment; `None` when it is not an
/// absolute `http(s)` URI with a host.
pub(crate) fn normalised(uri: &str) -> Option<String> {
    let url = reqwest::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    let host = url.host_str()?;
    let port = match url.port() {
        Some(p) => format!(":{p}"),
        None => String::new(),
    };
    // The URL parser has lower-cased scheme and host, dropped the default port, removed dot
    // segments and made an empty path `/`; percent-encodings are left as written.
    Some(format!(
        "{}://{}{port}{}",
        url.scheme(),
        host,
        percent_normalised(url.path())
    ))
}

/// Percent-encodings of unreserved characters decoded, the others' hex in upper case.
fn percent_normalised(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(h), Some(l)) = (hex(*h), hex(*l))
        {
            let b = h * 16 + l;
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(h)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(l)]));
            }
            i += 3;
            continue;
        }
        out.push(char::from(bytes[i]));
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::normalised;

    #[test]
    fn equivalent_spellings_compare_equal_and_others_do_not() {
        let n = |s: &str| normalised(s).unwrap();
        let base = n("https://mcp.example.com/mcp");
        for same in [
            "HTTPS://MCP.Example.COM/mcp",
            "https://mcp.example.com:443/mcp",
            "https://mcp.example.com/mcp?x=1",
            "https://mcp.example.com/mcp#f",
            "https://mcp.example.com/a/../mcp",
            "https://mcp.example.com/%6Dcp",
        ] {
            assert_eq!(n(same), base, "{same}");
        }
        assert_eq!(n("https://a.example"), n("https://a.example/"));
        assert_eq!(n("https://a.example/%c3%a9"), n("https://a.example/%C3%A9"));
        for other in [
            "http://mcp.example.com/mcp",
            "https://mcp.example.com:8443/mcp",
            "https://mcp.example.com/MCP",
            "https://mcp.example.com/mcp/",
            "https://mcp.example.org/mcp",
        ] {
            assert_ne!(n(other), base, "{other}");
        }
        assert_eq!(normalised("mcp.example.com/mcp"), None);
        assert_eq!(normalised("ftp://mcp.example.com/mcp"), None);
        assert_eq!(normalised("https://u@mcp.example.com/mcp"), None);
        assert_eq!(normalised("https://:pw@mcp.example.com/mcp"), None);
        // IPv6 hosts compare in their canonical form.
        assert_eq!(n("https://[0:0::1]:8443/mcp"), n("https://[::1]:8443/mcp"));
    }
}
