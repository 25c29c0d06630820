//! The envelope over an in-memory `symmetric` KEK secret (keyshift-client's `Source`
//! contract, Secrets Manager's label moves): round trips, AAD binding, every malformed
//! ciphertext refused with a typed error, batches, the cache's limits, KEK rotation and
//! rewrap.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{mem_envelope, symmetric_value};
use keyshift_envelope::format::{FormatError, parse_ciphertext};
use keyshift_envelope::{CacheLimits, Envelope, Error, KekErrorKind, Provider, WrappedDek, referenced_keks};
use proptest::prelude::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[tokio::test]
async fn values_round_trip_and_the_aad_binds_row_and_environment() {
    let (env, _) = mem_envelope(CacheLimits::default()).await;
    let dek = env.generate_wrapped_dek("env-1").await.unwrap();
    assert_eq!(dek.context(), "env-1");
    assert_eq!(dek.kek_id().provider, Provider::SecretsManager);
    assert_eq!(
        (dek.kek_id().key_id.as_str(), dek.kek_id().key_version.as_str()),
        ("kek", "v1")
    );
    for plain in [&b""[..], b"postgres://u:p@db/app", &[0xAB; 5000]] {
        let ct = env.encrypt(plain, &dek, b"env-1/DATABASE_URL").await.unwrap();
        assert_eq!(&env.decrypt(&ct, b"env-1/DATABASE_URL").await.unwrap()[..], plain);
        // Moved to another row or another environment: refused.
        assert_eq!(env.decrypt(&ct, b"env-1/API_KEY").await, Err(Error::Open));
        assert_eq!(env.decrypt(&ct, b"env-2/DATABASE_URL").await, Err(Error::Open));
        // The stored wrapped DEK round-trips and is what the ciphertext carries.
        assert_eq!(WrappedDek::of_ciphertext(&ct).unwrap(), dek);
    }
    // Two seals of the same value differ (random nonces).
    let a = env.encrypt(b"x", &dek, b"a").await.unwrap();
    let b = env.encrypt(b"x", &dek, b"a").await.unwrap();
    assert_ne!(a, b);
    // Nothing secret in Debug.
    let key = env.data_key(&dek).await.unwrap();
    assert_eq!(format!("{key:?}"), "DataKey { .. }");
    assert!(!format!("{dek:?}").contains("wrapped_key"));
    // A value of another context's DEK does not open with this DEK's handle.
    let other = env.generate_wrapped_dek("env-2").await.unwrap();
    let ct2 = env.encrypt(b"v", &other, b"a").await.unwrap();
    assert_eq!(key.open(&ct2, b"a"), Err(Error::OtherDataKey));
    // Generating put the DEKs in the cache: no unwrap so far.
    assert_eq!(env.stats().unwraps, 0);
}

#[tokio::test]
async fn a_legacy_value_without_a_legacy_provider_is_a_typed_error() {
    let (env, _) = mem_envelope(CacheLimits::default()).await;
    assert_eq!(
        env.decrypt(b"\x01\x02\x02\x00legacy", b"").await,
        Err(Error::NotEnvelope)
    );
    assert_eq!(env.decrypt(b"", b"").await, Err(Error::NotEnvelope));
    assert_eq!(
        env.decrypt(b"KSE\x02", b"").await,
        Err(Error::Format(FormatError::UnsupportedVersion))
    );
}

#[tokio::test]
async fn a_batch_of_n_values_over_k_contexts_unwraps_k_times() {
    let (writer, secret) = mem_envelope(CacheLimits::default()).await;
    let (n, k) = (500usize, 7usize);
    let mut deks = Vec::new();
    for c in 0..k {
        deks.push(writer.generate_wrapped_dek(&format!("env-{c}")).await.unwrap());
    }
    let mut values = Vec::new();
    for i in 0..n {
        let aad = format!("env-{}/VAR_{i}", i % k).into_bytes();
        let ct = writer
            .encrypt(format!("value {i}").as_bytes(), &deks[i % k], &aad)
            .await
            .unwrap();
        values.push((ct, aad));
    }
    // A reader with no shared cache: exactly one unwrap per distinct DEK per batch.
    let kek = keyshift_envelope::SecretsManagerKek::start(
        secret.clone(),
        "kek",
        keyshift_client::Config::new(Duration::from_secs(600)).unwrap(),
    )
    .await
    .unwrap();
    let reader = Envelope::new(kek, CacheLimits::none());
    let items: Vec<(&[u8], &[u8])> = values.iter().map(|(c, a)| (&c[..], &a[..])).collect();
    let out = reader.decrypt_many(&items).await;
    for (i, r) in out.iter().enumerate() {
        assert_eq!(&r.as_ref().unwrap()[..], format!("value {i}").as_bytes());
    }
    assert_eq!(reader.stats().unwraps, k as u64);
    // Again: no shared cache, so another k.
    let _ = reader.decrypt_many(&items).await;
    assert_eq!(reader.stats().unwraps, 2 * k as u64);
    // The KEK version itself was fetched once (keyshift-client's window).
    assert!(secret.value_calls.load(std::sync::atomic::Ordering::Relaxed) <= 2);

    // With the shared cache: k unwraps for the first batch, none after.
    let kek = keyshift_envelope::SecretsManagerKek::start(
        secret,
        "kek",
        keyshift_client::Config::new(Duration::from_secs(600)).unwrap(),
    )
    .await
    .unwrap();
    let cached = Envelope::new(kek, CacheLimits::default());
    let _ = cached.decrypt_many(&items).await;
    let _ = cached.decrypt_many(&items).await;
    assert_eq!(cached.stats().unwraps, k as u64);
    assert_eq!(cached.stats().cache_hits, k as u64);
}

