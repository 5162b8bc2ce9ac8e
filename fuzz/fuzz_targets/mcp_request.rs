//! An MCP request's standard headers (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) and
//! body: reading never panics, and what the headers alone name (the `decide_from_headers`
//! mode) is exactly the body's operation whenever the agreement check passes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protected_resource::fuzzing::mcp_request(data);
});
