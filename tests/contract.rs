//! Contract suite: the same checks run against keyshift's in-memory Secrets Manager
//! ([`MemorySecretsManager`]) and against moto's server through the real SDK adapters
//! ([`SdkSecretStore`], [`EventBridgeScheduler`]), and the simulation's scheduler fake
//! ([`SimScheduler`]) against EventBridge Scheduler on moto. What passes on both is
//! behaviour the simulation may rely on.
//!
//! Where moto is laxer than AWS (README, "Tests against the emulator"), the check
//! asserts AWS's documented behaviour for the in-memory model and moto's actual
//! behaviour for moto, and says so in its message: the model follows AWS, not moto. If
//! moto ever starts behaving like AWS, those assertions fail and the difference can be
//! dropped.
//!
//! Each backend runs every check on a fresh secret and reports all failing checks by
//! name. The moto tests start their own server and fail (never skip) when it cannot run.

mod support;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindowMode};
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::types::RotationRulesType;
use keyshift::event::Invocation;
use keyshift::memory::MemorySecretsManager;
use keyshift::ports::{
    Detail, Job, LabelMove, Scheduled, Scheduler, SecretStore, StoreError, StoreErrorKind,
};
use keyshift::secret::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, ROTATING};
use keyshift::{SecretId, SecretState, SecretValue, Timestamp, VersionId};
use keyshift_lambda::scheduler::{Delivery, EventBridgeScheduler, at_expression};
use keyshift_lambda::secrets::{CreatedDates, SdkSecretStore};
use keyshift_sim::ports::SimScheduler;
use support::Moto;

/// Longest a single check may take before it counts as failed (moto answers in ms).
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// A check's verdict: `Err` says what was wrong.
type Verdict = Result<(), String>;

/// Fails the check with a message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Whose rules a backend follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// AWS's documented rules (the in-memory model).
    Aws,
    /// moto's server, with its known differences from AWS.
    Moto,
}

/// A unique suffix for secret names and version ids within this test binary.
fn unique() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A fresh UUID-shaped version id (36 characters, within Secrets Manager's 32 to 64).
fn version() -> VersionId {
    VersionId::new(format!(
        "c0de{:04x}-0000-4000-8000-{:012x}",
        std::process::id() & 0xffff,
        unique()
    ))
}

/// A fresh secret name for `check`.
fn secret_name(check: &str) -> SecretId {
    SecretId::new(format!("keyshift-contract/{check}-{}", unique()))
}

fn value(text: &str) -> SecretValue {
    SecretValue::new(text)
}

/// Adds context to a store result.
trait Context<T> {
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T> Context<T> for Result<T, StoreError> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what} failed: {e}"))
    }
}

/// The versions carrying `stage`, in id order.
fn holders<'a>(state: &'a SecretState, stage: &str) -> Vec<&'a VersionId> {
    state
        .versions
        .iter()
        .filter(|(_, v)| v.has(stage))
        .map(|(id, _)| id)
        .collect()
}

/// The labels of version `id` as text, for messages (`<absent>` if not listed).
fn labels(state: &SecretState, id: &VersionId) -> String {
    match state.version(id) {
        Some(v) => format!("{:?}", v.stages),
        None => "<absent>".to_owned(),
    }
}

/// What a store backend must offer the checks besides the [`SecretStore`] port: the
/// operator's and the rotation engine's hands.
trait Backend {
    /// The store the checks exercise.
    type Store: SecretStore;

    /// For messages.
    const NAME: &'static str;

    /// Whose rules it follows.
    const RULES: Rules;

    /// The store.
    fn store(&self) -> &Self::Store;

    /// CreateSecret: version `first` with `initial`, labelled AWSCURRENT; rotation off.
    fn create_secret(
        &self,
        secret: &SecretId,
        first: &VersionId,
        initial: &SecretValue,
    ) -> impl Future<Output = Result<(), String>>;

    /// RotateSecret as far as the engine goes before createSecret: rotation enabled and a
    /// value-less AWSPENDING placeholder whose id is `token`.
    fn start_rotation(
        &self,
        secret: &SecretId,
        token: &VersionId,
    ) -> impl Future<Output = Result<(), String>>;

    /// Lets `d` pass on the backend's clock.
    fn wait(&self, d: Duration) -> impl Future<Output = ()> {
        tokio::time::sleep(d)
    }
}

/// The in-memory model, on a clock that advances one second per reading.
struct MemoryBackend {
    manager: Arc<MemorySecretsManager>,
}

