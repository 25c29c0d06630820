//! The key encryption key as a `symmetric` secret keyshift rotates in Secrets Manager,
//! read through keyshift-client.
//!
//! New data keys are wrapped by the version labelled `AWSCURRENT`; the record names that
//! version's exact id (docs/protocol.md, section 2: key ids are version ids, never
//! stored in the value). Unwrapping asks keyshift-client for that exact version
//! ([`keyshift_client::Client::fetch_version`]): the window's versions and a bounded cache
//! of past ones answer without a call, a miss fetches the version by id. keyshift-client
//! refreshes on a miss at most once per miss interval (1 s by default): a miss refused
//! by that limit is tried once more after the interval, so a version that does not exist
//! fails after about one interval.
//!
//! The wrapped key is AES-256-GCM under the KEK version: a random 12-byte nonce, the
//! sealed 32 bytes and the tag (60 bytes), with the record's fields before the wrapped
//! key (`KSW`, version, provider, secret id, version id, data key id, context) as AAD.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use keyshift_client::{Client, Config, LookupError, Source, SymmetricKey, SystemClock};
use zeroize::Zeroizing;

use crate::dek::{DekBytes, fresh_dek};
use crate::error::{Error, KekError, KekErrorKind};
use crate::format::{
    DEK_ID_LEN, FORMAT_V1, NONCE_LEN, Provider, RecordRef, WRAPPED_DEK_MAGIC, encode_wrapped_dek,
    record_prefix,
};
use crate::kek::{Generated, Kek};

/// The wrapped key's length: nonce, 32 sealed bytes, tag.
pub const WRAPPED_LEN: usize = NONCE_LEN + 32 + 16;

/// A `symmetric` secret (a JWK `oct`, 32 bytes) in Secrets Manager as the KEK.
pub struct SecretsManagerKek<S: Source + 'static> {
    client: Client<S>,
    secret_id: String,
}

impl<S: Source + 'static> std::fmt::Debug for SecretsManagerKek<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManagerKek")
            .field("secret_id", &self.secret_id)
            .finish_non_exhaustive()
    }
}

fn lookup(operation: &'static str, e: &LookupError) -> Error {
    let (kind, message) = match e {
        LookupError::UnknownVersion | LookupError::InvalidVersionId => (
            KekErrorKind::KeyUnavailable,
            "the KEK version is not in Secrets Manager",
        ),
        LookupError::NotReady => (KekErrorKind::Transient, "no view of the KEK secret yet"),
        LookupError::Expired { .. } => (KekErrorKind::Transient, "the view of the KEK secret expired"),
        _ => (KekErrorKind::Other, "the KEK version lookup failed"),
    };
    Error::Kek(KekError::new(operation, kind, message))
}

fn symmetric(operation: &'static str, version: &keyshift_client::Version) -> Result<SymmetricKey, Error> {
    version.symmetric_key().map_err(|p| {
        Error::Kek(KekError::new(
            operation,
            KekErrorKind::BadKey,
            format!("the KEK version is not a symmetric key: {p}"),
        ))
    })
}

fn wrap_aad(prefix: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(4 + prefix.len());
    aad.extend_from_slice(&WRAPPED_DEK_MAGIC);
    aad.push(FORMAT_V1);
    aad.extend_from_slice(prefix);
    aad
}

fn aead(kek: &SymmetricKey) -> Result<LessSafeKey, Error> {
    UnboundKey::new(&AES_256_GCM, kek.bytes())
        .map(LessSafeKey::new)
        .map_err(|_| Error::Crypto("load the KEK"))
}

