//! Real cryptography for the key secrets: what a fleet operation does on a secret that
//! holds keyshift's stock Ed25519 key pair or its stock AES-256 key.
//!
//! **Signing** ([`SecretKind::Ed25519`]): the producer takes its cache's AWSCURRENT
//! version, reads it with [`Version::signing_key`], and signs a message that starts with
//! the kid (the version id: the same bytes under keyshift's copy have the copy's id).
//! The consumer reads the kid out of the signed message, finds the public JWK under it in
//! its *own* cache's JWKS ([`keyshift_client::View::jwks`]) and verifies with aws-lc-rs.
//! No JWK under the kid, or a signature that does not verify, is a failed operation.
//!
//! **Encryption** ([`SecretKind::Symmetric`]): the producer encrypts with AES-256-GCM
//! under its AWSCURRENT [`Version::symmetric_key`], the kid carried beside the ciphertext
//! and bound into the AAD. The consumer decrypts short-lived data with the accepted
//! version under the kid in its own view, and decrypts *stored* data (a ciphertext kept
//! from an earlier operation, of any producer) with the version of that exact id,
//! accepted or past ([`keyshift_client::View::version`]). No version under the kid, or a
//! ciphertext that does not open, is a failed operation.
//!
//! The consumer's lookups read its published view first (never
//! [`keyshift_client::WindowCache::version`], whose miss requests a refresh): a miss is
//! the failure it is, as for the abstract check. In a fleet that refreshes on a miss,
//! the consumer then does what keyshift-client offers ([`Heal`]: `fetch_accepted` or
//! `fetch_version`) and looks once more; the world still counts the first miss as a
//! failure unless an emergency caused it by design.
//!
//! **Cost.** Parsed keys are cached by the value text they came from (a consumer's key
//! comes from its own version's bytes, never from another view under the same id), so a
//! key is parsed once, not per operation. AES-GCM runs on every operation. Ed25519 (about
//! 20 µs to sign, 50 µs to verify) runs on every operation whose (kid, consumer) pair has
//! not verified for real yet, and on one in [`SIGN_SAMPLE`] of the others; the rest are
//! the kid lookup only, among the consumer's accepted versions (what its JWKS
//! publishes; the part that fails when a rotation is unsafe). At the end of a run [`KeyOps`] is swept: every producer towards every
//! consumer, with the same rule, so every consumer has verified every kid in use at the
//! end for real. The sampling draws from the fleet's own crypto stream, never from a
//! stream that decides the schedule, so a seed replays exactly; key bytes come from the
//! operating system's generator and decide nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};
use keyshift::VersionId;
use keyshift_client::{Jwks, LookupError, Version, WindowCache};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::fleet::{Failure, Heal};
use crate::scenario::SecretKind;

/// One in this many Ed25519 operations whose (kid, consumer) pair already verified for
/// real signs and verifies again; the others look the kid up only.
pub const SIGN_SAMPLE: u32 = 32;

/// How many ciphertexts of a symmetric secret are kept as stored data.
pub const STORED: usize = 16;

/// What one kind of real operation did, over one run or many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CryptoCounts {
    /// Operations: each one a kid lookup in the consumer's own view.
    pub operations: u64,
    /// Messages the producers signed or encrypted with their current key.
    pub produced: u64,
    /// Verifications or decryptions the consumers ran.
    pub checked: u64,
    /// Operations whose kid the consumer did not find in its own view.
    pub unknown_kid: u64,
    /// Operations whose cryptography failed: a signature that did not verify, a
    /// ciphertext that did not open, or a version that holds no usable key.
    pub rejected: u64,
}

impl CryptoCounts {
    /// Adds `o`.
    pub fn add(&mut self, o: &CryptoCounts) {
        self.operations += o.operations;
        self.produced += o.produced;
        self.checked += o.checked;
        self.unknown_kid += o.unknown_kid;
        self.rejected += o.rejected;
    }

    /// Operations that failed.
    pub fn failed(&self) -> u64 {
        self.unknown_kid + self.rejected
    }
}

/// The real operations of a run (or of many), by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyStats {
    /// Ed25519: signed by a producer, verified by a consumer with its own JWKS.
    pub sign: CryptoCounts,
    /// AES-256-GCM on short-lived data: decrypted with an accepted version.
    pub seal: CryptoCounts,
    /// AES-256-GCM on stored data: decrypted by exact version id, accepted or past.
    pub stored: CryptoCounts,
}

