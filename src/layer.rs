//! [`ProtectedResourceLayer`] and its service [`ProtectedResource`]: the front door, built from
//! CORS (tower-http) around the token check (`gate.rs`), which also marks the `Authorization`
//! header sensitive.

use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::header::{ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use http::{Method, Request, Response};
use tower::Layer;
use tower::Service;

use crate::auth::{JwksTokenValidator, ResourceServerAuth};
use crate::future::ResponseFuture;
use crate::gate::Gate;

/// Makes the wrapped service an OAuth 2.1 protected resource. Cheap to clone (one `Arc`).
///
/// For every request:
/// 1. the `Authorization` header is marked sensitive (it never shows in `Debug` output or
///    HPACK tables);
/// 2. a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered at once
///    with the CORS headers, without a token and without calling the inner service; the
///    answer to every other request with an `Origin` header gets the CORS headers too (an
///    `OPTIONS` request that is not a preflight needs a token like any other request and
///    gets none); answers to requests without `Origin` get none, only `Vary` when a cache
///    may keep them (when CORS is [disabled](crate::AllowedOrigins::Disabled), preflights
///    are answered 204 and no CORS headers are added);
/// 3. requests for the RFC 9728 protected-resource metadata are answered, without a token;
/// 4. the access token is taken from `Authorization` only (`Bearer`, or `DPoP` with its
///    `DPoP` proof, which is checked first) and validated (issuer, signature, `alg`,
///    `exp`/`nbf`/`iat`, audience, `sub`, the DPoP binding);
/// 5. a request naming an MCP session that another user opened goes on with decoy session
///    ids, so the MCP server answers it as for any unknown session;
/// 6. the [`ResourceOwner`](crate::ResourceOwner) is put in the request extensions and the
///    inner service is called; an `Mcp-Session-Id` in its answer is bound to that owner.
///
/// The inner service is called only in step 6, without the `Authorization` header (MCP
/// forbids token passthrough; [`ResourceOwner::bearer_token`](crate::ResourceOwner::bearer_token)
/// is the deliberate way to reach the token).
/// Refusals follow RFC 6750, RFC 9728 and the MCP authorization specification:
///
/// | situation | status | `WWW-Authenticate` |
/// |---|---|---|
/// | no credentials, or another scheme | 401 | `Bearer resource_metadata="…"` (+ `scope="…"` when [configured](crate::ResourceServerAuthBuilder::default_challenge_scopes)) |
/// | duplicate `Authorization` headers, token also in the query | 400 | `Bearer error="invalid_request", resource_metadata="…"` |
/// | invalid token of any kind | 401 | `Bearer error="invalid_token", error_description="…", resource_metadata="…"` |
/// | `DPoP` request: missing, several or bad proof, replayed, key not the token's | 401 | `DPoP error="invalid_dpop_proof", error_description="…", algs="…", resource_metadata="…"`, then `Bearer resource_metadata="…"` |
/// | `DPoP` request: invalid token | 401 | `DPoP error="invalid_token", error_description="…", algs="…", resource_metadata="…"`, then `Bearer resource_metadata="…"` |
/// | `DPoP` request without a valid server nonce (nonces on) | 401 | `DPoP error="use_dpop_nonce", …`, then `Bearer …`; a fresh `DPoP-Nonce` |
/// | missing scopes ([`InsufficientScope`](crate::InsufficientScope)) | 403 | `Bearer error="insufficient_scope", scope="…", resource_metadata="…"` |
/// | MCP session bound to another user | the MCP server's own answer for an unknown session (the ids are replaced by decoys before it runs) | as the server sends it |
/// | the issuer's keys can not be obtained | 503 | none; `Retry-After` |
///
/// `error_description` is a fixed text per [`ValidationErrorKind`](crate::ValidationErrorKind)
/// (or [`DpopErrorKind`](crate::dpop::DpopErrorKind)): it never echoes any part of the token.
/// Unless every entry has DPoP [off](crate::DpopPolicy::Off), each 401 of a `Bearer` (or
/// credential-less) request has a second challenge, `DPoP algs="…", resource_metadata="…"`.
///
/// ```
/// use axum::{Router, routing::post};
/// use protected_resource::{
///     AuthorizationServerEntry, ProtectedResourceLayer, ResourceOwner, ResourceServerAuth,
/// };
///
/// async fn mcp(owner: ResourceOwner) -> String {
///     format!("hello {}", owner.user_id())
/// }
///
/// # fn main() -> Result<(), protected_resource::ConfigError> {
/// let auth = ResourceServerAuth::builder()
///     .canonical_url("http://127.0.0.1:8000/mcp")
///     .authorization_server(
///         AuthorizationServerEntry::new("https://auth.example.com")
///             .jwks_uri("https://auth.example.com/jwks"),
///     )
///     .build()?;
/// let app: Router = Router::new()
///     .route("/mcp", post(mcp))
///     .layer(ProtectedResourceLayer::new(auth));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ProtectedResourceLayer {
    auth: ResourceServerAuth,
}

