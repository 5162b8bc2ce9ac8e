//! The metric names (feature `metrics`), published as [`crate::metrics`]' constants; a leaf
//! module, so that any part of the crate can record without depending on the rest.

/// Requests decided by the front door.
pub const REQUESTS: &str = "protected_resource_requests_total";
/// MCP operations decided by the scope gate.
pub const TOOL_DECISIONS: &str = "protected_resource_tool_decisions_total";
/// Key-set fetches.
pub const KEY_FETCHES: &str = "protected_resource_key_fetches_total";
/// Fetches caused by unknown key ids.
pub const UNKNOWN_KID_REFETCHES: &str = "protected_resource_unknown_kid_refetches_total";
/// Usable keys held.
pub const KEYS: &str = "protected_resource_keys";
/// Seconds since the keys were last confirmed.
pub const KEY_SET_AGE: &str = "protected_resource_key_set_age_seconds";

/// Introspection calls (RFC 7662) by result.
pub const INTROSPECTION_CALLS: &str = "protected_resource_introspection_calls_total";
/// Requests decided from a cached introspection answer.
pub const INTROSPECTION_CACHE_HITS: &str = "protected_resource_introspection_cache_hits_total";
