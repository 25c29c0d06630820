//! The consumer fleet of the demo and the emulator suites: for one secret, instances of
//! keyshift-client, the library services run, each refreshing from Secrets Manager (moto)
//! on its own jittered schedule through the real SDK. Every few milliseconds one
//! instance (the producer) uses what its AWSCURRENT holds and another (the consumer)
//! checks it against its own published window, with no refresh on a miss:
//!
//! | kind | a producer... | a consumer... |
//! |---|---|---|
//! | signing key pairs | signs a JWT (jsonwebtoken) with its AWSCURRENT key, `kid` = version id | verifies it with the key under that `kid` in its own JWKS, checking `exp`, `aud` and `iss` |
//! | `symmetric` | seals with AES-256-GCM under its AWSCURRENT key, the `kid` bound into the AAD | opens it with the accepted version named by the `kid` |
//! | `password` | presents its AWSCURRENT value | accepts it if one of its accepted versions holds it |
//! | `json` | presents the generated `password` field | as `password` |
//!
//! So a failure counts whenever a fleet following the consumer contract would have failed.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keyshift_client::{Client, Config, SdkSource};
use rand::Rng;
use serde_json::{Value, json};

use crate::local::Timeline;

impl Fleet {
    /// Starts `instances` clients of secret `arn` (a value of `kind`, as its
    /// `keyshift:kind` tag spells it) with `config`; each has loaded its first window.
    pub async fn start(
        sm: &aws_sdk_secretsmanager::Client,
        arn: &str,
        kind: &str,
        instances: usize,
        config: &Config,
    ) -> Result<Arc<Fleet>, String> {
        let mut clients = Vec::with_capacity(instances);
        for _ in 0..instances {
            let source = SdkSource::new(sm.clone(), arn.to_owned());
            clients.push(
                Client::start(source, config.clone())
                    .await
                    .map_err(|e| format!("keyshift-client: {e}"))?,
            );
        }
        Ok(Arc::new(Fleet {
            kind: kind.to_owned(),
            clients,
            ops: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            kids: Mutex::default(),
            signers: Mutex::default(),
        }))
    }

