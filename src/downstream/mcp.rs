//! Telling the user about a [`Denial`] the MCP way (features `downstream` and `rmcp`): a URL
//! to authorize at reaches the client as URL-mode elicitation when the client supports it:
//! for MCP 2026-07-28 an `InputRequiredResult` (the client opens the URL, then retries the
//! call), for 2025-11-25 the `-32042` URL-elicitation-required error; for other clients, and
//! for every other denial, a tool error result that says what to do.

use rmcp::ErrorData;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, ElicitRequest, ElicitRequestParams, ErrorCode,
    InputRequest, InputRequests, InputRequiredResult, InputResponses, ProtocolVersion,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::json;

use super::{Denial, DenialKind};

/// The key of the URL elicitation in `inputRequests` (and of its answer in `inputResponses`).
const INPUT_KEY: &str = "authorization";

/// JSON-RPC error code of MCP 2025-11-25's URL-elicitation-required error.
pub const URL_ELICITATION_REQUIRED: i32 = -32042;

/// The answer to a `tools/call` that `denial` stopped, for the client `ctx` describes: an
/// `InputRequiredResult` with a URL-mode elicitation (MCP 2026-07-28 clients that declared
/// `elicitation.url`), the `-32042` error (2025-11-25 clients that declared it), or a tool
/// error result carrying the URL and what to do (every other client, and denials without a
/// URL). A retry of the tool after the user has authorized succeeds.
///
/// `responses` are the 2026-07-28 retry's `inputResponses` (rmcp's `InputResponses`
/// extractor): when the client answered this elicitation (`authorization`) and the user is still
/// not authorized, the user is not asked again in a loop: a decline or cancel ends in a tool
/// error saying so, an accept (the user opened the link but has not finished) in a tool error
/// saying to finish in the browser and call the tool again.
///
/// ```no_run
/// use protected_resource::ResourceOwner;
/// use protected_resource::downstream::{denial_response, TokenBroker, TokenNeed};
/// use rmcp::handler::server::tool::InputResponses;
/// use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};
/// use rmcp::service::{RequestContext, RoleServer};
/// use rmcp::ErrorData;
///
/// async fn github_tool(
///     broker: &dyn TokenBroker,
///     owner: ResourceOwner,
///     ctx: RequestContext<RoleServer>,
///     InputResponses(responses): InputResponses,
/// ) -> Result<CallToolResponse, ErrorData> {
///     let need = TokenNeed::new("github").scopes(["read:user"]);
///     match broker.token(&owner, &need).await {
///         Ok(token) => Ok(CallToolResult::success(vec![ContentBlock::text("…")]).into()),
///         Err(denial) => denial_response(&ctx, &denial, responses.as_ref()),
///     }
/// }
/// ```
///
/// # Errors
/// The `-32042` error, for 2025-11-25 clients with URL elicitation.
pub fn denial_response(
    ctx: &RequestContext<RoleServer>,
    denial: &Denial,
    responses: Option<&InputResponses>,
) -> Result<CallToolResponse, ErrorData> {
    let url = match denial.kind() {
        DenialKind::AuthorizationRequired | DenialKind::ReauthorizationRequired => denial.url(),
        _ => None,
    };
    let Some(url) = url else {
        let mut text = denial.to_string();
        if let Some(after) = denial.retry_after() {
            text.push_str(&format!(" (try again in {} s)", after.as_secs()));
        }
        return Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into());
    };
    let message = format!(
        "{}: open the link to authorize, then try again",
        denial.message()
    );
    let url_mode = ctx
        .client_capabilities()
        .and_then(|c| c.elicitation)
        .is_some_and(|e| e.url.is_some());
    if !url_mode {
        // The model's behaviour for clients without elicitation: the URL in the tool's answer.
        return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
            "{}: open {url} to authorize, then call this tool again.",
            denial.message()
        ))])
        .into());
    }
    let modern = ctx
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
    if modern && let Some(answer) = responses.and_then(|r| r.get(INPUT_KEY)) {
        // The client already put this to the user: do not ask again in a loop.
        let text = match answer.get("action").and_then(serde_json::Value::as_str) {
            Some("accept") => format!(
                "{}: finish authorizing in the browser ({url}), then call this tool again.",
                denial.message()
            ),
            _ => format!("{}: the authorization was declined.", denial.message()),
        };
        return Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into());
    }
    let params = ElicitRequestParams::UrlElicitationParams {
        meta: None,
        message: message.clone(),
        url: url.to_owned(),
        // MCP 2026-07-28 dropped the id (and the completion notification it served).
        elicitation_id: if modern {
            String::new()
        } else {
            elicitation_id()
        },
    };
    if modern {
        let mut requests = InputRequests::new();
        requests.insert(
            INPUT_KEY.to_owned(),
            InputRequest::Elicitation(ElicitRequest::new(params)),
        );
        Ok(InputRequiredResult::from_input_requests(requests).into())
    } else {
        Err(ErrorData::new(
            ErrorCode(URL_ELICITATION_REQUIRED),
            message,
            Some(json!({ "elicitations": [params] })),
        ))
    }
}

/// A fresh elicitation id (random; the client echoes it in completion notifications).
fn elicitation_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        return String::from("authorization");
    }
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
        s
    })
}
