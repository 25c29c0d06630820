//! `keyshift-keys-bench`: what the stock kinds cost on this machine, with the one
//! cryptography provider the workspace builds (aws-lc-rs, through keyshift-keys and
//! jsonwebtoken's `aws_lc_rs` backend).
//!
//! * key generation per kind (createSecret's work), with the spread over many draws:
//!   RSA key generation searches for primes, so its time varies a lot between draws;
//! * the check testSecret runs on a value (load the key, sign, verify);
//! * a JWT signed and verified per algorithm (what a token service does per request);
//! * AES-256-GCM sealing at a few sizes (what a data service does per value).
//!
//! Run it with `make bench-keys` or `cargo run --release -p keyshift-bench --bin keyshift-keys-bench`.

use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keyshift_keys::KeyKind;
use serde_json::{Value, json};

/// Draws per kind: RSA-4096 takes about a second a draw, so fewer of those.
fn draws(kind: KeyKind) -> usize {
    match kind {
        KeyKind::Rsa4096 => 20,
        KeyKind::Rsa3072 => 40,
        KeyKind::Rsa2048 => 100,
        _ => 2000,
    }
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else if ms >= 0.1 {
        format!("{ms:.2} ms")
    } else {
        format!("{:.1} µs", ms * 1000.0)
    }
}

/// (median, p90, max) of `samples`.
fn spread(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9), at(1.0))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "keyshift-keys-bench: aws-lc-rs, {} CPUs, release build\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("key generation (createSecret) and the check (testSecret), one thread");
    println!(
        "  {:<11} {:>6} {:>10} {:>10} {:>10} {:>12}",
        "kind", "draws", "median", "p90", "max", "check"
    );
    for kind in KeyKind::ALL {
        let mut times = Vec::new();
        let mut last = Value::Null;
        for _ in 0..draws(kind) {
            let start = Instant::now();
            last = keyshift_keys::generate_value(kind)?;
            times.push(start.elapsed());
        }
        let checks = 20;
        let start = Instant::now();
        for _ in 0..checks {
            keyshift_keys::check(kind, &last)?;
        }
        let check = start.elapsed() / checks;
        let (median, p90, max) = spread(times);
        println!(
            "  {:<11} {:>6} {:>10} {:>10} {:>10} {:>12}",
            kind.name(),
            draws(kind),
            ms(median),
            ms(p90),
            ms(max),
            ms(check)
        );
    }

    println!("\nJWT per request (jsonwebtoken, aws_lc_rs backend): sign, then verify with full validation");
    for kind in [
        KeyKind::Ed25519,
        KeyKind::EcdsaP256,
        KeyKind::EcdsaP384,
        KeyKind::Rsa2048,
        KeyKind::Rsa4096,
    ] {
        let value = keyshift_keys::generate_value(kind)?;
        let pem = value["private_key_pem"].as_str().unwrap_or_default().as_bytes();
        let (alg, key) = match kind {
            KeyKind::Ed25519 => (Algorithm::EdDSA, EncodingKey::from_ed_pem(pem)?),
            KeyKind::EcdsaP256 => (Algorithm::ES256, EncodingKey::from_ec_pem(pem)?),
            KeyKind::EcdsaP384 => (Algorithm::ES384, EncodingKey::from_ec_pem(pem)?),
            _ => (Algorithm::RS256, EncodingKey::from_rsa_pem(pem)?),
        };
        let jwk: Jwk = serde_json::from_value(value["public_jwk"].clone())?;
        let decoding = DecodingKey::from_jwk(&jwk)?;
        let mut validation = Validation::new(alg);
        validation.set_audience(&["bench"]);
        validation.set_issuer(&["keyshift"]);
        let mut header = Header::new(alg);
        header.kid = Some("5f2b0c1e-8a4d-8f00-ab73-00006a1b2c3d".into());
        let claims = json!({"sub": "alice", "aud": "bench", "iss": "keyshift", "exp": 4_102_444_800u64});
        let n = if matches!(kind, KeyKind::Rsa4096) {
            200
        } else {
            2000
        };
        let start = Instant::now();
        let mut token = String::new();
        for _ in 0..n {
            token = jsonwebtoken::encode(&header, &claims, &key)?;
        }
        let sign = start.elapsed() / n;
        let start = Instant::now();
        for _ in 0..n {
            jsonwebtoken::decode::<Value>(&token, &decoding, &validation)?;
        }
        let verify = start.elapsed() / n;
        println!(
            "  {:<11} sign {:>10}   verify {:>10}",
            kind.name(),
            ms(sign),
            ms(verify)
        );
    }

    println!("\nAES-256-GCM seal (aws-lc-rs), one thread");
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).map_err(|_| "key")?);
    for size in [64usize, 1024, 16 * 1024] {
        let n = (64 * 1024 * 1024 / size).max(1000);
        let mut buf = vec![0u8; size];
        let start = Instant::now();
        for i in 0..n {
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
            buf.truncate(size);
            key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(b"kid"), &mut buf)
                .map_err(|_| "seal")?;
        }
        let elapsed = start.elapsed();
        let mb_s = (size * n) as f64 / elapsed.as_secs_f64() / 1e6;
        println!(
            "  {:>6} B   {:>8.0} MB/s   {:>10} a value",
            size,
            mb_s,
            ms(elapsed / n as u32)
        );
    }
    Ok(())
}