#[tokio::test]
async fn the_cache_limits_age_uses_and_entries() {
    let limits = CacheLimits {
        max_age: Duration::from_secs(3600),
        max_uses: 3,
        max_entries: 2,
    };
    let (env, _) = mem_envelope(limits).await;
    let a = env.generate_wrapped_dek("a").await.unwrap();
    let ct = env.encrypt(b"v", &a, b"").await.unwrap(); // use 1
    env.decrypt(&ct, b"").await.unwrap(); // use 2
    env.decrypt(&ct, b"").await.unwrap(); // use 3
    assert_eq!(env.stats().unwraps, 0);
    env.decrypt(&ct, b"").await.unwrap(); // over max_uses: unwrapped again
    assert_eq!(env.stats().unwraps, 1);
    // Three contexts in a cache of two: the oldest goes.
    let b = env.generate_wrapped_dek("b").await.unwrap();
    let c = env.generate_wrapped_dek("c").await.unwrap();
    assert_eq!(env.cache().len(), 2);
    let _ = (b, c);
    env.decrypt(&ct, b"").await.unwrap();
    assert_eq!(env.stats().unwraps, 2);

    let aged = CacheLimits {
        max_age: Duration::from_millis(50),
        max_uses: u64::MAX,
        max_entries: 10,
    };
    let (env, _) = mem_envelope(aged).await;
    let a = env.generate_wrapped_dek("a").await.unwrap();
    let ct = env.encrypt(b"v", &a, b"").await.unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    env.decrypt(&ct, b"").await.unwrap();
    assert_eq!(env.stats().unwraps, 1);
}