impl KeyStats {
    /// Adds `o`.
    pub fn add(&mut self, o: &KeyStats) {
        self.sign.add(&o.sign);
        self.seal.add(&o.seal);
        self.stored.add(&o.stored);
    }

    /// Whether any real operation ran.
    pub fn any(&self) -> bool {
        self.sign.operations + self.seal.operations + self.stored.operations > 0
    }
}

/// Who used one kid for real in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KidUse {
    /// Producers that signed or encrypted under it.
    pub producers: BTreeSet<usize>,
    /// Consumers that verified or decrypted under it, successfully.
    pub consumers: BTreeSet<usize>,
}

/// A signed message: `<kid>.<payload>`, the kid inside what is signed (as a JWS header
/// is), and the Ed25519 signature over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The signing input.
    pub message: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
}

impl Signed {
    /// The kid the message carries.
    pub fn kid(&self) -> Option<&str> {
        let text = std::str::from_utf8(&self.message).ok()?;
        text.split_once('.').map(|(kid, _)| kid)
    }
}

/// An AES-256-GCM ciphertext with the kid it was encrypted under (bound into the AAD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The producing instance.
    pub producer: usize,
    /// The key id: the version id of the key.
    pub kid: VersionId,
    /// The nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext and tag.
    pub ciphertext: Vec<u8>,
    /// What it must decrypt to (the checker's, not part of the message).
    pub plaintext: Vec<u8>,
}

/// Why a consumer's check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// No key under the kid in the consumer's view.
    UnknownKid,
    /// A key was found and the cryptography failed; why.
    Rejected(&'static str),
}

/// Consumer `c`'s bit in a set of consumers (fleets are far smaller than 128).
fn bit(c: usize) -> u128 {
    1u128 << (c % 128)
}

/// The AAD of a ciphertext under `kid`.
fn aad(kid: &VersionId) -> Vec<u8> {
    format!("keyshift-sim/kid={kid}").into_bytes()
}

/// Base64url without padding (RFC 7515), as JWKs carry their members.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero padding of less than a byte.
    (bits < 6 && acc == 0).then_some(out)
}

/// The Ed25519 public key published under `kid` in `jwks`.
pub fn jwk_public_key(jwks: &Jwks, kid: &str) -> Option<Result<Vec<u8>, &'static str>> {
    let jwk = jwks.as_json()["keys"]
        .as_array()?
        .iter()
        .find(|k| k["kid"].as_str() == Some(kid))?;
    if jwk["kty"].as_str() != Some("OKP") || jwk["crv"].as_str() != Some("Ed25519") {
        return Some(Err("the JWK under the kid is not an Ed25519 key"));
    }
    Some(
        jwk["x"]
            .as_str()
            .and_then(b64url_decode)
            .filter(|x| x.len() == 32)
            .ok_or("the JWK under the kid has no 32-byte x"),
    )
}

/// Verifies `token` with the key its kid names in `jwks`.
pub fn verify(jwks: &Jwks, token: &Signed) -> Result<(), Check> {
    let kid = token.kid().ok_or(Check::Rejected("the message carries no kid"))?;
    let public = jwk_public_key(jwks, kid)
        .ok_or(Check::UnknownKid)?
        .map_err(Check::Rejected)?;
    UnparsedPublicKey::new(&ED25519, public)
        .verify(&token.message, &token.signature)
        .map_err(|_| Check::Rejected("the signature does not verify"))
}

/// The Ed25519 key pair of a stock signing version (its PKCS#8 PEM).
pub fn ed25519_pair(version: &Version) -> Result<Ed25519KeyPair, String> {
    let key = version.signing_key().map_err(|e| e.to_string())?;
    if key.alg() != "EdDSA" {
        return Err(format!("alg {} is not EdDSA", key.alg()));
    }
    let der = keyshift_keys::pem_body(key.private_key_pem(), "PRIVATE KEY")
        .ok_or("the private key PEM does not decode")?;
    Ed25519KeyPair::from_pkcs8(&der).map_err(|e| format!("the private key is refused: {e}"))
}

/// Signs `payload` with `pair` as version `kid`.
pub fn sign_with(pair: &Ed25519KeyPair, kid: &VersionId, payload: &str) -> Signed {
    let message = format!("{kid}.{payload}").into_bytes();
    let signature = pair.sign(&message).as_ref().to_vec();
    Signed { message, signature }
}

