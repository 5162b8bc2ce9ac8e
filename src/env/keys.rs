//! The key-cache settings, the token size limit and the private CA roots from the
//! environment: `MCP_SERVER_AUTH_JWKS_*`, `MCP_SERVER_AUTH_MAX_TOKEN_BYTES` and
//! `MCP_SERVER_AUTH_CA_CERTS` (listed in the [`env`](crate::env) module docs).

use std::time::Duration;

use crate::config::{JwksOptions, MAX_DURATION};
use crate::env::{EnvSource, value_or_file};
use crate::error::{ConfigError, ConfigErrorKind};

/// `MCP_SERVER_AUTH_JWKS_CACHE_TTL`: seconds a key set is used when its answer has no caching
/// headers.
pub const JWKS_CACHE_TTL: &str = "MCP_SERVER_AUTH_JWKS_CACHE_TTL";
/// `MCP_SERVER_AUTH_JWKS_CACHE_TTL_MIN`: the least lifetime taken from caching headers (s).
pub const JWKS_CACHE_TTL_MIN: &str = "MCP_SERVER_AUTH_JWKS_CACHE_TTL_MIN";
/// `MCP_SERVER_AUTH_JWKS_CACHE_TTL_MAX`: the longest lifetime taken from caching headers (s).
pub const JWKS_CACHE_TTL_MAX: &str = "MCP_SERVER_AUTH_JWKS_CACHE_TTL_MAX";
/// `MCP_SERVER_AUTH_JWKS_STALE_IF_ERROR`: seconds past its lifetime a key set is still used
/// while refreshing it fails.
pub const JWKS_STALE_IF_ERROR: &str = "MCP_SERVER_AUTH_JWKS_STALE_IF_ERROR";
/// `MCP_SERVER_AUTH_JWKS_REFETCH_COOLDOWN`: the least seconds between two fetches caused by
/// unknown key ids.
pub const JWKS_REFETCH_COOLDOWN: &str = "MCP_SERVER_AUTH_JWKS_REFETCH_COOLDOWN";
/// `MCP_SERVER_AUTH_JWKS_MAX_BACKOFF`: the longest wait between retries of a failing fetch (s).
pub const JWKS_MAX_BACKOFF: &str = "MCP_SERVER_AUTH_JWKS_MAX_BACKOFF";
/// `MCP_SERVER_AUTH_JWKS_FETCH_TIMEOUT`: seconds allowed for one fetch.
pub const JWKS_FETCH_TIMEOUT: &str = "MCP_SERVER_AUTH_JWKS_FETCH_TIMEOUT";
/// `MCP_SERVER_AUTH_JWKS_CONNECT_TIMEOUT`: seconds allowed to connect.
pub const JWKS_CONNECT_TIMEOUT: &str = "MCP_SERVER_AUTH_JWKS_CONNECT_TIMEOUT";
/// `MCP_SERVER_AUTH_JWKS_MAX_RESPONSE_BYTES`: the largest key-set or metadata answer.
pub const JWKS_MAX_RESPONSE_BYTES: &str = "MCP_SERVER_AUTH_JWKS_MAX_RESPONSE_BYTES";
/// `MCP_SERVER_AUTH_MAX_TOKEN_BYTES`: tokens longer than this are refused before parsing.
pub const MAX_TOKEN_BYTES: &str = "MCP_SERVER_AUTH_MAX_TOKEN_BYTES";
/// `MCP_SERVER_AUTH_CA_CERTS`: PEM CA certificates trusted, besides the system's, for key
/// sets and metadata; `MCP_SERVER_AUTH_CA_CERTS_FILE` names a file holding them.
pub const CA_CERTS: &str = "MCP_SERVER_AUTH_CA_CERTS";

/// The largest PEM bundle read from the environment or a file.
const MAX_CA_BYTES: usize = 1024 * 1024;

/// The duration settings: (variable, field in [`JwksOptions::check`]'s errors, where it goes).
type DurationSlot = (
    &'static str,
    &'static str,
    fn(&mut JwksOptions) -> &mut Duration,
);

