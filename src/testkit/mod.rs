//! A real mock authorization server for tests (feature `test-util`).
//!
//! [`MockAuthorizationServer`] generates RSA, EC (P-256, P-384, P-521) and Ed25519 keys, serves
//! its JWKS (with an `ETag`, honouring `If-None-Match`, and an optional `Cache-Control`) and
//! RFC 8414 / OpenID Connect metadata over real HTTP on `127.0.0.1` with an OS-chosen port
//! (issuers with a path too, see [`MockAuthorizationServer::start_at`]), mints tokens with any
//! claims and headers, counts JWKS and metadata requests, can be told to fail (500, hang,
//! garbage, oversized, redirect, metadata naming another issuer) and rotates keys. It is the
//! way to test handlers behind [`ProtectedResourceLayer`](crate::ProtectedResourceLayer):
//!
//! ```
//! use axum::{Router, routing::get};
//! use protected_resource::testkit::MockAuthorizationServer;
//! use protected_resource::{ProtectedResourceLayer, ResourceOwner, ResourceServerAuth};
//! use tower::ServiceExt;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let as_ = MockAuthorizationServer::start().await?;
//! let auth = ResourceServerAuth::builder()
//!     .canonical_url("http://127.0.0.1:8000/mcp")
//!     .authorization_server(as_.entry())
//!     .build()?;
//! let app = Router::new()
//!     .route("/mcp", get(|o: ResourceOwner| async move { o.user_id().to_owned() }))
//!     .layer(ProtectedResourceLayer::new(auth));
//!
//! let token = as_.token().audience("http://127.0.0.1:8000/mcp").subject("alice").sign();
//! let res = app
//!     .oneshot(
//!         http::Request::get("/mcp")
//!             .header("authorization", format!("Bearer {token}"))
//!             .body(axum::body::Body::empty())?,
//!     )
//!     .await?;
//! assert_eq!(res.status(), 200);
//! # Ok(())
//! # }
//! ```

mod dpop;
mod server;
mod token;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use self::dpop::DpopProof;
pub use self::server::{JwksBehavior, MockAuthorizationServer};
pub use self::token::{ProviderShape, TokenBuilder, unsigned_token};
pub use crate::signing_key::SigningKey;

/// How many requests on the calling thread were decided with the remembered reading of a
/// token the thread had accepted before (a count for the crate's own tests: every check but
/// the reading runs for those too).
#[doc(hidden)]
#[must_use]
pub fn remembered_token_reads() -> u64 {
    crate::parsed_tokens::recalled()
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