/// The AES-256-GCM key of a stock symmetric version.
pub fn aes_key(version: &Version) -> Result<LessSafeKey, String> {
    let key = version.symmetric_key().map_err(|e| e.to_string())?;
    let unbound =
        UnboundKey::new(&AES_256_GCM, key.bytes()).map_err(|e| format!("AES-256 refused the key: {e}"))?;
    Ok(LessSafeKey::new(unbound))
}

/// Encrypts `plaintext` with `key` as version `kid`, nonce `nonce`.
pub fn seal_with(
    key: &LessSafeKey,
    producer: usize,
    kid: &VersionId,
    nonce: [u8; NONCE_LEN],
    plaintext: &[u8],
) -> Result<Sealed, String> {
    let mut ciphertext = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad(kid)),
        &mut ciphertext,
    )
    .map_err(|_| "AES-256-GCM failed to encrypt".to_owned())?;
    Ok(Sealed {
        producer,
        kid: kid.clone(),
        nonce,
        ciphertext,
        plaintext: plaintext.to_vec(),
    })
}

/// Decrypts `sealed` with `key` (the key a consumer found under its kid).
pub fn open_with(key: &LessSafeKey, sealed: &Sealed) -> Result<(), Check> {
    let mut buf = sealed.ciphertext.clone();
    let opened = key
        .open_in_place(
            Nonce::assume_unique_for_key(sealed.nonce),
            Aad::from(aad(&sealed.kid)),
            &mut buf,
        )
        .map_err(|_| Check::Rejected("the ciphertext does not open"))?;
    if opened != sealed.plaintext.as_slice() {
        return Err(Check::Rejected("the ciphertext opens to something else"));
    }
    Ok(())
}

/// The real operations of one secret's fleet: its kind, the keys parsed so far, the
/// ciphertexts kept as stored data, the sampling stream, and the tallies.
#[derive(Debug, Clone)]
pub struct KeyOps {
    kind: SecretKind,
    /// Sampling and picks: the fleet's crypto stream, never the schedule's.
    rng: ChaCha8Rng,
    /// Messages so far (payloads and nonces are unique per secret).
    seq: u64,
    /// Ed25519 key pairs by the value text they were parsed from.
    pairs: HashMap<String, Arc<Ed25519KeyPair>>,
    /// AES-256-GCM keys by the value text they were parsed from.
    aes: HashMap<String, Arc<LessSafeKey>>,
    /// The consumers (a bit each) that verified each kid for real.
    verified: HashMap<VersionId, u128>,
    /// Ciphertexts kept as stored data.
    stored: Vec<Sealed>,
    /// The tallies.
    pub stats: KeyStats,
    /// Who used each kid for real.
    pub kids: BTreeMap<VersionId, KidUse>,
}

impl Default for KeyOps {
    fn default() -> Self {
        KeyOps::new(SecretKind::Opaque, 0)
    }
}

impl KeyOps {
    /// The real operations of a secret of `kind`, sampling from `seed`.
    pub fn new(kind: SecretKind, seed: u64) -> Self {
        KeyOps {
            kind,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seq: 0,
            pairs: HashMap::new(),
            aes: HashMap::new(),
            verified: HashMap::new(),
            stored: Vec::new(),
            stats: KeyStats::default(),
            kids: BTreeMap::new(),
        }
    }

    /// The secret's kind.
    pub fn kind(&self) -> SecretKind {
        self.kind
    }

    fn pair(&mut self, version: &Version) -> Result<Arc<Ed25519KeyPair>, String> {
        if let Some(p) = self.pairs.get(version.value().expose()) {
            return Ok(Arc::clone(p));
        }
        let p = Arc::new(ed25519_pair(version)?);
        self.pairs
            .insert(version.value().expose().to_owned(), Arc::clone(&p));
        Ok(p)
    }

    fn aes(&mut self, version: &Version) -> Result<Arc<LessSafeKey>, String> {
        if let Some(k) = self.aes.get(version.value().expose()) {
            return Ok(Arc::clone(k));
        }
        let k = Arc::new(aes_key(version)?);
        self.aes
            .insert(version.value().expose().to_owned(), Arc::clone(&k));
        Ok(k)
    }

    fn next_payload(&mut self, producer: usize) -> (u64, String) {
        self.seq += 1;
        (self.seq, format!("op-{}-from-{producer}", self.seq))
    }

