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
//!
//! Each entry of the JSON array is an object with `issuer` (required), `jwks_uri` (when
//! absent, it is discovered from the issuer's metadata, see
//! [`AuthorizationServerEntry::new`](crate::AuthorizationServerEntry::new)),
//! `authorization_server_url` (default: the issuer), `algorithm` (a string) **or** `algorithms` (an array; default
//! `["RS256"]`), `expected_audiences` (array of strings; default the canonical URL) and
//! `validation_options` (`verify_exp`, `verify_iat`, `verify_iss`, `verify_nbf`: booleans;
//! `leeway`: seconds; `require_at_jwt_type`, `reject_id_token_claims`: booleans;
//! `allowed_clients`: array of client ids; `max_token_age`: seconds; `required_claims`: an
//! object from claim path to a value or an array of values, all required). Unknown keys are
//! errors, not ignored.
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
use std::time::Duration;

use serde::Deserialize;

use crate::algorithm::Algorithm;
use crate::config::{
    AccessTokenValidationOptions, AuthorizationServerEntry, check_canonical_url, clean_scopes,
};
use crate::error::{ConfigError, ConfigErrorKind};
use crate::required_claims::RequiredClaim;
use crate::sealing_key::SealingKey;

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryJson {
    #[serde(default)]
    authorization_server_url: Option<String>,
    issuer: String,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    algorithm: Option<String>,
    #[serde(default)]
    algorithms: Option<Vec<String>>,
    #[serde(default)]
    expected_audiences: Option<Vec<String>>,
    #[serde(default)]
    validation_options: Option<OptionsJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionsJson {
    verify_exp: Option<bool>,
    verify_iat: Option<bool>,
    verify_iss: Option<bool>,
    verify_nbf: Option<bool>,
    leeway: Option<f64>,
    require_at_jwt_type: Option<bool>,
    reject_id_token_claims: Option<bool>,
    allowed_clients: Option<Vec<String>>,
    max_token_age: Option<f64>,
    required_claims: Option<std::collections::BTreeMap<String, OneOrMany>>,
}

/// A required claim's value: one string, or several (all required).
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
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

/// The value of `name` or the contents of the file `name_FILE` names (not both), with the
/// variable it came from.
fn value_or_file(env: &EnvSource, name: &str) -> Result<Option<(String, String)>, ConfigError> {
    let file_var = format!("{name}_FILE");
    match (env.get(name)?, env.get(&file_var)?) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            ConfigErrorKind::InvalidEnvironment,
            name,
            format!("set {name} or {file_var}, not both"),
        )),
        (Some(v), None) => Ok(Some(v)),
        (None, Some((_, path))) => {
            let text = std::fs::read_to_string(path.trim()).map_err(|e| {
                ConfigError::new(
                    ConfigErrorKind::InvalidEnvironment,
                    &file_var,
                    format!("the file can not be read: {e}"),
                )
            })?;
            Ok(Some((file_var, text)))
        }
        (None, None) => Ok(None),
    }
}

