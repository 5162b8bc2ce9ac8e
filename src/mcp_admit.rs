//! What [`McpScopesLayer`](crate::McpScopesLayer) does with one `POST`: the transport checks,
//! reading the body strictly, the MCP 2026-07-28 header agreement, and the policy's decision
//! for every operation; the JSON-RPC answers for what it refuses.

use axum::body::Body;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::{Response, StatusCode};
use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::challenge::{Challenger, Rejection, text};
use crate::error::{ValidationError, ValidationErrorKind};
use crate::mcp_arguments::all_arguments;
use crate::mcp_body::{Message, Shape, Unreadable, read};
use crate::mcp_headers::McpHeaders;
use crate::mcp_lists::AwaitedLists;
use crate::mcp_policy::{CallerRefusal, McpOperation, Policy, Refusal};
use crate::mcp_request_headers::{GateHeaders, Values};
use crate::missing_owner::MissingResourceOwner;
use crate::owner::ResourceOwner;

/// The settings of one [`McpScopesLayer`](crate::McpScopesLayer), shared by its services.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) policy: Policy,
    pub(crate) max_body_bytes: usize,
    pub(crate) read_timeout: Duration,
    pub(crate) from_headers: bool,
    pub(crate) filter_lists: bool,
}

impl Settings {
    /// Whether list answers are filtered: switched on, and some rule configured.
    pub(crate) fn filters_lists(&self) -> bool {
        self.filter_lists && !self.policy.is_empty()
    }
}

/// A `POST` the gate lets through: its body, and the list answers to filter, if any.
pub(crate) struct Admitted {
    pub(crate) body: Body,
    pub(crate) lists: Option<AwaitedLists>,
}

/// Reads and checks a `POST`: the body to pass on, or the answer.
pub(crate) async fn admit<B>(
    settings: &Settings,
    parts: &http::request::Parts,
    body: B,
) -> Result<Admitted, Response<Body>>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let Some(owner) = ResourceOwner::from_parts(parts) else {
        return Err(MissingResourceOwner.response());
    };
    let seen = GateHeaders::scan(&parts.headers);
    let headers = McpHeaders::from_scan(&seen).map_err(|m| header_mismatch(None, m))?;
    if settings.from_headers
        && let Some(op) = headers.operation()
        && !needs_arguments(&settings.policy, &op)
    {
        let lists = settings
            .filters_lists()
            .then(|| AwaitedLists::by_header(op.method.as_deref()?, headers.is_2026()))
            .flatten();
        let mut decision = Decision::new(&settings.policy, owner, None);
        decision.add(0, &op);
        return match decision.outcome() {
            Outcome::Decided(None) => Ok(Admitted {
                body: Body::new(body),
                lists,
            }),
            Outcome::Decided(Some(refusal)) => Err(refuse(owner, refusal)),
            // Not reached (no rule of this operation is a function): refused all the same.
            Outcome::Deferred | Outcome::Unreadable => Err(parse_error()),
        };
    }
    let bytes = read_body(settings, &seen, body).await?;
    // Each message is decided as it is read, and only what the answer needs is kept.
    let mut lists = settings
        .filters_lists()
        .then(|| AwaitedLists::new(headers.is_2026()));
    let mut decision = Decision::new(&settings.policy, owner, None);
    let shape = read(&bytes, |at, message| {
        if let Some(lists) = &mut lists {
            lists.add(at, message);
        }
        decision.add(at.index, message);
    });
    let Ok(shape) = shape else {
        tracing::debug!("MCP request refused: its body can not be read strictly");
        return Err(parse_error());
    };
    if let Err(mismatch) = headers.check(&shape) {
        let id = match shape {
            Shape::One(one) => one.id,
            _ => None,
        };
        tracing::debug!(
            reason = mismatch,
            "MCP request refused: headers disagree with body"
        );
        return Err(header_mismatch(id, mismatch));
    }
    let lists = lists.and_then(AwaitedLists::awaited);
    let mut outcome = decision.outcome();
    if let Outcome::Deferred = outcome {
        // A rule is a function: now that the body is read whole and checked, every message
        // is decided again, in order, with the functions (and their arguments).
        let mut again = Decision::new(&settings.policy, owner, Some(Arguments::of(&bytes)));
        outcome = match read(&bytes, |at, message| again.add(at.index, message)) {
            Ok(_) => again.outcome(),
            Err(Unreadable) => Outcome::Unreadable,
        };
    }
    match outcome {
        Outcome::Decided(None) => Ok(Admitted {
            body: Body::from(bytes),
            lists,
        }),
        Outcome::Decided(Some(refusal)) => Err(refuse(owner, refusal)),
        Outcome::Deferred | Outcome::Unreadable => Err(parse_error()),
    }
}

