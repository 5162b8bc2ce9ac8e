//! # protected-resource
//!
//! Makes any axum or tower HTTP service — first of all an MCP server — an OAuth 2.1
//! **protected resource**: every request must carry a bearer JWT from an authorization server
//! you trust, and handlers learn who the caller is from a [`ResourceOwner`].
//!
//! ## Request flow
//! 1. Requests for the RFC 9728 protected-resource metadata are answered by the layer, with no
//!    token ([`metadata`]).
//! 2. CORS preflights pass to the inner service without a token.
//! 3. The bearer token is taken from the `Authorization` header only (RFC 6750 §2.1).
//! 4. The JWT is validated: routed by its `iss` to one trusted issuer, signature checked
//!    with that issuer's JWKS (cached), `alg`, `exp`/`nbf`/`iat`, `aud` and `sub` checked.
//! 5. A [`ResourceOwner`] (`sub` is the user id) is put in the request extensions and the
//!    inner service runs.
//!
//! Refusals follow RFC 6750 and RFC 9728: 401 with
//! `WWW-Authenticate: Bearer resource_metadata="…"`, 400 `invalid_request`, 401
//! `invalid_token` with a fixed `error_description`, and 503 with `Retry-After` when the
//! authorization server's keys can not be obtained (the client's token may be fine).
//!
//! ## Quick start
//! ```no_run
//! use axum::{Router, routing::post};
//! use protected_resource::{
//!     AuthorizationServerEntry, ProtectedResourceLayer, ResourceOwner, ResourceServerAuth,
//! };
//!
//! async fn handler(owner: ResourceOwner) -> String {
//!     format!("hello {} from {}", owner.user_id(), owner.issuer())
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = ResourceServerAuth::builder()
//!     .canonical_url("http://127.0.0.1:8000/mcp")
//!     .authorization_server(AuthorizationServerEntry::new(
//!         "https://your-app.authkit.app",
//!         "https://your-app.authkit.app",
//!         "https://your-app.authkit.app/oauth2/jwks",
//!     ))
//!     .build()?;
//! let app = Router::new()
//!     .route("/mcp", post(handler))
//!     .layer(ProtectedResourceLayer::new(auth));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! For an rmcp server, see `examples/mcp_server.rs` and [`ResourceOwner::from_parts`].
//!
//! ## Features
//! | feature | default | what |
//! |---|---|---|
//! | `aws_lc_rs` | yes | aws-lc-rs crypto: keys parsed once per key set; supports ES512 |
//! | `rust_crypto` | no | jsonwebtoken's pure-Rust backend (no ES512) |
//! | `test-util` | no | [`testkit`]: a real mock authorization server for tests |
//!
//! With both crypto features on, `aws_lc_rs` is used and installed as jsonwebtoken's
//! process-wide provider, so feature unification never causes a panic.
//!
//! ## Security notes
//! - `none` and `HS*` can not be configured ([`Algorithm`] has no such variants) and are
//!   refused in tokens. The header `alg` must be allowed for the issuer and fit the key.
//! - `jku`, `x5u`, `jwk`, `x5c` in token headers are ignored; `crit` is refused.
//! - Keys belong to their issuer: a token claiming issuer B is never verified with A's keys.
//! - Signature, audience and `sub` checks can not be switched off.
//! - Nothing is cached per token; key sets are cached per `jwks_uri`.
//! - Unknown `kid`s cause at most one key-set refetch per cooldown.
//! - Token content never appears in responses or logs.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod algorithm;
mod bearer;
mod challenge;
mod config;
mod cors;
mod discovery;
pub mod env;
mod error;
mod fetch;
mod future;
mod jwks;
mod jwt;
mod keystore;
mod layer;
pub mod metadata;
mod owner;
#[cfg(feature = "test-util")]
pub mod testkit;
mod verify;

pub use algorithm::Algorithm;
pub use config::{
    AccessTokenValidationOptions, AllowedOrigins, AuthorizationServerEntry,
    DEFAULT_MAX_TOKEN_BYTES, JwksTokenValidator, JwksTokenValidatorBuilder, ResourceServerAuth,
    ResourceServerAuthBuilder,
};
pub use error::{ConfigError, ConfigErrorKind};
pub use future::ResponseFuture;
pub use jwt::{ValidationError, ValidationErrorKind};
pub use keystore::{KeySetStats, WarmUpError, WarmUpFailure};
pub use layer::{ProtectedResource, ProtectedResourceLayer};
pub use owner::{MissingResourceOwner, ResourceOwner};
