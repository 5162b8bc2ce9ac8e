//! What connected accounts seal: the stored account (bound to its [`AccountKey`]), the connect
//! link a denial carries (bound to one user), and the browser flow's state between steps (bound
//! to the browser by a cookie's hash). Plus the PKCE and randomness helpers the flow uses.

use std::time::UNIX_EPOCH;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::provider::Issued;
use super::seal::EncryptionKey;
use super::store::AccountKey;
use crate::downstream::DownstreamToken;

pub(super) const ACCOUNT: &str = "protected-resource/connected-account/v1";
pub(super) const LINK: &str = "protected-resource/connect-link/v1";
pub(super) const LOGIN_STATE: &str = "protected-resource/connect-login-state/v1";
pub(super) const PROVIDER_STATE: &str = "protected-resource/connect-provider-state/v1";

/// A connected account's tokens, sealed with its key as associated data.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub(super) struct Account {
    pub(super) access_token: String,
    pub(super) token_type: String,
    /// Seconds since the epoch; `None` when the provider gave no lifetime.
    pub(super) expires_at: Option<u64>,
    pub(super) refresh_token: Option<String>,
    pub(super) scopes: Vec<String>,
    pub(super) connected_at: u64,
}

impl Account {
    pub(super) fn seal(&self, key: &EncryptionKey, account: &AccountKey) -> Option<Vec<u8>> {
        let plain = serde_json::to_vec(self).ok()?;
        key.seal(ACCOUNT, &account.to_bytes(), &plain)
    }

    /// `None` when no key opens it (or it belongs to another key): treated as not connected.
    /// The flag says whether the current key opened it (`false`: seal it again).
    pub(super) fn open(
        key: &EncryptionKey,
        account: &AccountKey,
        sealed: &[u8],
    ) -> Option<(Self, bool)> {
        let (plain, current) = key.open_which(ACCOUNT, &account.to_bytes(), sealed)?;
        Some((serde_json::from_slice(&plain).ok()?, current))
    }

    /// Usable for `margin_secs` more seconds (a token without a known lifetime is).
    pub(super) fn is_fresh(&self, margin_secs: u64) -> bool {
        self.expires_at
            .is_none_or(|at| at > now_secs().saturating_add(margin_secs))
    }

    pub(super) fn covers(&self, scopes: &[String]) -> bool {
        scopes.iter().all(|s| self.scopes.contains(s))
    }

    /// The account a token endpoint's answer makes: `asked` are the scopes requested (the
    /// grant's when the answer names none), `refresh` the refresh token to keep when the
    /// answer brings no new one (a provider that does not rotate).
    pub(super) fn from_issued(
        issued: Issued,
        asked: &[String],
        refresh: Option<String>,
        connected_at: u64,
    ) -> Self {
        Self {
            access_token: issued.access_token,
            token_type: issued.token_type.unwrap_or_else(|| "Bearer".to_owned()),
            expires_at: issued.expires_in.map(|s| now_secs().saturating_add(s)),
            refresh_token: issued.refresh_token.or(refresh),
            scopes: granted_scopes(issued.scope.as_deref(), asked),
            connected_at,
        }
    }

    pub(super) fn token(&self) -> DownstreamToken {
        let mut token = DownstreamToken::new(self.access_token.as_str())
            .with_token_type(self.token_type.clone())
            .with_scopes(self.scopes.clone());
        if let Some(at) = self.expires_at {
            token = token.with_expires_at(UNIX_EPOCH + std::time::Duration::from_secs(at));
        }
        token
    }
}

/// A connect link: who asked (issuer, subject), for which provider and scopes, until when.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub(super) struct Link {
    pub(super) iss: String,
    pub(super) sub: String,
    pub(super) provider: String,
    pub(super) scopes: Vec<String>,
    pub(super) exp: u64,
}

/// The browser flow's state between two steps (sealed into the OAuth `state`).
#[derive(Serialize, Deserialize)]
pub(super) struct FlowState {
    pub(super) link: Link,
    /// The PKCE verifier of this step's authorization request.
    pub(super) verifier: String,
    /// Base64url SHA-256 of the browser's binding cookie.
    pub(super) binding: String,
    pub(super) exp: u64,
}

/// Seals `value` for `purpose`, bound to `context` (the connect URL: links and states of one
/// deployment do not open at another that shares the key).
pub(super) fn seal_json<T: Serialize>(
    key: &EncryptionKey,
    purpose: &str,
    context: &str,
    value: &T,
) -> Option<String> {
    key.seal_text(
        purpose,
        context.as_bytes(),
        &serde_json::to_vec(value).ok()?,
    )
}

pub(super) fn open_json<T: for<'de> Deserialize<'de>>(
    key: &EncryptionKey,
    purpose: &str,
    context: &str,
    text: &str,
) -> Option<T> {
    serde_json::from_slice(&key.open_text(purpose, context.as_bytes(), text)?).ok()
}

/// A token response's `scope`: space-separated (RFC 6749), or comma-separated (GitHub);
/// when absent or empty, what was asked for (RFC 6749 §5.1: the scope is as requested).
pub(super) fn granted_scopes(scope: Option<&str>, asked: &[String]) -> Vec<String> {
    let mut scopes: Vec<String> = scope
        .unwrap_or("")
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        scopes = asked.to_vec();
    }
    scopes.sort();
    scopes.dedup();
    scopes
}

pub(super) fn now_secs() -> u64 {
    crate::clock::unix_secs()
}

/// 32 random bytes, base64url.
pub(super) fn random() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// Base64url SHA-256 (the PKCE S256 challenge of a verifier; the binding of a cookie).
pub(super) fn sha256_b64(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granted_scopes_read_spaces_commas_and_absence() {
        let asked = vec!["read:user".to_owned(), "repo".to_owned()];
        assert_eq!(granted_scopes(Some("repo,gist"), &asked), ["gist", "repo"]);
        assert_eq!(
            granted_scopes(Some("repo  gist repo"), &asked),
            ["gist", "repo"]
        );
        assert_eq!(granted_scopes(Some(""), &asked), asked);
        assert_eq!(granted_scopes(None, &asked), asked);
    }
}
