//! The envelope over an in-memory `symmetric` KEK secret (keyshift-client's `Source`
//! contract, Secrets Manager's label moves): round trips, AAD binding, every malformed
//! ciphertext refused with a typed error, batches, the cache's limits, KEK rotation and
//! rewrap, writes for a context without a DEK, and a context's DEK rotated
//! (re-encryption).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{envelope_over, mem_envelope, symmetric_value};
use keyshift_envelope::format::{FormatError, parse_ciphertext};
use keyshift_envelope::{
    CacheLimits, Envelope, Error, Form, KekErrorKind, Provider, WrappedDek, referenced_keks,
};
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

/// `n` values of context `env-1` sealed under `k` distinct DEKs (as an interrupted
/// earlier rotation leaves them), with their plaintexts and AADs.
async fn values_under_k_deks(
    env: &common::MemEnvelope,
    n: usize,
    k: usize,
) -> (Vec<WrappedDek>, Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>) {
    let mut deks = Vec::new();
    for _ in 0..k {
        deks.push(env.generate_wrapped_dek("env-1").await.unwrap());
    }
    let mut values = Vec::new();
    for i in 0..n {
        let plain = format!("secret value {i}").into_bytes();
        let aad = format!("env-1/VAR_{i}").into_bytes();
        let ct = env.encrypt(&plain, &deks[i % k], &aad).await.unwrap();
        values.push((plain, aad, ct));
    }
    (deks, values)
}

#[tokio::test]
async fn reencrypt_many_moves_a_context_to_a_new_dek_unwrapping_each_old_dek_once() {
    let (writer, secret) = mem_envelope(CacheLimits::default()).await;
    let (n, k) = (60usize, 4usize);
    let (old, values) = values_under_k_deks(&writer, n, k).await;
    let items: Vec<(&[u8], &[u8])> = values.iter().map(|(_, a, c)| (&c[..], &a[..])).collect();

    // The rotation: a new DEK for the context (generated here, so in the shared cache),
    // every value re-encrypted under it.
    let rotator = envelope_over(secret.clone(), CacheLimits::default()).await;
    let to = rotator.generate_wrapped_dek("env-1").await.unwrap();
    assert_ne!(to.dek_id(), old[0].dek_id());
    let out = rotator.reencrypt_many(&items, &to).await;
    assert_eq!(out.len(), n);
    assert_eq!(rotator.stats().unwraps, k as u64, "each old DEK unwrapped once");
    let moved: Vec<Vec<u8>> = out.into_iter().map(|r| r.unwrap().unwrap()).collect();

    // A reader with no cache: the new values carry the new DEK, open with their AAD and
    // with no other (not another row's, not another environment's).
    let reader = envelope_over(secret.clone(), CacheLimits::none()).await;
    for (i, ((plain, aad, ct), new)) in values.iter().zip(&moved).enumerate() {
        assert_eq!(WrappedDek::of_ciphertext(new).unwrap(), to);
        assert_ne!(new, ct);
        assert_eq!(&reader.decrypt(new, aad).await.unwrap()[..], &plain[..]);
        let other_row = format!("env-1/VAR_{}", i + 1).into_bytes();
        assert_eq!(reader.decrypt(new, &other_row).await, Err(Error::Open));
        assert_eq!(
            reader.decrypt(new, format!("env-2/VAR_{i}").as_bytes()).await,
            Err(Error::Open)
        );
    }

    // Run again on the new values (a finished rotation started again): nothing to store,
    // and no unwrap (the new DEK is cached).
    let again: Vec<(&[u8], &[u8])> = moved
        .iter()
        .zip(&values)
        .map(|(c, (_, a, _))| (&c[..], &a[..]))
        .collect();
    let out = rotator.reencrypt_many(&again, &to).await;
    assert!(out.iter().all(|r| r == &Ok(None)), "{out:?}");
    assert_eq!(rotator.stats().unwraps, k as u64);
    // A mix of both (an interrupted rotation): only the old ones are re-encrypted.
    let mixed: Vec<(&[u8], &[u8])> = (0..n)
        .map(|i| if i % 2 == 0 { again[i] } else { items[i] })
        .collect();
    let out = rotator.reencrypt_many(&mixed, &to).await;
    for (i, r) in out.iter().enumerate() {
        assert_eq!(r.as_ref().unwrap().is_some(), i % 2 == 1, "{i}");
    }

    // Without a shared cache: each distinct DEK, the k old ones and the new one, once.
    let uncached = envelope_over(secret, CacheLimits::none()).await;
    let to2 = uncached.generate_wrapped_dek("env-1").await.unwrap();
    let out = uncached.reencrypt_many(&items, &to2).await;
    assert!(out.iter().all(|r| matches!(r, Ok(Some(_)))));
    assert_eq!(uncached.stats().unwraps, k as u64 + 1);
    // One value alone: its old DEK and the new one.
    let one = uncached
        .reencrypt(items[0].0, items[0].1, &to2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(uncached.stats().unwraps, k as u64 + 3);
    assert_eq!(
        &reader.decrypt(&one, items[0].1).await.unwrap()[..],
        &values[0].0[..]
    );
}

#[tokio::test]
async fn reencrypt_leaves_a_value_under_to_and_splices_a_rewrapped_header() {
    let (env, secret) = mem_envelope(CacheLimits::none()).await;
    let old = env.generate_wrapped_dek("env-1").await.unwrap();
    let ct = env.encrypt(b"hunter2", &old, b"env-1/PASSWORD").await.unwrap();

    // Already under exactly `to`'s record: nothing to store (checked by opening it).
    assert_eq!(env.reencrypt(&ct, b"env-1/PASSWORD", &old).await, Ok(None));
    assert_eq!(
        env.reencrypt(&ct, b"env-1/OTHER", &old).await,
        Err(Error::Open),
        "a value that does not open with its AAD is not reported as done"
    );

    // The KEK rotated and the DEK rewrapped: the same DEK under another record. The
    // value's header is spliced; the old record is not unwrapped, the sealed bytes are
    // copied unchanged.
    secret.put_current("v2", symmetric_value(2));
    env.kek().refresh().await.unwrap();
    let new = env.rewrap(&old).await.unwrap();
    assert_eq!(new.dek_id(), old.dek_id());
    assert_ne!(new, old);
    let before = env.stats().unwraps;
    let moved = env
        .reencrypt(&ct, b"env-1/PASSWORD", &new)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        moved,
        Envelope::<common::MemEnvelopeKek>::rewrap_ciphertext(&ct, &new).unwrap()
    );
    // Nonce (12 bytes), sealed value and tag (7 + 16): unchanged.
    assert_eq!(moved[moved.len() - 35..], ct[ct.len() - 35..]);
    assert_eq!(env.stats().unwraps, before + 1, "only the new record");
    assert_eq!(WrappedDek::of_ciphertext(&moved).unwrap(), new);
    assert_eq!(
        &env.decrypt(&moved, b"env-1/PASSWORD").await.unwrap()[..],
        b"hunter2"
    );
    assert_eq!(
        env.reencrypt(&ct, b"env-2/PASSWORD", &new).await,
        Err(Error::Open)
    );
    // And the moved value is then done.
    assert_eq!(env.reencrypt(&moved, b"env-1/PASSWORD", &new).await, Ok(None));
}

