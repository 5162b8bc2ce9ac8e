//! [`ResourceOwner`]: who the validated token speaks for, in the request extensions
//! (documented on the type).

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use http::request::Parts;
use serde_json::{Map, Value};

use crate::claims::Claims;
use crate::error::ValidationError;
use crate::owner_claims::OwnerClaims;
use crate::scope::{InsufficientScope, ScopeContext, ScopeRequirement};

/// The owner of a validated access token: who the request speaks for. Cheap to clone (one
/// `Arc`).
///
/// [`ProtectedResourceLayer`](crate::ProtectedResourceLayer) puts one in the extensions of
/// every request it admits. The stable identity of a user is the pair
/// ([`issuer`](Self::issuer), [`user_id`](Self::user_id)): two issuers may use the same
/// `sub` for different people.
///
/// In an axum handler, take it as an extractor (or `Option<ResourceOwner>` where the route may
/// also be reached without the layer; without the layer the plain extractor answers 500):
///
/// ```
/// use axum::{Router, routing::get};
/// use protected_resource::testkit::MockAuthorizationServer;
/// use protected_resource::{ProtectedResourceLayer, ResourceOwner, ResourceServerAuth};
/// use tower::ServiceExt;
///
/// async fn me(owner: ResourceOwner) -> String {
///     format!("{} from {} with {:?}", owner.user_id(), owner.issuer(), owner.scopes())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let idp = MockAuthorizationServer::start().await?;
/// let auth = ResourceServerAuth::builder()
///     .canonical_url("http://127.0.0.1:8000/mcp")
///     .authorization_server(idp.entry())
///     .build()?;
/// let app = Router::new()
///     .route("/me", get(me))
///     .layer(ProtectedResourceLayer::new(auth));
///
/// let token = idp
///     .token()
///     .audience("http://127.0.0.1:8000/mcp")
///     .subject("alice")
///     .scope("files:read")
///     .sign();
/// let res = app
///     .oneshot(
///         http::Request::get("/me")
///             .header("authorization", format!("Bearer {token}"))
///             .body(axum::body::Body::empty())?,
///     )
///     .await?;
/// let body = axum::body::to_bytes(res.into_body(), 1024).await?;
/// assert_eq!(body, format!("alice from {} with [\"files:read\"]", idp.issuer()));
/// # Ok(())
/// # }
/// ```
///
/// In an rmcp tool, with the crate's `rmcp` feature, take the owner as a parameter
/// (`async fn whoami(&self, owner: ResourceOwner)`); without it, take the HTTP request parts
/// that rmcp's streamable HTTP server passes into the request context and read the owner
/// from them (a complete server: `examples/mcp_server/`):
///
/// ```no_run
/// use protected_resource::ResourceOwner;
/// use rmcp::handler::server::tool::Extension;
/// use rmcp::model::{CallToolResult, ContentBlock};
/// use rmcp::{ErrorData, tool, tool_router};
///
/// #[derive(Clone, Default)]
/// struct Server;
///
/// #[tool_router(server_handler)]
/// impl Server {
///     #[tool(description = "Who am I?")]
///     async fn whoami(
///         &self,
///         Extension(parts): Extension<http::request::Parts>,
///     ) -> Result<CallToolResult, ErrorData> {
///         let owner = ResourceOwner::from_parts(&parts)
///             .ok_or_else(|| ErrorData::internal_error("no authenticated caller", None))?;
///         Ok(CallToolResult::success(vec![ContentBlock::text(owner.user_id())]))
///     }
/// }
/// # fn main() {}
/// ```
#[derive(Clone)]
pub struct ResourceOwner(Arc<Inner>);

struct Inner {
    /// What the token's claims say (shared by the owners of one remembered token).
    token: Arc<OwnerClaims>,
    issuer: Arc<str>,
    /// The scopes with the configured prefix, when it changed any.
    prefixed_scopes: Option<Vec<String>>,
    context: Arc<ScopeContext>,
    /// The access token itself; never printed.
    bearer_token: Option<Box<str>>,
    /// The thumbprint of the DPoP key the request proved, when it was sender-constrained.
    dpop_thumbprint: Option<Box<str>>,
}

