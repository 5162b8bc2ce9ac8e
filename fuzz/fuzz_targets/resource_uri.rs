//! A resource URI template and a URI (`template\nuri`): the linear-time matcher agrees with a
//! plain backtracking one, and spelling a URI never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protected_resource::fuzzing::resource_uri(data);
});