/// Whether a rule for this operation decides on its arguments.
fn needs_arguments(policy: &Policy, message: &Message<'_>) -> bool {
    message
        .operations()
        .any(|(kind, name)| policy.needs_arguments(kind, name))
}

/// The `params.arguments` of a body's messages, read (once, for all of them) when a rule
/// first asks.
struct Arguments<'b> {
    body: &'b [u8],
    all: Option<Vec<Option<serde_json::Value>>>,
}

impl<'b> Arguments<'b> {
    fn of(body: &'b [u8]) -> Self {
        Self { body, all: None }
    }

    /// The arguments of the message at `index` (taken: each message asks once).
    fn take(&mut self, index: usize) -> Result<Option<serde_json::Value>, Unreadable> {
        if self.all.is_none() {
            self.all = Some(all_arguments(self.body)?);
        }
        Ok(self
            .all
            .as_mut()
            .and_then(|all| all.get_mut(index))
            .and_then(Option::take))
    }
}

/// What a [`Decision`] came to.
enum Outcome {
    /// Why the refused operations are refused (every scope they need, in the order the
    /// messages name them), or `None` when all are allowed.
    Decided(Option<Refusal>),
    /// A rule that is a function applies: to be decided again, with functions.
    Deferred,
    /// The arguments a function asked for can not be read strictly.
    Unreadable,
}

/// The policy's decision on the messages of one request, made one message at a time.
///
/// Without [`Arguments`] it is the decision made while the body is read: it runs no rule that
/// is a function (user code runs only for a body read whole, whose headers agree with it) and
/// is deferred at the first operation one applies to.
struct Decision<'s, 'b> {
    policy: &'s Policy,
    owner: &'s ResourceOwner,
    arguments: Option<Arguments<'b>>,
    deferred: bool,
    unreadable: bool,
    refusal: Option<Refusal>,
}

impl<'s, 'b> Decision<'s, 'b> {
    fn new(policy: &'s Policy, owner: &'s ResourceOwner, arguments: Option<Arguments<'b>>) -> Self {
        Self {
            policy,
            owner,
            arguments,
            deferred: false,
            unreadable: false,
            refusal: None,
        }
    }

    /// Decides every operation of the message at `index`.
    fn add(&mut self, index: usize, message: &Message<'_>) {
        if self.deferred || self.unreadable {
            return;
        }
        // Arguments exist for calls and prompts (a completion's are not the prompt's).
        let has_arguments = matches!(
            message.method.as_deref(),
            Some("tools/call" | "prompts/get")
        );
        for (kind, name) in message.operations() {
            // Found once for both questions (a resource's rules take its URI's spellings).
            let rules = self.policy.rules(kind, name);
            let args = match (&mut self.arguments, rules.has_function()) {
                (None, true) => {
                    self.deferred = true;
                    return;
                }
                (Some(arguments), true) if has_arguments => match arguments.take(index) {
                    Ok(args) => args,
                    Err(Unreadable) => {
                        self.unreadable = true;
                        return;
                    }
                },
                _ => None,
            };
            let op = McpOperation::new(kind, name, args.as_ref(), self.owner);
            if let Some(this) = rules.refused(&op) {
                self.refusal
                    .get_or_insert_with(Refusal::default)
                    .merge(this);
            }
        }
    }

    fn outcome(self) -> Outcome {
        if self.unreadable {
            Outcome::Unreadable
        } else if self.deferred {
            Outcome::Deferred
        } else {
            Outcome::Decided(self.refusal)
        }
    }
}

/// The answer to a refused request, logged: 403 for a caller that is not allowed (a fixed
/// description; the log names the rule), 401 for a token too old, else the 403 step-up.
fn refuse(owner: &ResourceOwner, refusal: Refusal) -> Response<Body> {
    let kind = match refusal.caller {
        Some(CallerRefusal::NotAllowed) => ValidationErrorKind::ClientNotAllowed,
        Some(CallerRefusal::TooOld) => ValidationErrorKind::TooOld,
        None => {
            tracing::info!(
                issuer = owner.issuer(),
                user_id = owner.user_id(),
                required = %refusal.scopes.join(" "),
                "MCP request refused: insufficient scope"
            );
            return owner.insufficient(refusal.scopes).response();
        }
    };
    let challenger = Challenger {
        resource_metadata: owner.resource_metadata().map(str::to_owned),
        scope: None,
        retry_after_secs: 1,
        dpop: owner.dpop_challenge(),
    };
    // In the scheme the request used (RFC 9449 §7.1).
    let mut res = challenger.respond(&Rejection::token(
        ValidationError::new(kind, "a rule of the MCP operation"),
        owner.is_sender_constrained(),
    ));
    res.extensions_mut().insert(CallerRefused);
    res
}

