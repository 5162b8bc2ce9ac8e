//! MCP POST bodies through the gate's classifier, checked against a full serde_json parse:
//! every message's method, name, uri (and arguments) read as serde_json reads them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protected_resource::fuzzing::mcp_messages(data);
});
