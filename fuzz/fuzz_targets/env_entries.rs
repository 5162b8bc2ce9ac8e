//! The JSON list of authorization servers in MCP_SERVER_AUTH_AUTHORIZATION_SERVERS.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        protected_resource::fuzzing::env_entries(text);
    }
});
