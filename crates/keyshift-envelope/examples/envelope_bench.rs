//! `make bench-envelope`: what envelope encryption costs here (a benchmark binary, not a
//! timed test).
//!
//! 1. Seal and open of 100-byte values with a cached data key, on one thread: values per
//!    second (the target is at least 2 million per second per core).
//! 2. Decrypting a 500-value deployment: the legacy path (one KMS `Decrypt` per value,
//!    against moto's KMS on this machine) versus one unwrap plus 500 local opens, in the
//!    same run.
//!
//! Starts moto's server (keyshift-local's launcher, the repository's one) from
//! `$KEYSHIFT_VENV` (else `.venv` at the workspace root).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use keyshift_envelope::{CacheLimits, Envelope, KmsKek, LegacyKms};

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let moto = keyshift_local::moto::Moto::start().unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        let kms = moto.kms().await;
        let key = keyshift_local::moto::kms_key(&kms).await.unwrap();
        let key_id = key.key_id().to_owned();
        let env = Envelope::new(KmsKek::new(kms.clone(), &key_id), CacheLimits::default())
            .with_legacy(LegacyKms::new(kms.clone()));
        let wrapped = env.generate_wrapped_dek("env-bench").await.unwrap();

        // 1. Seal and open, 100-byte values, one thread.
        let dek = env.data_key(&wrapped).await.unwrap();
        let value = [0x5au8; 100];
        let aad = b"env-bench/SOME_VARIABLE_NAME";
        let n = 2_000_000;
        let ct = dek.seal(&value, aad).unwrap();
        println!("ciphertext of a 100-byte value: {} bytes (KMS-wrapped DEK record included)", ct.len());
        for _ in 0..100_000 {
            black_box(dek.seal(black_box(&value), aad).unwrap());
        }
        let t = Instant::now();
        for _ in 0..n {
            black_box(dek.seal(black_box(&value), aad).unwrap());
        }
        let seal = t.elapsed();
        let t = Instant::now();
        for _ in 0..n {
            black_box(dek.open(black_box(&ct), aad).unwrap());
        }
        let open = t.elapsed();
        println!(
            "seal 100 B, cached DEK, one thread: {:>12.0} values/s ({:.0} ns each)",
            per_sec(n, seal),
            seal.as_nanos() as f64 / n as f64
        );
        println!(
            "open 100 B, cached DEK, one thread: {:>12.0} values/s ({:.0} ns each)",
            per_sec(n, open),
            open.as_nanos() as f64 / n as f64
        );
        let t = Instant::now();
        let m = 200_000;
        for _ in 0..m {
            let c = dek.seal(black_box(&value), aad).unwrap();
            black_box(env.decrypt(&c, aad).await.unwrap());
        }
        let both = t.elapsed();
        println!(
            "seal + Envelope::decrypt (parse, shared-cache lookup, open): {:.0} round trips/s",
            per_sec(m, both)
        );

        // 2. A 500-value deployment.
        let values: Vec<Vec<u8>> = (0..500).map(|i| format!("value-{i:04}-{}", "x".repeat(80)).into_bytes()).collect();
        let mut legacy = Vec::new();
        for v in &values {
            legacy.push(keyshift_local::moto::kms_encrypt(&kms, &key_id, v.clone()).await.unwrap());
        }
        let mut envelope = Vec::new();
        for (i, v) in values.iter().enumerate() {
            envelope.push((env.encrypt(v, &wrapped, format!("env-bench/V{i}").as_bytes()).await.unwrap(), format!("env-bench/V{i}").into_bytes()));
        }
        // A fresh process's view: no shared cache.
        let reader = Envelope::new(KmsKek::new(kms.clone(), &key_id), CacheLimits::none())
            .with_legacy(LegacyKms::new(kms.clone()));
        let items: Vec<(&[u8], &[u8])> = legacy.iter().map(|b| (&b[..], &b""[..])).collect();
        let t = Instant::now();
        let out = reader.decrypt_many(&items).await;
        let legacy_time = t.elapsed();
        assert!(out.iter().zip(&values).all(|(r, v)| r.as_ref().map(|p| p[..] == v[..]).unwrap_or(false)));
        let legacy_calls = reader.stats().legacy_decrypts;

        let items: Vec<(&[u8], &[u8])> = envelope.iter().map(|(c, a)| (&c[..], &a[..])).collect();
        let t = Instant::now();
        let out = reader.decrypt_many(&items).await;
        let env_time = t.elapsed();
        assert!(out.iter().zip(&values).all(|(r, v)| r.as_ref().map(|p| p[..] == v[..]).unwrap_or(false)));
        let unwraps = reader.stats().unwraps;
        println!(
            "500-value deployment, legacy (one KMS Decrypt per value, moto): {:>9.1} ms, {legacy_calls} KMS calls, {:.2} ms per call",
            legacy_time.as_secs_f64() * 1e3,
            legacy_time.as_secs_f64() * 1e3 / legacy_calls as f64
        );
        println!(
            "500-value deployment, envelope (one unwrap + 500 local opens): {:>9.3} ms, {unwraps} KMS call",
            env_time.as_secs_f64() * 1e3
        );
        println!(
            "speed-up: {:.0}x (against moto on loopback; real KMS calls cost more, about 20 ms in the issue's platform)",
            legacy_time.as_secs_f64() / env_time.as_secs_f64()
        );
    });
}
