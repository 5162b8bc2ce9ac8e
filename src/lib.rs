//! # protected-resource
//!
//! Makes any axum or tower HTTP service — first of all an MCP server — an OAuth 2.1
//! **protected resource**: every request must carry a bearer JWT from an authorization server
//! you trust, and handlers learn who the caller is from a [`ResourceOwner`].
//!
//! ## Request flow
//! 1. CORS preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered by the
//!    layer itself, with the CORS headers and without a token; the inner service is not
//!    called ([`AllowedOrigins`]).
//! 2. Requests for the RFC 9728 protected-resource metadata are answered by the layer, with no
//!    token ([`metadata`]).
//! 3. The bearer token is taken from the `Authorization` header only (RFC 6750 §2.1).
//! 4. The JWT is validated: routed by its `iss` to one trusted issuer, signature checked
//!    with that issuer's JWKS (cached), `alg`, `exp`/`nbf`/`iat`, `aud` and `sub` checked.
//! 5. A request naming an MCP session (`Mcp-Session-Id`) that another user opened goes on
//!    with decoy session ids, so the MCP server answers it as for any unknown session.
//! 6. A [`ResourceOwner`] (`sub` is the user id) is put in the request extensions and the
//!    inner service runs; a session id in its answer is bound to that owner.
//!
//! Refusals follow RFC 6750 and RFC 9728: 401 with
//! `WWW-Authenticate: Bearer resource_metadata="…"`, 400 `invalid_request`, 401
//! `invalid_token` with a fixed `error_description`, and 503 with `Retry-After` when the
//! authorization server's keys can not be obtained (the client's token may be fine).
//!
//! ## Quick start
//! ```no_run
//! use axum::{Router, routing::post, serve::ListenerExt};
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
//!     .authorization_server(
//!         AuthorizationServerEntry::new("https://your-app.authkit.app")
//!             .jwks_uri("https://your-app.authkit.app/oauth2/jwks"),
//!     )
//!     .build()?;
//! let app = Router::new()
//!     .route("/mcp", post(handler))
//!     .layer(ProtectedResourceLayer::new(auth));
//! // TCP_NODELAY: without it, answers written in several pieces wait ~40 ms for the
//! // client's delayed ACK on a keep-alive connection (Nagle).
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000")
//!     .await?
//!     .tap_io(|tcp| drop(tcp.set_nodelay(true)));
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! For an rmcp server, see `examples/mcp_server/` (with the `rmcp` feature a tool takes
//! `owner: ResourceOwner` as a parameter) and [`ResourceOwner::from_parts`]. For
//! the settings of WorkOS AuthKit, Auth0, Keycloak, Okta, Microsoft Entra ID and Descope, see
//! `docs/identity-providers.md` in the repository.
//!
//! ## Scopes and the step-up challenge
//! The front door says who the caller is; scope checks say what they may do, answering a
//! missing scope with `403` and
//! `WWW-Authenticate: Bearer error="insufficient_scope", scope="…", resource_metadata="…"`, so
//! MCP clients can obtain a token with more scopes and retry:
//!
//! - a route: [`RequireScopesLayer`] (all-of, any-of, alternatives: [`ScopeRequirement`]);
//! - a handler: [`ResourceOwner::require_scopes`] / [`ResourceOwner::require`], whose error
//!   [`InsufficientScope`] is an axum response;
//! - MCP: [`McpScopesLayer`] checks every `tools/call`, `prompts/get`, `resources/read`,
//!   `resources/subscribe`, `subscriptions/listen` and `completion/complete` in a request (single or batch; from the MCP 2026-07-28 headers or
//!   the body) against per-tool, per-prompt and per-resource requirements, fixed or computed
//!   from the call's arguments ([`McpRequirement`]), before the MCP server runs;
//! - hierarchies: [`ResourceServerAuthBuilder::scope_implies`] (`mcp:admin` implies
//!   `mcp:write`), applied by every check above and by [`ResourceOwner::has_scope`].
//!
//! ```
//! use axum::{Router, routing::post};
//! use protected_resource::{
//!     InsufficientScope, McpScopesLayer, ProtectedResourceLayer, RequireScopesLayer,
//!     ResourceOwner, ResourceServerAuth, ScopeRequirement, testkit::MockAuthorizationServer,
//! };
//! use tower::ServiceExt;
//!
//! async fn write(owner: ResourceOwner) -> Result<&'static str, InsufficientScope> {
//!     owner.require_scopes(["files:write"])?;
//!     Ok("written")
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let idp = MockAuthorizationServer::start().await?;
//! let auth = ResourceServerAuth::builder()
//!     .canonical_url("http://127.0.0.1:8000/mcp")
//!     .authorization_server(idp.entry())
//!     .scope_implies("files:admin", ["files:write"])
//!     .build()?;
//! let app = Router::new()
//!     .route("/files", post(write))
//!     .route_layer(RequireScopesLayer::any(["files:read", "files:write"])?)
//!     .layer(ProtectedResourceLayer::new(auth));
//!
//! let token = idp.token().audience("http://127.0.0.1:8000/mcp").scope("files:read").sign();
//! let res = app
//!     .clone()
//!     .oneshot(
//!         http::Request::post("/files")
//!             .header("authorization", format!("Bearer {token}"))
//!             .body(axum::body::Body::empty())?,
//!     )
//!     .await?;
//! assert_eq!(res.status(), 403);
//! assert_eq!(
//!     res.headers()["www-authenticate"],
//!     "Bearer error=\"insufficient_scope\", scope=\"files:write\", \
//!      resource_metadata=\"http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp\""
//! );
//! # let _ = McpScopesLayer::new().tool("admin_report", ScopeRequirement::all(["mcp:admin"])?);
//! # Ok(())
//! # }
//! ```
//!
//! ## MCP 2025 and 2026 revisions
//! The layers serve both generations of MCP clients on one endpoint:
//!
//! | | MCP 2025-06-18 / 2025-11-25 | MCP 2026-07-28 |
//! |---|---|---|
//! | protocol state | sessions (`Mcp-Session-Id`), bound by the layer to the (`iss`, `sub`) that opened them | none: every request stands alone (`server/discover`, `_meta` in each request) |
//! | what [`McpScopesLayer`] reads | the body of every `POST` | the body, and `Mcp-Method` / `Mcp-Name`, which must agree with it (`400`, JSON-RPC `-32020` otherwise, before any scope decision); with [`McpScopesLayer::decide_from_headers`] the headers alone |
//! | scope checks per tool, prompt, resource | the same policy, the same `403` challenge | the same |
//!
//! A request speaks 2026-07-28 when it carries `MCP-Protocol-Version: 2026-07-28`. The gate
//! decides any other request from its body, and refuses it too when it sends an `Mcp-Method`
//! or `Mcp-Name` that disagrees with that body.
//!
//! ## Key management
//! Every request needs its issuer's keys, so key handling is built to keep valid users in
//! and invalid tokens out while an authorization server is slow, down, rotating keys or
//! under attack:
//!
//! - **One key set per `jwks_uri`**, shared by the entries naming it, fetched when first
//!   needed (building fetches nothing; [`ResourceServerAuth::warm_up`] fetches everything
//!   before serving, with a deadline, and reports the issuers that failed). Every fetch runs
//!   in a task of its own that no request owns: requests needing it wait for its result, a
//!   client that hangs up (or resets its h2 stream) stops waiting but never cancels the fetch,
//!   and its outcome is recorded. Requests served from the cache never wait on a fetch.
//! - **Lifetime** from the answer's `Cache-Control: max-age` (minus `Age`) or `Expires`,
//!   clamped to bounds; without those headers, the configured TTL. A **background refresh**
//!   starts shortly before expiry (a tenth of the lifetime, at least the fetch timeout plus a
//!   second), so steady traffic never waits. Refreshes are **conditional** (`If-None-Match`,
//!   `If-Modified-Since`) when the server sent `ETag` / `Last-Modified`.
//! - **Failures** (network, timeout, non-200, redirect, oversized, not a JWK Set) keep the
//!   last good keys in service up to `stale_if_error` past expiry, log a warning and retry
//!   with jittered exponential backoff. Without usable keys, requests get **503 with
//!   `Retry-After`** (the time until the next attempt), never 401. A `200` JWK Set is
//!   authoritative even when it holds no usable key (an emergency revocation empties the
//!   set): from then on every token of that key set is refused (401), old keys included.
//!
//!   | state of a key set when a request needs it | answer |
//!   |---|---|
//!   | fresh | the cached keys; past the refresh point a background refresh starts |
//!   | expired, last refresh failed, within `stale_if_error` | the last good keys, a background retry once the backoff allows |
//!   | never fetched, or expired with no failure known | wait for one (shared) fetch |
//!   | no usable keys and the backoff has not elapsed | 503 at once, with `Retry-After` |
//!
//! - **Unknown `kid`**: one refetch per key set per cooldown (at least 1 s), counted from
//!   when a fetch *starts*, shared by every request that needs it; in between, and while the
//!   backoff runs, such tokens are refused without network. A kid still missing after a
//!   refetch is remembered (at most 1 MiB of kids, one cooldown, and only while the key set
//!   is unchanged), so repeating it costs nothing, and a key published meanwhile is found by
//!   the next refetch.
//! - **Tolerant parsing**: each key is judged alone; keys with `use` other than `sig`,
//!   `key_ops` without `verify`, unknown `kty`/curve, private members, RSA under 2048 bits or
//!   an `alg` that does not fit are skipped (debug log). A token without `kid` is accepted only
//!   when exactly one usable key fits its algorithm.
//! - **Discovery**: [`AuthorizationServerEntry::new`] without a `jwks_uri` takes an issuer only and finds its
//!   `jwks_uri` in RFC 8414 metadata (path insertion), then OpenID Connect discovery; the
//!   document's `issuer` must equal the configured one exactly, and the `jwks_uri` it names
//!   may be a loopback address only when the issuer is one. Discovered locations are cached
//!   and refreshed like key sets, and kept while rediscovery fails.
//! - **Transport**: connect and total timeouts, a streamed size cap, no redirects, `https`
//!   only (except loopback hosts, or [`dangerous_allow_insecure_jwks_uri`]).
//! - **Observability**: every fetch runs in a `jwks_fetch` span (`issuer`, `jwks_uri`,
//!   `reason` = `cold` / `expired` / `refresh` / `unknown_kid`) with an event carrying
//!   `outcome`, `duration_ms`, `keys` or `error`, `consecutive_failures`, `retry_in_ms`,
//!   `serving_stale`; refused requests log their reason at debug level.
//!   [`ResourceServerAuth::key_set_stats`] returns cheap counters per key source
//!   ([`KeySetStats`]) for your metrics. Background refreshes end when the last clone of the
//!   configuration (and of every layer holding it) is dropped.
//!
//! | setting (builder method) | default ([`ResourceServerAuth`] constant) |
//! |---|---|
//! | [`jwks_cache_ttl`] (no caching headers) | 1 hour (`DEFAULT_JWKS_CACHE_TTL`) |
//! | [`jwks_cache_ttl_bounds`] (for `max-age` / `Expires`) | 1 minute to 24 hours (`DEFAULT_JWKS_CACHE_TTL_BOUNDS`) |
//! | [`jwks_stale_if_error`] | 24 hours past expiry (`DEFAULT_JWKS_STALE_IF_ERROR`) |
//! | [`jwks_refetch_cooldown`] (unknown `kid`; first retry after a failure) | 5 s (`DEFAULT_JWKS_REFETCH_COOLDOWN`) |
//! | [`jwks_max_backoff`] | 5 minutes (`DEFAULT_JWKS_MAX_BACKOFF`) |
//! | [`jwks_connect_timeout`] / [`jwks_fetch_timeout`] | 2 s / 5 s (`DEFAULT_JWKS_CONNECT_TIMEOUT`, `DEFAULT_JWKS_FETCH_TIMEOUT`) |
//! | [`jwks_max_response_bytes`] | 1 MiB (`DEFAULT_JWKS_MAX_RESPONSE_BYTES`) |
//! | [`dangerous_allow_insecure_jwks_uri`] | off |
//!
//! [`jwks_cache_ttl`]: ResourceServerAuthBuilder::jwks_cache_ttl
//! [`jwks_cache_ttl_bounds`]: ResourceServerAuthBuilder::jwks_cache_ttl_bounds
//! [`jwks_stale_if_error`]: ResourceServerAuthBuilder::jwks_stale_if_error
//! [`jwks_refetch_cooldown`]: ResourceServerAuthBuilder::jwks_refetch_cooldown
//! [`jwks_max_backoff`]: ResourceServerAuthBuilder::jwks_max_backoff
//! [`jwks_connect_timeout`]: ResourceServerAuthBuilder::jwks_connect_timeout
//! [`jwks_fetch_timeout`]: ResourceServerAuthBuilder::jwks_fetch_timeout
//! [`jwks_max_response_bytes`]: ResourceServerAuthBuilder::jwks_max_response_bytes
//! [`dangerous_allow_insecure_jwks_uri`]: ResourceServerAuthBuilder::dangerous_allow_insecure_jwks_uri
//!
//! ```
//! use std::time::Duration;
//! use protected_resource::{AuthorizationServerEntry, ResourceServerAuth};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = protected_resource::testkit::MockAuthorizationServer::start().await?;
//! # let issuer = server.issuer().to_owned();
//! let auth = ResourceServerAuth::builder()
//!     .canonical_url("http://127.0.0.1:8000/mcp")
//!     // Only the issuer: the jwks_uri is discovered from its metadata.
//!     .authorization_server(AuthorizationServerEntry::new(issuer))
//!     .jwks_stale_if_error(Duration::from_secs(6 * 3600))
//!     .build()?;
//! auth.warm_up(Duration::from_secs(10)).await?;
//! for source in auth.key_set_stats() {
//!     println!("{:?}: {} keys, {} fetches", source.issuers, source.keys, source.fetches);
//!     assert_eq!(source.keys, 1);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! ## Features
//! | feature | default | what |
//! |---|---|---|
//! | `aws_lc_rs` | yes | aws-lc-rs crypto: keys parsed once per key set; supports ES512 |
//! | `rust_crypto` | no | jsonwebtoken's pure-Rust backend (no ES512) |
//! | `test-util` | no | [`testkit`]: a real mock authorization server for tests |
//! | `downstream` | no | [`downstream`]: tool-level authorization, per-user tokens for third-party APIs (RFC 8693 token exchange, connected accounts, Arcade, a per-user cache; with `rmcp`, denials as MCP URL elicitation) |
//! | `metrics` | no | `metrics`: counters and gauges through the `metrics` facade (fixed names, bounded labels) |
//! | `redis` | no | `downstream::RedisTokenStore`: connected accounts shared by replicas through Redis |
//! | `dev-auth` | no | [`dev_auth`]: a development authorization server MCP clients log in to (the example's embedded one) |
//! | `rmcp` | no | [`ResourceOwner`] as an rmcp tool or prompt parameter; `ResourceOwner::from_mcp_context` |
//!
//! With both crypto features on, `aws_lc_rs` is used and installed as jsonwebtoken's
//! process-wide provider, so feature unification never causes a panic.
//!
//! ## Security model
//! When the layer can not decide, it refuses; no client behaviour (cancelling, trickling,
//! odd encodings, extra headers) changes what it decides or how often it calls an
//! authorization server.
//! - `none` and `HS*` can not be configured ([`Algorithm`] has no such variants) and are
//!   refused in tokens. The header `alg` must be allowed for the issuer and fit the key.
//! - `jku`, `x5u`, `jwk`, `x5c` in token headers are ignored; `crit` is refused whatever its
//!   value (`null` and `[]` included).
//! - Only access tokens are bearer tokens: a `typ` naming another kind of JWT
//!   (`dpop+jwt`, `logout+jwt`, …) is refused (RFC 8725 §3.11), a sender-constrained token
//!   (`cnf` claim: DPoP or mTLS bound) sent as a bearer token is refused, and tokens with
//!   ID-token claims can be refused per entry
//!   ([`AccessTokenValidationOptions::reject_id_token_claims`]).
//! - DPoP (RFC 9449): `Authorization: DPoP <token>` with exactly one `DPoP` proof, checked
//!   before the token ([`dpop::DpopVerifier`]: `typ`, an asymmetric `alg` of the entry's
//!   [`dpop_algorithms`](AuthorizationServerEntry::dpop_algorithms), a public `jwk`, the
//!   signature, `htm`, `htu` from the canonical URL's origin and the request path, `iat`
//!   within ±5 minutes, `ath`), then the token, whose `cnf.jkt` must be the proof key's
//!   thumbprint, then the proof's `jti` against a replay cache. Per entry
//!   [`DpopPolicy`]; optional stateless server nonces
//!   ([`dpop_nonce_key`](ResourceServerAuthBuilder::dpop_nonce_key)).
//! - Keys belong to their issuer: a token claiming issuer B is never verified with A's keys
//!   (except by an entry with `verify_iss = false`, which is such an exception on purpose:
//!   tokens whose `iss` matches no entry are checked with its keys only).
//! - Signature, audience and `sub` checks can not be switched off; with `verify_iss = false`
//!   the owner still names the token's own `iss`.
//! - No decision is cached per token: every request has its token's size, parts, signature,
//!   issuer, key and claims checked against the configuration, the keys held and the clock.
//!   What each thread keeps of the tokens it accepted last (64 of them at most, each up to a
//!   4 KiB message) is how it read their header and claims, so that a token sent again is
//!   not decoded and parsed again; its signature part is not kept. Key sets are cached per
//!   `jwks_uri` (see "Key management").
//! - Token content never appears in responses or logs, and the inner service never sees
//!   the token ([`ResourceOwner::bearer_token`] is the deliberate way to it).
//! - MCP sessions are bound to the (`iss`, `sub`) that opened them
//!   ([`ResourceServerAuthBuilder::bind_mcp_sessions`], on by default): the client holds the
//!   server's session id sealed with an HMAC under the [`SealingKey`]; another user naming
//!   one, or an id that does not verify, gets the server's own answer for an unknown session,
//!   byte for byte. Nothing is stored, so every replica with the key enforces it.
//! - State handed to a client and back (MCP 2026-07-28 state handles) can be bound to the
//!   caller the same way: [`StateSealer`], [`ResourceOwner::principal`].
//! - The canonical URL must be ASCII without `"` or `\` (it is sent byte for byte).
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms,
    clippy::must_use_candidate,
    clippy::return_self_not_must_use,
    clippy::use_self,
    clippy::needless_pass_by_value
)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(feature = "aws_lc_rs", feature = "rust_crypto")))]
compile_error!(
    "protected-resource needs a crypto backend: enable the feature `aws_lc_rs` (the default) \
     or `rust_crypto`"
);

