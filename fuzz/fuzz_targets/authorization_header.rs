//! The `Authorization` header (and a query string beside it): RFC 6750 extraction.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte chooses whether the query string also carries a token.
    let (query, value) = match data.split_first() {
        Some((b, rest)) if b % 2 == 0 => (Some("x=1&access_token=y"), rest),
        Some((_, rest)) => (None, rest),
        None => (None, data),
    };
    protected_resource::fuzzing::authorization_header(value, query);
});
