//! The data service against moto's server through the real SDK, while keyshift's
//! executor rotates its data key with the stock target (`symmetric`): new data is
//! encrypted under the current version, old data decrypts by the key id it carries,
//! also after that version left the window and on an instance that never saw it
//! (fetched on the miss), and corrupt or altered ciphertexts fail with a clear error.

mod support;

use keyshift_client::{SecretValue, Version, VersionId};
use keyshift_examples::data_service::{DataError, DataService};
use keyshift_examples::sealed::{self, OpenError};
use keyshift_keys::KeyKind;
use support::{Aws, MISS_INTERVAL, Rotation, client, refresh, stock, value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_decrypts_by_its_key_id_through_and_after_a_rotation() {
    let aws = Aws::start().await;
    let (arn, v1) = aws.create("examples/data", &value(KeyKind::Symmetric)).await;
    let service = DataService::new(client(&aws, &arn).await);

    let old = service.encrypt(b"written before the rotation").expect("encrypt");
    assert_eq!(sealed::key_id(&old), Ok(v1.as_str()), "key id = version id");

    let rotation = Rotation::start(&aws, &arn, stock(&aws, KeyKind::Symmetric)).await;
    refresh(service.keys()).await;
    let during = service
        .encrypt(b"written while the new key was pending")
        .expect("encrypt");
    assert_eq!(
        sealed::key_id(&during),
        Ok(v1.as_str()),
        "encrypt uses AWSCURRENT only"
    );

    rotation.swap(&aws).await;
    refresh(service.keys()).await;
    let v2 = aws.holder(&arn, "AWSCURRENT").await.expect("AWSCURRENT");
    let new = service.encrypt(b"written after the swap").expect("encrypt");
    assert_eq!(sealed::key_id(&new), Ok(v2.as_str()));

    rotation.remove(&aws).await;
    refresh(service.keys()).await;
    assert!(
        service
            .keys()
            .accepted()
            .expect("view")
            .iter()
            .all(|v| v.id().as_str() != v1),
        "v1 left the window"
    );
    for (data, plain) in [
        (&old, &b"written before the rotation"[..]),
        (&during, b"written while the new key was pending"),
        (&new, b"written after the swap"),
    ] {
        assert_eq!(service.decrypt(data).await.expect("decrypt"), plain);
    }

    // A new instance never saw v1: decrypting old data fetches v1 by its id.
    let fresh = DataService::new(client(&aws, &arn).await);
    tokio::time::sleep(MISS_INTERVAL).await;
    let fetched = fresh.keys().stats().value_calls;
    assert_eq!(
        fresh.decrypt(&old).await.expect("decrypt by key id"),
        b"written before the rotation"
    );
    assert_eq!(
        fresh.keys().stats().value_calls,
        fetched + 1,
        "v1 fetched once, on the miss"
    );
    assert_eq!(
        fresh.decrypt(&old).await.expect("decrypt"),
        b"written before the rotation"
    );
    assert_eq!(
        fresh.keys().stats().value_calls,
        fetched + 1,
        "then served from the past-version cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_altered_and_unknown_key_ciphertexts_fail_clearly() {
    let aws = Aws::start().await;
    let (arn, v1) = aws
        .create("examples/data-errors", &value(KeyKind::Symmetric))
        .await;
    let service = DataService::new(client(&aws, &arn).await);
    let good = service.encrypt(b"account 42").expect("encrypt");

    // One flipped bit in the body: authentication fails under the named key.
    let mut altered = good.clone();
    let last = altered.len() - 1;
    altered[last] ^= 0x01;
    let err = service.decrypt(&altered).await.expect_err("altered");
    assert!(
        matches!(&err, DataError::Open(OpenError::Tampered { key_id }) if *key_id == v1),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("ciphertext under key {v1} failed authentication: it was altered")
    );

    // Corrupt headers.
    let err = service.decrypt(&good[..10]).await.expect_err("truncated");
    assert_eq!(err.to_string(), "corrupt ciphertext: 10 bytes is too short");
    let mut wrong_format = good.clone();
    wrong_format[0] = 0x7f;
    let err = service.decrypt(&wrong_format).await.expect_err("format");
    assert_eq!(err.to_string(), "corrupt ciphertext: unknown format byte 0x7f");

    // A key id the secret never had: looked up (one refresh), then refused by name.
    let unknown_id = "00000000-0000-4000-8000-000000000000";
    let stranger = Version::new(
        VersionId::new(unknown_id),
        ["AWSCURRENT"],
        SecretValue::new(value(KeyKind::Symmetric)),
    )
    .symmetric_key()
    .expect("a symmetric key");
    let foreign = sealed::seal(&stranger, b"x").expect("seal");
    tokio::time::sleep(MISS_INTERVAL).await;
    let err = service.decrypt(&foreign).await.expect_err("unknown key");
    assert!(
        matches!(&err, DataError::UnknownKey { key_id } if key_id == unknown_id),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("no key with id {unknown_id}: the secret has no such version")
    );
}