impl ProtectedResourceLayer {
    /// The layer for a configured resource server.
    pub fn new(auth: ResourceServerAuth) -> Self {
        Self { auth }
    }

    /// The layer for a single-issuer [`JwksTokenValidator`]: same checks, but no metadata is
    /// served and challenges carry no `resource_metadata`.
    pub fn from_validator(validator: JwksTokenValidator) -> Self {
        Self::new(validator.auth)
    }
}

impl<S> Layer<S> for ProtectedResourceLayer {
    type Service = ProtectedResource<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProtectedResource::new(inner, self.auth.clone())
    }
}

/// The service made by [`ProtectedResourceLayer`]; see there for what it does.
///
/// It holds only the gate: the CORS settings live in the shared configuration, and
/// tower-http's CORS service is put around the gate for the requests that need it (those
/// with `Origin`, and preflights). axum clones the service for every request, so this keeps
/// each clone to the inner service and two reference counts.
#[derive(Clone, Debug)]
pub struct ProtectedResource<S> {
    gate: Gate<S>,
}

impl<S> ProtectedResource<S> {
    /// Wraps `inner` directly (same as `ProtectedResourceLayer::new(auth).layer(inner)`).
    pub fn new(inner: S, auth: ResourceServerAuth) -> Self {
        Self {
            gate: Gate { inner, auth },
        }
    }

    /// A layer making this service.
    pub fn layer(auth: ResourceServerAuth) -> ProtectedResourceLayer {
        ProtectedResourceLayer::new(auth)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.gate.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.gate.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.gate.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ProtectedResource<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // CORS adds nothing to readiness: it is the gate's, which is the inner service's.
        self.gate.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if self.gate.auth.inner.cors.is_none() {
            return ResponseFuture::plain(self.gate.call(req));
        }
        let preflight = req.method() == Method::OPTIONS;
        // CORS headers only for requests that name an origin (browsers always do) and for
        // preflights. tower-http answers every OPTIONS as a preflight; one without
        // Access-Control-Request-Method is not one (Fetch standard), so it goes to the token
        // check like any other request.
        if (preflight && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD))
            || (!preflight && req.headers().contains_key(ORIGIN))
        {
            let auth = self.gate.auth.clone();
            if let Some(cors) = &auth.inner.cors {
                // The gate that poll_ready made ready goes into the CORS service; a clone
                // stays for the next request.
                let clone = self.gate.clone();
                let ready = std::mem::replace(&mut self.gate, clone);
                return ResponseFuture::cors(cors.layer(ready).call(req));
            }
        }
        if preflight {
            return ResponseFuture::plain(self.gate.call(req));
        }
        // Without `Origin` the answer carries no CORS headers; if a cache may keep it, it
        // says that it would differ with one, so that no cache hands it to a browser.
        ResponseFuture::vary(self.gate.call(req))
    }
}
