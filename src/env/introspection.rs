//! An entry's `introspection` object in `MCP_SERVER_AUTH_AUTHORIZATION_SERVERS` (keys listed
//! in the [`env`](crate::env) module docs). Secrets may be given in files (`client_secret_file`,
//! `private_key_file`), read once with a size bound.

use std::time::Duration;

use serde::Deserialize;

use crate::algorithm::Algorithm;
use crate::config::{Introspection, MAX_DURATION};
use crate::env::read_bounded;
use crate::error::{ConfigError, ConfigErrorKind};

/// The largest secret or private key read from a file.
const MAX_SECRET_FILE_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IntrospectionJson {
    client_id: String,
    #[serde(default)]
    auth_method: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    client_secret_file: Option<String>,
    #[serde(default)]
    private_key_file: Option<String>,
    #[serde(default)]
    private_key_alg: Option<String>,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    cache_ttl: Option<f64>,
    #[serde(default)]
    timeout: Option<f64>,
    #[serde(default)]
    max_concurrent: Option<usize>,
}

fn invalid(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(
        ConfigErrorKind::InvalidValue,
        format!("introspection.{field}"),
        message,
    )
}

fn seconds(field: &str, value: f64) -> Result<Duration, ConfigError> {
    if !(0.0..=MAX_DURATION.as_secs_f64()).contains(&value) {
        return Err(invalid(field, "must be between 0 and 31536000 seconds"));
    }
    Ok(Duration::from_secs_f64(value))
}

fn file(field: &str, path: &str) -> Result<String, ConfigError> {
    read_bounded(path, MAX_SECRET_FILE_BYTES).map_err(|m| {
        ConfigError::new(
            ConfigErrorKind::InvalidEnvironment,
            format!("introspection.{field}"),
            m,
        )
    })
}

impl IntrospectionJson {
    pub(super) fn into_settings(self) -> Result<Introspection, ConfigError> {
        let secret = || -> Result<String, ConfigError> {
            match (&self.client_secret, &self.client_secret_file) {
                (Some(_), Some(_)) => Err(invalid(
                    "client_secret",
                    "give `client_secret` or `client_secret_file`, not both",
                )),
                (Some(s), None) => Ok(s.clone()),
                (None, Some(path)) => Ok(file("client_secret_file", path)?.trim().to_owned()),
                (None, None) => Err(invalid(
                    "client_secret",
                    "a client secret is required (or `client_secret_file`)",
                )),
            }
        };
        let method = self.auth_method.as_deref().unwrap_or("client_secret_basic");
        let mut settings = match method {
            "client_secret_basic" => Introspection::client_secret_basic(&self.client_id, secret()?),
            "client_secret_post" => Introspection::client_secret_post(&self.client_id, secret()?),
            "private_key_jwt" => {
                let path = self.private_key_file.as_deref().ok_or_else(|| {
                    invalid(
                        "private_key_file",
                        "private_key_jwt needs `private_key_file`",
                    )
                })?;
                let alg: Algorithm = self
                    .private_key_alg
                    .as_deref()
                    .unwrap_or("RS256")
                    .parse()
                    .map_err(|e: ConfigError| invalid("private_key_alg", e.message()))?;
                let pem = file("private_key_file", path)?;
                let mut s = Introspection::private_key_jwt(&self.client_id, pem, alg);
                if let Some(kid) = &self.key_id {
                    s = s.key_id(kid);
                }
                s
            }
            other => {
                return Err(invalid(
                    "auth_method",
                    format!(
                        "`{}` is not client_secret_basic, client_secret_post or private_key_jwt",
                        crate::error::printable(other)
                    ),
                ));
            }
        };
        if method != "private_key_jwt"
            && (self.private_key_file.is_some() || self.private_key_alg.is_some())
        {
            return Err(invalid(
                "auth_method",
                "a private key is given, but auth_method is not private_key_jwt",
            ));
        }
        if let Some(url) = self.endpoint {
            settings = settings.endpoint(url);
        }
        if let Some(ttl) = self.cache_ttl {
            settings = settings.cache_ttl(seconds("cache_ttl", ttl)?);
        }
        if let Some(t) = self.timeout {
            settings = settings.timeout(seconds("timeout", t)?);
        }
        if let Some(n) = self.max_concurrent {
            settings = settings.max_concurrent(n);
        }
        Ok(settings)
    }
}
