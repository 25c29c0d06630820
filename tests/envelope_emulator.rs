//! The providers against moto's server (a local Secrets Manager and KMS): the
//! `symmetric` KEK rotated by a new AWSCURRENT version, the KMS KEK with an alias moved
//! to a new key (GenerateDataKey, Decrypt, ReEncrypt), and legacy values encrypted
//! directly with KMS: read, and written for a context until its DEK exists. Starts its
//! own server (the shared emulator, `tests/support`) from `$KEYSHIFT_VENV` (else `.venv`
//! at the workspace root) and fails, never skips, when it cannot.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use keyshift_client::{Config, SdkSource};
use keyshift_envelope::{
    CacheLimits, Envelope, Error, Form, KekErrorKind, KmsKek, LegacyKms, Provider, SecretsManagerKek,
    WrappedDek,
};
use keyshift_keys::KeyKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_manager_kek_rotation_on_the_emulator() {
    let moto = support::moto();
    let sm = support::secrets_manager(&moto).await;
    let created = sm
        .create_secret()
        .name("app/kek")
        .secret_string(symmetric_value())
        .send()
        .await
        .unwrap();
    let v1 = created.version_id().unwrap().to_owned();
    let source = SdkSource::new(sm.clone(), "app/kek");
    let kek = SecretsManagerKek::start(source, "app/kek", Config::new(Duration::from_secs(600)).unwrap())
        .await
        .unwrap();
    let env = Envelope::new(kek, CacheLimits::none());
    let dek = env.generate_wrapped_dek("env-1").await.unwrap();
    assert_eq!(
        dek.kek_id().key_version,
        v1,
        "the record names the exact version id"
    );
    let ct = env.encrypt(b"s3cr3t", &dek, b"env-1/TOKEN").await.unwrap();

    // keyshift's rotation ends with a new AWSCURRENT version.
    let put = sm
        .put_secret_value()
        .secret_id("app/kek")
        .secret_string(symmetric_value())
        .version_stages("AWSCURRENT")
        .send()
        .await
        .unwrap();
    let v2 = put.version_id().unwrap().to_owned();
    env.kek().refresh().await.unwrap();

    // A fresh reader (empty caches) opens the old value: it fetches v1 by id.
    let source = SdkSource::new(sm.clone(), "app/kek");
    let reader = Envelope::new(
        SecretsManagerKek::start(source, "app/kek", Config::new(Duration::from_secs(600)).unwrap())
            .await
            .unwrap(),
        CacheLimits::none(),
    );
    assert_eq!(&reader.decrypt(&ct, b"env-1/TOKEN").await.unwrap()[..], b"s3cr3t");

    let new = env.rewrap(&dek).await.unwrap();
    assert_eq!(new.kek_id().key_version, v2);
    let moved = Envelope::<SecretsManagerKek<SdkSource>>::rewrap_ciphertext(&ct, &new).unwrap();
    assert_eq!(
        &reader.decrypt(&moved, b"env-1/TOKEN").await.unwrap()[..],
        b"s3cr3t"
    );
    assert_eq!(
        env.generate_wrapped_dek("env-2")
            .await
            .unwrap()
            .kek_id()
            .key_version,
        v2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_kek_and_legacy_values_on_the_emulator() {
    let moto = support::moto();
    let kms = support::kms(&moto).await;
    let k1 = support::kms_key_with_alias(&kms, "alias/app-values")
        .await
        .unwrap();

    let env = Envelope::new(KmsKek::new(kms.clone(), "alias/app-values"), CacheLimits::none())
        .with_legacy(LegacyKms::new(kms.clone()));
    let dek = env.generate_wrapped_dek("env-1").await.unwrap();
    assert_eq!(dek.kek_id().provider, Provider::Kms);
    assert_eq!(dek.kek_id().key_id, k1.arn().unwrap());
    let ct = env.encrypt(b"api-key-123", &dek, b"env-1/API_KEY").await.unwrap();
    assert_eq!(
        &env.decrypt(&ct, b"env-1/API_KEY").await.unwrap()[..],
        b"api-key-123"
    );
    // No shared cache: one Decrypt of the DEK for the encrypt, one for the decrypt.
    assert_eq!(env.stats().unwraps, 2);
    assert_eq!(env.decrypt(&ct, b"env-2/API_KEY").await, Err(Error::Open));

    // The wrapped key is bound to its record by the encryption context: a record whose
    // context was changed (same length) does not unwrap.
    let (ctx_at, _) = ct.windows(5).enumerate().find(|(_, w)| w == b"env-1").unwrap();
    let mut forged = ct.clone();
    forged[ctx_at + 4] = b'9';
    match env.decrypt(&forged, b"env-9/API_KEY").await {
        Err(Error::Kek(e)) => assert_eq!(e.kind, KekErrorKind::UnwrapFailed, "{e}"),
        other => panic!("{other:?}"),
    }

    // Rotation: the alias moves to a new key; rewrap is one ReEncrypt, no local unwrap.
    let k2 = support::kms_move_alias(&kms, "alias/app-values").await.unwrap();
    let unwraps = env.stats().unwraps;
    let new = env.rewrap(&dek).await.unwrap();
    assert_eq!(env.stats().unwraps, unwraps);
    assert_eq!(new.kek_id().key_id, k2.arn().unwrap());
    assert_eq!(new.dek_id(), dek.dek_id());
    assert_eq!(env.rewrap(&new).await.unwrap(), new, "already current");
    let moved = Envelope::<KmsKek>::rewrap_ciphertext(&ct, &new).unwrap();
    assert_eq!(
        &env.decrypt(&moved, b"env-1/API_KEY").await.unwrap()[..],
        b"api-key-123"
    );
    // (moto 5.2.5's Decrypt ignores a disabled key, so "the old key disabled, moved
    // values still open" is not checkable here; the records say which key each needs.)
    assert_eq!(new.kek_id().key_id, k2.arn().unwrap());

    // Legacy: a value encrypted directly with KMS still decrypts (one call per value).
    let legacy = support::kms_encrypt(&kms, k1.key_id(), b"legacy-value".to_vec())
        .await
        .unwrap();
    assert!(!legacy.starts_with(b"KSE"));
    assert_eq!(
        &env.decrypt(&legacy, b"ignored").await.unwrap()[..],
        b"legacy-value"
    );
    assert_eq!(env.stats().legacy_decrypts, 1);
    // A mixed batch: legacy and envelope values side by side.
    let items: Vec<(&[u8], &[u8])> = vec![(&legacy, b""), (&moved, b"env-1/API_KEY"), (&legacy, b"")];
    let out = env.decrypt_many(&items).await;
    assert!(out.iter().all(Result::is_ok));
    assert_eq!(env.stats().legacy_decrypts, 3);
    // A garbage legacy blob is KMS's typed error.
    assert!(matches!(
        env.decrypt(b"\x01\x02garbage", b"").await,
        Err(Error::Legacy(_))
    ));
    // An upgrade on write: the legacy value re-encrypted is in the envelope form.
    let plain = env.decrypt(&legacy, b"").await.unwrap();
    let upgraded = env.encrypt(&plain, &new, b"env-1/OLD").await.unwrap();
    assert!(upgraded.starts_with(b"KSE\x01"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_context_without_a_dek_writes_the_legacy_form_until_its_dek_exists() {
    let moto = support::moto();
    let kms = support::kms(&moto).await;
    let legacy_key = support::kms_key(&kms).await.unwrap();
    let kek_key = support::kms_key(&kms).await.unwrap();
    let env = Envelope::new(KmsKek::new(kms.clone(), kek_key.key_id()), CacheLimits::none())
        .with_legacy(LegacyKms::new(kms.clone()).with_key_id(legacy_key.key_id()));

    // env-1 has no DEK yet: the write falls back to one KMS Encrypt (the legacy form).
    let (row, form) = env
        .encrypt_for(b"db-passw0rd", None, b"env-1/DB_PASSWORD")
        .await
        .unwrap();
    assert_eq!(form, Form::Legacy);
    assert_eq!(Form::of(&row), Form::Legacy);
    assert!(!row.starts_with(b"KSE"));
    assert!(WrappedDek::of_ciphertext(&row).is_err());
    assert_eq!(env.stats().legacy_encrypts, 1);
    assert_eq!(env.stats().generates, 0);
    // It decrypts through LegacyKms, also one without a key id (KMS finds the key), and
    // binds no AAD: any AAD opens it (which is why the upgrade on write matters).
    assert_eq!(
        &env.decrypt(&row, b"env-1/DB_PASSWORD").await.unwrap()[..],
        b"db-passw0rd"
    );
    assert_eq!(
        &env.decrypt(&row, b"env-2/OTHER").await.unwrap()[..],
        b"db-passw0rd"
    );
    assert_eq!(
        &LegacyKms::new(kms.clone()).decrypt(&row).await.unwrap()[..],
        b"db-passw0rd"
    );
    assert_eq!(env.stats().legacy_decrypts, 2);

    // The DEK exists now: the next write of the same row is the envelope form, bound to
    // its AAD, and nothing more goes to the legacy path.
    let dek = env.generate_wrapped_dek("env-1").await.unwrap();
    let (row, form) = env
        .encrypt_for(b"db-passw0rd-2", Some(&dek), b"env-1/DB_PASSWORD")
        .await
        .unwrap();
    assert_eq!(form, Form::Envelope);
    assert!(row.starts_with(b"KSE\x01"));
    assert_eq!(WrappedDek::of_ciphertext(&row).unwrap(), dek);
    assert_eq!(
        &env.decrypt(&row, b"env-1/DB_PASSWORD").await.unwrap()[..],
        b"db-passw0rd-2"
    );
    assert_eq!(env.decrypt(&row, b"env-2/OTHER").await, Err(Error::Open));
    assert_eq!(env.stats().legacy_encrypts, 1);

    // A legacy row not written again is upgraded by re-encryption under the DEK.
    let (old_row, _) = env.encrypt_for(b"api-k3y", None, b"").await.unwrap();
    assert_eq!(env.stats().legacy_encrypts, 2);
    let upgraded = env
        .reencrypt(&old_row, b"env-1/API_KEY", &dek)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Form::of(&upgraded), Form::Envelope);
    assert_eq!(
        &env.decrypt(&upgraded, b"env-1/API_KEY").await.unwrap()[..],
        b"api-k3y"
    );
    assert_eq!(
        env.decrypt(&upgraded, b"env-1/DB_PASSWORD").await,
        Err(Error::Open)
    );

    // Past KMS's 4096-byte limit: a typed error before any call.
    let big = vec![7u8; 4097];
    assert_eq!(
        env.encrypt_for(&big, None, b"").await,
        Err(Error::PlaintextTooLong)
    );
    assert_eq!(env.stats().legacy_encrypts, 2);
    // A key KMS does not know: KMS's error, typed, and nothing secret in the message.
    let missing = LegacyKms::new(kms.clone()).with_key_id("11111111-2222-3333-4444-555555555555");
    match missing.encrypt(b"db-passw0rd").await {
        Err(e @ Error::Legacy(_)) => assert!(!e.to_string().contains("passw0rd"), "{e}"),
        other => panic!("{other:?}"),
    }

    // LegacyKms without a key id reads but refuses to write, with the typed error, and
    // an envelope with only such a reader has no legacy writer.
    let reader = LegacyKms::new(kms.clone());
    assert_eq!(reader.key_id(), None);
    let err = reader.encrypt(b"db-passw0rd").await.unwrap_err();
    assert_eq!(err, Error::NoLegacyKeyId);
    assert!(!err.to_string().contains("passw0rd"), "{err}");
    let read_only =
        Envelope::new(KmsKek::new(kms.clone(), kek_key.key_id()), CacheLimits::none()).with_legacy(reader);
    let err = read_only
        .encrypt_for(b"db-passw0rd", None, b"env-3/DB_PASSWORD")
        .await
        .unwrap_err();
    assert_eq!(err, Error::NoDataKey);
    assert!(!err.to_string().contains("passw0rd"), "{err}");
    assert_eq!(read_only.stats().legacy_encrypts, 0);
    // ...while it still reads the legacy values.
    let (legacy_row, _) = env.encrypt_for(b"still-readable", None, b"").await.unwrap();
    assert_eq!(
        &read_only.decrypt(&legacy_row, b"").await.unwrap()[..],
        b"still-readable"
    );
}

/// A KEK value of keyshift's `symmetric` kind, as its rotation stores it.
fn symmetric_value() -> String {
    keyshift_keys::generate(KeyKind::Symmetric).unwrap()
}