impl<S: Source + 'static> SecretsManagerKek<S> {
    /// Starts a keyshift-client [`Client`] on `source` (the secret `secret_id`; with the
    /// SDK, [`keyshift_client::SdkSource`]) and uses it as the KEK. Needs a tokio runtime.
    pub async fn start(source: S, secret_id: impl Into<String>, config: Config) -> Result<Self, Error> {
        let client = Client::start(source, config).await.map_err(|e| {
            Error::Kek(KekError::new(
                "start",
                KekErrorKind::KeyUnavailable,
                e.message().to_owned(),
            ))
        })?;
        Ok(SecretsManagerKek::from_client(client, secret_id))
    }

    /// Uses a running client of the secret `secret_id` (the id records carry).
    pub fn from_client(client: Client<S>, secret_id: impl Into<String>) -> Self {
        SecretsManagerKek {
            client,
            secret_id: secret_id.into(),
        }
    }

    /// The client.
    pub fn client(&self) -> &Client<S> {
        &self.client
    }

    /// The secret id records carry.
    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// Refreshes the view of the secret now (the background refresher does it on its
    /// schedule; after a rotation a writer may want the new AWSCURRENT at once).
    pub async fn refresh(&self) -> Result<(), Error> {
        self.client
            .cache()
            .refresh(self.client.source(), SystemClock::new().now())
            .await
            .map_err(|e| {
                Error::Kek(KekError::new(
                    "refresh",
                    KekErrorKind::Transient,
                    e.message().to_owned(),
                ))
            })
    }

    fn wrap(&self, dek: &DekBytes, dek_id: &[u8; DEK_ID_LEN], context: &str) -> Result<Vec<u8>, Error> {
        let current = self.client.current().map_err(|e| lookup("wrap", &e))?;
        let kek = symmetric("wrap", &current)?;
        let prefix = record_prefix(
            Provider::SecretsManager,
            &self.secret_id,
            kek.kid().as_str(),
            dek_id,
            context,
        )?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| Error::Crypto("draw a nonce"))?;
        let mut wrapped = Vec::with_capacity(WRAPPED_LEN);
        wrapped.extend_from_slice(&nonce);
        wrapped.extend_from_slice(&dek[..]);
        let aad = wrap_aad(&prefix);
        let body = wrapped.get_mut(NONCE_LEN..).unwrap_or_default();
        let tag = aead(&kek)?
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&aad[..]), body)
            .map_err(|_| Error::Crypto("wrap"))?;
        wrapped.extend_from_slice(tag.as_ref());
        Ok(encode_wrapped_dek(&prefix, &wrapped)?)
    }

    fn current_version(&self) -> Result<String, Error> {
        let current = self.client.current().map_err(|e| lookup("rewrap", &e))?;
        Ok(current.id().as_str().to_owned())
    }
}

impl<S: Source + 'static> Kek for SecretsManagerKek<S> {
    fn provider(&self) -> Provider {
        Provider::SecretsManager
    }

    fn rewrap_needs_key(&self) -> bool {
        true
    }

    async fn generate(&self, dek_id: &[u8; DEK_ID_LEN], context: &str) -> Result<Generated, Error> {
        let (dek, _unused_id) = fresh_dek()?;
        let wrapped = self.wrap(&dek, dek_id, context)?;
        Ok(Generated { dek, wrapped })
    }

    async fn unwrap(&self, record: &RecordRef<'_>) -> Result<DekBytes, Error> {
        if record.key_id != self.secret_id {
            return Err(Error::KeyMismatch);
        }
        if record.wrapped_key.len() != WRAPPED_LEN {
            return Err(Error::Kek(KekError::new(
                "unwrap",
                KekErrorKind::UnwrapFailed,
                "the wrapped key has the wrong length",
            )));
        }
        let version = match self.client.fetch_version(record.key_version).await {
            // keyshift-client refreshes on a miss at most once per miss interval (a
            // rate-limited miss stays queued for the next refresh): wait that long once.
            Err(LookupError::UnknownVersion) => {
                tokio::time::sleep(self.client.cache().config().miss_interval()).await;
                self.client.fetch_version(record.key_version).await
            }
            other => other,
        }
        .map_err(|e| lookup("unwrap", &e))?;
        let kek = symmetric("unwrap", &version)?;
        let prefix = record_prefix(
            Provider::SecretsManager,
            record.key_id,
            record.key_version,
            record.dek_id,
            record.context,
        )?;
        let aad = wrap_aad(&prefix);
        let (nonce, sealed) = record.wrapped_key.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Error::Crypto("nonce"))?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let plain = aead(&kek)?
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad[..]),
                &mut buf[..],
            )
            .map_err(|_| {
                Error::Kek(KekError::new(
                    "unwrap",
                    KekErrorKind::UnwrapFailed,
                    "the wrapped key did not open under the KEK version it names",
                ))
            })?;
        let dek: [u8; 32] = plain.try_into().map_err(|_| Error::Crypto("data key length"))?;
        Ok(Zeroizing::new(dek))
    }

    async fn rewrap(&self, record: &RecordRef<'_>, dek: Option<&DekBytes>) -> Result<Option<Vec<u8>>, Error> {
        if record.key_id != self.secret_id {
            return Err(Error::KeyMismatch);
        }
        if record.key_version == self.current_version()? {
            return Ok(None);
        }
        let dek = dek.ok_or(Error::Crypto("rewrap needs the data key"))?;
        self.wrap(dek, record.dek_id, record.context).map(Some)
    }
}
