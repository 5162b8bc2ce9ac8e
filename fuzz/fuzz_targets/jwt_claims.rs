//! Claims of correctly signed tokens: an accepted token always names the trusted issuer,
//! this audience, a subject, and has not expired.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protected_resource::fuzzing::Tokens::get().validate_claims(data);
});
