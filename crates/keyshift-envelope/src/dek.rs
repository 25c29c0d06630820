//! Data keys: 32 random bytes drawn locally, held in memory as an AES-256-GCM key.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::format::{
    CIPHERTEXT_MAGIC, DEK_ID_LEN, FORMAT_V1, MAX_PLAINTEXT, NONCE_LEN, TAG_LEN, parse_ciphertext,
    value_aad_prefix,
};

/// Plain data key bytes, zeroed on drop.
pub type DekBytes = Zeroizing<[u8; 32]>;

/// Draws a fresh data key and its id with aws-lc-rs's system random generator.
pub fn fresh_dek() -> Result<(DekBytes, [u8; DEK_ID_LEN]), Error> {
    let mut key = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(&mut key[..]).map_err(|_| Error::Crypto("draw a data key"))?;
    let mut id = [0u8; DEK_ID_LEN];
    aws_lc_rs::rand::fill(&mut id).map_err(|_| Error::Crypto("draw a data key id"))?;
    Ok((key, id))
}

struct Inner {
    key: LessSafeKey,
    raw: DekBytes,
    /// `KSE`, version, record: the start of every ciphertext sealed with this key.
    header: Box<[u8]>,
    aad_prefix: Box<[u8]>,
    dek_id: [u8; DEK_ID_LEN],
}

/// An unwrapped data key bound to one wrapped record: seals and opens values locally,
/// with no call and no lock. Cheap to clone (shared). The key bytes are zeroed on drop
/// (the raw copy by `zeroize`, aws-lc's key schedule by aws-lc's own cleansing free);
/// `Debug` shows none of it.
#[derive(Clone)]
pub struct DataKey(Arc<Inner>);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey").finish_non_exhaustive()
    }
}

impl DataKey {
    /// A data key from its bytes and the record (as stored after `KSW` and the version)
    /// that wraps it. The caller vouches that the record wraps these bytes.
    pub(crate) fn new(
        raw: DekBytes,
        record: &[u8],
        dek_id: [u8; DEK_ID_LEN],
        context: &str,
    ) -> Result<Self, Error> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, &raw[..]).map_err(|_| Error::Crypto("load a data key"))?;
        let mut header = Vec::with_capacity(4 + record.len());
        header.extend_from_slice(&CIPHERTEXT_MAGIC);
        header.push(FORMAT_V1);
        header.extend_from_slice(record);
        Ok(DataKey(Arc::new(Inner {
            key: LessSafeKey::new(unbound),
            raw,
            header: header.into_boxed_slice(),
            aad_prefix: value_aad_prefix(&dek_id, context).into_boxed_slice(),
            dek_id,
        })))
    }

    pub(crate) fn raw(&self) -> &DekBytes {
        &self.0.raw
    }

    /// The data key id.
    pub fn dek_id(&self) -> &[u8; DEK_ID_LEN] {
        &self.0.dek_id
    }

    fn record(&self) -> &[u8] {
        self.0.header.get(4..).unwrap_or_default()
    }

    fn aad(&self, aad: &[u8]) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.0.aad_prefix.len() + aad.len());
        full.extend_from_slice(&self.0.aad_prefix);
        full.extend_from_slice(aad);
        full
    }

    /// Seals `plaintext` with a fresh random nonce, binding `aad` (the caller's context:
    /// environment id and value name, for example). The output is a complete ciphertext.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(Error::PlaintextTooLong);
        }
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| Error::Crypto("draw a nonce"))?;
        let header = &self.0.header;
        let mut out = Vec::with_capacity(header.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(header);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let full_aad = self.aad(aad);
        let body = out.get_mut(start..).unwrap_or_default();
        let tag = self
            .0
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&full_aad[..]),
                body,
            )
            .map_err(|_| Error::Crypto("seal"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens a ciphertext sealed under this exact wrapped record with `aad`.
    pub fn open(&self, ciphertext: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let parsed = parse_ciphertext(ciphertext)?;
        self.open_parsed(&parsed.nonce, parsed.record_bytes, parsed.sealed, aad)
    }

    pub(crate) fn open_parsed(
        &self,
        nonce: &[u8; NONCE_LEN],
        record: &[u8],
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        if record != self.record() {
            return Err(Error::OtherDataKey);
        }
        let full_aad = self.aad(aad);
        let mut buf = Zeroizing::new(sealed.to_vec());
        let len = self
            .0
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(&full_aad[..]),
                &mut buf[..],
            )
            .map_err(|_| Error::Open)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}
