//! MCP POST bodies through the tool gate's classifier, checked against a full serde_json
//! parse: what the gate admits as "not a tools/call" is not one to serde_json either.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protected_resource::fuzzing::tool_calls(data);
});
