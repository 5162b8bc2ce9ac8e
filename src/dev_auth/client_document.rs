//! Clients of the development authorization server: registered ones, and those whose
//! `client_id` is the URL of a client ID metadata document (draft-ietf-oauth-client-id-metadata-document,
//! as the MCP authorization specification uses it), fetched with the limits key sets have (no
//! redirects, connect and total timeouts, a size cap) and kept for a few minutes.

use std::sync::Arc;

use reqwest::Url;
use serde_json::Value;

use super::Inner;
use super::register::acceptable_redirect;
use super::store::{AuthMethod, Client};
use crate::config::check::is_loopback_host;
use crate::keys::fetch::Fetched;

/// Longest `client_name` kept.
const MAX_NAME_CHARS: usize = 200;

impl Inner {
    /// The client `id` names: a registered client, or the document at the URL `id` is.
    /// `Err` says why there is none (shown on the error page).
    pub(crate) async fn client(&self, id: &str) -> Result<Arc<Client>, &'static str> {
        if let Some(client) = self.clients.get(id) {
            return Ok(client);
        }
        if !is_document_url(id) {
            return Err("Unknown client_id.");
        }
        if let Some(client) = self.documents.get(id) {
            return Ok(client);
        }
        let Ok(_permit) = self.document_fetches.try_acquire() else {
            return Err("Too many client ID metadata documents are being fetched; try again.");
        };
        let client = Arc::new(self.fetch_document(id).await?);
        // When the cache is full the client is still used, just not kept.
        let _ = self.documents.insert_as(id.to_owned(), client.clone());
        Ok(client)
    }

    async fn fetch_document(&self, url: &str) -> Result<Client, &'static str> {
        let fetched = self
            .fetcher
            .get(url, "application/json", None)
            .await
            .map_err(|_| "The client ID metadata document could not be fetched.")?;
        let Fetched::Body { bytes, .. } = fetched else {
            return Err("The client ID metadata document could not be fetched.");
        };
        let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(&bytes) else {
            return Err("The client ID metadata document is not a JSON object.");
        };
        if doc.get("client_id").and_then(Value::as_str) != Some(url) {
            return Err("The client ID metadata document names another client_id.");
        }
        // A document is public: no shared secret can be in it or be used with it.
        if doc.contains_key("client_secret") {
            return Err("A client ID metadata document must not hold a client_secret.");
        }
        match doc.get("token_endpoint_auth_method").map(Value::as_str) {
            None | Some(Some("none")) => {}
            _ => {
                return Err("This server accepts only public clients (none) by metadata document.");
            }
        }
        let redirect_uris: Vec<String> = match doc.get("redirect_uris") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or("redirect_uris must be strings.")?,
            _ => return Err("The client ID metadata document has no redirect_uris."),
        };
        if redirect_uris.is_empty() || redirect_uris.len() > 16 {
            return Err("The client ID metadata document has no usable redirect_uris.");
        }
        if !redirect_uris.iter().all(|u| acceptable_redirect(u)) {
            return Err("A redirect URI of the client ID metadata document is not acceptable.");
        }
        let grant_types = match doc.get("grant_types") {
            None => vec!["authorization_code".to_owned()],
            Some(Value::Array(items)) => {
                let grants: Option<Vec<String>> = items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .filter(|g| matches!(*g, "authorization_code" | "refresh_token"))
                            .map(str::to_owned)
                    })
                    .collect();
                grants.ok_or("grant_types may hold authorization_code and refresh_token.")?
            }
            Some(_) => return Err("grant_types must be an array."),
        };
        let name = doc
            .get("client_name")
            .and_then(Value::as_str)
            .map(|n| n.chars().take(MAX_NAME_CHARS).collect());
        Ok(Client {
            id: url.to_owned(),
            secret: None,
            name,
            redirect_uris,
            grant_types,
            auth_method: AuthMethod::None,
        })
    }
}

/// A `client_id` that is a document URL: `https` (or `http` on a loopback host, in
/// development) with a path, no fragment, no credentials, no dot segments.
fn is_document_url(id: &str) -> bool {
    let Ok(url) = Url::parse(id) else {
        return false;
    };
    let scheme_ok = match url.scheme() {
        "https" => url.host().is_some(),
        "http" => is_loopback_host(&url),
        _ => false,
    };
    scheme_ok
        && url.path() != "/"
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && !id.contains("/./")
        && !id.contains("/../")
        && id.len() <= 2048
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_urls() {
        assert!(is_document_url("https://app.example/oauth/client.json"));
        assert!(is_document_url("http://127.0.0.1:3000/client.json"));
        assert!(!is_document_url("https://app.example/"));
        assert!(!is_document_url("http://app.example/client.json"));
        assert!(!is_document_url("https://user:pw@app.example/c"));
        assert!(!is_document_url("https://app.example/c#f"));
        assert!(!is_document_url("https://app.example/a/../c"));
        assert!(!is_document_url("dev-client"));
    }
}
