//! Shared by the example tests: moto's server, and keyshift's real executor run in
//! process against it, so labels move exactly as the rotation function moves them
//! (AWSPENDING, then AWSCURRENT with ROTATING on the old version, then ROTATING off),
//! with T-second gaps.

#![allow(dead_code)] // each test binary uses part of this module

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_secretsmanager::Client as Sdk;
use aws_sdk_secretsmanager::types::RotationRulesType;
use keyshift::event::ScheduleName;
use keyshift::ports::{Clock, Job, Scheduled, Scheduler, SchedulerError, Target};
use keyshift::{Executor, Invocation, Policy};
use keyshift_client::{Client, Config, SdkSource};
use keyshift_keys::KeyKind;
use keyshift_lambda::clock::SystemClock;
use keyshift_lambda::kinds::{KindName, ValueKind};
use keyshift_lambda::secrets::{CreatedDates, SdkSecretStore};
use keyshift_lambda::target::StockTarget;
use keyshift_local::local::uuid_v4;
use keyshift_local::moto::Moto;
use serde_json::json;

/// T for the tests: short, so a whole rotation takes a few seconds.
pub const GAP: Duration = Duration::from_secs(2);

/// moto's server and a client for the operator's calls.
pub struct Aws {
    /// Kept for its drop.
    pub moto: Moto,
    /// The SDK configuration the services under test use.
    pub config: aws_config::SdkConfig,
    /// For setup and label checks.
    pub sm: Sdk,
}

impl Aws {
    /// Starts moto (fails the test if it cannot).
    pub async fn start() -> Aws {
        let moto = Moto::start().unwrap_or_else(|e| panic!("moto: {e}"));
        let config = moto.sdk_config().await;
        let sm = Sdk::new(&config);
        Aws { moto, config, sm }
    }

    /// Creates secret `name` with `value`; returns (ARN, version id).
    pub async fn create(&self, name: &str, value: &str) -> (String, String) {
        let out = self
            .sm
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateSecret: {e:?}"));
        (
            out.arn().unwrap_or_default().to_owned(),
            out.version_id().unwrap_or_default().to_owned(),
        )
    }

    /// Labels by version id.
    pub async fn labels(&self, secret: &str) -> BTreeMap<String, Vec<String>> {
        let out = self
            .sm
            .describe_secret()
            .secret_id(secret)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeSecret: {e:?}"));
        out.version_ids_to_stages()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect()
    }

    /// Writes `value` as a new AWSCURRENT version at once (an emergency rotation by
    /// hand, with no gap); returns its version id.
    pub async fn put_current(&self, secret: &str, value: &str) -> String {
        let out = self
            .sm
            .put_secret_value()
            .secret_id(secret)
            .secret_string(value)
            .version_stages("AWSCURRENT")
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutSecretValue: {e:?}"));
        out.version_id().unwrap_or_default().to_owned()
    }

    /// The version carrying `stage`.
    pub async fn holder(&self, secret: &str, stage: &str) -> Option<String> {
        self.labels(secret)
            .await
            .into_iter()
            .find(|(_, stages)| stages.iter().any(|s| s == stage))
            .map(|(id, _)| id)
    }
}

/// The stock rotation function's target, generating `kind` for secrets without a
/// `keyshift:kind` tag (as the function does with its default kind configured).
pub fn stock(aws: &Aws, kind: KeyKind) -> StockTarget {
    StockTarget::new(aws.sm.clone(), KindName::Value(ValueKind::Key(kind)), 48)
}

/// A fresh value of `kind`, as the stock function stores it.
pub fn value(kind: KeyKind) -> String {
    keyshift_keys::generate(kind).unwrap_or_else(|e| panic!("generate {}: {e}", kind.name()))
}

/// The consumers' configuration: T as the rotation's, refreshes well inside it, and a
/// short miss interval so a lookup right after a refresh may fetch.
pub fn client_config() -> Config {
    Config::builder(GAP)
        .read_lag(Duration::from_millis(100))
        .refresh(Duration::from_millis(300), Duration::from_millis(600))
        .miss_interval(MISS_INTERVAL)
        .build()
        .unwrap_or_else(|e| panic!("client config: {e}"))
}

/// The consumers' miss interval.
pub const MISS_INTERVAL: Duration = Duration::from_millis(20);

/// A started window cache of `secret`.
pub async fn client(aws: &Aws, secret: &str) -> Client<SdkSource> {
    client_with(aws, secret, client_config()).await
}

/// A started window cache of `secret` with `config`.
pub async fn client_with(aws: &Aws, secret: &str, config: Config) -> Client<SdkSource> {
    Client::start(SdkSource::new(aws.sm.clone(), secret), config)
        .await
        .unwrap_or_else(|e| panic!("keyshift-client start: {e}"))
}

