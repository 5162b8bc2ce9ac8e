//! JWK Sets as an authorization server serves them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protected_resource::fuzzing::jwk_set(data);
});
