//! The token service against moto's server through the real SDK, while keyshift's
//! executor rotates its signing key: tokens signed before the rotation verify for as
//! long as their key is in the window, new tokens carry the new key's id, and altered
//! tokens fail with a clear error.

mod support;

use keyshift_examples::keys::SigningKey;
use keyshift_examples::rotation::SigningKeys;
use keyshift_examples::token::{self, VerifyError};
use keyshift_examples::token_service::{TokenError, TokenService};
use std::time::Duration;

use keyshift_client::Config;
use serde_json::json;
use support::{Aws, Rotation, client, client_with, refresh};

fn kids(service: &TokenService<keyshift_client::SdkSource>) -> Vec<String> {
    let jwks = service.keys().jwks().expect("jwks");
    jwks.kids().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_verify_through_a_rotation_while_their_key_is_in_the_window() {
    let aws = Aws::start().await;
    let k1 = SigningKey::generate().expect("key");
    let (arn, v1) = aws.create("examples/signing", &k1.to_jwk()).await;
    let service = TokenService::new(client(&aws, &arn).await);

    let before = service.issue(&json!({"sub": "alice"})).expect("issue");
    assert_eq!(
        token::kid(&before).as_deref(),
        Ok(v1.as_str()),
        "kid = version id"
    );
    assert_eq!(
        service.verify(&before).await.expect("verify"),
        json!({"sub": "alice"})
    );

    // createSecret: a new key is published as AWSPENDING; signing stays on the old one.
    let rotation = Rotation::start(&aws, &arn, SigningKeys).await;
    refresh(service.keys()).await;
    let pending = aws.holder(&arn, "AWSPENDING").await.expect("AWSPENDING");
    assert_eq!(
        kids(&service),
        vec![v1.clone(), pending],
        "JWKS = current, then pending"
    );
    let during = service.issue(&json!({"sub": "bob"})).expect("issue");
    assert_eq!(token::kid(&during).as_deref(), Ok(v1.as_str()));

    // The swap: new tokens carry the new key's id; the old key is ROTATING and accepted.
    rotation.swap(&aws).await;
    refresh(service.keys()).await;
    let v2 = aws.holder(&arn, "AWSCURRENT").await.expect("AWSCURRENT");
    assert_ne!(v2, v1);
    let after = service.issue(&json!({"sub": "carol"})).expect("issue");
    assert_eq!(token::kid(&after).as_deref(), Ok(v2.as_str()));
    for t in [&before, &during, &after] {
        service
            .verify(t)
            .await
            .expect("a token of a key in the window verifies");
    }

    // The removal: the old key left the window; its tokens are refused by key id.
    rotation.remove(&aws).await;
    refresh(service.keys()).await;
    assert_eq!(kids(&service), vec![v2.clone()]);
    service
        .verify(&after)
        .await
        .expect("the current key's token verifies");
    match service.verify(&before).await {
        Err(TokenError::Verify(VerifyError::UnknownKey { kid })) => assert_eq!(kid, v1),
        other => panic!("a token of a key that left the window must be refused: {other:?}"),
    }

    // Tampering: a changed claim fails the signature, with the key named.
    let parts: Vec<&str> = after.split('.').collect();
    let forged_claims = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!({"sub": "root"}).to_string())
    };
    let forged = format!("{}.{forged_claims}.{}", parts[0], parts[2]);
    let err = service
        .verify(&forged)
        .await
        .expect_err("a forged token must fail");
    assert!(
        matches!(&err, TokenError::Verify(VerifyError::BadSignature { kid }) if *kid == v2),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("bad signature for key {v2}: the token was altered or not signed by this key")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_a_key_published_since_the_last_refresh_verifies_in_one_round_trip() {
    let aws = Aws::start().await;
    let k1 = SigningKey::generate().expect("key");
    let (arn, _) = aws.create("examples/signing-miss", &k1.to_jwk()).await;
    // A verifier whose next scheduled refresh is at least 1.5 s away.
    let slow = Config::builder(support::GAP)
        .read_lag(Duration::from_millis(100))
        .refresh(Duration::from_millis(1500), Duration::from_millis(1800))
        .miss_interval(support::MISS_INTERVAL)
        .build()
        .expect("config");
    let verifier = TokenService::new(client_with(&aws, &arn, slow).await);
    refresh(verifier.keys()).await;

    // An emergency rotation by hand: a new key becomes AWSCURRENT at once, and another
    // instance signs with it before this verifier's next refresh. The unknown kid
    // triggers one refresh instead of a refusal.
    let k2 = SigningKey::generate().expect("key");
    let v2 = aws.put_current(&arn, &k2.to_jwk()).await;
    let token = token::sign(&k2, &v2, &json!({"sub": "dave"}));
    tokio::time::sleep(support::MISS_INTERVAL).await;
    let misses = verifier.keys().stats().miss_refreshes;
    assert_eq!(
        verifier.verify(&token).await.expect("verify"),
        json!({"sub": "dave"})
    );
    assert_eq!(
        verifier.keys().stats().miss_refreshes,
        misses + 1,
        "one refresh on the miss"
    );
}
