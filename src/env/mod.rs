//! Configuration from environment variables, with the names the model documents.
//!
//! | variable | alias (read by the model's current code) | meaning |
//! |---|---|---|
//! | `MCP_SERVER_AUTH_CANONICAL_URL` | `MCP_RESOURCE_SERVER_CANONICAL_URL` | the canonical URL |
//! | `MCP_SERVER_AUTH_AUTHORIZATION_SERVERS` | `MCP_RESOURCE_SERVER_AUTHORIZATION_SERVERS` | JSON array of entries (below) |
//! | `MCP_SERVER_AUTH_SCOPES_SUPPORTED` | `MCP_RESOURCE_SERVER_SCOPES_SUPPORTED` | space-separated scopes for the metadata |
//! | `MCP_SERVER_AUTH_DEFAULT_CHALLENGE_SCOPES` | `MCP_RESOURCE_SERVER_DEFAULT_CHALLENGE_SCOPES` | space-separated scopes for the 401 challenge |
//! | `MCP_SERVER_SESSION_KEY` (or `_FILE`: a file holding it) | | the [`SealingKey`] binding MCP sessions to their users, base64url, at least 32 bytes decoded; shared by every replica (unset: a random key per process, with a warning) |
//! | `MCP_SERVER_SESSION_KEY_PREVIOUS` (or `_FILE`) | | keys still accepted during a rotation (base64url, separated by commas or spaces) |
//! | `MCP_SERVER_AUTH_DPOP_NONCE_KEY` (or `_FILE`) | | switches DPoP server nonces on: the key (base64url, at least 32 bytes decoded), shared by every replica |
//! | `MCP_SERVER_AUTH_DPOP_REPLAY_STORE` (or `_FILE`) | | a Redis URL: the DPoP replay check shared by every replica (feature `redis`); unset: per process |
//!
//! Each entry of the JSON array is an object with `issuer` (required), `jwks_uri` (when
//! absent, it is discovered from the issuer's metadata, see
//! [`AuthorizationServerEntry::new`](crate::AuthorizationServerEntry::new)),
//! `authorization_server_url` (default: the issuer), `algorithm` (a string) **or** `algorithms` (an array; default
//! `["RS256"]`), `expected_audiences` (array of strings; default the canonical URL) and
//! `validation_options` (`verify_exp`, `verify_iat`, `verify_iss`, `verify_nbf`: booleans;
//! `leeway`: seconds; `require_at_jwt_type`, `reject_id_token_claims`: booleans;
//! `allowed_clients`: array of client ids; `max_token_age`: seconds; `required_claims`: an
//! object from claim path to a value or an array of values, all required), and `initial_jwks`
//! (a JWK set object) **or** `initial_jwks_file` (a file holding one; see
//! [`AuthorizationServerEntry::initial_jwks`](crate::AuthorizationServerEntry::initial_jwks)),
//! `scope_prefix` (see
//! [`AuthorizationServerEntry::scope_prefix`](crate::AuthorizationServerEntry::scope_prefix)),
//! and `introspection` (see [`Introspection`](crate::Introspection)): an object with
//! `client_id` (required), `auth_method` (`client_secret_basic`, the default,
//! `client_secret_post` or `private_key_jwt`), `client_secret` or `client_secret_file`,
//! `private_key_file` (PKCS#8 PEM) with `private_key_alg` (default `RS256`) and `key_id`,
//! `endpoint` (default: discovered), `cache_ttl` and `timeout` (seconds), `max_concurrent`.
//! An `issuer` may be a pattern with one `{name}` placeholder standing for a path segment
//! (see [`AuthorizationServerEntry::tenants`](crate::AuthorizationServerEntry::tenants)), with
//! `tenants` (array of accepted values; default any), `tenant_claim` (default `tid` for
//! Microsoft Entra) and `max_tenants` (default 1000); `dpop` (`"allowed"`, the default,
//! `"required"` or `"off"`: see [`DpopPolicy`](crate::DpopPolicy)) and `dpop_algorithms` (the
//! DPoP proof algorithms; default every asymmetric one).
//! Unknown keys are errors, not ignored.
//!
//! Key-cache settings, each overriding the builder's default (durations in seconds, fractions
//! allowed; see the builder's `jwks_*` methods): `MCP_SERVER_AUTH_JWKS_CACHE_TTL`,
//! `…_JWKS_CACHE_TTL_MIN`, `…_JWKS_CACHE_TTL_MAX`, `…_JWKS_STALE_IF_ERROR`,
//! `…_JWKS_REFETCH_COOLDOWN`, `…_JWKS_MAX_BACKOFF`, `…_JWKS_FETCH_TIMEOUT`,
//! `…_JWKS_CONNECT_TIMEOUT`, `…_JWKS_MAX_RESPONSE_BYTES` (bytes); `MCP_SERVER_AUTH_MAX_TOKEN_BYTES`;
//! `MCP_SERVER_AUTH_CA_CERTS` (PEM CA certificates trusted besides the system's for key sets
//! and metadata; or `_FILE`, a file holding them, at most 1 MiB).
//!
//! Every secret may be given in a file instead: `NAME_FILE` names the file, read once at
//! `build()` (at most 64 KiB; setting both `NAME` and `NAME_FILE` is an error).
//!
//! Values set in code win over the environment. When both a name and its alias are set, the
//! `MCP_SERVER_AUTH_*` name wins. Empty variables count as unset.
//!
//! ```
//! use protected_resource::ResourceServerAuth;
//!
//! let auth = ResourceServerAuth::builder()
//!     .with_env_vars([
//!         ("MCP_SERVER_AUTH_CANONICAL_URL", "http://127.0.0.1:8000/mcp"),
//!         (
//!             "MCP_SERVER_AUTH_AUTHORIZATION_SERVERS",
//!             r#"[{"authorization_server_url": "https://auth.example.com",
//!                  "issuer": "https://auth.example.com",
//!                  "jwks_uri": "https://auth.example.com/jwks",
//!                  "algorithm": "RS256",
//!                  "expected_audiences": ["my-client-id"]}]"#,
//!         ),
//!     ])
//!     .build()?;
//! assert_eq!(auth.authorization_servers()[0].get_expected_audiences(), ["my-client-id"]);
//! # Ok::<(), protected_resource::ConfigError>(())
//! ```