const DURATIONS: [DurationSlot; 8] = [
    (JWKS_CACHE_TTL, "jwks_cache_ttl", |o| &mut o.ttl),
    (JWKS_CACHE_TTL_MIN, "jwks_cache_ttl_bounds", |o| {
        &mut o.min_ttl
    }),
    (JWKS_CACHE_TTL_MAX, "jwks_cache_ttl_bounds", |o| {
        &mut o.max_ttl
    }),
    (JWKS_STALE_IF_ERROR, "jwks_stale_if_error", |o| {
        &mut o.stale_if_error
    }),
    (JWKS_REFETCH_COOLDOWN, "jwks_refetch_cooldown", |o| {
        &mut o.refetch_cooldown
    }),
    (JWKS_MAX_BACKOFF, "jwks_max_backoff", |o| &mut o.max_backoff),
    (JWKS_FETCH_TIMEOUT, "jwks_fetch_timeout", |o| {
        &mut o.fetch_timeout
    }),
    (JWKS_CONNECT_TIMEOUT, "jwks_connect_timeout", |o| {
        &mut o.connect_timeout
    }),
];

/// Fills the key-cache settings not set in code (`in_code` holds the fields' names, as in
/// [`JwksOptions::check`]'s errors) from the environment. Returns, per field filled, the
/// variable it came from, so that a later range error names the variable.
pub(crate) fn jwks_settings(
    env: &EnvSource,
    opts: &mut JwksOptions,
    in_code: &[&'static str],
) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let mut filled = Vec::new();
    for (var, field, slot) in DURATIONS {
        if in_code.contains(&field) {
            continue;
        }
        if let Some((name, value)) = env.get(var)? {
            *slot(opts) = seconds(&name, &value)?;
            filled.push((field, name));
        }
    }
    if !in_code.contains(&"jwks_max_response_bytes")
        && let Some((name, value)) = env.get(JWKS_MAX_RESPONSE_BYTES)?
    {
        opts.max_response_bytes = bytes(&name, &value)?;
        filled.push(("jwks_max_response_bytes", name));
    }
    Ok(filled)
}

/// `MCP_SERVER_AUTH_MAX_TOKEN_BYTES`, checked; `None` when unset.
pub(crate) fn max_token_bytes(env: &EnvSource) -> Result<Option<usize>, ConfigError> {
    env.get(MAX_TOKEN_BYTES)?
        .map(|(name, value)| bytes(&name, &value))
        .transpose()
}

/// The PEM text of [`CA_CERTS`] (or the file `_FILE` names); `None` when unset.
pub(crate) fn ca_certs(env: &EnvSource) -> Result<Option<(String, Vec<u8>)>, ConfigError> {
    match value_or_file(env, CA_CERTS, MAX_CA_BYTES)? {
        Some((name, text)) if text.len() > MAX_CA_BYTES => Err(ConfigError::new(
            ConfigErrorKind::InvalidEnvironment,
            &name,
            format!("larger than {MAX_CA_BYTES} bytes"),
        )),
        other => Ok(other.map(|(name, text)| (name, text.into_bytes()))),
    }
}

/// A duration in seconds (a number, fractions allowed), at most 365 days.
fn seconds(name: &str, value: &str) -> Result<Duration, ConfigError> {
    let n: f64 = value.trim().parse().map_err(|_| {
        ConfigError::new(
            ConfigErrorKind::InvalidEnvironment,
            name,
            "expected a number of seconds",
        )
    })?;
    if !(0.0..=MAX_DURATION.as_secs_f64()).contains(&n) {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidValue,
            name,
            "must be between 0 and 31536000 seconds",
        ));
    }
    Ok(Duration::from_secs_f64(n))
}

/// A positive whole number of bytes.
fn bytes(name: &str, value: &str) -> Result<usize, ConfigError> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ConfigError::new(
            ConfigErrorKind::InvalidEnvironment,
            name,
            "expected a whole number of bytes greater than zero",
        )),
    }
}