    /// Whether consumer `c` finds the kid of `used` (producer `p`'s current version)
    /// among the accepted versions of its own view, the versions its JWKS publishes: the
    /// lookup of an operation, with no cryptography and no JWKS built (for the check of
    /// every pair after each refresh, and for sampled-out signing operations).
    pub fn reaches(
        &self,
        p: usize,
        used: &Version,
        c: usize,
        consumer: &WindowCache,
        heal: &mut dyn Heal,
    ) -> Result<(), Failure> {
        let kid = used.id();
        // The JWKS publishes exactly the accepted versions (or fails to build, which a
        // real verification reports): the lookup alone needs no JWKS.
        let found = || {
            consumer
                .view()
                .is_ok_and(|view| view.accepted_version(kid.as_str()).is_some())
        };
        if found() || (heal.miss(c, consumer, kid, true) && found()) {
            return Ok(());
        }
        Err(Failure::UnknownKid {
            producer: p,
            consumer: c,
            kid: kid.clone(),
            stored: false,
        })
    }

    /// One real operation: producer `p`, whose current version is `used`, towards
    /// consumer `c`. Counts itself in [`KeyOps::stats`].
    pub fn operate(
        &mut self,
        p: usize,
        used: &Version,
        c: usize,
        consumer: &WindowCache,
        heal: &mut dyn Heal,
    ) -> Result<(), Failure> {
        match self.kind {
            SecretKind::Opaque => self.reaches(p, used, c, consumer, heal),
            SecretKind::Ed25519 => self.sign_verify(p, used, c, consumer, false, heal),
            SecretKind::Symmetric => self.seal_open(p, used, c, consumer, heal),
        }
    }

    /// The end-of-run sweep of one pair: as [`KeyOps::operate`], but for a signing
    /// secret the cryptography runs only where the (kid, consumer) pair has not verified
    /// for real yet, and no stored data is read or kept.
    pub fn sweep(
        &mut self,
        p: usize,
        used: &Version,
        c: usize,
        consumer: &WindowCache,
        heal: &mut dyn Heal,
    ) -> Result<(), Failure> {
        match self.kind {
            SecretKind::Opaque => self.reaches(p, used, c, consumer, heal),
            SecretKind::Ed25519 => self.sign_verify(p, used, c, consumer, true, heal),
            SecretKind::Symmetric => {
                let kept = std::mem::take(&mut self.stored);
                let out = self.seal_open(p, used, c, consumer, heal);
                self.stored = kept;
                out
            }
        }
    }

    fn sign_verify(
        &mut self,
        p: usize,
        used: &Version,
        c: usize,
        consumer: &WindowCache,
        sweep: bool,
        heal: &mut dyn Heal,
    ) -> Result<(), Failure> {
        self.stats.sign.operations += 1;
        let first = self.verified.get(used.id()).is_none_or(|m| m & bit(c) == 0);
        let real = first || (!sweep && self.rng.random_ratio(1, SIGN_SAMPLE));
        if !real {
            return self
                .reaches(p, used, c, consumer, heal)
                .inspect_err(|f| self.count_sign(f));
        }
        let pair = match self.pair(used) {
            Ok(pair) => pair,
            Err(why) => {
                self.stats.sign.rejected += 1;
                return Err(Failure::UnusableKey {
                    producer: p,
                    version: used.id().clone(),
                    why,
                });
            }
        };
        let (_, payload) = self.next_payload(p);
        let token = sign_with(&pair, used.id(), &payload);
        self.stats.sign.produced += 1;
        self.kids
            .entry(used.id().clone())
            .or_default()
            .producers
            .insert(p);
        // The consumer: the kid from the message, the key under it in its own JWKS.
        let kid = VersionId::new(token.kid().unwrap_or_default());
        let jwks = |consumer: &WindowCache| consumer.view().map(|v| v.jwks());
        let mut published = jwks(consumer);
        let known = |j: &Result<Result<Arc<Jwks>, LookupError>, LookupError>| matches!(j, Ok(Ok(j)) if j.kids().any(|k| k == kid.as_str()));
        if !known(&published) && heal.miss(c, consumer, &kid, true) {
            published = jwks(consumer);
        }
        let jwks = match published {
            Ok(Ok(jwks)) => jwks,
            Ok(Err(e)) => {
                self.stats.sign.rejected += 1;
                return Err(Failure::Rejected {
                    producer: p,
                    consumer: c,
                    kid,
                    why: format!("the consumer's JWKS cannot be built: {e}"),
                });
            }
            Err(_) => {
                self.stats.sign.unknown_kid += 1;
                return Err(Failure::UnknownKid {
                    producer: p,
                    consumer: c,
                    kid,
                    stored: false,
                });
            }
        };
        let out = verify(&jwks, &token);
        if !matches!(out, Err(Check::UnknownKid)) {
            self.stats.sign.checked += 1;
        }
        self.conclude(out, p, c, kid, false, |s| &mut s.sign)
    }