impl fmt::Debug for ResourceOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceOwner")
            .field("user_id", &self.0.token.user_id)
            .field("issuer", &self.0.issuer)
            .field("client_id", &self.0.token.client_id)
            .field("scopes", &self.scopes())
            .field("dpop_thumbprint", &self.0.dpop_thumbprint)
            .finish_non_exhaustive()
    }
}

impl ResourceOwner {
    /// Builds an owner from validated claims; `issuer` is the trusted issuer that vouched.
    /// The JSON the claims were read from is attached next
    /// ([`with_raw_claims`](Self::with_raw_claims)).
    pub(crate) fn new(
        issuer: Arc<str>,
        claims: &Claims<'_>,
        scope_prefix: Option<&str>,
        context: Arc<ScopeContext>,
    ) -> Result<Self, ValidationError> {
        let token = Arc::new(OwnerClaims::of(claims)?);
        Ok(Self::of(issuer, token, scope_prefix, context))
    }

    /// An owner of what `token` says; `issuer` is the trusted issuer that vouched.
    pub(crate) fn of(
        issuer: Arc<str>,
        token: Arc<OwnerClaims>,
        scope_prefix: Option<&str>,
        context: Arc<ScopeContext>,
    ) -> Self {
        let prefixed_scopes = scope_prefix
            .filter(|prefix| token.scopes.iter().any(|s| !s.starts_with(prefix)))
            .map(|prefix| {
                let mut scopes = token.scopes.clone();
                for scope in scopes.iter_mut().filter(|s| !s.starts_with(prefix)) {
                    scope.insert_str(0, prefix);
                }
                scopes
            });
        Self(Arc::new(Inner {
            token,
            issuer,
            prefixed_scopes,
            context,
            bearer_token: None,
            dpop_thumbprint: None,
        }))
    }

    /// What the token's claims say of this owner.
    pub(crate) fn token_claims(&self) -> &Arc<OwnerClaims> {
        &self.0.token
    }

    /// Builds an owner from a claims object (tests).
    #[cfg(test)]
    pub(crate) fn from_claims(
        issuer: String,
        claims: Map<String, Value>,
        context: Arc<ScopeContext>,
    ) -> Result<Self, ValidationError> {
        let raw = Value::Object(claims).to_string();
        let parsed = Claims::parse(&raw).ok_or_else(|| {
            ValidationError::new(crate::error::ValidationErrorKind::Malformed, "")
        })?;
        let owner = Self::new(issuer.into(), &parsed, None, context)?;
        drop(parsed);
        Ok(owner.with_raw_claims(raw))
    }

    /// The user id: the token's `sub` (never empty).
    #[must_use]
    pub fn user_id(&self) -> &str {
        &self.0.token.user_id
    }

    /// The trusted issuer whose key verified the token (equal to the token's `iss`).
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    /// The caller as one unambiguous byte string: the issuer and the subject, each preceded
    /// by its length (8 bytes, big-endian). Two callers have the same principal exactly when
    /// they have the same issuer and subject; the same `sub` at two issuers are two
    /// principals. Meant as associated data when binding state to the caller, for example
    /// rmcp's `RequestStateCodec::open_with(sealed, &owner.principal())`; see also
    /// [`StateSealer`](crate::StateSealer).
    ///
    /// ```
    /// # use protected_resource::ResourceOwner;
    /// fn bind(owner: &ResourceOwner) -> Vec<u8> {
    ///     owner.principal()
    /// }
    /// ```
    #[must_use]
    pub fn principal(&self) -> Vec<u8> {
        let (iss, sub) = (self.0.issuer.as_bytes(), self.0.token.user_id.as_bytes());
        let mut out = Vec::with_capacity(16 + iss.len() + sub.len());
        out.extend_from_slice(&(iss.len() as u64).to_be_bytes());
        out.extend_from_slice(iss);
        out.extend_from_slice(&(sub.len() as u64).to_be_bytes());
        out.extend_from_slice(sub);
        out
    }

    /// The OAuth client the token was issued to: `client_id` (RFC 9068), else `azp`, else
    /// `cid` (Okta), else `appid` (Microsoft Entra v1 tokens), else `None`.
    #[must_use]
    pub fn client_id(&self) -> Option<&str> {
        self.0.token.client_id.as_deref()
    }

