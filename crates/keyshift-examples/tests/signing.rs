//! The token service against moto's server through the real SDK, while keyshift's
//! executor rotates its signing key with the stock target: tokens signed before the
//! rotation verify for as long as their key is in the window, new tokens carry the new
//! key's version id, and altered tokens fail with a clear error.

mod support;

use std::time::Duration;

use keyshift_client::{Config, SdkSource, SecretValue, Version, VersionId};
use keyshift_examples::jwt::{self, VerifyError};
use keyshift_examples::token_service::{TokenError, TokenPolicy, TokenService};
use keyshift_keys::KeyKind;
use serde_json::{Map, Value, json};
use support::{Aws, Rotation, client, client_with, refresh, stock, value};

type Service = TokenService<keyshift_client::Client<SdkSource>>;

fn policy() -> TokenPolicy {
    TokenPolicy::new("https://auth.example", "orders-api")
}

fn kids(service: &Service) -> Vec<String> {
    let jwks = service.keys().jwks().expect("jwks");
    jwks.kids().map(str::to_owned).collect()
}

fn claims(sub: &str) -> Map<String, Value> {
    Map::from_iter([("sub".to_owned(), Value::from(sub))])
}

fn kid(token: &str) -> String {
    jwt::kid(token).expect("a kid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_verify_through_a_rotation_while_their_key_is_in_the_window() {
    let aws = Aws::start().await;
    let (arn, v1) = aws.create("examples/signing", &value(KeyKind::EcdsaP256)).await;
    let service = TokenService::new(client(&aws, &arn).await, policy());

    let before = service.issue(claims("alice")).expect("issue").token;
    assert_eq!(kid(&before), v1, "kid = version id");
    let verified = service.verify(&before).await.expect("verify");
    assert_eq!(verified.claims["sub"], "alice");
    assert_eq!(format!("{:?}", verified.alg), "ES256");

    // createSecret: a new key is published as AWSPENDING; signing stays on the old one.
    let rotation = Rotation::start(&aws, &arn, stock(&aws, KeyKind::EcdsaP256)).await;
    refresh(service.keys()).await;
    let pending = aws.holder(&arn, "AWSPENDING").await.expect("AWSPENDING");
    assert_eq!(
        kids(&service),
        vec![v1.clone(), pending.clone()],
        "JWKS = current, then pending"
    );
    let during = service.issue(claims("bob")).expect("issue").token;
    assert_eq!(kid(&during), v1);

    // The swap: new tokens carry the new key's id; the old key is ROTATING and accepted.
    rotation.swap(&aws).await;
    refresh(service.keys()).await;
    let v2 = aws.holder(&arn, "AWSCURRENT").await.expect("AWSCURRENT");
    assert_ne!(v2, v1);
    let after = service.issue(claims("carol")).expect("issue").token;
    assert_eq!(kid(&after), v2);
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
    let mut payload: Value = {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("JSON")
    };
    payload["sub"] = json!("root");
    let forged_claims = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string())
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
    let (arn, _) = aws
        .create("examples/signing-miss", &value(KeyKind::Ed25519))
        .await;
    // A verifier whose next scheduled refresh is at least 1.5 s away.
    let slow = Config::builder(support::GAP)
        .read_lag(Duration::from_millis(100))
        .refresh(Duration::from_millis(1500), Duration::from_millis(1800))
        .miss_interval(support::MISS_INTERVAL)
        .build()
        .expect("config");
    let verifier = TokenService::new(client_with(&aws, &arn, slow).await, policy());
    refresh(verifier.keys()).await;

    // An emergency rotation by hand: a new key becomes AWSCURRENT at once, and another
    // instance signs with it before this verifier's next refresh. The unknown kid
    // triggers one refresh instead of a refusal.
    let k2 = value(KeyKind::Ed25519);
    let v2 = aws.put_current(&arn, &k2).await;
    let signer = Version::new(VersionId::new(v2.as_str()), ["AWSCURRENT"], SecretValue::new(k2))
        .signing_key()
        .expect("a key pair");
    let exp = jsonwebtoken::get_current_timestamp() + 300;
    let token = jwt::sign(
        &signer,
        &json!({"sub": "dave", "iss": "https://auth.example", "aud": "orders-api", "exp": exp}),
    )
    .expect("signed");
    tokio::time::sleep(support::MISS_INTERVAL).await;
    let misses = verifier.keys().stats().miss_refreshes;
    let verified = verifier.verify(&token).await.expect("verify");
    assert_eq!(
        (verified.kid.as_str(), &verified.claims["sub"]),
        (v2.as_str(), &json!("dave"))
    );
    assert_eq!(
        verifier.keys().stats().miss_refreshes,
        misses + 1,
        "one refresh on the miss"
    );
}
