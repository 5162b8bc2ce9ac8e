//! Finding list answers in the MCP server's response, JSON or SSE, and filtering them
//! (`mcp_lists.rs`). SSE events are buffered only while an awaited answer is outstanding;
//! after it the stream passes through untouched. What can not be read is not passed on.

use std::sync::Arc;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body::Body as _;
use http_body_util::{BodyExt, Limited};
use serde_json::Value;

use crate::challenge::text;
use crate::mcp_admit::{Settings, is_encoded};
use crate::mcp_lists::AwaitedLists;
use crate::owner::ResourceOwner;

/// The largest list answer (a JSON body, or one SSE event) the filter reads: 16 MiB.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// What one response needs to filter its list answers.
pub(crate) struct ListFilter {
    pub(crate) settings: Arc<Settings>,
    pub(crate) owner: ResourceOwner,
    pub(crate) awaited: AwaitedLists,
}

impl ListFilter {
    fn apply(&mut self, message: &mut Value) -> bool {
        let policy = &self.settings.policy;
        match message {
            Value::Array(batch) => {
                let mut any = false;
                for m in batch {
                    any |= self.awaited.filter(policy, &self.owner, m);
                }
                any
            }
            one => self.awaited.filter(policy, &self.owner, one),
        }
    }
}

/// The response with its list answers filtered. An error answer (not 2xx) carries no list
/// and passes as it is; a successful one the filter can not read (compressed, another media
/// type) is not passed on.
pub(crate) async fn filter_response(res: Response<Body>, filter: ListFilter) -> Response<Body> {
    if !res.status().is_success() {
        return res;
    }
    let media = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let encoded = is_encoded(res.headers());
    match media.as_str() {
        // No answer in it, so no list.
        _ if res.body().is_end_stream() => res,
        _ if encoded => unreadable(),
        "application/json" => filter_json(res, filter).await,
        "text/event-stream" => filter_sse(res, filter),
        _ => unreadable(),
    }
}

fn unreadable() -> Response<Body> {
    tracing::warn!("an MCP list answer could not be read to filter it; not passed on");
    text(
        StatusCode::BAD_GATEWAY,
        "Bad Gateway: the MCP server's answer could not be filtered",
    )
}

async fn filter_json(res: Response<Body>, mut filter: ListFilter) -> Response<Body> {
    let (mut parts, body) = res.into_parts();
    let Ok(collected) = Limited::new(body, MAX_ANSWER_BYTES).collect().await else {
        return unreadable();
    };
    let bytes = collected.to_bytes();
    if bytes.is_empty() {
        // No answer in it, so no list.
        return Response::from_parts(parts, Body::empty());
    }
    let Ok(mut message) = serde_json::from_slice::<Value>(&bytes) else {
        return unreadable();
    };
    if !filter.apply(&mut message) {
        return Response::from_parts(parts, Body::from(bytes));
    }
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(message.to_string()))
}

/// Where the first SSE event in `buf` ends (after its blank line), if it is complete.
fn event_end(buf: &[u8]) -> Option<usize> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One SSE event, filtered when its data is an awaited answer; else its bytes unchanged.
/// `Err` for an event whose data can not be read while answers are awaited: it is not
/// passed on.
fn filter_event(event: Bytes, filter: &mut ListFilter) -> Result<Bytes, ()> {
    let Ok(text) = std::str::from_utf8(&event) else {
        return Err(());
    };
    let mut data: Vec<&str> = Vec::new();
    let mut other: Vec<&str> = Vec::new();
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("data:") {
            data.push(d.strip_prefix(' ').unwrap_or(d));
        } else if !line.is_empty() {
            other.push(line);
        }
    }
    let data = data.join("\n");
    // A priming or comment-only event, or one that can not hold a list answer.
    if data.trim().is_empty() || !filter.awaited.may_hold_list(&data) {
        return Ok(event);
    }
    let Ok(mut message) = serde_json::from_str::<Value>(&data) else {
        return Err(());
    };
    if !filter.apply(&mut message) {
        return Ok(event);
    }
    let mut out = String::new();
    for line in other {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(&message.to_string());
    out.push_str("\n\n");
    Ok(Bytes::from(out))
}