impl MemoryBackend {
    fn new() -> Self {
        let start = Timestamp::parse_rfc3339("2026-01-01T00:00:00.000Z").expect("a timestamp");
        let tick = Arc::new(AtomicI64::new(0));
        let manager = MemorySecretsManager::new(move || {
            let n = tick.fetch_add(1, Ordering::Relaxed);
            start.plus(Duration::from_secs(n.unsigned_abs()))
        });
        MemoryBackend {
            manager: Arc::new(manager),
        }
    }
}

impl Backend for MemoryBackend {
    type Store = Arc<MemorySecretsManager>;
    const NAME: &'static str = "memory model";
    const RULES: Rules = Rules::Aws;

    async fn wait(&self, _d: Duration) {
        // Its clock moves a second at every reading.
    }

    fn store(&self) -> &Self::Store {
        &self.manager
    }

    async fn create_secret(&self, secret: &SecretId, first: &VersionId, initial: &SecretValue) -> Verdict {
        self.manager
            .create_secret(secret, first, initial.clone())
            .ctx("create_secret")
    }

    async fn start_rotation(&self, secret: &SecretId, token: &VersionId) -> Verdict {
        self.manager
            .set_rotation_enabled(secret, true)
            .ctx("set_rotation_enabled")?;
        self.manager.begin_rotation(secret, token).ctx("begin_rotation")
    }
}

/// moto's server through the SDK adapter.
struct MotoBackend {
    client: aws_sdk_secretsmanager::Client,
    store: SdkSecretStore,
    // Last: the server outlives the clients' use of it.
    _moto: Moto,
}

/// A Lambda ARN that names no function: RotateSecret then stops after the placeholder.
const MISSING_LAMBDA: &str = "arn:aws:lambda:us-east-1:123456789012:function:keyshift-contract-missing";

impl MotoBackend {
    async fn start() -> Self {
        let moto = support::moto();
        let config = moto.sdk_config().await;
        let client = aws_sdk_secretsmanager::Client::new(&config);
        // Dates from ListSecretVersionIds, as against AWS (moto is launched with that
        // answer made AWS's: crates/keyshift-local/emulator/moto_server.py).
        let store = SdkSecretStore::new(client.clone(), CreatedDates::ListVersions);
        MotoBackend {
            client,
            store,
            _moto: moto,
        }
    }
}

impl Backend for MotoBackend {
    type Store = SdkSecretStore;
    const NAME: &'static str = "moto";
    const RULES: Rules = Rules::Moto;

    fn store(&self) -> &Self::Store {
        &self.store
    }

    async fn create_secret(&self, secret: &SecretId, first: &VersionId, initial: &SecretValue) -> Verdict {
        self.client
            .create_secret()
            .name(secret.as_str())
            .client_request_token(first.as_str())
            .secret_string(initial.expose())
            .send()
            .await
            .map_err(|e| format!("CreateSecret failed: {:?}: {:?}", e.code(), e.message()))?;
        Ok(())
    }

    async fn start_rotation(&self, secret: &SecretId, token: &VersionId) -> Verdict {
        let rules = RotationRulesType::builder().automatically_after_days(30).build();
        let out = self
            .client
            .rotate_secret()
            .secret_id(secret.as_str())
            .client_request_token(token.as_str())
            .rotation_lambda_arn(MISSING_LAMBDA)
            .rotation_rules(rules)
            .send()
            .await;
        match out {
            // moto cannot invoke the missing function: it fails after making the placeholder.
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "RotateSecret failed unexpectedly: {:?}: {:?}",
                e.code(),
                e.message()
            )),
        }
    }
}

/// Creates a secret for `check` with a first version; returns both ids.
async fn fresh<B: Backend>(b: &B, check: &str) -> Result<(SecretId, VersionId), String> {
    let secret = secret_name(check);
    let first = version();
    b.create_secret(&secret, &first, &value("initial-value")).await?;
    Ok((secret, first))
}

// ---------------------------------------------------------------------------------------
// The store checks
// ---------------------------------------------------------------------------------------