use std::collections::HashMap;

use crate::config::{AuthorizationServerEntry, check_canonical_url, clean_scopes};
use crate::error::{ConfigError, ConfigErrorKind};
use crate::sealing_key::SealingKey;

mod entries;
mod introspection;
mod keys;

pub(crate) use self::entries::parse_entries;
pub use self::keys::{
    CA_CERTS, JWKS_CACHE_TTL, JWKS_CACHE_TTL_MAX, JWKS_CACHE_TTL_MIN, JWKS_CONNECT_TIMEOUT,
    JWKS_FETCH_TIMEOUT, JWKS_MAX_BACKOFF, JWKS_MAX_RESPONSE_BYTES, JWKS_REFETCH_COOLDOWN,
    JWKS_STALE_IF_ERROR, MAX_TOKEN_BYTES,
};
pub(crate) use self::keys::{ca_certs, jwks_settings, max_token_bytes};

/// The canonical URL variable.
pub const CANONICAL_URL: &str = "MCP_SERVER_AUTH_CANONICAL_URL";
/// The authorization servers variable (a JSON array).
pub const AUTHORIZATION_SERVERS: &str = "MCP_SERVER_AUTH_AUTHORIZATION_SERVERS";
/// The supported scopes variable (space-separated).
pub const SCOPES_SUPPORTED: &str = "MCP_SERVER_AUTH_SCOPES_SUPPORTED";
/// The default challenge scopes variable (space-separated).
pub const DEFAULT_CHALLENGE_SCOPES: &str = "MCP_SERVER_AUTH_DEFAULT_CHALLENGE_SCOPES";

