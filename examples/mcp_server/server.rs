//! The example's MCP server: tools, a prompt and resources that take the caller the
//! protected-resource layer authenticated (`owner: ResourceOwner`, the crate's `rmcp`
//! feature).

use std::sync::Arc;

use protected_resource::{ResourceOwner, StateSealer};

use crate::acme::Acme;
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, GetPromptResult, ListResourcesResult, PaginatedRequestParams,
    PromptMessage, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, Role, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{
    ErrorData, RoleServer, ServerHandler, prompt, prompt_handler, prompt_router, tool,
    tool_handler, tool_router,
};

/// The scope `admin_report`, `admin_brief` and `admin://report` require.
pub const ADMIN_SCOPE: &str = "mcp:admin";

/// The resource only administrators may read.
pub const ADMIN_REPORT_URI: &str = "admin://report";

/// The MCP server.
#[derive(Clone)]
pub struct Server {
    tool_router: ToolRouter<Self>,
    prompt_router: PromptRouter<Self>,
    /// Seals note handles to the caller (the layer's sealing key: shared by replicas).
    notes: StateSealer,
    /// The Acme API, with the embedded development authorization server only.
    acme: Option<Arc<Acme>>,
}

impl Server {
    pub fn new(notes: StateSealer, acme: Option<Arc<Acme>>) -> Self {
        Self {
            tool_router: Self::tool_router() + Self::notes_router() + Self::acme_router(),
            prompt_router: Self::prompt_router(),
            notes,
            acme,
        }
    }
}

/// `note_create` arguments.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct NoteCreate {
    /// The note's text.
    text: String,
}

/// `note_read` arguments.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct NoteRead {
    /// A handle `note_create` returned.
    handle: String,
}

/// Checked again inside each privileged operation: the McpScopesLayer already refused
/// callers without the scope (403 step-up), and this keeps the operation safe wherever it
/// is mounted.
fn require_admin(owner: &ResourceOwner) -> Result<(), ErrorData> {
    if owner.has_scope(ADMIN_SCOPE) {
        Ok(())
    } else {
        Err(ErrorData::invalid_request(
            "the scope mcp:admin is required",
            None,
        ))
    }
}

fn json_text(value: serde_json::Value) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(value.to_string())])
}

#[tool_router]
impl Server {
    #[tool(
        description = "Who is calling: the user id (the access token's `sub`), issuer, client id and scopes"
    )]
    async fn whoami(&self, owner: ResourceOwner) -> Result<CallToolResult, ErrorData> {
        Ok(json_text(serde_json::json!({
            "user_id": owner.user_id(),
            "issuer": owner.issuer(),
            "client_id": owner.client_id(),
            "scopes": owner.scopes(),
        })))
    }

    #[tool(description = "An administrators' report; requires the scope `mcp:admin`")]
    async fn admin_report(&self, owner: ResourceOwner) -> Result<CallToolResult, ErrorData> {
        require_admin(&owner)?;
        Ok(json_text(serde_json::json!({
            "report": "all systems nominal",
            "requested_by": owner.user_id(),
        })))
    }
}

/// The one answer for a handle that is not the caller's: another user's, forged, or never
/// issued all read the same.
fn no_such_note() -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text("no such note")])
}

#[tool_router(router = notes_router, vis = "pub(crate)")]
impl Server {
    #[tool(
        description = "Keeps a note for the caller: answers {\"handle\"}, which only the same user can read back"
    )]
    async fn note_create(
        &self,
        owner: ResourceOwner,
        Parameters(note): Parameters<NoteCreate>,
    ) -> Result<CallToolResult, ErrorData> {
        // The note travels in the handle itself, sealed to its owner: nothing is stored, so
        // every replica with the key can read it back (MCP 2026-07-28: state handles bound to
        // the authenticated user).
        let handle = self.notes.seal(&owner, note.text.as_bytes());
        Ok(json_text(serde_json::json!({ "handle": handle })))
    }

    #[tool(description = "Reads back a note by the handle note_create gave the same user")]
    async fn note_read(
        &self,
        owner: ResourceOwner,
        Parameters(read): Parameters<NoteRead>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(text) = self
            .notes
            .open(&owner, &read.handle)
            .and_then(|bytes| String::from_utf8(bytes).ok())
        else {
            return Ok(no_such_note());
        };
        Ok(json_text(serde_json::json!({
            "text": text,
            "owner": owner.user_id(),
        })))
    }
}

#[tool_router(router = acme_router, vis = "pub(crate)")]
impl Server {
    #[tool(
        description = "The caller's profile at the Acme API, a third-party API: the tool obtains a token for the caller by token exchange (tool-level authorization) and answers {\"acme_user\", \"audience\"}"
    )]
    async fn acme_profile(&self, owner: ResourceOwner) -> Result<CallToolResult, ErrorData> {
        let Some(acme) = &self.acme else {
            return Ok(CallToolResult::error(vec![ContentBlock::text(
                "acme_profile needs the embedded development authorization server (MCP_SERVER_AUTH_AUTHORIZATION_SERVERS unset)",
            )]));
        };
        Ok(match acme.profile(&owner).await {
            Ok(profile) => json_text(profile),
            Err(reason) => CallToolResult::error(vec![ContentBlock::text(reason)]),
        })
    }
}

#[prompt_router]
impl Server {
    #[prompt(
        name = "admin_brief",
        description = "A briefing for administrators; requires the scope `mcp:admin`"
    )]
    async fn admin_brief(&self, owner: ResourceOwner) -> Result<GetPromptResult, ErrorData> {
        require_admin(&owner)?;
        Ok(GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            format!(
                "Brief {} on the state of all systems: nominal.",
                owner.user_id()
            ),
        )]))
    }
}

#[tool_handler(router = self.tool_router)]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .build(),
        )
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new(ADMIN_REPORT_URI, "admin_report")
                .with_description("The administrators' report; requires the scope `mcp:admin`")
                .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri != ADMIN_REPORT_URI {
            return Err(ErrorData::resource_not_found("no such resource", None));
        }
        let owner = ResourceOwner::from_mcp_context(&context)
            .ok_or_else(|| ErrorData::internal_error("no authenticated caller", None))?;
        require_admin(&owner)?;
        let report = serde_json::json!({
            "report": "all systems nominal",
            "requested_by": owner.user_id(),
        });
        Ok(ReadResourceResult::new(vec![ResourceContents::text(
            report.to_string(),
            request.uri,
        )])
        .into())
    }
}