/// 1. After CreateSecret: one version, AWSCURRENT, with a creation time; rotation off.
async fn describe_after_create<B: Backend>(b: &B) -> Verdict {
    let (secret, first) = fresh(b, "describe").await?;
    let state = b.store().describe(&secret, Detail::Full).await.ctx("describe")?;
    ensure!(
        state.versions.len() == 1,
        "expected exactly one version, got {:?}",
        state.versions
    );
    let v = state
        .version(&first)
        .ok_or_else(|| format!("the first version {first} is not listed: {:?}", state.versions))?;
    ensure!(
        v.stages.len() == 1 && v.has(AWSCURRENT),
        "the first version should carry exactly AWSCURRENT, has {:?}",
        v.stages
    );
    ensure!(v.created.is_some(), "the first version has no creation time");
    ensure!(
        !state.rotation_enabled,
        "rotation_enabled should be false for a secret rotation was never configured on"
    );
    let value = b
        .store()
        .get_value(&secret, &first)
        .await
        .ctx("get_value(first)")?;
    ensure!(
        value.as_ref().map(SecretValue::expose) == Some("initial-value"),
        "the first version's value was not read back"
    );
    Ok(())
}

/// 2. After the engine starts a rotation: a value-less AWSPENDING placeholder.
async fn placeholder_after_rotation_start<B: Backend>(b: &B) -> Verdict {
    let (secret, first) = fresh(b, "placeholder").await?;
    let token = version();
    b.start_rotation(&secret, &token).await?;
    let state = b.store().describe(&secret, Detail::Full).await.ctx("describe")?;
    ensure!(
        state.rotation_enabled,
        "rotation_enabled should be true once rotation is configured"
    );
    let p = state
        .version(&token)
        .ok_or_else(|| format!("the token's version {token} is not listed: {:?}", state.versions))?;
    ensure!(
        p.has(AWSPENDING),
        "the placeholder should carry AWSPENDING, has {:?}",
        p.stages
    );
    ensure!(
        p.created.is_none(),
        "the placeholder has no value, so no creation time; got {:?}",
        p.created
    );
    ensure!(
        holders(&state, AWSPENDING) == vec![&token],
        "AWSPENDING should sit on the placeholder only: {:?}",
        state.versions
    );
    ensure!(
        state.current() == Some(&first),
        "AWSCURRENT should stay on the first version: {:?}",
        state.versions
    );
    let read = b
        .store()
        .get_value(&secret, &token)
        .await
        .ctx("get_value(placeholder)")?;
    ensure!(
        read.is_none(),
        "get_value of the placeholder should be Ok(None), got a value"
    );
    Ok(())
}

/// 3. put_pending fills the placeholder; the same token and value again is a no-op.
async fn put_pending_fills_and_repeats<B: Backend>(b: &B) -> Verdict {
    let (secret, _) = fresh(b, "fill").await?;
    let token = version();
    b.start_rotation(&secret, &token).await?;
    let new = value("pending-value");
    b.store()
        .put_pending(&secret, &token, &new, None)
        .await
        .ctx("put_pending(token)")?;
    let read = b
        .store()
        .get_value(&secret, &token)
        .await
        .ctx("get_value(token)")?;
    ensure!(
        read.as_ref() == Some(&new),
        "the filled version should read back its value"
    );
    let before = b.store().describe(&secret, Detail::Full).await.ctx("describe")?;
    let v = before
        .version(&token)
        .ok_or_else(|| format!("the token's version {token} is not listed"))?;
    ensure!(
        v.created.is_some(),
        "the filled version should have a creation time"
    );
    ensure!(
        v.has(AWSPENDING),
        "the filled version should carry AWSPENDING, has {:?}",
        v.stages
    );

    b.store()
        .put_pending(&secret, &token, &new, None)
        .await
        .ctx("put_pending(token) again with the same value")?;
    let after = b
        .store()
        .describe(&secret, Detail::Full)
        .await
        .ctx("describe after the repeat")?;
    ensure!(
        after == before,
        "the same token and value again should change nothing:\nbefore {before:?}\nafter  {after:?}"
    );
    let read = b
        .store()
        .get_value(&secret, &token)
        .await
        .ctx("get_value after the repeat")?;
    ensure!(
        read.as_ref() == Some(&new),
        "the value changed after a repeat with the same value"
    );
    Ok(())
}

