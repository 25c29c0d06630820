//! A service that encrypts with the current key and decrypts by the key id each
//! ciphertext carries.
//!
//! ```text
//! encrypt: current() -> symmetric_key() -> (kid = version id, 32 bytes)
//!          -> [format | key id | nonce | AES-256-GCM ct+tag], the header is the AAD
//! decrypt: key id from the header -> that exact version (window, past cache, or
//!          GetSecretValue on a miss) -> symmetric_key() -> open
//! ```
//!
//! There is no "try current, then previous": data encrypted years ago decrypts with
//! the version it names, whether or not that version is still in the window.

use keyshift_client::{KeyProblem, LookupError};

use crate::sealed::{self, OpenError, SealError};
use crate::window::KeyWindow;

/// Why encrypting or decrypting failed. Never carries key material or plaintext.
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
    /// The version exists but its value is not a symmetric key (a JWK `oct` of 32
    /// bytes, the stock `symmetric` kind).
    #[error("key {key_id} is unusable: {problem}")]
    Key {
        /// The version id.
        key_id: String,
        /// What is wrong with its value (never the value).
        problem: KeyProblem,
    },
    /// The window cache has nothing to serve.
    #[error("data keys unavailable: {0}")]
    Keys(#[from] LookupError),
}

/// Encrypts and decrypts with one data-key secret (stock kind `symmetric`).
#[derive(Debug)]
pub struct DataService<K: KeyWindow> {
    keys: K,
}

impl<K: KeyWindow> DataService<K> {
    /// A service over a window cache of the data-key secret (a started
    /// [`keyshift_client::Client`] in production).
    pub fn new(keys: K) -> Self {
        DataService { keys }
    }

    /// The window cache.
    pub fn keys(&self) -> &K {
        &self.keys
    }

    /// Encrypts `plaintext` under the current key (AWSCURRENT).
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, DataError> {
        let current = self.keys.cache().current()?;
        let key = current.symmetric_key().map_err(|problem| DataError::Key {
            key_id: current.id().to_string(),
            problem,
        })?;
        Ok(sealed::seal(&key, plaintext)?)
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
        let key = version.symmetric_key().map_err(|problem| DataError::Key {
            key_id: key_id.to_owned(),
            problem,
        })?;
        Ok(sealed::open(&key, ciphertext)?)
    }
}
