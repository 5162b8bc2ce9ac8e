//! The JSON array of authorization-server entries in `MCP_SERVER_AUTH_AUTHORIZATION_SERVERS`
//! (its keys are listed in the [`env`](crate::env) module docs).

use std::time::Duration;

use serde::Deserialize;

use crate::algorithm::Algorithm;
use crate::config::{AccessTokenValidationOptions, AuthorizationServerEntry};
use crate::env::introspection::IntrospectionJson;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::required_claims::RequiredClaim;

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
    /// A JWK set inline (the JSON object itself).
    #[serde(default)]
    initial_jwks: Option<serde_json::Value>,
    /// A file holding a JWK set.
    #[serde(default)]
    initial_jwks_file: Option<String>,
    #[serde(default)]
    scope_prefix: Option<String>,
    #[serde(default)]
    introspection: Option<IntrospectionJson>,
    #[serde(default)]
    tenants: Option<Vec<String>>,
    #[serde(default)]
    tenant_claim: Option<String>,
    #[serde(default)]
    max_tenants: Option<usize>,
    #[serde(default)]
    dpop: Option<String>,
    #[serde(default)]
    dpop_algorithms: Option<Vec<String>>,
}

/// The largest key set read from `initial_jwks_file`.
const MAX_JWKS_FILE_BYTES: usize = 1024 * 1024;

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
        match (raw.initial_jwks, raw.initial_jwks_file) {
            (Some(_), Some(_)) => {
                return Err(
                    env_err("give `initial_jwks` or `initial_jwks_file`, not both").within(&at),
                );
            }
            (Some(jwks), None) => entry = entry.initial_jwks(jwks.to_string()),
            (None, Some(path)) => {
                let text = crate::env::read_bounded(&path, MAX_JWKS_FILE_BYTES).map_err(|m| {
                    ConfigError::new(ConfigErrorKind::InvalidEnvironment, "initial_jwks_file", m)
                        .within(&at)
                })?;
                entry = entry.initial_jwks(text);
            }
            (None, None) => {}
        }
        if let Some(uri) = raw.jwks_uri {
            entry = entry.jwks_uri(uri);
        }
        if let Some(tenants) = raw.tenants {
            entry = entry.tenants(tenants);
        }
        if let Some(claim) = raw.tenant_claim {
            entry = entry.tenant_claim(claim);
        }
        if let Some(max) = raw.max_tenants {
            entry = entry.max_tenants(max);
        }
        if let Some(i) = raw.introspection {
            entry = entry.introspection(i.into_settings().map_err(|e| e.within(&at))?);
        }
        if let Some(prefix) = raw.scope_prefix {
            entry = entry.scope_prefix(prefix);
        }
        if let Some(url) = raw.authorization_server_url {
            entry = entry.authorization_server_url(url);
        }
        if let Some(policy) = raw.dpop {
            entry = entry.dpop(policy.parse().map_err(|e: ConfigError| e.within(&at))?);
        }
        if let Some(list) = raw.dpop_algorithms {
            let algorithms = list
                .iter()
                .map(|a| a.parse())
                .collect::<Result<Vec<Algorithm>, ConfigError>>()
                .map_err(|e| {
                    ConfigError::new(e.kind(), "dpop_algorithms", e.message().to_owned())
                        .within(&at)
                })?;
            entry = entry.dpop_algorithms(algorithms);
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