/// 4. The same token with a different value.
async fn same_token_other_value<B: Backend>(b: &B) -> Verdict {
    let (secret, _) = fresh(b, "conflict").await?;
    let token = version();
    b.start_rotation(&secret, &token).await?;
    let first = value("pending-value");
    let other = value("other-value");
    b.store()
        .put_pending(&secret, &token, &first, None)
        .await
        .ctx("put_pending(token)")?;
    let again = b.store().put_pending(&secret, &token, &other, None).await;
    let read = b
        .store()
        .get_value(&secret, &token)
        .await
        .ctx("get_value(token)")?;
    match B::RULES {
        Rules::Aws => {
            ensure!(
                again.as_ref().err().map(|e| e.kind) == Some(StoreErrorKind::AlreadyExists),
                "AWS refuses another value under a used token with ResourceExistsException; got {again:?}"
            );
            ensure!(
                read.as_ref() == Some(&first),
                "a refused put must not change the value"
            );
        }
        Rules::Moto => {
            // moto difference: it overwrites the version's value instead of failing with
            // ResourceExistsException. The model follows AWS.
            ensure!(
                again.is_ok() && read.as_ref() == Some(&other),
                "moto was known to overwrite a version's value on the same token with another value \
                 (AWS: ResourceExistsException; the model follows AWS); now: put {again:?}, \
                 value overwritten: {}",
                read.as_ref() == Some(&other)
            );
        }
    }
    Ok(())
}

/// 5. Moving AWSCURRENT with RemoveFromVersionId sends AWSPREVIOUS to the old version.
async fn current_move_drags_previous<B: Backend>(b: &B) -> Verdict {
    let (secret, first) = fresh(b, "swap").await?;
    let token = version();
    b.start_rotation(&secret, &token).await?;
    b.store()
        .put_pending(&secret, &token, &value("pending-value"), None)
        .await
        .ctx("put_pending(token)")?;
    let swap = LabelMove {
        stage: AWSCURRENT.into(),
        move_to: Some(token.clone()),
        remove_from: Some(first.clone()),
    };
    b.store()
        .update_stage(&secret, &swap)
        .await
        .ctx("move AWSCURRENT")?;
    let state = b.store().describe(&secret, Detail::Full).await.ctx("describe")?;
    ensure!(
        holders(&state, AWSCURRENT) == vec![&token],
        "AWSCURRENT should sit on the new version only: {:?}",
        state.versions
    );
    ensure!(
        holders(&state, AWSPREVIOUS) == vec![&first],
        "AWSPREVIOUS should have moved to the old version by itself: {:?}",
        state.versions
    );
    ensure!(
        !state.has(&first, AWSCURRENT),
        "the old version still carries AWSCURRENT: {}",
        labels(&state, &first)
    );
    Ok(())
}

/// 6. A custom label (ROTATING): add, move with RemoveFromVersionId, move without it.
async fn custom_label_move_needs_remove_from<B: Backend>(b: &B) -> Verdict {
    let (secret, first) = fresh(b, "rotating").await?;
    let second = version();
    b.store()
        .put_pending(&secret, &second, &value("second-value"), None)
        .await
        .ctx("put_pending(second)")?;
    let add = LabelMove {
        stage: ROTATING.into(),
        move_to: Some(first.clone()),
        remove_from: None,
    };
    b.store()
        .update_stage(&secret, &add)
        .await
        .ctx("add ROTATING to the first version")?;
    let moved = LabelMove {
        stage: ROTATING.into(),
        move_to: Some(second.clone()),
        remove_from: Some(first.clone()),
    };
    b.store()
        .update_stage(&secret, &moved)
        .await
        .ctx("move ROTATING with RemoveFromVersionId")?;
    let state = b
        .store()
        .describe(&secret, Detail::Full)
        .await
        .ctx("describe after the move")?;
    ensure!(
        holders(&state, ROTATING) == vec![&second],
        "after a move with RemoveFromVersionId ROTATING should sit on the second version only: {:?}",
        state.versions
    );

    let back = LabelMove {
        stage: ROTATING.into(),
        move_to: Some(first.clone()),
        remove_from: None,
    };
    let out = b.store().update_stage(&secret, &back).await;
    let state = b
        .store()
        .describe(&secret, Detail::Full)
        .await
        .ctx("describe after the bare move")?;
    let now = holders(&state, ROTATING);
    match B::RULES {
        Rules::Aws => {
            ensure!(
                out.as_ref().err().map(|e| e.kind) == Some(StoreErrorKind::InvalidParameter),
                "AWS refuses to move a label that sits on another version without RemoveFromVersionId \
                 (InvalidParameterException); got {out:?}"
            );
            ensure!(
                now == vec![&second],
                "a refused move must leave ROTATING where it was: {:?}",
                state.versions
            );
        }
        Rules::Moto => {
            // moto difference: it attaches the label and leaves it on the other version too.
            // AWS fails with InvalidParameterException; the model follows AWS.
            ensure!(
                out.is_ok() && now.len() == 2,
                "moto was known to accept the move without RemoveFromVersionId and leave ROTATING on two \
                 versions (AWS: InvalidParameterException; the model follows AWS); now: {out:?}, holders {now:?}"
            );
        }
    }
    Ok(())
}