    fn count_sign(&mut self, f: &Failure) {
        match f {
            Failure::UnknownKid { .. } => self.stats.sign.unknown_kid += 1,
            _ => self.stats.sign.rejected += 1,
        }
    }

    /// Tallies a consumer's check and turns it into the operation's outcome.
    fn conclude(
        &mut self,
        out: Result<(), Check>,
        p: usize,
        c: usize,
        kid: VersionId,
        stored: bool,
        counts: fn(&mut KeyStats) -> &mut CryptoCounts,
    ) -> Result<(), Failure> {
        match out {
            Ok(()) => {
                if self.kind == SecretKind::Ed25519 {
                    *self.verified.entry(kid.clone()).or_default() |= bit(c);
                }
                self.kids.entry(kid).or_default().consumers.insert(c);
                Ok(())
            }
            Err(Check::UnknownKid) => {
                counts(&mut self.stats).unknown_kid += 1;
                Err(Failure::UnknownKid {
                    producer: p,
                    consumer: c,
                    kid,
                    stored,
                })
            }
            Err(Check::Rejected(why)) => {
                counts(&mut self.stats).rejected += 1;
                Err(Failure::Rejected {
                    producer: p,
                    consumer: c,
                    kid,
                    why: why.to_owned(),
                })
            }
        }
    }

    fn seal_open(
        &mut self,
        p: usize,
        used: &Version,
        c: usize,
        consumer: &WindowCache,
        heal: &mut dyn Heal,
    ) -> Result<(), Failure> {
        self.stats.seal.operations += 1;
        let key = match self.aes(used) {
            Ok(key) => key,
            Err(why) => {
                self.stats.seal.rejected += 1;
                return Err(Failure::UnusableKey {
                    producer: p,
                    version: used.id().clone(),
                    why,
                });
            }
        };
        let (seq, payload) = self.next_payload(p);
        let mut nonce = [0u8; NONCE_LEN];
        nonce[NONCE_LEN - 8..].copy_from_slice(&seq.to_be_bytes());
        let sealed = match seal_with(&key, p, used.id(), nonce, payload.as_bytes()) {
            Ok(s) => s,
            Err(why) => {
                self.stats.seal.rejected += 1;
                return Err(Failure::UnusableKey {
                    producer: p,
                    version: used.id().clone(),
                    why,
                });
            }
        };
        self.stats.seal.produced += 1;
        self.kids
            .entry(used.id().clone())
            .or_default()
            .producers
            .insert(p);
        // Short-lived data: the accepted version under the kid.
        let accepted = |consumer: &WindowCache, kid: &VersionId| {
            consumer
                .view()
                .ok()
                .and_then(|v| v.accepted_version(kid.as_str()).cloned())
        };
        let mut found = accepted(consumer, &sealed.kid);
        if found.is_none() && heal.miss(c, consumer, &sealed.kid, true) {
            found = accepted(consumer, &sealed.kid);
        }
        let out = self.open(found.as_deref(), &sealed, |s| &mut s.seal);
        let fresh = self.conclude(out, p, c, sealed.kid.clone(), false, |s| &mut s.seal);
        // Stored data: a ciphertext kept from an earlier operation, by exact version id.
        let mut at_rest = Ok(());
        if !self.stored.is_empty() {
            let i = self.rng.random_range(0..self.stored.len());
            let record = self.stored[i].clone();
            self.stats.stored.operations += 1;
            let by_id = |consumer: &WindowCache, kid: &VersionId| {
                consumer
                    .view()
                    .ok()
                    .and_then(|v| v.version(kid.as_str()).cloned())
            };
            let mut found = by_id(consumer, &record.kid);
            if found.is_none() && heal.miss(c, consumer, &record.kid, false) {
                found = by_id(consumer, &record.kid);
            }
            let out = self.open(found.as_deref(), &record, |s| &mut s.stored);
            at_rest = self.conclude(out, record.producer, c, record.kid, true, |s| &mut s.stored);
        }
        if self.stored.len() < STORED {
            self.stored.push(sealed);
            self.stats.stored.produced += 1;
        } else if self.rng.random_ratio(1, 4) {
            let i = self.rng.random_range(0..STORED);
            self.stored[i] = sealed;
            self.stats.stored.produced += 1;
        }
        fresh.and(at_rest)
    }

