//! The SDK source and the tokio client against moto's server (a local Secrets Manager):
//! a rotation's label moves seen through DescribeSecret, values fetched once by
//! VersionId, a miss that heals in one round trip, the background refresher, and the
//! error classification. Starts its own server (the shared emulator, `tests/support`)
//! from the virtualenv (`$KEYSHIFT_VENV`, else `.venv` at the workspace root; `make venv`
//! makes it) and fails, never skips, when it cannot.

mod support;

use std::time::{Duration, Instant};

use keyshift_client::aws_sdk_secretsmanager as sm;
use keyshift_client::{
    AWSCURRENT, AWSPENDING, Client, Config, LookupError, ROTATING, SdkSource, Source, SourceErrorKind,
    SystemClock, VersionId,
};

fn vid(n: u32) -> VersionId {
    VersionId::new(format!("{n:08x}-0000-4000-8000-00000000c11e"))
}

const PRIVATE: &str = "private-seed-never-published";

fn jwk(n: u32) -> String {
    format!(r#"{{"kty":"OKP","crv":"Ed25519","d":"{PRIVATE}-{n}","x":"public-{n}"}}"#)
}

async fn stage(aws: &sm::Client, secret: &str, label: &str, to: Option<u32>, from: Option<u32>) {
    aws.update_secret_version_stage()
        .secret_id(secret)
        .version_stage(label)
        .set_move_to_version_id(to.map(|n| vid(n).as_str().to_owned()))
        .set_remove_from_version_id(from.map(|n| vid(n).as_str().to_owned()))
        .send()
        .await
        .expect("UpdateSecretVersionStage");
}

fn ids(client: &Client<SdkSource>) -> Vec<VersionId> {
    client
        .accepted()
        .expect("a view")
        .iter()
        .map(|v| v.id().clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_seen_through_the_sdk() {
    let moto = support::moto();
    let aws = support::secrets_manager(&moto).await;
    let secret = "keyshift-client/signing";
    aws.create_secret()
        .name(secret)
        .client_request_token(vid(1).as_str())
        .secret_string(jwk(1))
        .send()
        .await
        .expect("CreateSecret");

    let source = SdkSource::new(aws.clone(), secret);
    let client = Client::start_with_seed(source, Config::new(Duration::from_secs(600)).unwrap(), 1)
        .await
        .expect("first refresh");
    assert_eq!(client.current().unwrap().id(), &vid(1));
    assert_eq!(client.current().unwrap().value().expose(), jwk(1));
    assert_eq!(client.stats().value_calls, 1);

    // createSecret: a pending version. A verifier meeting its kid heals in one round trip
    // (the miss interval since the first refresh has passed).
    aws.put_secret_value()
        .secret_id(secret)
        .client_request_token(vid(2).as_str())
        .secret_string(jwk(2))
        .version_stages(AWSPENDING)
        .send()
        .await
        .expect("PutSecretValue");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let pending = client
        .fetch_accepted(vid(2).as_str())
        .await
        .expect("healed by one refresh");
    assert_eq!(pending.stages(), [AWSPENDING]);
    assert_eq!(
        client.current().unwrap().id(),
        &vid(1),
        "pending is accepted, not used"
    );
    assert_eq!(ids(&client), vec![vid(1), vid(2)]);
    assert_eq!(client.stats().describe_calls, 2);
    assert_eq!(client.stats().value_calls, 2);

    // The swap, in keyshift's order, then a refresh: no value is fetched again.
    stage(&aws, secret, ROTATING, Some(1), None).await;
    stage(&aws, secret, AWSCURRENT, Some(2), Some(1)).await;
    stage(&aws, secret, AWSPENDING, None, Some(2)).await;
    let now = SystemClock::new().now();
    client.refresh(client.source(), now).await.expect("refresh");
    assert_eq!(client.current().unwrap().id(), &vid(2));
    assert_eq!(ids(&client), vec![vid(2), vid(1)]);
    assert!(client.accepted_version(vid(1).as_str()).unwrap().has(ROTATING));
    assert_eq!(
        client.stats().value_calls,
        2,
        "known versions are never fetched again"
    );
    let jwks = client.jwks().unwrap();
    assert_eq!(
        jwks.kids().collect::<Vec<_>>(),
        vec![vid(2).as_str(), vid(1).as_str()]
    );
    assert!(!jwks.as_str().contains(PRIVATE), "{}", jwks.as_str());

    // A version id the secret never had: GetSecretValue's not-found is "no value".
    let source = client.source();
    assert_eq!(source.value(&vid(99)).await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        client.fetch_version(vid(99).as_str()).await.unwrap_err(),
        LookupError::UnknownVersion
    );
    assert_eq!(
        SdkSource::new(aws.clone(), "keyshift-client/no-such-secret")
            .describe()
            .await
            .unwrap_err()
            .kind(),
        SourceErrorKind::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_refresher_follows_the_labels() {
    let moto = support::moto();
    let aws = support::secrets_manager(&moto).await;
    let secret = "keyshift-client/refresher";
    aws.create_secret()
        .name(secret)
        .client_request_token(vid(1).as_str())
        .secret_string("one")
        .send()
        .await
        .expect("CreateSecret");
    let config = Config::builder(Duration::from_secs(4))
        .refresh(Duration::from_millis(500), Duration::from_millis(1000))
        .read_lag(Duration::from_secs(1))
        .build()
        .unwrap();
    let client = Client::start(SdkSource::new(aws.clone(), secret), config)
        .await
        .unwrap();
    aws.put_secret_value()
        .secret_id(secret)
        .client_request_token(vid(2).as_str())
        .secret_string("two")
        .send()
        .await
        .expect("PutSecretValue"); // AWSCURRENT by default
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.current().unwrap().id() != &vid(2) {
        assert!(
            Instant::now() < deadline,
            "the refresher never picked up the new current"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(client.current().unwrap().value().expose(), "two");
    let stats = client.stats();
    assert!(stats.refreshes >= 2, "{stats:?}");
    assert_eq!(stats.failed_refreshes, 0, "{stats:?}");
}