// Layers, bottom to top; a module imports only modules of the layers below it.
// Plain values and their checks:
mod algorithm;
mod base64url;
mod config;
mod cors;
pub mod env;
mod error;
// The engine (keys, tokens, scopes, owners) and the answers it gives:
mod challenge;
mod claim_rules;
mod claims;
mod client_auth;
mod clock;
pub mod dpop;
mod introspection;
mod issuer_group;
mod issuer_labels;
mod json;
mod jws;
mod jwt;
mod keys;
mod missing_owner;
mod owner;
mod owner_claims;
mod parsed_tokens;
mod scope;
mod sealing_key;
mod session;
mod state_handle;
mod tenants;
// The assembled resource server and its builders:
mod auth;
mod builder;
pub mod metadata;
// The HTTP front door, the scope layers and the axum glue:
mod axum;
mod bearer;
#[cfg(feature = "dev-auth")]
#[cfg_attr(docsrs, doc(cfg(feature = "dev-auth")))]
pub mod dev_auth;
#[cfg(feature = "downstream")]
#[cfg_attr(docsrs, doc(cfg(feature = "downstream")))]
pub mod downstream;
pub mod future;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gate;
#[cfg(any(feature = "dev-auth", feature = "downstream"))]
mod html;
mod layer;
mod mcp_admit;
mod mcp_arguments;
mod mcp_body;
mod mcp_headers;
mod mcp_json;
mod mcp_lists;
mod mcp_params;
mod mcp_policy;
mod mcp_request_headers;
mod mcp_response;
mod mcp_scopes;
#[cfg(feature = "metrics")]
mod metric_names;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
mod readiness;
mod request_span;
mod require_scopes;
mod required_claims;
#[cfg(feature = "rmcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "rmcp")))]
mod rmcp;
#[cfg(any(feature = "test-util", feature = "dev-auth"))]
// Public through the test kit only; the development server uses it inside the crate.
#[cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]
mod signing_key;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testkit;

