//! keyshift's executor, in process against moto's server, rotates a signing key with
//! the stock target: the labels move as docs/protocol.md, section 1 says, and every
//! value written is a working Ed25519 key pair without a kid.

mod support;

use keyshift_client::{SecretValue, Version, VersionId};
use keyshift_keys::KeyKind;
use support::{Aws, Rotation, stock, value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyshift_rotates_a_signing_key_through_the_window() {
    let aws = Aws::start().await;
    let k1 = value(KeyKind::Ed25519);
    let (arn, v1) = aws.create("examples/rotation", &k1).await;

    let rotation = Rotation::start(&aws, &arn, stock(&aws, KeyKind::Ed25519)).await;
    let pending = aws
        .holder(&arn, "AWSPENDING")
        .await
        .expect("AWSPENDING after createSecret");
    assert_eq!(aws.holder(&arn, "AWSCURRENT").await.as_deref(), Some(v1.as_str()));

    rotation.swap(&aws).await;
    let labels = aws.labels(&arn).await;
    let current = aws.holder(&arn, "AWSCURRENT").await.expect("AWSCURRENT");
    assert_ne!(current, v1, "AWSCURRENT moved: {labels:?}");
    assert_eq!(
        aws.holder(&arn, "ROTATING").await.as_deref(),
        Some(v1.as_str()),
        "{labels:?}"
    );
    assert_eq!(aws.holder(&arn, "AWSPENDING").await, None, "{labels:?}");
    // keyshift swaps its own copy of the pending value (a version id derived from the
    // token), never the engine's version, which ends without labels: consumers see two
    // new version ids per rotation, with the same key. Hence kid = version id, always.
    assert_ne!(current, pending, "{labels:?}");

    rotation.remove(&aws).await;
    let labels = aws.labels(&arn).await;
    assert_eq!(aws.holder(&arn, "ROTATING").await, None, "{labels:?}");
    assert_eq!(
        aws.holder(&arn, "AWSPREVIOUS").await.as_deref(),
        Some(v1.as_str())
    );

    let mut publics = Vec::new();
    for version in [&pending, &current] {
        let out = aws
            .sm
            .get_secret_value()
            .secret_id(&arn)
            .version_id(version)
            .send()
            .await
            .expect("GetSecretValue");
        let stored: serde_json::Value =
            serde_json::from_str(out.secret_string().unwrap_or_default()).expect("JSON");
        keyshift_keys::check(KeyKind::Ed25519, &stored)
            .unwrap_or_else(|e| panic!("version {version} is not a working Ed25519 pair: {e}"));
        assert!(stored.get("kid").is_none(), "no stored kid");
        let key = Version::new(
            VersionId::new(version.as_str()),
            ["AWSCURRENT"],
            SecretValue::new(stored.to_string()),
        )
        .signing_key()
        .unwrap_or_else(|e| panic!("version {version}: {e}"));
        assert_eq!((key.kid().as_str(), key.alg()), (version.as_str(), "EdDSA"));
        publics.push(key.public_jwk().clone());
    }
    assert_eq!(publics[0], publics[1], "the copy carries the same key");
    let k1: serde_json::Value = serde_json::from_str(&k1).expect("JSON");
    assert_ne!(publics[0], k1["public_jwk"], "a new key");
}
