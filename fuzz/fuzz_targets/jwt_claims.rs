//! Claims of correctly signed tokens: an accepted token always names the trusted issuer,
//! this audience, a subject, and has not expired, and its claims built on demand are the
//! token's exactly; the one-pass claims reader accepts nothing `serde_json::Value` refuses.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protected_resource::fuzzing::claims_json(data);
    protected_resource::fuzzing::Tokens::get().validate_claims(data);
});
