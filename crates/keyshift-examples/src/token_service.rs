//! A service that issues JWTs signed with the current key and verifies JWTs with every
//! accepted key.
//!
//! ```text
//! issue:  current() -> signing_key() -> JWT, header kid = version id, alg = the key's
//! verify: header kid -> JWKS of AWSCURRENT, AWSPENDING, ROTATING -> that JWK, its alg
//!         pinned -> signature, exp, iss, aud
//! ```
//!
//! A token whose `kid` the cache has never seen triggers one rate-limited refresh
//! ([`KeyWindow::fetch_accepted`]) before it is refused: after an emergency rotation the
//! first token signed with the new key verifies in one round trip instead of after the
//! next scheduled refresh. A kid that left the window is refused at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use keyshift_client::{Jwks, KeyProblem, LookupError};
use serde_json::{Map, Value};

use crate::jwt::{self, Expect, SignError, Verified, VerifyError};
use crate::window::KeyWindow;

/// Claims the service sets itself; a caller may not choose them.
pub const RESERVED_CLAIMS: [&str; 5] = ["iss", "aud", "exp", "iat", "nbf"];

/// Why issuing or verifying failed. Never carries a token, claims or key material.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token did not verify.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The window cache has nothing to serve (not ready, or expired after failing
    /// refreshes), or an accepted version is not a signing key pair.
    #[error("signing keys unavailable: {0}")]
    Keys(#[from] LookupError),
    /// The current version's value is not a signing key pair.
    #[error("the current signing key {kid} is unusable: {problem}")]
    Key {
        /// Its version id.
        kid: String,
        /// What is wrong (never the value).
        problem: KeyProblem,
    },
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The caller tried to set a claim the service sets.
    #[error("the claim {0} is set by the service")]
    ReservedClaim(&'static str),
}

/// The issuer's and verifier's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    /// `iss` of issued tokens, and the only `iss` accepted.
    pub issuer: String,
    /// `aud` of issued tokens, and the `aud` a token must have.
    pub audience: String,
    /// Lifetime of issued tokens (`exp` - `iat`).
    pub ttl: Duration,
    /// Clock skew allowed when checking `exp` and `nbf`.
    pub leeway: Duration,
}

impl TokenPolicy {
    /// Tokens from `issuer` for `audience`, valid 15 minutes, 30 s of leeway.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        TokenPolicy {
            issuer: issuer.into(),
            audience: audience.into(),
            ttl: Duration::from_secs(15 * 60),
            leeway: Duration::from_secs(30),
        }
    }

    fn expect(&self) -> Expect {
        Expect {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            leeway: self.leeway,
        }
    }
}

/// A token just issued.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Issued {
    /// The compact JWS. A bearer credential: never log it.
    pub token: String,
    /// The version id of the key that signed it (its header's `kid`).
    pub kid: String,
    /// The algorithm.
    pub alg: String,
    /// `exp`, in seconds since the epoch.
    pub expires_at: u64,
}

/// Issues and verifies tokens for one signing secret (a stock signing kind: `ed25519`,
/// `ecdsa-p256`, `ecdsa-p384`, `rsa-2048/3072/4096`).
pub struct TokenService<K: KeyWindow> {
    keys: K,
    policy: TokenPolicy,
    expect: Expect,
    /// The last JWKS parsed for `jsonwebtoken`, with the view's JWKS it came from: a view
    /// builds its JWKS once, so the parse is redone only when a refresh changed it.
    parsed: Mutex<Option<(Arc<Jwks>, Arc<JwkSet>)>>,
}

impl<K: KeyWindow> std::fmt::Debug for TokenService<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<K: KeyWindow> TokenService<K> {
    /// A service over a window cache of the signing secret (a started
    /// [`keyshift_client::Client`] in production).
    pub fn new(keys: K, policy: TokenPolicy) -> Self {
        let expect = policy.expect();
        TokenService {
            keys,
            policy,
            expect,
            parsed: Mutex::new(None),
        }
    }

    /// The window cache (to refresh it, or to publish its JWKS).
    pub fn keys(&self) -> &K {
        &self.keys
    }

    /// The rules.
    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    /// A token carrying `claims` plus `iss`, `aud`, `iat` and `exp` from the policy,
    /// signed with the current key (AWSCURRENT), its version id in the header's `kid`.
    pub fn issue(&self, mut claims: Map<String, Value>) -> Result<Issued, TokenError> {
        if let Some(reserved) = RESERVED_CLAIMS.into_iter().find(|c| claims.contains_key(*c)) {
            return Err(TokenError::ReservedClaim(reserved));
        }
        let current = self.keys.cache().current()?;
        // Parsed per call to keep the example short; a version's value never changes,
        // so a busy service would keep parsed keys by version id.
        let key = current.signing_key().map_err(|problem| TokenError::Key {
            kid: current.id().to_string(),
            problem,
        })?;
        let now = jsonwebtoken::get_current_timestamp();
        let exp = now.saturating_add(self.policy.ttl.as_secs());
        claims.insert("iss".into(), Value::from(self.policy.issuer.as_str()));
        claims.insert("aud".into(), Value::from(self.policy.audience.as_str()));
        claims.insert("iat".into(), Value::from(now));
        claims.insert("exp".into(), Value::from(exp));
        let token = jwt::sign(&key, &claims)?;
        Ok(Issued {
            token,
            kid: key.kid().to_string(),
            alg: key.alg().to_owned(),
            expires_at: exp,
        })
    }

    /// The accepted keys as a [`JwkSet`] (the view's JWKS, parsed once per view).
    pub fn jwk_set(&self) -> Result<Arc<JwkSet>, TokenError> {
        let jwks = self.keys.cache().jwks()?;
        let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((from, set)) = &*parsed {
            if Arc::ptr_eq(from, &jwks) {
                return Ok(Arc::clone(set));
            }
        }
        let set = Arc::new(jwt::jwk_set(jwks.as_json()));
        *parsed = Some((jwks, Arc::clone(&set)));
        Ok(set)
    }

    /// The token's claims if an accepted key signed it, under the algorithm of that key,
    /// and its `exp`, `iss` and `aud` hold. An unknown kid refreshes the cache once.
    pub async fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        match jwt::verify(token, &*self.jwk_set()?, &self.expect) {
            Err(VerifyError::UnknownKey { kid }) => match self.keys.fetch_accepted(&kid).await {
                // A key published since the last refresh: verify against the new view.
                Ok(_) => Ok(jwt::verify(token, &*self.jwk_set()?, &self.expect)?),
                Err(LookupError::UnknownVersion | LookupError::NotAccepted(_)) => {
                    Err(VerifyError::UnknownKey { kid }.into())
                }
                Err(LookupError::InvalidVersionId) => Err(VerifyError::BadKid.into()),
                Err(e) => Err(e.into()),
            },
            other => Ok(other?),
        }
    }
}
