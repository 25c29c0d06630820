//! keyshift's executor, in process against moto's server, rotates a signing key with
//! real key material: the labels move as docs/protocol.md, section 1 says, and every value
//! written is a valid Ed25519 JWK.

mod support;

use keyshift_examples::keys::SigningKey;
use keyshift_examples::rotation::SigningKeys;
use support::{Aws, Rotation};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyshift_rotates_a_signing_key_through_the_window() {
    let aws = Aws::start().await;
    let k1 = SigningKey::generate().expect("key");
    let (arn, v1) = aws.create("examples/rotation", &k1.to_jwk()).await;

    let rotation = Rotation::start(&aws, &arn, SigningKeys).await;
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
    // new version ids per rotation, with the same key.
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
        let value = aws
            .sm
            .get_secret_value()
            .secret_id(&arn)
            .version_id(version)
            .send()
            .await
            .expect("GetSecretValue");
        let key = SigningKey::from_jwk(value.secret_string().unwrap_or_default())
            .unwrap_or_else(|e| panic!("version {version} is not a signing key: {e}"));
        publics.push(key.public_key().to_vec());
    }
    assert_eq!(publics[0], publics[1], "the copy carries the same key");
    assert_ne!(publics[0], k1.public_key(), "a new key");
}