/// Marks a refusal about the caller (not about scopes), for the decision metric.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallerRefused;

/// The transport checks and the bounded read of the body.
async fn read_body<B>(
    settings: &Settings,
    headers: &GateHeaders<'_>,
    body: B,
) -> Result<Bytes, Response<Body>>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    // RFC 9112 §6.1: 501 for a transfer coding the recipient does not apply itself.
    if headers.foreign_transfer_coding {
        return Err(text(
            StatusCode::NOT_IMPLEMENTED,
            "Not Implemented: transfer codings other than chunked are not accepted",
        ));
    }
    if headers.content_encoded {
        return Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type: compressed MCP requests are not accepted",
        ));
    }
    // The gate reads UTF-8; a server told another charset (UTF-7, UTF-16, …) would decode
    // other bytes into another message. MCP clients send `application/json`.
    if !is_json_utf8(headers.content_type) {
        return Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type: MCP requests are application/json in UTF-8",
        ));
    }
    let declared = headers
        .content_length
        .first
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > settings.max_body_bytes as u64) {
        return Err(too_large(settings.max_body_bytes));
    }
    let mut read = std::pin::pin!(Limited::new(body, settings.max_body_bytes).collect());
    // A body that has already arrived (a small request comes with its headers) is read
    // without arming a timer; any other gets the time limit from its first wait.
    let read = match std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await {
        Poll::Ready(read) => read,
        // The timer is boxed: only a body still on its way needs it, and its state would
        // otherwise enlarge every request's future.
        Poll::Pending => match Box::pin(tokio::time::timeout(settings.read_timeout, read)).await {
            Ok(read) => read,
            // A client trickling its body holds a task and a buffer: not longer than this.
            Err(_) => {
                return Err(text(
                    StatusCode::REQUEST_TIMEOUT,
                    "Request Timeout: the request body did not arrive in time",
                ));
            }
        },
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large(settings.max_body_bytes)),
        Err(_) => Err(text(
            StatusCode::BAD_REQUEST,
            "Bad Request: the request body could not be read",
        )),
    }
}

fn too_large(max: usize) -> Response<Body> {
    // The answer is text, not JSON-RPC: the message was never read.
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Payload Too Large: MCP requests are limited to {max} bytes"),
    )
}

/// `400` with a JSON-RPC error.
fn jsonrpc_error(id: Option<serde_json::Value>, code: i64, message: &str) -> Response<Body> {
    // Members in the order JSON-RPC writes them; `id` and `message` encoded by serde_json.
    let id = id.unwrap_or(serde_json::Value::Null);
    let message = serde_json::Value::from(message);
    let body =
        format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{message}}}}}"#);
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = StatusCode::BAD_REQUEST;
    res.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

/// `400` with a JSON-RPC parse error (`-32700`): the answer for a body the gate can not read.
fn parse_error() -> Response<Body> {
    jsonrpc_error(None, -32700, "Parse error")
}

/// `400` with JSON-RPC error `-32020` (`HeaderMismatch`, MCP 2026-07-28).
fn header_mismatch(id: Option<serde_json::Value>, message: &str) -> Response<Body> {
    jsonrpc_error(id, -32020, message)
}

/// Whether a message's `Content-Encoding` names anything but `identity` (a body the gate can
/// not read as it is).
pub(crate) fn is_encoded(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .any(|e| !e.as_bytes().eq_ignore_ascii_case(b"identity"))
}

/// Whether the request says exactly one `Content-Type`, `application/json`, with no parameter
/// but `charset=utf-8` (any case, quoted or not).
fn is_json_utf8(content_type: Values<'_>) -> bool {
    let (Some(value), false) = (content_type.first, content_type.repeated) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case("application/json")
        && parts.all(|p| {
            let Some((name, v)) = p.split_once('=') else {
                return p.trim().is_empty();
            };
            name.trim().eq_ignore_ascii_case("charset")
                && v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        })
}