/// `MCP_SERVER_SESSION_KEY`: the [`SealingKey`] (base64url, at least 32 bytes decoded)
/// binding MCP sessions to their users; `MCP_SERVER_SESSION_KEY_FILE` names a file holding it
/// instead.
pub const SESSION_KEY: &str = "MCP_SERVER_SESSION_KEY";
/// `MCP_SERVER_SESSION_KEY_PREVIOUS`: keys still accepted during a rotation (base64url,
/// separated by commas or whitespace); `MCP_SERVER_SESSION_KEY_PREVIOUS_FILE` names a file.
pub const SESSION_KEY_PREVIOUS: &str = "MCP_SERVER_SESSION_KEY_PREVIOUS";

/// `MCP_SERVER_AUTH_DPOP_NONCE_KEY`: the key of DPoP server nonces (base64url, at least 32
/// bytes decoded; `_FILE` names a file holding it); unset: no nonces. See
/// [`dpop_nonce_key`](crate::ResourceServerAuthBuilder::dpop_nonce_key).
pub const DPOP_NONCE_KEY: &str = "MCP_SERVER_AUTH_DPOP_NONCE_KEY";
/// `MCP_SERVER_AUTH_DPOP_REPLAY_STORE`: a Redis URL where every replica keeps the DPoP
/// replay check (feature `redis`; `_FILE` names a file holding it, as it may hold a
/// password); unset: each process keeps its own. See
/// `ResourceServerAuthBuilder::dpop_replay_redis`.
pub const DPOP_REPLAY_STORE: &str = "MCP_SERVER_AUTH_DPOP_REPLAY_STORE";

/// Whether `name` is one of this crate's variables (or an alias of one).
pub(crate) fn is_ours(name: &str) -> bool {
    name.starts_with("MCP_SERVER_AUTH_")
        || name.starts_with("MCP_RESOURCE_SERVER_")
        || name.starts_with(SESSION_KEY)
}

fn alias(name: &str) -> String {
    name.replacen("MCP_SERVER_AUTH_", "MCP_RESOURCE_SERVER_", 1)
}

/// Where the variables are read from.
#[derive(Clone)]
pub(crate) enum EnvSource {
    Process,
    Map(HashMap<String, String>),
}

/// Never prints values (the map may be a whole process environment, secrets included).
impl std::fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Process => f.write_str("Process"),
            Self::Map(m) => write!(f, "Map({} variables, values redacted)", m.len()),
        }
    }
}

impl EnvSource {
    fn raw(&self, name: &str) -> Result<Option<String>, ConfigError> {
        match self {
            Self::Map(m) => Ok(m.get(name).cloned()),
            Self::Process => match std::env::var(name) {
                Ok(v) => Ok(Some(v)),
                Err(std::env::VarError::NotPresent) => Ok(None),
                Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::new(
                    ConfigErrorKind::InvalidEnvironment,
                    name,
                    "the value is not valid UTF-8",
                )),
            },
        }
    }

    /// The value of `name`, else of its alias, with the name it was read from.
    fn get(&self, name: &str) -> Result<Option<(String, String)>, ConfigError> {
        for n in [name.to_owned(), alias(name)] {
            if let Some(v) = self.raw(&n)?
                && !v.trim().is_empty()
            {
                return Ok(Some((n, v)));
            }
        }
        Ok(None)
    }
}

fn split_scopes(v: &str) -> Vec<String> {
    v.split_ascii_whitespace().map(str::to_owned).collect()
}

/// The canonical URL the environment gives, checked; `None` when unset.
pub(crate) fn canonical_url(env: &EnvSource) -> Result<Option<String>, ConfigError> {
    let Some((name, v)) = env.get(CANONICAL_URL)? else {
        return Ok(None);
    };
    check_canonical_url(v.trim())
        .map_err(|e| ConfigError::new(e.kind(), "", e.message().to_owned()).within(&name))?;
    Ok(Some(v.trim().to_owned()))
}

/// The authorization servers the environment gives (a JSON array); `None` when unset.
pub(crate) fn authorization_servers(
    env: &EnvSource,
) -> Result<Option<Vec<AuthorizationServerEntry>>, ConfigError> {
    let Some((name, v)) = env.get(AUTHORIZATION_SERVERS)? else {
        return Ok(None);
    };
    parse_entries(&v).map(Some).map_err(|e| e.within(&name))
}