/// 7. put_pending under a new id takes AWSPENDING off its old holder.
async fn put_pending_moves_pending<B: Backend>(b: &B) -> Verdict {
    let (secret, _) = fresh(b, "repend").await?;
    let token = version();
    b.start_rotation(&secret, &token).await?;
    b.store()
        .put_pending(&secret, &token, &value("pending-value"), None)
        .await
        .ctx("put_pending(token)")?;
    let next = version();
    b.store()
        .put_pending(&secret, &next, &value("next-value"), None)
        .await
        .ctx("put_pending(new id)")?;
    let state = b.store().describe(&secret, Detail::Full).await.ctx("describe")?;
    ensure!(
        holders(&state, AWSPENDING) == vec![&next],
        "exactly one AWSPENDING holder, the new version, expected: {:?}",
        state.versions
    );
    let old = state
        .version(&token)
        .ok_or_else(|| format!("the old pending version {token} is no longer listed"))?;
    ensure!(
        old.created.is_some(),
        "the old pending version lost its creation time"
    );
    Ok(())
}

/// 8. A version without labels is deprecated but still listed, with its creation time.
async fn labelless_version_stays_listed<B: Backend>(b: &B) -> Verdict {
    let (secret, _) = fresh(b, "deprecated").await?;
    let other = version();
    let other_value = value("other-value");
    b.store()
        .put_pending(&secret, &other, &other_value, None)
        .await
        .ctx("put_pending(other)")?;
    let strip = LabelMove {
        stage: AWSPENDING.into(),
        move_to: None,
        remove_from: Some(other.clone()),
    };
    b.store()
        .update_stage(&secret, &strip)
        .await
        .ctx("remove AWSPENDING")?;
    let state = b.store().describe(&secret, Detail::Full).await.ctx("describe")?;
    let v = state.version(&other).ok_or_else(|| {
        format!(
            "the label-less version {other} is not listed: {:?}",
            state.versions
        )
    })?;
    ensure!(
        v.stages.is_empty(),
        "the version should have no labels left, has {:?}",
        v.stages
    );
    ensure!(
        v.created.is_some(),
        "a deprecated version keeps its creation time"
    );
    ensure!(
        holders(&state, AWSPENDING).is_empty(),
        "no version should carry AWSPENDING: {:?}",
        state.versions
    );
    let read = b
        .store()
        .get_value(&secret, &other)
        .await
        .ctx("get_value(deprecated)")?;
    ensure!(
        read.as_ref() == Some(&other_value),
        "a deprecated version's value stays readable"
    );
    Ok(())
}

/// 8b. With labels only (DescribeSecret's `VersionIdsToStages`, one call), a version
/// without labels is not listed, every labelled one is, with its labels; no dates.
async fn labels_detail_lists_labelled_versions<B: Backend>(b: &B) -> Verdict {
    let (secret, first) = fresh(b, "labels").await?;
    let other = version();
    b.store()
        .put_pending(&secret, &other, &value("other-value"), None)
        .await
        .ctx("put_pending(other)")?;
    let gone = version();
    b.store()
        .put_pending(&secret, &gone, &value("gone-value"), None)
        .await
        .ctx("put_pending(gone)")?;
    let strip = LabelMove {
        stage: AWSPENDING.into(),
        move_to: None,
        remove_from: Some(gone.clone()),
    };
    b.store().update_stage(&secret, &strip).await.ctx("strip")?;
    let add = LabelMove {
        stage: ROTATING.into(),
        move_to: Some(other.clone()),
        remove_from: None,
    };
    b.store().update_stage(&secret, &add).await.ctx("add ROTATING")?;
    let state = b
        .store()
        .describe(&secret, Detail::Labels)
        .await
        .ctx("describe")?;
    let listed: Vec<&VersionId> = state.versions.keys().collect();
    let mut expected = vec![&first, &other];
    expected.sort();
    ensure!(listed == expected, "listed {listed:?}, expected {expected:?}");
    ensure!(
        // `gone`'s put moved AWSPENDING off `other`, and the strip took it off `gone`.
        state.has(&first, AWSCURRENT)
            && state.has(&other, ROTATING)
            && holders(&state, AWSPENDING).is_empty(),
        "labels: {:?}",
        state.versions
    );
    Ok(())
}

