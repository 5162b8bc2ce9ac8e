//! The integration tests, linked into one binary (so axum, rmcp and reqwest are linked once):
//! each module tests one part of the crate over real HTTP on 127.0.0.1.

mod api;
mod common;
mod cors;
mod dev_auth;
mod discovery;
mod downstream;
mod dpop;
mod dpop_layer;
mod fetch_cancel;
mod introspection;
mod key_cache;
mod keys;
mod mcp_app;
mod mcp_lists;
mod mcp_operations;
mod mcp_whoami;
mod metadata_config;
mod offline_keys;
mod providers;
mod readiness;
mod remembered_tokens;
mod scopes;
mod sessions;
mod tenants;
mod token_kinds;
mod validation;
mod who_may_call;