/// The space-separated scopes of `var` ([`SCOPES_SUPPORTED`] or
/// [`DEFAULT_CHALLENGE_SCOPES`]), checked; `None` when unset.
pub(crate) fn scopes(env: &EnvSource, var: &str) -> Result<Option<Vec<String>>, ConfigError> {
    let Some((name, v)) = env.get(var)? else {
        return Ok(None);
    };
    let scopes = split_scopes(&v);
    clean_scopes(scopes.clone(), "").map_err(|e| e.within(&name))?;
    Ok(Some(scopes))
}

/// The largest secret read from a `_FILE` variable's file.
const MAX_SECRET_BYTES: usize = 64 * 1024;

/// The value of `name` or the contents of the file `name_FILE` names (not both), with the
/// variable it came from. The file is read once, and refused when larger than `limit` bytes.
pub(crate) fn value_or_file(
    env: &EnvSource,
    name: &str,
    limit: usize,
) -> Result<Option<(String, String)>, ConfigError> {
    let file_var = format!("{name}_FILE");
    match (env.get(name)?, env.get(&file_var)?) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            ConfigErrorKind::InvalidEnvironment,
            name,
            format!("set {name} or {file_var}, not both"),
        )),
        (Some(v), None) => Ok(Some(v)),
        (None, Some((_, path))) => {
            let text = read_bounded(path.trim(), limit).map_err(|message| {
                ConfigError::new(ConfigErrorKind::InvalidEnvironment, &file_var, message)
            })?;
            Ok(Some((file_var, text)))
        }
        (None, None) => Ok(None),
    }
}

/// The UTF-8 contents of the file at `path`, at most `limit` bytes (read no further).
pub(crate) fn read_bounded(path: &str, limit: usize) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("the file can not be read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("the file can not be read: {e}"))?;
    if bytes.len() > limit {
        return Err(format!("the file is larger than {limit} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "the file is not UTF-8 text".to_owned())
}

/// The session sealing key the environment gives ([`SESSION_KEY`], with the
/// [`SESSION_KEY_PREVIOUS`] keys accepted too); `None` when unset. Errors name the variable
/// and never show the value.
pub(crate) fn session_key(env: &EnvSource) -> Result<Option<SealingKey>, ConfigError> {
    let Some((name, text)) = value_or_file(env, SESSION_KEY, MAX_SECRET_BYTES)? else {
        if value_or_file(env, SESSION_KEY_PREVIOUS, MAX_SECRET_BYTES)?.is_some() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidEnvironment,
                SESSION_KEY_PREVIOUS,
                format!("previous keys without a current one: set {SESSION_KEY} too"),
            ));
        }
        return Ok(None);
    };
    let named =
        |name: &str, e: ConfigError| ConfigError::new(e.kind(), name, e.message().to_owned());
    let mut key = SealingKey::from_base64url(&text).map_err(|e| named(&name, e))?;
    if let Some((name, text)) = value_or_file(env, SESSION_KEY_PREVIOUS, MAX_SECRET_BYTES)? {
        for old in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
        {
            key = key.with_previous(&SealingKey::from_base64url(old).map_err(|e| named(&name, e))?);
        }
    }
    Ok(Some(key))
}

/// The DPoP nonce key the environment gives ([`DPOP_NONCE_KEY`]); `None` when unset. Errors
/// name the variable and never show the value.
pub(crate) fn dpop_nonce_key(env: &EnvSource) -> Result<Option<SealingKey>, ConfigError> {
    let Some((name, text)) = value_or_file(env, DPOP_NONCE_KEY, MAX_SECRET_BYTES)? else {
        return Ok(None);
    };
    SealingKey::from_base64url(&text)
        .map(Some)
        .map_err(|e| ConfigError::new(e.kind(), &name, e.message().to_owned()))
}

/// The Redis URL of the shared DPoP replay check ([`DPOP_REPLAY_STORE`]); `None` when unset.
pub(crate) fn dpop_replay_store(env: &EnvSource) -> Result<Option<String>, ConfigError> {
    Ok(value_or_file(env, DPOP_REPLAY_STORE, MAX_SECRET_BYTES)?
        .map(|(_, url)| url.trim().to_owned()))
}