/// Refreshes `client` now (its refresher would within 600 ms; the tests do not wait).
pub async fn refresh(client: &Client<SdkSource>) {
    client
        .cache()
        .refresh(client.source(), keyshift_client::SystemClock::new().now())
        .await
        .unwrap_or_else(|e| panic!("refresh: {e}"));
}

/// The scheduler, in process: jobs are kept and fired by [`Rotation::remove`].
#[derive(Debug, Clone, Default)]
pub struct Jobs(Arc<Mutex<Vec<Job>>>);

impl Jobs {
    /// Takes the job due first.
    fn next(&self) -> Option<Job> {
        let mut jobs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let first = (0..jobs.len()).min_by_key(|&i| jobs[i].fire_at)?;
        Some(jobs.remove(first))
    }
}

impl Scheduler for Jobs {
    async fn schedule(&self, job: &Job) -> Result<Scheduled, SchedulerError> {
        let mut jobs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if jobs.iter().any(|j| j.name == job.name) {
            return Ok(Scheduled::AlreadyScheduled);
        }
        jobs.push(job.clone());
        Ok(Scheduled::Created)
    }

    async fn complete(&self, _name: &ScheduleName) -> Result<(), SchedulerError> {
        Ok(())
    }
}

/// One keyshift rotation of one secret, step by step.
pub struct Rotation<T> {
    executor: Executor<SdkSecretStore, Jobs, SystemClock, T>,
    jobs: Jobs,
    sm: Sdk,
    arn: String,
    token: String,
    rotation_token: String,
}

impl<T: Target> Rotation<T> {
    /// The engine's first moves: RotateSecret leaves the value-less AWSPENDING
    /// placeholder (moto cannot invoke the function, so the call itself fails), then
    /// createSecret writes the target's new value as AWSPENDING.
    pub async fn start(aws: &Aws, arn: &str, target: T) -> Rotation<T> {
        // No inline budget: every wait becomes a follow-up the test fires, so the test
        // can look at the window between the swap and the removal.
        let policy = Policy::with_precision(GAP, Duration::ZERO, Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("policy: {e}"));
        let jobs = Jobs::default();
        let store = SdkSecretStore::new(aws.sm.clone(), CreatedDates::ListVersions);
        let rotation = Rotation {
            executor: Executor::new(store, jobs.clone(), SystemClock, target, policy),
            jobs,
            sm: aws.sm.clone(),
            arn: arn.to_owned(),
            token: uuid_v4(),
            rotation_token: format!("{}-{}", uuid_v4(), uuid_v4()),
        };
        let _moto_cannot_invoke = rotation
            .sm
            .rotate_secret()
            .secret_id(arn)
            .client_request_token(&rotation.token)
            .rotation_lambda_arn("arn:aws:lambda:us-east-1:123456789012:function:keyshift-rotation")
            .rotation_rules(RotationRulesType::builder().automatically_after_days(30).build())
            .send()
            .await;
        rotation.step("createSecret").await;
        rotation
    }

    /// setSecret, testSecret and finishSecret, then the follow-ups it scheduled until
    /// the swap: AWSCURRENT on the new value (T after it became AWSPENDING), ROTATING
    /// and AWSPREVIOUS on the old one.
    pub async fn swap(&self, aws: &Aws) {
        let old = aws.holder(&self.arn, "AWSCURRENT").await;
        for step in ["setSecret", "testSecret", "finishSecret"] {
            self.step(step).await;
        }
        while aws.holder(&self.arn, "AWSCURRENT").await == old {
            self.fire_next().await;
        }
    }

    /// The follow-ups until the old version has lost ROTATING (T after the swap) and
    /// so left the window.
    pub async fn remove(&self, aws: &Aws) {
        while aws.holder(&self.arn, "ROTATING").await.is_some() {
            self.fire_next().await;
        }
    }

    /// Fires the follow-up due first, at its time.
    async fn fire_next(&self) {
        let job = self
            .jobs
            .next()
            .unwrap_or_else(|| panic!("the rotation stalled with nothing scheduled"));
        SystemClock.sleep_until(job.fire_at).await;
        self.executor
            .handle(&job.invocation)
            .await
            .unwrap_or_else(|e| panic!("follow-up {}: {e}", job.invocation.step.name()));
    }

    async fn step(&self, step: &str) {
        let event = json!({
            "Step": step,
            "SecretId": self.arn,
            "ClientRequestToken": self.token,
            "RotationToken": self.rotation_token,
        });
        let invocation = Invocation::from_value(&event).unwrap_or_else(|e| panic!("{step} event: {e}"));
        self.executor
            .handle(&invocation)
            .await
            .unwrap_or_else(|e| panic!("{step}: {e}"));
    }
}
