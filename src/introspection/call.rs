//! One introspection call (RFC 7662 §2): the endpoint (configured, or discovered once from
//! the issuer's metadata), the authenticated POST, and what the answer says.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use tokio::time::Instant;

use crate::client_auth::ClientAuth;
use crate::keys::discovery::{self, Wanted};
use crate::keys::fetch::HttpFetcher;

/// The largest introspection answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The wait after a failed discovery or call before the endpoint is tried again.
pub(crate) const FAILURE_COOLDOWN: Duration = Duration::from_secs(2);

/// What the endpoint said about a token.
#[derive(Debug)]
pub(crate) enum Answer {
    /// `active: true`, with the whole answer (read like a JWT's claims).
    Active(String),
    /// `active: false`.
    Inactive,
}

/// Why no answer was obtained (logged; the request is answered 503). `server_down`: the
/// server could not be reached, timed out or answered 5xx, so new calls wait out a cooldown;
/// other failures (a 4xx, an answer that is not one) concern this call only, so that no
/// token can make the endpoint look down for everyone else.
#[derive(Debug)]
pub(crate) struct CallError {
    pub(crate) why: String,
    pub(crate) server_down: bool,
}

fn down(why: String) -> Result<Answer, Result<CallError, Duration>> {
    Err(Ok(CallError {
        why,
        server_down: true,
    }))
}

fn this_call(why: String) -> Result<Answer, Result<CallError, Duration>> {
    Err(Ok(CallError {
        why,
        server_down: false,
    }))
}

/// Where the endpoint is.
pub(crate) enum Endpoint {
    Fixed(Arc<str>),
    /// Discovered from `issuer`'s metadata, once; a failure is retried after a cooldown.
    Discover {
        issuer: String,
        found: tokio::sync::Mutex<Discovery>,
    },
}

#[derive(Default)]
pub(crate) struct Discovery {
    url: Option<Arc<str>>,
    retry_at: Option<Instant>,
}

/// Everything a call needs.
pub(crate) struct Caller {
    pub(crate) endpoint: Endpoint,
    pub(crate) auth: ClientAuth,
    pub(crate) client: reqwest::Client,
    pub(crate) fetcher: HttpFetcher,
    pub(crate) allow_insecure: bool,
}

/// The members of an answer read before the claims checks.
#[derive(Deserialize)]
struct Head {
    active: bool,
}

impl Caller {
    /// The endpoint: configured, or discovered (one discovery at a time; after a failure,
    /// none before the cooldown ends, `Err` with the time left).
    async fn endpoint(&self) -> Result<Arc<str>, Result<CallError, Duration>> {
        let (issuer, found) = match &self.endpoint {
            Endpoint::Fixed(url) => return Ok(url.clone()),
            Endpoint::Discover { issuer, found } => (issuer, found),
        };
        let mut state = found.lock().await;
        if let Some(url) = &state.url {
            return Ok(url.clone());
        }
        let now = Instant::now();
        if let Some(at) = state.retry_at
            && now < at
        {
            return Err(Err(at - now));
        }
        match discovery::discover(
            &self.fetcher,
            issuer,
            self.allow_insecure,
            Wanted::IntrospectionEndpoint,
        )
        .await
        {
            Ok(d) => {
                tracing::debug!(introspection_endpoint = %d.url, "discovered the introspection endpoint");
                state.url = Some(d.url.clone());
                Ok(d.url)
            }
            Err(e) => {
                state.retry_at = Some(Instant::now() + FAILURE_COOLDOWN);
                Err(Ok(CallError {
                    why: format!("discovering the introspection endpoint: {e}"),
                    server_down: true,
                }))
            }
        }
    }

    /// Asks the endpoint about `token`. `Err(Err(wait))`: not tried (a discovery failed
    /// moments ago).
    pub(crate) async fn introspect(
        &self,
        token: &str,
    ) -> Result<Answer, Result<CallError, Duration>> {
        let endpoint = self.endpoint().await?;
        let mut form: Vec<(&str, String)> = vec![
            ("token", token.to_owned()),
            ("token_type_hint", "access_token".to_owned()),
        ];
        form.extend(self.auth.body_params(&endpoint).ok_or_else(|| {
            Ok(CallError {
                why: "the client assertion could not be signed".into(),
                server_down: false,
            })
        })?);
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let mut request = self
            .client
            .post(&*endpoint)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body);
        if let Some(basic) = self.auth.basic_header() {
            request = request.header(AUTHORIZATION, basic);
        }
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return down(format!(
                    "{endpoint}: {}",
                    crate::keys::fetch::transport_reason(&e)
                ));
            }
        };
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            let why = format!("{endpoint} answered {}", status.as_u16());
            return if status.is_server_error() {
                down(why)
            } else {
                this_call(why)
            };
        }
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                        return this_call(format!(
                            "{endpoint}: the answer is larger than {MAX_ANSWER_BYTES} bytes"
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return down(format!(
                        "{endpoint}: {}",
                        crate::keys::fetch::transport_reason(&e)
                    ));
                }
            }
        }
        let Ok(text) = String::from_utf8(bytes) else {
            return this_call(format!("{endpoint}: the answer is not UTF-8"));
        };
        // An object (serde would also read a struct from an array).
        let head = if text.trim_start().starts_with('{') {
            serde_json::from_str::<Head>(&text).ok()
        } else {
            None
        };
        match head {
            Some(Head { active: true }) => Ok(Answer::Active(text)),
            Some(Head { active: false }) => Ok(Answer::Inactive),
            None => this_call(format!(
                "{endpoint}: the answer is not a JSON object with a boolean `active`"
            )),
        }
    }
}