#[tokio::test]
async fn reencrypt_of_a_corrupt_value_is_a_typed_error_and_nothing_else() {
    let (env, _) = mem_envelope(CacheLimits::default()).await;
    let old = env.generate_wrapped_dek("env-1").await.unwrap();
    let to = env.generate_wrapped_dek("env-1").await.unwrap();
    let good = env
        .encrypt(b"the-plaintext-value", &old, b"env-1/A")
        .await
        .unwrap();
    let mut tag_flipped = good.clone();
    *tag_flipped.last_mut().unwrap() ^= 1;
    let truncated = good[..good.len() - 20].to_vec();
    let mut done_but_corrupt = env
        .encrypt(b"the-plaintext-value", &to, b"env-1/A")
        .await
        .unwrap();
    *done_but_corrupt.last_mut().unwrap() ^= 1;
    let items: Vec<(&[u8], &[u8])> = vec![
        (&good, b"env-1/A"),
        (&tag_flipped, b"env-1/A"),
        (&truncated, b"env-1/A"),
        (b"\x01\x02\x02\x00not an envelope", b"env-1/A"),
        (&done_but_corrupt, b"env-1/A"),
        (&good, b"env-1/B"),
        (&good, b"env-1/A"),
    ];
    let out = env.reencrypt_many(&items, &to).await;
    assert!(matches!(&out[0], Ok(Some(_))));
    assert_eq!(out[1], Err(Error::Open));
    assert!(matches!(out[2], Err(Error::Format(_))), "{:?}", out[2]);
    assert_eq!(out[3], Err(Error::NotEnvelope));
    assert_eq!(out[4], Err(Error::Open));
    assert_eq!(out[5], Err(Error::Open));
    assert!(matches!(&out[6], Ok(Some(_))), "the batch goes on after errors");
    for r in &out {
        if let Err(e) = r {
            let msg = e.to_string();
            assert!(!msg.contains("plaintext-value"), "{msg}");
        }
    }
    // Every truncation and every flipped bit of the value: an error, never a new value.
    for cut in 0..good.len() {
        assert!(
            env.reencrypt(&good[..cut], b"env-1/A", &to).await.is_err(),
            "{cut}"
        );
        assert!(
            env.reencrypt(&good[..cut], b"env-1/A", &old).await.is_err(),
            "{cut}"
        );
    }
    let mut spliced = 0;
    for bit in 0..good.len() * 8 {
        let mut flipped = good.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(env.reencrypt(&flipped, b"env-1/A", &to).await.is_err(), "{bit}");
        // Towards its own DEK, a flip in the record's KEK fields or wrapped key makes
        // "the same DEK under another record": the header is replaced by `to`'s (the
        // splice), so the result is the genuine value; every other flip is an error.
        match env.reencrypt(&flipped, b"env-1/A", &old).await {
            Err(_) => {}
            Ok(Some(v)) => {
                assert_eq!(v, good, "{bit}");
                spliced += 1;
            }
            Ok(None) => panic!("{bit}: a flipped value reported as done"),
        }
    }
    assert!(spliced > 0);
}