/// 8c. ListSecretVersionIds gives each version its own creation date: a version written
/// later is dated later, and a date is never in the future (both backends; moto is
/// launched with this answer made AWS's).
async fn dates_are_each_versions_own<B: Backend>(b: &B) -> Verdict {
    let (secret, first) = fresh(b, "dates").await?;
    b.wait(Duration::from_millis(2_100)).await;
    let second = version();
    b.store()
        .put_pending(&secret, &second, &value("second-value"), None)
        .await
        .ctx("put_pending(second)")?;
    let state = b.store().describe(&secret, Detail::Full).await.ctx("describe")?;
    let date = |v: &VersionId| state.version(v).and_then(|i| i.created);
    let (Some(d1), Some(d2)) = (date(&first), date(&second)) else {
        return Err(format!("a version has no date: {:?}", state.versions));
    };
    ensure!(d2 > d1, "the later version is not dated later: {d1} then {d2}");
    ensure!(
        d2.millis_since(d1) >= 1_000,
        "versions written two seconds apart are dated {} ms apart",
        d2.millis_since(d1)
    );
    Ok(())
}

/// 9. Unknown secrets and versions are NotFound.
async fn unknown_is_not_found<B: Backend>(b: &B) -> Verdict {
    let missing = secret_name("missing");
    let change = LabelMove {
        stage: ROTATING.into(),
        move_to: Some(version()),
        remove_from: None,
    };
    let out = b.store().update_stage(&missing, &change).await;
    ensure!(
        out.as_ref().err().map(|e| e.kind) == Some(StoreErrorKind::NotFound),
        "update_stage on an unknown secret should be NotFound, got {out:?}"
    );
    let out = b.store().describe(&missing, Detail::Full).await;
    ensure!(
        out.as_ref().err().map(|e| e.kind) == Some(StoreErrorKind::NotFound),
        "describe of an unknown secret should be NotFound, got {out:?}"
    );
    let (secret, _) = fresh(b, "unknown-version").await?;
    let out = b.store().get_value(&secret, &version()).await;
    ensure!(
        out.as_ref().err().map(|e| e.kind) == Some(StoreErrorKind::NotFound),
        "get_value of an unknown version should be NotFound, got {out:?}"
    );
    Ok(())
}

/// 10 (store side). AWSCURRENT cannot be removed outright, only moved.
async fn current_cannot_be_removed<B: Backend>(b: &B) -> Verdict {
    let (secret, first) = fresh(b, "keep-current").await?;
    let strip = LabelMove {
        stage: AWSCURRENT.into(),
        move_to: None,
        remove_from: Some(first.clone()),
    };
    let out = b.store().update_stage(&secret, &strip).await;
    let state = b.store().describe(&secret, Detail::Full).await.ctx("describe")?;
    match B::RULES {
        Rules::Aws => {
            ensure!(
                out.as_ref().err().map(|e| e.kind) == Some(StoreErrorKind::InvalidParameter),
                "removing AWSCURRENT without moving it should be InvalidParameter, got {out:?}"
            );
            ensure!(
                state.current() == Some(&first),
                "AWSCURRENT must stay: {:?}",
                state.versions
            );
        }
        Rules::Moto => {
            // moto difference: it removes AWSCURRENT, leaving the secret without a current
            // version. AWS refuses; the model follows AWS.
            ensure!(
                out.is_ok() && state.current().is_none(),
                "moto was known to let AWSCURRENT be removed outright (AWS refuses; the model follows AWS); \
                 now: {out:?}, versions {:?}",
                state.versions
            );
        }
    }
    Ok(())
}

/// Runs `check` with a time limit, recording a failure under `name`.
async fn run(failures: &mut Vec<String>, name: &str, check: impl Future<Output = Verdict>) {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(())) => {}
        Ok(Err(why)) => failures.push(format!("[{name}] {why}")),
        Err(_) => failures.push(format!("[{name}] timed out after {CHECK_TIMEOUT:?}")),
    }
}