    /// A consumer's decryption with the version it found (`None`: none under the kid).
    fn open(
        &mut self,
        found: Option<&Version>,
        sealed: &Sealed,
        counts: fn(&mut KeyStats) -> &mut CryptoCounts,
    ) -> Result<(), Check> {
        let version = found.ok_or(Check::UnknownKid)?;
        counts(&mut self.stats).checked += 1;
        let key = self
            .aes(version)
            .map_err(|_| Check::Rejected("the version under the kid holds no AES-256 key"))?;
        open_with(&key, sealed)
    }
}

#[cfg(test)]
mod tests {
    use keyshift::SecretValue;
    use keyshift_keys::KeyKind;

    use super::*;

    fn version(id: &str, kind: KeyKind) -> Version {
        let value = keyshift_keys::generate(kind).expect("a key");
        Version::new(VersionId::new(id), ["AWSCURRENT"], SecretValue::new(value))
    }

    #[test]
    fn base64url_decodes_what_jwks_carry_and_refuses_the_rest() {
        assert_eq!(b64url_decode("").as_deref(), Some(&b""[..]));
        assert_eq!(b64url_decode("Zg").as_deref(), Some(&b"f"[..]));
        assert_eq!(b64url_decode("Zm8").as_deref(), Some(&b"fo"[..]));
        assert_eq!(b64url_decode("Zm9v").as_deref(), Some(&b"foo"[..]));
        assert_eq!(b64url_decode("-_8").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(b64url_decode("Zm9v="), None, "no padding");
        assert_eq!(b64url_decode("Zh"), None, "non-zero leftover bits");
        assert_eq!(b64url_decode("Z"), None, "a lone sextet is no byte");
    }

    #[test]
    fn a_token_verifies_under_its_kid_and_fails_under_another_key_or_a_missing_kid() {
        let signer = version("v-copy", KeyKind::Ed25519);
        let pair = ed25519_pair(&signer).expect("an Ed25519 pair");
        let token = sign_with(&pair, signer.id(), "hello");
        assert_eq!(token.kid(), Some("v-copy"));
        let own = keyshift_client::jwks::jwks([&signer]).expect("a JWKS");
        assert_eq!(verify(&own, &token), Ok(()));
        // The same kid with another key behind it: the signature must not verify.
        let other = version("v-copy", KeyKind::Ed25519);
        let wrong = keyshift_client::jwks::jwks([&other]).expect("a JWKS");
        assert_eq!(
            verify(&wrong, &token),
            Err(Check::Rejected("the signature does not verify"))
        );
        // A JWKS without the kid.
        let elsewhere = version("v-other", KeyKind::Ed25519);
        let missing = keyshift_client::jwks::jwks([&elsewhere]).expect("a JWKS");
        assert_eq!(verify(&missing, &token), Err(Check::UnknownKid));
        // A tampered message.
        let mut tampered = token.clone();
        tampered.message.push(b'!');
        assert_eq!(
            verify(&own, &tampered),
            Err(Check::Rejected("the signature does not verify"))
        );
    }

    #[test]
    fn a_ciphertext_opens_with_its_kids_key_only_and_binds_the_kid() {
        let v = version("k1", KeyKind::Symmetric);
        let key = aes_key(&v).expect("an AES key");
        let sealed = seal_with(&key, 0, v.id(), [1; NONCE_LEN], b"secret").expect("sealed");
        assert_ne!(sealed.ciphertext, b"secret".to_vec());
        assert_eq!(open_with(&key, &sealed), Ok(()));
        let other = aes_key(&version("k1", KeyKind::Symmetric)).expect("another key");
        assert_eq!(
            open_with(&other, &sealed),
            Err(Check::Rejected("the ciphertext does not open"))
        );
        // The kid is bound: the same ciphertext relabelled does not open.
        let relabelled = Sealed {
            kid: VersionId::new("k2"),
            ..sealed.clone()
        };
        assert_eq!(
            open_with(&key, &relabelled),
            Err(Check::Rejected("the ciphertext does not open"))
        );
        // A signing key is no AES key.
        assert!(aes_key(&version("k3", KeyKind::Ed25519)).is_err());
        assert!(ed25519_pair(&v).is_err());
    }
}
