//! RFC 8414 / OpenID Connect metadata documents found by discovery.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protected_resource::fuzzing::metadata(data);
});
