//! `WWW-Authenticate` challenges with arbitrary parameter values (split at NUL bytes).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.split('\0').take(4).collect();
    protected_resource::fuzzing::challenge(&values);
});