fn filter_sse(res: Response<Body>, filter: ListFilter) -> Response<Body> {
    let (mut parts, body) = res.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    let state = Sse {
        body: body.into_data_stream(),
        buf: BytesMut::new(),
        scanned: 0,
        filter,
        finished: false,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if st.finished {
            return None;
        }
        let item = st.next().await?;
        st.finished = item.is_err();
        Some((item, st))
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// The state of a filtered SSE stream.
struct Sse {
    body: axum::body::BodyDataStream,
    buf: BytesMut,
    /// How far `buf` has been searched for the end of an event.
    scanned: usize,
    filter: ListFilter,
    finished: bool,
}

impl Sse {
    /// The next bytes to send, an error that ends the stream, or the end.
    async fn next(&mut self) -> Option<Result<Bytes, axum::BoxError>> {
        loop {
            if self.filter.awaited.is_done() {
                // Nothing left to filter: what is buffered, then the rest as it comes.
                if !self.buf.is_empty() {
                    return Some(Ok(self.buf.split().freeze()));
                }
                return self
                    .body
                    .next()
                    .await
                    .map(|r| r.map_err(axum::Error::into_inner));
            }
            // Search only what was not searched yet (three bytes back for a split `\r\n\r\n`).
            let from = self.scanned.saturating_sub(3);
            if let Some(end) = event_end(&self.buf[from..]).map(|e| e + from) {
                let event = self.buf.split_to(end).freeze();
                self.scanned = 0;
                return Some(filter_event(event, &mut self.filter).map_err(|()| {
                    tracing::warn!("an MCP SSE event that can not be read; stream ended");
                    "an SSE event that can not be read".into()
                }));
            }
            self.scanned = self.buf.len();
            if self.buf.len() > MAX_ANSWER_BYTES {
                tracing::warn!("an MCP SSE event too large to filter; stream ended");
                return Some(Err("an SSE event too large to filter".into()));
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => return Some(Err(e.into_inner())),
                // The stream ended inside an event: what is left is not a complete event and
                // is not passed on.
                None => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp_policy::Policy;
    use crate::scope::ScopeRequirement;

    fn filter(awaited: AwaitedLists) -> ListFilter {
        let mut policy = Policy::default();
        policy.tools.insert(
            "admin".to_owned(),
            ScopeRequirement::all(["mcp:admin"]).unwrap().into(),
        );
        let claims = serde_json::json!({"sub": "u", "scope": "mcp:tools"});
        let Value::Object(claims) = claims else {
            unreachable!()
        };
        ListFilter {
            settings: Arc::new(Settings {
                policy,
                max_body_bytes: 1 << 20,
                read_timeout: std::time::Duration::from_secs(1),
                from_headers: false,
                filter_lists: true,
            }),
            owner: ResourceOwner::from_claims("https://as".to_owned(), claims, Arc::default())
                .unwrap(),
            awaited,
        }
    }

    fn sse(chunks: Vec<&'static [u8]>) -> Response<Body> {
        let stream = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::convert::Infallible>(Bytes::from_static(c))),
        );
        let mut res = Response::new(Body::from_stream(stream));
        res.headers_mut().insert(
            CONTENT_TYPE,
            http::HeaderValue::from_static("text/event-stream"),
        );
        res
    }

    async fn text_of(res: Response<Body>) -> String {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn sse_answers_are_filtered_across_chunk_boundaries_and_the_rest_passes() {
        let body = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":"b","method":"ping"}]"#;
        let awaited = AwaitedLists::of(body, true).unwrap();
        let answer: &'static [u8] = b"id: 5\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"admin\"},{\"name\":\"open\"},{\"title\":\"no name\"}]}}\n\n";
        // One byte at a time: events are found however the stream is cut.
        let mut chunks: Vec<&'static [u8]> = vec![b"data:\n\n", b": keep-alive\n\n"];
        chunks.extend(answer.chunks(1));
        chunks.push(b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"admin\"}]}}\n\n");
        let out = text_of(filter_response(sse(chunks), filter(awaited)).await).await;
        let events: Vec<&str> = out.split("\n\n").collect();
        assert_eq!(events[0], "data:");
        assert_eq!(events[1], ": keep-alive");
        assert_eq!(
            events[2],
            r#"id: 5
data: {"id":1,"jsonrpc":"2.0","result":{"cacheScope":"private","tools":[{"name":"open"}]}}"#
        );
        // After the awaited answer the stream is passed on untouched (a second answer with
        // the same id is not one the filter waits for).
        assert!(events[3].contains(r#"[{"name":"admin"}]"#), "{out}");
    }

    #[tokio::test]
    async fn a_get_stream_filters_every_list_shaped_answer_and_passes_the_rest() {
        let out = text_of(
            filter_response(
                sse(vec![
                    b"data:\nid: 0/0\n\n",
                    b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n",
                    b"id: 1/3\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[{\"name\":\"admin\"},{\"name\":\"open\"}]}}\n\n",
                    b"data: {\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"admin\"}]}}\n\n",
                    b"data: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"tools\":[{\"name\":\"admin\"}]}}\n\n",
                ]),
                filter(AwaitedLists::any_list()),
            )
            .await,
        )
        .await;
        let events: Vec<&str> = out.split("\n\n").collect();
        assert_eq!(events[0], "data:\nid: 0/0");
        assert!(events[1].contains("list_changed"));
        assert_eq!(
            events[2],
            "id: 1/3\ndata: {\"id\":3,\"jsonrpc\":\"2.0\",\"result\":{\"tools\":[{\"name\":\"open\"}]}}"
        );
        assert!(
            events[3].contains("\"text\":\"admin\""),
            "a tool result is not a list"
        );
        assert_eq!(
            events[4],
            "data: {\"id\":5,\"jsonrpc\":\"2.0\",\"result\":{\"tools\":[]}}"
        );
    }

    #[tokio::test]
    async fn answers_that_can_not_be_read_are_not_passed_on() {
        let body = br#"{"id":1,"method":"tools/list"}"#;
        let awaited = || AwaitedLists::of(body, false).unwrap();
        // An SSE event that is not JSON while the answer is awaited ends the stream.
        let res = filter_response(
            sse(vec![b"data: {not json\n\n", b"data: {}\n\n"]),
            filter(awaited()),
        )
        .await;
        assert!(res.into_body().collect().await.is_err());
        // Compressed, or another media type: 502.
        let mut gz = sse(vec![b"data: x\n\n"]);
        gz.headers_mut().insert(
            http::header::CONTENT_ENCODING,
            http::HeaderValue::from_static("gzip"),
        );
        assert_eq!(
            filter_response(gz, filter(awaited())).await.status(),
            StatusCode::BAD_GATEWAY
        );
        let mut plain = Response::new(Body::from("tools: admin"));
        plain
            .headers_mut()
            .insert(CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
        assert_eq!(
            filter_response(plain, filter(awaited())).await.status(),
            StatusCode::BAD_GATEWAY
        );
        // Error answers (an unknown session's 404) and empty answers pass as they are.
        let mut missing = Response::new(Body::from("Not Found: Session not found"));
        *missing.status_mut() = StatusCode::NOT_FOUND;
        let res = filter_response(missing, filter(awaited())).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(text_of(res).await, "Not Found: Session not found");
        let mut accepted = Response::new(Body::empty());
        *accepted.status_mut() = StatusCode::ACCEPTED;
        assert_eq!(
            filter_response(accepted, filter(awaited())).await.status(),
            StatusCode::ACCEPTED
        );
    }

    #[tokio::test]
    async fn json_batches_are_filtered_by_id_and_unreadable_answers_are_not_passed_on() {
        let body = br#"[{"id":1,"method":"ping"},{"id":2,"method":"tools/list"}]"#;
        let awaited = AwaitedLists::of(body, false).unwrap();
        let json = |text: &'static str| {
            let mut res = Response::new(Body::from(text));
            res.headers_mut().insert(
                CONTENT_TYPE,
                http::HeaderValue::from_static("application/json; charset=utf-8"),
            );
            res
        };
        let res = filter_response(
            json(r#"[{"id":1,"result":{"tools":[{"name":"admin"}]}},{"id":2,"result":{"tools":[{"name":"admin"},{"name":"x"}]}}]"#),
            filter(awaited.clone()),
        )
        .await;
        assert_eq!(
            text_of(res).await,
            r#"[{"id":1,"result":{"tools":[{"name":"admin"}]}},{"id":2,"result":{"tools":[{"name":"x"}]}}]"#
        );
        let res = filter_response(json("{not json"), filter(awaited)).await;
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn events_end_at_a_blank_line() {
        assert_eq!(event_end(b"data: x\n\nrest"), Some(9));
        assert_eq!(event_end(b"data: x\r\n\r\n"), Some(11));
        assert_eq!(event_end(b"data: x\n"), None);
    }
}
