//! [`JwksTokenValidatorBuilder`]: one issuer, one audience, no metadata; assembled by
//! [`ResourceServerAuthBuilder`].

use std::time::Duration;

use crate::algorithm::Algorithm;
use crate::auth::JwksTokenValidator;
use crate::builder::ResourceServerAuthBuilder;
use crate::config::{AccessTokenValidationOptions, AuthorizationServerEntry, check_canonical_url};
use crate::error::{ConfigError, ConfigErrorKind};

/// Builds a [`JwksTokenValidator`].
#[derive(Debug, Clone)]
#[must_use]
pub struct JwksTokenValidatorBuilder {
    entry: AuthorizationServerEntry,
    audience: Option<String>,
    inner: ResourceServerAuthBuilder,
}

impl JwksTokenValidator {
    /// A validator for tokens whose `iss` is exactly `issuer`. Set the
    /// [`audience`](JwksTokenValidatorBuilder::audience) (required) and, unless it is to be
    /// discovered from the issuer's metadata, the [`jwks_uri`](JwksTokenValidatorBuilder::jwks_uri).
    pub fn builder(issuer: impl Into<String>) -> JwksTokenValidatorBuilder {
        JwksTokenValidatorBuilder {
            entry: AuthorizationServerEntry::new(issuer),
            audience: None,
            inner: ResourceServerAuthBuilder::default(),
        }
    }
}

impl JwksTokenValidatorBuilder {
    /// Where the issuer publishes its keys (default: discovered from its metadata).
    pub fn jwks_uri(mut self, jwks_uri: impl Into<String>) -> Self {
        self.entry = self.entry.jwks_uri(jwks_uri);
        self
    }

    /// The value the token's `aud` must contain (required).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Allows exactly this algorithm (default `RS256`).
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.entry = self.entry.algorithm(algorithm);
        self
    }

    /// Allows exactly these algorithms.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.entry = self.entry.algorithms(algorithms);
        self
    }

    /// Sets the claim checks.
    pub fn validation_options(mut self, options: AccessTokenValidationOptions) -> Self {
        self.entry = self.entry.validation_options(options);
        self
    }

    /// Key-set cache lifetime (default 1 hour).
    pub fn jwks_cache_ttl(mut self, ttl: Duration) -> Self {
        self.inner = self.inner.jwks_cache_ttl(ttl);
        self
    }

    /// Least time between refetches caused by unknown `kid`s (default 5 s).
    pub fn jwks_refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.inner = self.inner.jwks_refetch_cooldown(cooldown);
        self
    }

    /// A JWK set to verify with before the issuer's own has been fetched (see
    /// [`AuthorizationServerEntry::initial_jwks`]).
    pub fn initial_jwks(mut self, jwks: impl Into<String>) -> Self {
        self.entry = self.entry.initial_jwks(jwks);
        self
    }

    /// Adds PEM CA certificates trusted for fetching keys and metadata (see
    /// [`ResourceServerAuthBuilder::add_root_certificates_pem`]).
    pub fn add_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.inner = self.inner.add_root_certificates_pem(pem);
        self
    }

    /// Checks everything and builds the validator.
    pub fn build(self) -> Result<JwksTokenValidator, ConfigError> {
        let audience = match self.audience {
            None => {
                return Err(ConfigError::new(
                    ConfigErrorKind::Missing,
                    "audience",
                    "the expected audience is required",
                ));
            }
            Some(a) if a.is_empty() => {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidAudience,
                    "audience",
                    "the expected audience must not be empty",
                ));
            }
            Some(a) => a,
        };
        // The audience doubles as canonical URL only when it is one; otherwise any valid
        // placeholder will do, as this validator serves no metadata.
        let canonical = if check_canonical_url(&audience).is_ok() {
            audience.clone()
        } else {
            "http://localhost".to_owned()
        };
        let mut inner = self.inner;
        inner.without_metadata = true;
        let auth = inner
            .canonical_url(canonical)
            .authorization_server(self.entry.expected_audiences([audience]))
            .build()?;
        Ok(JwksTokenValidator { auth })
    }
}