#[tokio::test]
async fn a_scope_unwraps_each_dek_once_per_request() {
    let (env, _) = mem_envelope(CacheLimits::none()).await;
    let a = env.generate_wrapped_dek("a").await.unwrap();
    let b = env.generate_wrapped_dek("b").await.unwrap();
    let mut cts = Vec::new();
    {
        let mut scope = env.scope();
        for i in 0..10 {
            cts.push(
                scope
                    .encrypt(&[i], if i % 2 == 0 { &a } else { &b }, b"")
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(scope.len(), 2);
    }
    assert_eq!(env.stats().unwraps, 2);
    for _request in 0..3 {
        let mut scope = env.scope();
        for (i, ct) in cts.iter().enumerate() {
            assert_eq!(&scope.decrypt(ct, b"").await.unwrap()[..], &[i as u8]);
        }
    }
    assert_eq!(env.stats().unwraps, 2 + 3 * 2);
}

#[tokio::test]
async fn kek_rotation_old_values_open_and_rewrap_moves_deks_to_the_new_version() {
    let (env, secret) = mem_envelope(CacheLimits::none()).await;
    let old = env.generate_wrapped_dek("env-1").await.unwrap();
    let ct_old = env.encrypt(b"before rotation", &old, b"row-1").await.unwrap();

    // keyshift rotates the KEK: a new AWSCURRENT.
    secret.put_current("v2", symmetric_value(2));
    env.kek().refresh().await.unwrap();

    // Values sealed before still open (the record names v1, fetched by id).
    assert_eq!(
        &env.decrypt(&ct_old, b"row-1").await.unwrap()[..],
        b"before rotation"
    );
    // New DEKs are wrapped by v2.
    let fresh = env.generate_wrapped_dek("env-2").await.unwrap();
    assert_eq!(fresh.kek_id().key_version, "v2");
    // Rewrap: same DEK, now under v2; one unwrap, one wrap.
    let before = env.stats().unwraps;
    let new = env.rewrap(&old).await.unwrap();
    assert_eq!(env.stats().unwraps, before + 1);
    assert_eq!(new.kek_id().key_version, "v2");
    assert_eq!((new.dek_id(), new.context()), (old.dek_id(), old.context()));
    // Already current: unchanged, nothing counted.
    assert_eq!(env.rewrap(&new).await.unwrap(), new);
    assert_eq!(env.stats().rewraps, 1);
    // The stored value's header moves to the new record without decrypting, and opens.
    let moved = Envelope::<common::MemEnvelopeKek>::rewrap_ciphertext(&ct_old, &new).unwrap();
    assert_eq!(moved.len(), ct_old.len());
    assert_eq!(
        &env.decrypt(&moved, b"row-1").await.unwrap()[..],
        b"before rotation"
    );
    assert_eq!(
        Envelope::<common::MemEnvelopeKek>::rewrap_ciphertext(&ct_old, &fresh),
        Err(Error::DataKeyMismatch)
    );
    // Values written with the old record keep opening too.
    assert_eq!(
        &env.decrypt(&ct_old, b"row-1").await.unwrap()[..],
        b"before rotation"
    );
    // Which KEK versions are still referenced.
    let refs = referenced_keks([&old, &new, &fresh]);
    let versions: Vec<(&str, u64)> = refs.iter().map(|(k, n)| (k.key_version.as_str(), *n)).collect();
    assert_eq!(versions, vec![("v1", 1), ("v2", 2)]);
}

#[tokio::test]
async fn a_record_naming_a_missing_kek_version_or_another_key_fails_typed() {
    let (env, _) = mem_envelope(CacheLimits::none()).await;
    let dek = env.generate_wrapped_dek("e").await.unwrap();
    let ct = env.encrypt(b"v", &dek, b"").await.unwrap();
    // Rewrite the key version (same length) to one that does not exist: v1 -> v9.
    let pos = ct.windows(2).position(|w| w == b"v1").unwrap();
    let mut bad = ct.clone();
    bad[pos + 1] = b'9';
    match env.decrypt(&bad, b"").await {
        Err(Error::Kek(e)) => assert_eq!(e.kind, KekErrorKind::KeyUnavailable),
        other => panic!("{other:?}"),
    }
    // Another secret id: refused before any lookup.
    let pos = ct.windows(3).position(|w| w == b"kek").unwrap();
    let mut bad = ct.clone();
    bad[pos] = b'x';
    assert_eq!(env.decrypt(&bad, b"").await, Err(Error::KeyMismatch));
}

fn fixture() -> (tokio::runtime::Runtime, common::MemEnvelope, Vec<u8>) {
    let rt = rt();
    let (env, ct) = rt.block_on(async {
        let (env, _) = mem_envelope(CacheLimits::default()).await;
        let dek = env.generate_wrapped_dek("env-prop").await.unwrap();
        let ct = env
            .encrypt(b"a configuration value", &dek, b"env-prop/NAME")
            .await
            .unwrap();
        // Warm the cache with the genuine record: tampering must still be caught.
        env.decrypt(&ct, b"env-prop/NAME").await.unwrap();
        (env, ct)
    });
    (rt, env, ct)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_truncation_and_bit_flip_fails_with_a_typed_error(cut in 0usize..10_000, bit in 0usize..100_000) {
        thread_local! {
            static FIX: (tokio::runtime::Runtime, common::MemEnvelope, Vec<u8>) = fixture();
        }
        FIX.with(|(rt, env, ct)| {
            let cut = cut % ct.len();
            let truncated = &ct[..cut];
            let r = rt.block_on(env.decrypt(truncated, b"env-prop/NAME"));
            prop_assert!(r.is_err(), "truncated to {} opened", cut);
            let bit = bit % (ct.len() * 8);
            let mut flipped = ct.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let r = rt.block_on(env.decrypt(&flipped, b"env-prop/NAME"));
            prop_assert!(r.is_err(), "bit {} flipped opened", bit);
            // The message never echoes the value.
            let msg = r.unwrap_err().to_string();
            prop_assert!(!msg.contains("configuration"));
            Ok(())
        })?;
    }

    #[test]
    fn the_parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_ciphertext(&bytes);
        let _ = WrappedDek::from_bytes(&bytes);
        let mut with_magic = b"KSE\x01".to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = parse_ciphertext(&with_magic);
    }
}

#[test]
fn every_truncation_of_a_ciphertext_is_refused_exhaustively() {
    let (rt, env, ct) = fixture();
    for cut in 0..ct.len() {
        assert!(
            rt.block_on(env.decrypt(&ct[..cut], b"env-prop/NAME")).is_err(),
            "{cut}"
        );
    }
    for bit in 0..ct.len() * 8 {
        let mut flipped = ct.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(
            rt.block_on(env.decrypt(&flipped, b"env-prop/NAME")).is_err(),
            "{bit}"
        );
    }
}