    /// Operates from a random producer to a random consumer every `pause` until `stop`,
    /// saying each failure on `timeline`.
    pub fn operate_until(
        self: &Arc<Self>,
        pause: Duration,
        stop: &Arc<AtomicBool>,
        timeline: &Timeline,
    ) -> tokio::task::JoinHandle<()> {
        let (fleet, stop, tl) = (self.clone(), stop.clone(), timeline.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let (p, c) = {
                    let mut rng = rand::rng();
                    let n = fleet.clients.len();
                    (rng.random_range(0..n), rng.random_range(0..n))
                };
                // Signing and RSA verification are CPU work: off the runtime's threads.
                let one = fleet.clone();
                let result = tokio::task::spawn_blocking(move || one.once(p, c))
                    .await
                    .ok()
                    .flatten();
                if let Some(result) = result {
                    fleet.ops.fetch_add(1, Ordering::SeqCst);
                    if let Err(e) = result {
                        fleet.failed.fetch_add(1, Ordering::SeqCst);
                        tl.say(format!(
                            "FAILED {} operation: instance {p} -> {c}: {e}",
                            fleet.kind
                        ));
                    }
                }
                tokio::time::sleep(pause).await;
            }
        })
    }

    /// Operations so far (a producer had something to use and a consumer checked it).
    pub fn operations(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    /// Of which failed.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::SeqCst)
    }

    /// The version ids producers used.
    pub fn kids_used(&self) -> usize {
        self.kids.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// One secret's fleet: keyshift-client instances on the real SDK, each a producer and a
/// consumer, and what their operations showed.
pub struct Fleet {
    kind: String,
    clients: Vec<Client<SdkSource>>,
    ops: AtomicU64,
    failed: AtomicU64,
    kids: Mutex<BTreeSet<String>>,
    signers: Mutex<HashMap<String, (EncodingKey, Algorithm)>>,
}

fn alg(name: &str) -> Option<Algorithm> {
    match name {
        "EdDSA" => Some(Algorithm::EdDSA),
        "ES256" => Some(Algorithm::ES256),
        "ES384" => Some(Algorithm::ES384),
        "RS256" => Some(Algorithm::RS256),
        _ => None,
    }
}

impl Fleet {
    /// One operation from instance `p` to instance `c`: `None` when `p` has nothing to
    /// use yet, else whether `c` accepted it.
    fn once(&self, p: usize, c: usize) -> Option<Result<(), String>> {
        let current = self.clients[p].current().ok()?;
        let consumer = &self.clients[c];
        self.kids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(current.id().as_str().to_owned());
        Some(match self.kind.as_str() {
            "password" | "json" => {
                let used = presented(&self.kind, current.value().expose());
                let accepted = consumer.accepted().map_err(|e| e.to_string());
                accepted.and_then(|a| {
                    a.iter()
                        .any(|v| used.is_some() && presented(&self.kind, v.value().expose()) == used)
                        .then_some(())
                        .ok_or_else(|| "the consumer accepts no version with that value".to_owned())
                })
            }
            "symmetric" => self.seal_open(&current, consumer),
            _ => self.sign_verify(&current, consumer),
        })
    }

    fn sign_verify(
        &self,
        current: &keyshift_client::Version,
        consumer: &Client<SdkSource>,
    ) -> Result<(), String> {
        let kid = current.id().as_str().to_owned();
        let (key, algorithm) = {
            let mut signers = self.signers.lock().unwrap_or_else(|e| e.into_inner());
            if !signers.contains_key(&kid) {
                let k = current.signing_key().map_err(|e| e.to_string())?;
                let algorithm = alg(k.alg()).ok_or("unknown alg")?;
                let pem = k.private_key_pem().as_bytes();
                let key = match algorithm {
                    Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
                    Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
                    _ => EncodingKey::from_ec_pem(pem),
                }
                .map_err(|e| format!("signing key: {e}"))?;
                signers.insert(kid.clone(), (key, algorithm));
            }
            signers.get(&kid).cloned().ok_or("no signer")?
        };
        let mut header = Header::new(algorithm);
        header.kid = Some(kid.clone());
        let exp = keyshift::Timestamp::from(std::time::SystemTime::now()).as_secs() + 60;
        let claims = json!({"sub": "fleet", "iss": "keyshift-local", "aud": "fleet", "exp": exp});
        let token = jsonwebtoken::encode(&header, &claims, &key).map_err(|e| format!("sign: {e}"))?;
        // The consumer: its own JWKS, the key under the token's kid, full validation.
        let kid_in = jsonwebtoken::decode_header(&token)
            .map_err(|e| format!("header: {e}"))?
            .kid
            .ok_or("no kid")?;
        let jwks = consumer.jwks().map_err(|e| e.to_string())?;
        let jwk = jwks.as_json()["keys"]
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["kid"] == kid_in.as_str()))
            .ok_or("the consumer's JWKS has no key under that kid")?;
        // The algorithm comes from the consumer's JWK, never from the token's header.
        let expected = jwk["alg"]
            .as_str()
            .and_then(alg)
            .ok_or("the JWK names no known alg")?;
        let jwk: Jwk = serde_json::from_value(jwk.clone()).map_err(|e| format!("jwk: {e}"))?;
        let mut validation = Validation::new(expected);
        validation.set_audience(&["fleet"]);
        validation.set_issuer(&["keyshift-local"]);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| format!("decoding key: {e}"))?;
        jsonwebtoken::decode::<Value>(&token, &decoding, &validation)
            .map(drop)
            .map_err(|e| format!("verify: {e}"))
    }

    fn seal_open(
        &self,
        current: &keyshift_client::Version,
        consumer: &Client<SdkSource>,
    ) -> Result<(), String> {
        let key = current.symmetric_key().map_err(|e| e.to_string())?;
        let kid = key.kid().as_str().to_owned();
        let sealing = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.bytes()).map_err(|_| "key")?);
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| "random")?;
        let mut data = b"order 42: 3 widgets".to_vec();
        sealing
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut data,
            )
            .map_err(|_| "seal")?;
        // The consumer: the accepted version the kid names, from its own view.
        let version = consumer
            .accepted_version(&kid)
            .map_err(|e| format!("the consumer does not accept the kid: {e}"))?;
        let opening = version.symmetric_key().map_err(|e| e.to_string())?;
        let opening = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, opening.bytes()).map_err(|_| "key")?);
        let plain = opening
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut data,
            )
            .map_err(|_| "open failed")?;
        (plain == b"order 42: 3 widgets")
            .then_some(())
            .ok_or_else(|| "wrong plaintext".to_owned())
    }
}

/// What a producer presents of a `password` or `json` value.
pub(crate) fn presented(kind: &str, value: &str) -> Option<String> {
    match kind {
        "json" => serde_json::from_str::<Value>(value).ok()?["password"]
            .as_str()
            .map(str::to_owned),
        _ => Some(value.to_owned()),
    }
}
