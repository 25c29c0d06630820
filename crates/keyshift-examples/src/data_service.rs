//! A service that encrypts with the current key and decrypts by the key id each
//! ciphertext carries.
//!
//! ```text
//! encrypt: current() -> (version id, AES key) -> [format | key id | nonce | ct+tag]
//! decrypt: key id from the header -> that exact version (window, past cache, or
//!          GetSecretValue on a miss) -> open
//! ```
//!
//! There is no "try current, then previous": data encrypted years ago decrypts with
//! the version it names, whether or not that version is still in the window.

use keyshift_client::{Client, LookupError, Source};

use crate::keys::{DataKey, KeyError};
use crate::sealed::{self, OpenError, SealError};

/// Why encrypting or decrypting failed.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The ciphertext is corrupt or was altered.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Sealing failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// No version of the secret has this id. (A lookup within the cache's miss
    /// interval of its last refresh is not fetched and ends here too: try again
    /// later.)
    #[error("no key with id {key_id}: the secret has no such version")]
    UnknownKey {
        /// The key id the ciphertext names.
        key_id: String,
    },
    /// The version exists but its value is not an AES-256 JWK.
    #[error("key {key_id} is unusable: {problem}")]
    Key {
        /// The version id.
        key_id: String,
        /// What is wrong with its value (never the value).
        problem: KeyError,
    },
    /// The window cache has nothing to serve.
    #[error("data keys unavailable: {0}")]
    Keys(#[from] LookupError),
}

/// Encrypts and decrypts with one data-key secret.
#[derive(Debug)]
pub struct DataService<S: Source + 'static> {
    keys: Client<S>,
}

impl<S: Source + 'static> DataService<S> {
    /// A service over a started window cache of the data-key secret.
    pub fn new(keys: Client<S>) -> Self {
        DataService { keys }
    }

    /// The window cache.
    pub fn keys(&self) -> &Client<S> {
        &self.keys
    }

    /// Encrypts `plaintext` under the current key (AWSCURRENT).
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, DataError> {
        let current = self.keys.current()?;
        let key_id = current.id().as_str();
        let key = DataKey::from_jwk(current.value().expose()).map_err(|problem| DataError::Key {
            key_id: key_id.to_owned(),
            problem,
        })?;
        Ok(sealed::seal(&key, key_id, plaintext)?)
    }

    /// Decrypts `ciphertext` with exactly the key its header names.
    pub async fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, DataError> {
        let key_id = sealed::key_id(ciphertext)?;
        let version = match self.keys.fetch_version(key_id).await {
            Ok(version) => version,
            Err(LookupError::UnknownVersion | LookupError::InvalidVersionId) => {
                return Err(DataError::UnknownKey {
                    key_id: key_id.to_owned(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let key = DataKey::from_jwk(version.value().expose()).map_err(|problem| DataError::Key {
            key_id: key_id.to_owned(),
            problem,
        })?;
        Ok(sealed::open(&key, ciphertext)?)
    }
}