pub use crate::algorithm::Algorithm;
pub use crate::auth::{JwksTokenValidator, ResourceServerAuth};
pub use crate::builder::{JwksTokenValidatorBuilder, ResourceServerAuthBuilder};
pub use crate::config::{
    AccessTokenValidationOptions, AuthorizationServerEntry, DpopPolicy, Introspection,
};
pub use crate::cors::AllowedOrigins;
pub use crate::error::{ConfigError, ConfigErrorKind, ValidationError, ValidationErrorKind};
pub use crate::keys::{KeySetStats, WarmUpError, WarmUpFailure};
pub use crate::layer::{ProtectedResource, ProtectedResourceLayer};
pub use crate::mcp_policy::{McpOperation, McpOperationKind, McpRequirement};
#[allow(deprecated)]
pub use crate::mcp_scopes::{McpScopes, McpScopesLayer, McpToolScopes, McpToolScopesLayer};
pub use crate::missing_owner::MissingResourceOwner;
pub use crate::owner::ResourceOwner;
pub use crate::readiness::{IssuerNotReady, NotReadyReason, Readiness};
pub use crate::require_scopes::{RequireScopes, RequireScopesLayer};
pub use crate::required_claims::RequiredClaim;
pub use crate::scope::{InsufficientScope, ScopeRequirement};
pub use crate::sealing_key::SealingKey;
pub use crate::state_handle::StateSealer;
