//! rmcp integration (feature `rmcp`): a tool or prompt takes the caller as a parameter, and
//! any other rmcp handler finds it in its request context.

use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

use crate::owner::ResourceOwner;

impl ResourceOwner {
    /// The caller of the MCP request `context` belongs to: rmcp's streamable HTTP server
    /// keeps the HTTP request parts in the context, and the layer put the owner in them.
    /// `None` when the request did not pass through
    /// [`ProtectedResourceLayer`](crate::ProtectedResourceLayer). For handlers that are not
    /// tools or prompts (`read_resource`, `list_tools`, …); tools and prompts take the owner
    /// as a parameter instead.
    #[must_use]
    pub fn from_mcp_context(context: &RequestContext<RoleServer>) -> Option<Self> {
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(Self::from_parts)
            .cloned()
    }
}

/// A tool or prompt parameter: the authenticated caller.
///
/// ```
/// use protected_resource::ResourceOwner;
/// use rmcp::model::{CallToolResult, ContentBlock};
/// use rmcp::{ErrorData, tool, tool_router};
///
/// #[derive(Clone)]
/// struct Server;
///
/// #[tool_router(server_handler)]
/// impl Server {
///     #[tool(description = "Who is calling")]
///     async fn whoami(&self, owner: ResourceOwner) -> Result<CallToolResult, ErrorData> {
///         Ok(CallToolResult::success(vec![ContentBlock::text(owner.user_id())]))
///     }
/// }
/// ```
///
/// Without an owner in the request (the MCP service is not behind
/// [`ProtectedResourceLayer`](crate::ProtectedResourceLayer), a server bug) the call fails
/// with an internal error and the tool does not run.
impl<C: AsRequestContext> FromContextPart<C> for ResourceOwner {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        Self::from_mcp_context(context.as_request_context()).ok_or_else(|| {
            tracing::error!(
                "an MCP tool asked for the ResourceOwner, but the request did not pass through ProtectedResourceLayer"
            );
            ErrorData::internal_error("no authenticated caller", None)
        })
    }
}