#[tokio::test]
async fn encrypt_for_writes_the_envelope_form_with_a_dek_and_refuses_without_a_legacy_writer() {
    let (env, _) = mem_envelope(CacheLimits::default()).await;
    // No DEK yet and no legacy writer: a typed error, no output, nothing counted.
    let err = env
        .encrypt_for(b"pl41ntext-secret", None, b"env-1/TOKEN")
        .await
        .unwrap_err();
    assert_eq!(err, Error::NoDataKey);
    assert!(!err.to_string().contains("pl41ntext"), "{err}");
    assert_eq!(env.stats().legacy_encrypts, 0);
    assert!(!Error::NoLegacyKeyId.to_string().contains("pl41ntext"));

    // With the DEK: the envelope form, bound to the AAD.
    let dek = env.generate_wrapped_dek("env-1").await.unwrap();
    let (ct, form) = env
        .encrypt_for(b"pl41ntext-secret", Some(&dek), b"env-1/TOKEN")
        .await
        .unwrap();
    assert_eq!(form, Form::Envelope);
    assert_eq!(Form::of(&ct), Form::Envelope);
    assert!(ct.starts_with(b"KSE\x01"));
    assert_eq!(WrappedDek::of_ciphertext(&ct).unwrap(), dek);
    assert_eq!(
        &env.decrypt(&ct, b"env-1/TOKEN").await.unwrap()[..],
        b"pl41ntext-secret"
    );
    assert_eq!(env.decrypt(&ct, b"env-1/OTHER").await, Err(Error::Open));
    assert_eq!(Form::of(b"\x01\x02\x02\x00legacy"), Form::Legacy);
    // Too long: the envelope's limit, a typed error.
    let big = vec![0u8; keyshift_envelope::format::MAX_PLAINTEXT + 1];
    assert_eq!(
        env.encrypt_for(&big, Some(&dek), b"").await,
        Err(Error::PlaintextTooLong)
    );
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

/// A KEK that takes its time to unwrap (as KMS does: a few milliseconds per call), so
/// that concurrent misses of one DEK really overlap.
struct SlowKek(common::MemEnvelopeKek);

impl keyshift_envelope::Kek for SlowKek {
    fn provider(&self) -> Provider {
        self.0.provider()
    }

    fn rewrap_needs_key(&self) -> bool {
        self.0.rewrap_needs_key()
    }

    async fn generate(
        &self,
        dek_id: &[u8; keyshift_envelope::format::DEK_ID_LEN],
        context: &str,
    ) -> Result<keyshift_envelope::Generated, Error> {
        self.0.generate(dek_id, context).await
    }

    async fn unwrap(
        &self,
        record: &keyshift_envelope::format::RecordRef<'_>,
    ) -> Result<keyshift_envelope::dek::DekBytes, Error> {
        tokio::time::sleep(Duration::from_millis(30)).await;
        self.0.unwrap(record).await
    }

    async fn rewrap(
        &self,
        record: &keyshift_envelope::format::RecordRef<'_>,
        dek: Option<&keyshift_envelope::dek::DekBytes>,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.0.rewrap(record, dek).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_of_one_dek_unwrap_it_once() {
    let (writer, secret) = mem_envelope(CacheLimits::default()).await;
    let deks = [
        writer.generate_wrapped_dek("env-1").await.unwrap(),
        writer.generate_wrapped_dek("env-2").await.unwrap(),
    ];
    let mut values = Vec::new();
    for i in 0..32 {
        let dek = &deks[i % 2];
        let aad = format!("{}/V{i}", dek.context()).into_bytes();
        values.push((writer.encrypt(b"value", dek, &aad).await.unwrap(), aad));
    }
    let kek = keyshift_envelope::SecretsManagerKek::start(
        secret,
        "kek",
        keyshift_client::Config::new(Duration::from_secs(600)).unwrap(),
    )
    .await
    .unwrap();
    // A cold reader: 32 requests at once over two DEKs.
    let reader = std::sync::Arc::new(Envelope::new(SlowKek(kek), CacheLimits::default()));
    let tasks: Vec<_> = values
        .into_iter()
        .map(|(ct, aad)| {
            let reader = reader.clone();
            tokio::spawn(async move { reader.decrypt(&ct, &aad).await.map(|p| p.to_vec()) })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), b"value");
    }
    // One unwrap per DEK, not one per request; the other 30 waited for it.
    let stats = reader.stats();
    assert_eq!((stats.unwraps, stats.cache_hits), (2, 30), "{stats:?}");
}
