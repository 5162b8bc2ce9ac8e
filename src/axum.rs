//! Everything axum-specific in one place: the [`ResourceOwner`] extractor (plain and
//! `Option<ResourceOwner>`), `IntoResponse` for the crate's refusals, and
//! [`ResourceServerAuth::metadata_router`].

use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::Method;
use http::request::Parts;

use crate::auth::ResourceServerAuth;
use crate::missing_owner::MissingResourceOwner;
use crate::owner::ResourceOwner;
use crate::scope::InsufficientScope;

/// The 500 answer naming what was forgotten (the route is not behind the front door).
impl IntoResponse for MissingResourceOwner {
    fn into_response(self) -> Response {
        self.response()
    }
}

/// The 403 step-up challenge, so a handler can use `?` on
/// [`ResourceOwner::require_scopes`].
impl IntoResponse for InsufficientScope {
    fn into_response(self) -> Response {
        self.response()
    }
}

/// Takes the owner the front door put in the request; without one (the route is not behind
/// [`ProtectedResourceLayer`](crate::ProtectedResourceLayer)) the answer is 500.
impl<S: Send + Sync> FromRequestParts<S> for ResourceOwner {
    type Rejection = MissingResourceOwner;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Self::from_parts(parts).cloned().ok_or(MissingResourceOwner)
    }
}

/// `Option<ResourceOwner>`: `None` where the route may also be reached without the layer.
impl<S: Send + Sync> OptionalFromRequestParts<S> for ResourceOwner {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(Self::from_parts(parts).cloned())
    }
}

impl ResourceServerAuth {
    /// An axum router serving the protected-resource metadata at its well-known paths (with
    /// CORS), to merge next to routes guarded with `route_layer` or a nested service. Empty for
    /// a configuration without metadata.
    ///
    /// ```
    /// # use protected_resource::{AuthorizationServerEntry, ResourceServerAuth};
    /// # let auth = ResourceServerAuth::builder()
    /// #     .canonical_url("https://mcp.example.com/mcp")
    /// #     .authorization_server(AuthorizationServerEntry::new("https://as.example.com"))
    /// #     .build()?;
    /// let app: axum::Router = axum::Router::new().merge(auth.metadata_router());
    /// # Ok::<(), protected_resource::ConfigError>(())
    /// ```
    pub fn metadata_router<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        let mut router = axum::Router::new();
        let Some(meta) = &self.inner.metadata else {
            return router;
        };
        for path in &meta.paths {
            // Paths that axum would read as parameters or wildcards can not be routed; the
            // layer still answers them.
            if path.contains(['{', '}', '*']) {
                continue;
            }
            let auth = self.clone();
            router = router.route(
                path,
                axum::routing::any(move |method: Method| {
                    let auth = auth.clone();
                    async move {
                        match &auth.inner.metadata {
                            Some(m) => m.respond(&method),
                            None => Response::new(Body::empty()),
                        }
                    }
                }),
            );
        }
        match &self.inner.cors {
            Some(cors) => router.layer(cors.clone()),
            None => router,
        }
    }
}
