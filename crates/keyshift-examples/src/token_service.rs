//! A service that issues tokens signed with the current key and verifies tokens with
//! every accepted key.
//!
//! ```text
//! issue:  current() -> (version id, private JWK) -> JWS with kid = version id
//! verify: kid -> JWKS of AWSCURRENT, AWSPENDING, ROTATING -> signature check
//! ```
//!
//! A token whose `kid` the cache has never seen triggers one rate-limited refresh
//! before it is refused: after an emergency rotation the first token signed with the
//! new key verifies in one round trip instead of after the next scheduled refresh.

use keyshift_client::{Client, LookupError, Source};
use serde_json::Value;

use crate::keys::{KeyError, SigningKey};
use crate::token::{self, VerifyError};

/// Why issuing or verifying failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token did not verify.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The window cache has nothing to serve (not ready, or expired after failing
    /// refreshes).
    #[error("signing keys unavailable: {0}")]
    Keys(#[from] LookupError),
    /// The current version's value is not an Ed25519 private JWK.
    #[error("the current signing key is unusable: {0}")]
    Key(#[from] KeyError),
}

/// Issues and verifies tokens for one signing secret.
#[derive(Debug)]
pub struct TokenService<S: Source + 'static> {
    keys: Client<S>,
}

impl<S: Source + 'static> TokenService<S> {
    /// A service over a started window cache of the signing secret.
    pub fn new(keys: Client<S>) -> Self {
        TokenService { keys }
    }

    /// The window cache (to refresh it, or to publish its JWKS).
    pub fn keys(&self) -> &Client<S> {
        &self.keys
    }

    /// A token carrying `claims`, signed with the current key (AWSCURRENT).
    pub fn issue(&self, claims: &Value) -> Result<String, TokenError> {
        let current = self.keys.current()?;
        // Parsed per call to keep the example short; values never change for a version
        // id, so a busy service would keep parsed keys by id.
        let key = SigningKey::from_jwk(current.value().expose())?;
        Ok(token::sign(&key, current.id().as_str(), claims))
    }

    /// The claims of `token` if an accepted key signed it.
    pub async fn verify(&self, token: &str) -> Result<Value, TokenError> {
        match token::verify(token, self.keys.jwks()?.as_json()) {
            Err(VerifyError::UnknownKey { kid }) => match self.keys.fetch_accepted(&kid).await {
                // A key published since the last refresh: verify against the new view.
                Ok(_) => Ok(token::verify(token, self.keys.jwks()?.as_json())?),
                Err(
                    LookupError::UnknownVersion | LookupError::NotAccepted(_) | LookupError::InvalidVersionId,
                ) => Err(VerifyError::UnknownKey { kid }.into()),
                Err(e) => Err(e.into()),
            },
            other => Ok(other?),
        }
    }
}