/// The session sealing key the environment gives ([`SESSION_KEY`], with the
/// [`SESSION_KEY_PREVIOUS`] keys accepted too); `None` when unset. Errors name the variable
/// and never show the value.
pub(crate) fn session_key(env: &EnvSource) -> Result<Option<SealingKey>, ConfigError> {
    let Some((name, text)) = value_or_file(env, SESSION_KEY)? else {
        if value_or_file(env, SESSION_KEY_PREVIOUS)?.is_some() {
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
    if let Some((name, text)) = value_or_file(env, SESSION_KEY_PREVIOUS)? {
        for old in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
        {
            key = key.with_previous(&SealingKey::from_base64url(old).map_err(|e| named(&name, e))?);
        }
    }
    Ok(Some(key))
}

fn env_err(message: impl Into<String>) -> ConfigError {
    ConfigError::new(ConfigErrorKind::InvalidEnvironment, "", message)
}

/// Parses the JSON array of authorization-server entries.
pub(crate) fn parse_entries(json: &str) -> Result<Vec<AuthorizationServerEntry>, ConfigError> {
    let values: Vec<serde_json::Value> = serde_json::from_str(json).map_err(|e| {
        env_err(format!(
            "expected a JSON array of authorization-server objects: {e}"
        ))
    })?;
    if values.is_empty() {
        return Err(ConfigError::new(
            ConfigErrorKind::NoAuthorizationServers,
            "",
            "the list of authorization servers is empty",
        ));
    }
    let mut out = Vec::with_capacity(values.len());
    for (i, value) in values.into_iter().enumerate() {
        let at = format!("[{i}]");
        let raw: EntryJson =
            serde_json::from_value(value).map_err(|e| env_err(e.to_string()).within(&at))?;
        let algorithms: Vec<Algorithm> = match (raw.algorithm, raw.algorithms) {
            (Some(_), Some(_)) => {
                return Err(env_err("give `algorithm` or `algorithms`, not both").within(&at));
            }
            (Some(one), None) => vec![one.parse().map_err(|e: ConfigError| {
                ConfigError::new(e.kind(), "algorithm", e.message().to_owned()).within(&at)
            })?],
            (None, Some(list)) => list
                .iter()
                .map(|a| a.parse())
                .collect::<Result<_, ConfigError>>()
                .map_err(|e| {
                    ConfigError::new(e.kind(), "algorithms", e.message().to_owned()).within(&at)
                })?,
            (None, None) => vec![Algorithm::RS256],
        };
        let mut options = AccessTokenValidationOptions::default();
        if let Some(o) = raw.validation_options {
            options.verify_exp = o.verify_exp.unwrap_or(options.verify_exp);
            options.verify_iat = o.verify_iat.unwrap_or(options.verify_iat);
            options.verify_iss = o.verify_iss.unwrap_or(options.verify_iss);
            options.verify_nbf = o.verify_nbf.unwrap_or(options.verify_nbf);
            options.require_at_jwt_type =
                o.require_at_jwt_type.unwrap_or(options.require_at_jwt_type);
            options.reject_id_token_claims = o
                .reject_id_token_claims
                .unwrap_or(options.reject_id_token_claims);
            if let Some(clients) = o.allowed_clients {
                if clients.iter().any(|c| c.trim().is_empty()) {
                    return Err(ConfigError::new(
                        ConfigErrorKind::InvalidValue,
                        "validation_options.allowed_clients",
                        "a client id is empty",
                    )
                    .within(&at));
                }
                options.allowed_clients = clients;
            }
            if let Some(required) = o.required_claims {
                for (path, values) in required {
                    let values = match values {
                        OneOrMany::One(v) => vec![v],
                        OneOrMany::Many(v) => v,
                    };
                    if path.is_empty() || values.is_empty() {
                        return Err(ConfigError::new(
                            ConfigErrorKind::InvalidValue,
                            "validation_options.required_claims",
                            "a claim path or its values are empty",
                        )
                        .within(&at));
                    }
                    options
                        .required_claims
                        .extend(values.into_iter().map(|v| RequiredClaim::new(&path, v)));
                }
            }
            if let Some(age) = o.max_token_age {
                if !(1.0..=31_536_000.0).contains(&age) {
                    return Err(ConfigError::new(
                        ConfigErrorKind::InvalidValue,
                        "validation_options.max_token_age",
                        "max_token_age must be between 1 and 31536000 seconds",
                    )
                    .within(&at));
                }
                options.max_token_age = Some(Duration::from_secs_f64(age));
            }
            if let Some(l) = o.leeway {
                if !(0.0..=86_400.0).contains(&l) {
                    return Err(ConfigError::new(
                        ConfigErrorKind::InvalidValue,
                        "validation_options.leeway",
                        "leeway must be between 0 and 86400 seconds",
                    )
                    .within(&at));
                }
                options.leeway = Duration::from_secs_f64(l);
            }
        }
        let mut entry = AuthorizationServerEntry::new(raw.issuer);
        if let Some(uri) = raw.jwks_uri {
            entry = entry.jwks_uri(uri);
        }
        if let Some(url) = raw.authorization_server_url {
            entry = entry.authorization_server_url(url);
        }
        out.push(
            entry
                .algorithms(algorithms)
                .expected_audiences(raw.expected_audiences.unwrap_or_default())
                .validation_options(options),
        );
    }
    Ok(out)
}
