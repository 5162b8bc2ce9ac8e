//! Compact JWTs as a client sends them, through the public validation API against a fixed
//! key set: nothing unsigned is ever accepted, and every part decodes alike with the hot
//! path's base64url decoder and the base64 crate.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protected_resource::fuzzing::Tokens::get().validate(data);
});