fn report(backend: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{backend}: {} contract check(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every store check against one backend.
async fn store_contract<B: Backend>(b: &B) {
    let mut failures = Vec::new();
    run(&mut failures, "1 describe after create", describe_after_create(b)).await;
    run(
        &mut failures,
        "2 placeholder after rotation start",
        placeholder_after_rotation_start(b),
    )
    .await;
    run(
        &mut failures,
        "3 put_pending fills, same value repeats",
        put_pending_fills_and_repeats(b),
    )
    .await;
    run(
        &mut failures,
        "4 same token, other value",
        same_token_other_value(b),
    )
    .await;
    run(
        &mut failures,
        "5 AWSCURRENT move drags AWSPREVIOUS",
        current_move_drags_previous(b),
    )
    .await;
    run(
        &mut failures,
        "6 custom label move needs RemoveFromVersionId",
        custom_label_move_needs_remove_from(b),
    )
    .await;
    run(
        &mut failures,
        "7 put_pending moves AWSPENDING",
        put_pending_moves_pending(b),
    )
    .await;
    run(
        &mut failures,
        "8 label-less version stays listed",
        labelless_version_stays_listed(b),
    )
    .await;
    run(
        &mut failures,
        "8b labels detail lists labelled versions",
        labels_detail_lists_labelled_versions(b),
    )
    .await;
    run(
        &mut failures,
        "8c each version's own date",
        dates_are_each_versions_own(b),
    )
    .await;
    run(
        &mut failures,
        "9 unknown secret/version is NotFound",
        unknown_is_not_found(b),
    )
    .await;
    run(
        &mut failures,
        "AWSCURRENT cannot be removed outright",
        current_cannot_be_removed(b),
    )
    .await;
    report(B::NAME, &failures);
}

#[tokio::test]
async fn memory_store_contract() {
    store_contract(&MemoryBackend::new()).await;
}

#[tokio::test]
async fn moto_store_contract() {
    store_contract(&MotoBackend::start().await).await;
}

/// A replicated secret on moto: the adapter reads `ReplicationStatus` and the replica's
/// labels in its own Region, and finds it caught up (moto replicates at once; the
/// in-memory store models the lag, and the property tests hold the gaps there).
#[tokio::test]
async fn moto_replicated_secret_is_read_in_every_region() {
    let b = MotoBackend::start().await;
    let config = b._moto.sdk_config().await;
    let store = SdkSecretStore::new(b.client.clone(), CreatedDates::ListVersions).with_replica_reads(config);
    let secret = secret_name("replicated");
    let first = version();
    b.client
        .create_secret()
        .name(secret.as_str())
        .client_request_token(first.as_str())
        .secret_string("initial-value")
        .add_replica_regions(
            aws_sdk_secretsmanager::types::ReplicaRegionType::builder()
                .region("eu-west-1")
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateSecret with a replica: {:?}", e.code()));
    let add = LabelMove {
        stage: ROTATING.into(),
        move_to: Some(first.clone()),
        remove_from: None,
    };
    store.update_stage(&secret, &add).await.expect("add ROTATING");
    for detail in [Detail::Labels, Detail::Full] {
        let state = store.describe(&secret, detail).await.expect("describe");
        let [replica] = state.replicas.as_slice() else {
            panic!("one replica: {:?}", state.replicas)
        };
        assert_eq!(replica.region, "eu-west-1");
        assert_eq!(replica.status, keyshift::secret::ReplicaStatus::InSync);
        assert_eq!(
            replica.stages.as_ref(),
            Some(&state.labels()),
            "the replica's labels, read there"
        );
        assert!(state.replicas_caught_up());
    }
    // An unreplicated secret reports none, and costs no extra call.
    let (plain, _) = fresh(&b, "unreplicated").await.expect("create");
    assert!(
        store
            .describe(&plain, Detail::Labels)
            .await
            .expect("describe")
            .replicas
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------
// The scheduler check
// ---------------------------------------------------------------------------------------

/// A scheduler backend: the port, and a way to look at what a created job became.
trait SchedulerBackend {
    type Port: Scheduler;
    const NAME: &'static str;
    fn port(&self) -> &Self::Port;
    /// Checks what the backend holds for `job` (just created and still pending).
    fn inspect(&self, job: &Job) -> impl Future<Output = Verdict>;
}

impl SchedulerBackend for SimScheduler {
    type Port = SimScheduler;
    const NAME: &'static str = "SimScheduler";

    fn port(&self) -> &Self::Port {
        self
    }

    async fn inspect(&self, job: &Job) -> Verdict {
        let state = self.state();
        ensure!(
            state.live.get(&job.name) == Some(job),
            "the job is not held as created: {:?}",
            state.live.get(&job.name)
        );
        Ok(())
    }
}

/// EventBridge Scheduler on moto, through the adapter, plus the raw client to inspect.
struct MotoScheduler {
    raw: aws_sdk_scheduler::Client,
    group: String,
    port: EventBridgeScheduler,
    _moto: Moto,
}

impl MotoScheduler {
    async fn start() -> Self {
        let moto = support::moto();
        let config = moto.sdk_config().await;
        let raw = aws_sdk_scheduler::Client::new(&config);
        let group = "keyshift-contract".to_owned();
        // moto answers CreateSchedule into a missing group with HTTP 500: create it first.
        raw.create_schedule_group()
            .name(&group)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateScheduleGroup failed: {:?}: {:?}", e.code(), e.message()));
        let delivery = Delivery {
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:keyshift-rotation".into(),
            role_arn: "arn:aws:iam::123456789012:role/keyshift-scheduler".into(),
            dead_letter_arn: Some("arn:aws:sqs:us-east-1:123456789012:keyshift-dead-letters".into()),
        };
        let port = EventBridgeScheduler::new(raw.clone(), group.clone(), delivery);
        MotoScheduler {
            raw,
            group,
            port,
            _moto: moto,
        }
    }
}

impl SchedulerBackend for MotoScheduler {
    type Port = EventBridgeScheduler;
    const NAME: &'static str = "EventBridge Scheduler on moto";

    fn port(&self) -> &Self::Port {
        &self.port
    }

    async fn inspect(&self, job: &Job) -> Verdict {
        let got = self
            .raw
            .get_schedule()
            .name(job.name.as_str())
            .group_name(&self.group)
            .send()
            .await
            .map_err(|e| format!("GetSchedule failed: {:?}: {:?}", e.code(), e.message()))?;
        ensure!(
            got.action_after_completion() == Some(&ActionAfterCompletion::Delete),
            "ActionAfterCompletion should be DELETE, is {:?}",
            got.action_after_completion()
        );
        ensure!(
            got.flexible_time_window().map(|w| w.mode()) == Some(&FlexibleTimeWindowMode::Off),
            "FlexibleTimeWindow should be OFF, is {:?}",
            got.flexible_time_window()
        );
        let expression = got.schedule_expression().unwrap_or_default();
        ensure!(
            expression.starts_with("at(") && expression == at_expression(job.fire_at),
            "the expression should be {}, is {expression:?}",
            at_expression(job.fire_at)
        );
        let input = got
            .target()
            .and_then(|t| t.input())
            .ok_or("the schedule's target has no Input")?;
        let parsed = Invocation::from_slice(input.as_bytes())
            .map_err(|e| format!("the target's Input does not parse as an invocation: {e}"))?;
        ensure!(
            parsed == job.invocation,
            "the target's Input parses to another invocation:\n{parsed:?}\nexpected\n{:?}",
            job.invocation
        );
        Ok(())
    }
}

/// A swapPending follow-up for `secret`, as the executor builds it.
fn swap_job(secret: &SecretId, fire_at: Timestamp) -> Job {
    support::swap_job(secret, version(), fire_at)
}

/// Schedule, duplicate, inspect; another secret's job is its own.
async fn scheduler_contract<S: SchedulerBackend>(s: &S) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970");
    let fire_at = Timestamp::from_secs(i64::try_from(now.as_secs()).expect("a sane clock"))
        .plus(Duration::from_secs(3600))
        .ceil_to(Duration::from_secs(60));
    let secret = secret_name("schedule");
    let bystander = secret_name("schedule-bystander");
    let job = swap_job(&secret, fire_at);
    let other = swap_job(&bystander, fire_at);

    let mut failures = Vec::new();
    run(&mut failures, "10 schedule, duplicate, another secret", async {
        let port = s.port();
        let first = port.schedule(&job).await.map_err(|e| format!("schedule: {e}"))?;
        ensure!(
            first == Scheduled::Created,
            "a new job should be Created, was {first:?}"
        );
        let again = port
            .schedule(&job)
            .await
            .map_err(|e| format!("schedule again: {e}"))?;
        ensure!(
            again == Scheduled::AlreadyScheduled,
            "the same job again should be AlreadyScheduled, was {again:?}"
        );
        s.inspect(&job).await?;
        let o = port
            .schedule(&other)
            .await
            .map_err(|e| format!("schedule (bystander): {e}"))?;
        ensure!(
            o == Scheduled::Created,
            "another secret's job should be Created, was {o:?}"
        );
        Ok(())
    })
    .await;
    report(S::NAME, &failures);
}

#[tokio::test]
async fn sim_scheduler_contract() {
    scheduler_contract(&SimScheduler::default()).await;
}

#[tokio::test]
async fn moto_scheduler_contract() {
    scheduler_contract(&MotoScheduler::start().await).await;
}
