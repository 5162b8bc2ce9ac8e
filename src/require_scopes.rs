//! [`RequireScopesLayer`]: route-level scope requirements (documented on the type).

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use tower::Layer;
use tower::Service;

use crate::error::ConfigError;
use crate::future::RequireScopesFuture;
use crate::missing_owner::MissingResourceOwner;
use crate::owner::ResourceOwner;
use crate::scope::ScopeRequirement;

/// Route-level scope requirements, answered with the 403 step-up
/// challenge.
///
/// Put it *inside* [`ProtectedResourceLayer`](crate::ProtectedResourceLayer) (in axum, call
/// `.layer(RequireScopesLayer…)` or `.route_layer(…)` before `.layer(ProtectedResourceLayer…)`),
/// so the [`ResourceOwner`] is known when it runs:
///
/// ```
/// use axum::{Router, routing::{get, post}};
/// use protected_resource::{
///     AuthorizationServerEntry, ProtectedResourceLayer, RequireScopesLayer, ResourceServerAuth,
///     ScopeRequirement,
/// };
///
/// # fn main() -> Result<(), protected_resource::ConfigError> {
/// let auth = ResourceServerAuth::builder()
///     .canonical_url("https://files.example.com/api")
///     .authorization_server(AuthorizationServerEntry::new("https://auth.example.com"))
///     .scope_implies("files:admin", ["files:write", "files:read"])
///     .build()?;
/// let app: Router = Router::new()
///     .route("/api/files", get(|| async { "list" }))
///     .route_layer(RequireScopesLayer::any(["files:read", "files:write"])?)
///     .merge(
///         Router::new()
///             .route("/api/files/delete", post(|| async { "deleted" }))
///             .route_layer(RequireScopesLayer::all(["files:write"])?),
///     )
///     .layer(ProtectedResourceLayer::new(auth));
/// # Ok(())
/// # }
/// ```
///
/// A request whose token lacks the scopes gets `403` with
/// `WWW-Authenticate: Bearer error="insufficient_scope", scope="…", resource_metadata="…"`
/// and the inner service is not called. Scope hierarchies configured with
/// [`scope_implies`](crate::ResourceServerAuthBuilder::scope_implies) apply. A request with no
/// [`ResourceOwner`] (the layer is outside the front door) is a server bug: 500.
#[derive(Debug, Clone)]
#[must_use]
pub struct RequireScopesLayer {
    requirement: Arc<ScopeRequirement>,
}

impl RequireScopesLayer {
    /// Requires `requirement`.
    pub fn new(requirement: ScopeRequirement) -> Self {
        Self {
            requirement: Arc::new(requirement),
        }
    }

    /// Requires every one of `scopes` (see [`ScopeRequirement::all`]).
    pub fn all<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> Result<Self, ConfigError> {
        Ok(Self::new(ScopeRequirement::all(scopes)?))
    }

    /// Requires any one of `scopes`; a 403 asks for the first (see [`ScopeRequirement::any`]).
    pub fn any<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> Result<Self, ConfigError> {
        Ok(Self::new(ScopeRequirement::any(scopes)?))
    }
}

impl<S> Layer<S> for RequireScopesLayer {
    type Service = RequireScopes<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopes {
            inner,
            requirement: self.requirement.clone(),
        }
    }
}

/// The service made by [`RequireScopesLayer`].
#[derive(Debug, Clone)]
pub struct RequireScopes<S> {
    inner: S,
    requirement: Arc<ScopeRequirement>,
}

impl<S> RequireScopes<S> {
    /// Wraps `inner` directly (same as `RequireScopesLayer::new(requirement).layer(inner)`).
    pub fn new(inner: S, requirement: ScopeRequirement) -> Self {
        Self {
            inner,
            requirement: Arc::new(requirement),
        }
    }

    /// A layer making this service.
    pub fn layer(requirement: ScopeRequirement) -> RequireScopesLayer {
        RequireScopesLayer::new(requirement)
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScopes<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = RequireScopesFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let refusal = match ResourceOwner::from_extensions(req.extensions()) {
            None => MissingResourceOwner.response(),
            Some(owner) => match owner.require(&self.requirement) {
                Ok(()) => return RequireScopesFuture::inner(self.inner.call(req)),
                Err(e) => e.response(),
            },
        };
        RequireScopesFuture::refused(refusal)
    }
}
