//! Finding list answers in the MCP server's response, JSON or SSE, and filtering them
//! (`mcp_lists.rs`). SSE events are buffered only while an awaited answer is outstanding;
//! after it the stream passes through untouched. What can not be read is not passed on.

use std::sync::Arc;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;

use crate::challenge::text;
use crate::mcp_admit::Settings;
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

/// The response with its list answers filtered.
pub(crate) async fn filter_response(res: Response<Body>, filter: ListFilter) -> Response<Body> {
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
    match media.as_str() {
        "application/json" => filter_json(res, filter).await,
        "text/event-stream" => filter_sse(res, filter),
        _ => res,
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
fn filter_event(event: Bytes, filter: &mut ListFilter) -> Bytes {
    let Ok(text) = std::str::from_utf8(&event) else {
        return event;
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
    let Ok(mut message) = serde_json::from_str::<Value>(&data.join("\n")) else {
        return event;
    };
    if !filter.apply(&mut message) {
        return event;
    }
    let mut out = String::new();
    for line in other {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(&message.to_string());
    out.push_str("\n\n");
    Bytes::from(out)
}

fn filter_sse(res: Response<Body>, filter: ListFilter) -> Response<Body> {
    let (mut parts, body) = res.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    let state = (body.into_data_stream(), BytesMut::new(), filter, false);
    let stream = futures_util::stream::unfold(
        state,
        |(mut body, mut buf, mut filter, finished)| async move {
            if finished {
                return None;
            }
            loop {
                if filter.awaited.is_done() {
                    // Nothing left to filter: what is buffered, then the rest as it comes.
                    if !buf.is_empty() {
                        let out = buf.split().freeze();
                        return Some((Ok(out), (body, buf, filter, false)));
                    }
                    return match body.next().await {
                        Some(Ok(chunk)) => Some((Ok(chunk), (body, buf, filter, false))),
                        Some(Err(e)) => Some((Err(e.into_inner()), (body, buf, filter, true))),
                        None => None,
                    };
                }
                if let Some(end) = event_end(&buf) {
                    let event = buf.split_to(end).freeze();
                    let out = filter_event(event, &mut filter);
                    return Some((Ok(out), (body, buf, filter, false)));
                }
                if buf.len() > MAX_ANSWER_BYTES {
                    tracing::warn!("an MCP SSE event too large to filter; stream ended");
                    let e: axum::BoxError = "an SSE event too large to filter".into();
                    return Some((Err(e), (body, buf, filter, true)));
                }
                match body.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    Some(Err(e)) => return Some((Err(e.into_inner()), (body, buf, filter, true))),
                    // The stream ended inside an event, or before the answer: what is left
                    // is not a complete event and is dropped.
                    None => return None,
                }
            }
        },
    );
    Response::from_parts(parts, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp_body::messages;
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
        let awaited = AwaitedLists::of(&messages(body).unwrap().list, true).unwrap();
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
    async fn json_batches_are_filtered_by_id_and_unreadable_answers_are_not_passed_on() {
        let body = br#"[{"id":1,"method":"ping"},{"id":2,"method":"tools/list"}]"#;
        let awaited = AwaitedLists::of(&messages(body).unwrap().list, false).unwrap();
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