    /// Granted scopes as the token lists them: the space-separated `scope` claim, else `scp`
    /// (array or string). Scopes implied by configured hierarchies are not added here; ask
    /// [`has_scope`](Self::has_scope).
    #[must_use]
    pub fn scopes(&self) -> &[String] {
        self.0
            .prefixed_scopes
            .as_deref()
            .unwrap_or(&self.0.token.scopes)
    }

    /// Whether `scope` was granted, directly or through a configured hierarchy
    /// ([`scope_implies`](crate::ResourceServerAuthBuilder::scope_implies)).
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.context.hierarchy.grants(self.scopes(), scope)
    }

    /// Whether the granted scopes satisfy `requirement` (hierarchies applied).
    #[must_use]
    pub fn satisfies(&self, requirement: &ScopeRequirement) -> bool {
        requirement.satisfied_by(self.scopes(), &self.0.context.hierarchy)
    }

    /// `Ok` when the granted scopes satisfy `requirement`, else the 403 step-up challenge
    /// naming the scopes the requirement asks for.
    pub fn require(&self, requirement: &ScopeRequirement) -> Result<(), InsufficientScope> {
        if self.satisfies(requirement) {
            Ok(())
        } else {
            Err(self.insufficient(requirement.challenge_scopes().to_vec()))
        }
    }

    /// `Ok` when every one of `scopes` is granted (hierarchies applied), else the 403 step-up
    /// challenge naming all of them: one line in a handler, see [`InsufficientScope`].
    pub fn require_scopes<S: AsRef<str>>(
        &self,
        scopes: impl IntoIterator<Item = S>,
    ) -> Result<(), InsufficientScope> {
        let scopes: Vec<String> = scopes.into_iter().map(|s| s.as_ref().to_owned()).collect();
        if scopes.iter().all(|s| self.has_scope(s)) {
            Ok(())
        } else {
            Err(self.insufficient(scopes))
        }
    }

    /// The protected-resource metadata URL its challenges point at, if any.
    pub(crate) fn resource_metadata(&self) -> Option<&str> {
        self.0.context.resource_metadata.as_deref()
    }

    /// The `DPoP` challenge of the resource that vouched for this owner, for refusals made
    /// after the front door (`None` when DPoP is off).
    pub(crate) fn dpop_challenge(&self) -> Option<crate::challenge::DpopChallenge> {
        self.0.context.dpop.clone()
    }

    /// The 403 challenge for these required scopes, pointing at this resource's metadata.
    pub(crate) fn insufficient(&self, required: Vec<String>) -> InsufficientScope {
        let context = &self.0.context;
        let keep: Vec<&String> = self
            .scopes()
            .iter()
            .filter(|s| context.keep_in_step_up.contains(s))
            .collect();
        InsufficientScope::keeping(required, &keep, context.resource_metadata.clone())
            .for_dpop(self.is_sender_constrained())
    }

    /// The token's audiences (`aud` as a list).
    #[must_use]
    pub fn audiences(&self) -> &[String] {
        &self.0.token.audiences
    }

    /// When the token expires (`exp`), if it says.
    #[must_use]
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.0.token.expires_at
    }

    /// Every claim of the token (built from the token's JSON on the first call).
    #[must_use]
    pub fn claims(&self) -> &Map<String, Value> {
        // The JSON was checked when the token was validated (the same grammar as `Value`),
        // so this parse does not fail; if it ever did, the owner would show no claims.
        let token = &self.0.token;
        token
            .claims
            .get_or_init(|| serde_json::from_str(&token.raw_claims).unwrap_or_default())
    }

    /// The access token this owner was validated from, for exchanging it for a token of
    /// another audience (RFC 8693 token exchange) where the authorization server allows it.
    ///
    /// **Never send it to another service as it is**: the MCP authorization specification
    /// forbids token passthrough (the token was issued for this resource only). For that
    /// reason the front door removes the `Authorization` header before the inner service
    /// runs (unless [`dangerous_forward_bearer_token`](crate::ResourceServerAuthBuilder::dangerous_forward_bearer_token)
    /// is on); this accessor is the one deliberate way to reach the token. `Debug` never
    /// prints it.
    #[must_use]
    pub fn bearer_token(&self) -> Option<&str> {
        self.0.bearer_token.as_deref()
    }

    /// The RFC 7638 thumbprint (base64url SHA-256) of the key the request proved possession
    /// of, when it came with a DPoP-bound token and its proof (RFC 9449); `None` for a bearer
    /// token. A tool can tell a sender-constrained call from a bearer one, or tie state to
    /// the client's key.
    ///
    /// ```
    /// # use protected_resource::{testkit::MockAuthorizationServer, ResourceServerAuth};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let idp = MockAuthorizationServer::start().await?;
    /// let auth = ResourceServerAuth::builder()
    ///     .canonical_url("http://127.0.0.1:8000/mcp")
    ///     .authorization_server(idp.entry())
    ///     .build()?;
    /// // A bearer token: not sender-constrained.
    /// let owner = auth.validate(&idp.token().audience("http://127.0.0.1:8000/mcp").sign()).await?;
    /// assert_eq!(owner.dpop_thumbprint(), None);
    /// assert!(!owner.is_sender_constrained());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn dpop_thumbprint(&self) -> Option<&str> {
        self.0.dpop_thumbprint.as_deref()
    }

    /// Whether the request proved possession of the key its token is bound to (DPoP).
    #[must_use]
    pub fn is_sender_constrained(&self) -> bool {
        self.0.dpop_thumbprint.is_some()
    }

    /// Records the DPoP key the request proved (the owner was just built: not shared yet).
    pub(crate) fn with_dpop_thumbprint(mut self, jkt: &str) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.dpop_thumbprint = Some(Box::from(jkt));
        }
        self
    }

    /// Attaches the token the owner was validated from (the owner was just built, so its
    /// `Arc` is not shared yet).
    pub(crate) fn with_bearer_token(mut self, token: String) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.bearer_token = Some(token.into_boxed_str());
        }
        self
    }

    /// Attaches the claims JSON the owner was built from (just built: not shared yet).
    pub(crate) fn with_raw_claims(mut self, json: String) -> Self {
        if let Some(token) = Arc::get_mut(&mut self.0).and_then(|i| Arc::get_mut(&mut i.token)) {
            token.raw_claims = json;
        }
        self
    }

    /// One claim by name.
    #[must_use]
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims().get(name)
    }

    /// The owner in request extensions, if the layer put one there.
    #[must_use]
    pub fn from_extensions(extensions: &http::Extensions) -> Option<&Self> {
        extensions.get::<Self>()
    }

    /// The owner in request parts (for example the `http::request::Parts` an rmcp tool
    /// receives), if the layer put one there.
    pub fn from_parts(parts: &Parts) -> Option<&Self> {
        Self::from_extensions(&parts.extensions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(claims: Value) -> ResourceOwner {
        let Value::Object(m) = claims else { panic!() };
        ResourceOwner::from_claims("https://as".to_owned(), m, Arc::default()).unwrap()
    }

    #[test]
    fn reads_scope_then_scp_and_client_id_then_azp() {
        let o = owner(serde_json::json!({"sub":"u","scope":"a b","scp":["c"],"azp":"x"}));
        assert_eq!(o.scopes(), ["a", "b"]);
        assert_eq!(o.client_id(), Some("x"));
        let o = owner(serde_json::json!({"sub":"u","scp":["c","d"],"client_id":"y","azp":"x"}));
        assert_eq!(o.scopes(), ["c", "d"]);
        assert_eq!(o.client_id(), Some("y"));
        let o = owner(serde_json::json!({"sub":"u","scp":"e f","aud":["r1","r2"],"exp":10}));
        assert_eq!(o.scopes(), ["e", "f"]);
        assert_eq!(o.client_id(), None);
        assert_eq!(o.audiences(), ["r1", "r2"]);
        assert_eq!(
            o.expires_at(),
            Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(10))
        );
        assert!(o.has_scope("e") && !o.has_scope("a"));
    }

    #[test]
    fn the_full_claims_are_built_on_demand() {
        let o = owner(serde_json::json!({"sub":"u","org":{"id":7,"roles":["a"]},"n":1.5}));
        assert_eq!(
            o.claim("org"),
            Some(&serde_json::json!({"id":7,"roles":["a"]}))
        );
        assert_eq!(o.claims().len(), 3);
        assert_eq!(o.claim("n").and_then(Value::as_f64), Some(1.5));
        assert_eq!(o.claim("missing"), None);
    }
}
