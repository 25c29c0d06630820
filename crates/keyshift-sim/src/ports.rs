//! The simulation's side of keyshift's ports: Secrets Manager (one in-memory store per
//! secret) behind a call latency and the engine's interception of writes, a scheduler
//! model that only records jobs (the world decides when they fire), and a target with
//! one downstream service per secret that keeps a set of valid credentials.
//!
//! The ports of one world share a [`SimHub`]: what the engine is doing on each secret
//! (its rotation window, and which of its undocumented behaviours apply), which secret
//! the invocation being polled is for, and what the ports saw that the world must act on
//! or hold against keyshift (abandoned rotations, refused writes, cross-talk between
//! secrets).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyshift::Timestamp;
use keyshift::event::ScheduleName;
use keyshift::memory::MemorySecretsManager;
use keyshift::ports::{
    Clock, Detail, Job, LabelMove, Scheduled, Scheduler, SchedulerError, SecretStore, StoreError,
    StoreErrorKind, Target, TargetContext, TargetError,
};
use keyshift::{SecretId, SecretState, SecretValue, VersionId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::clock::SimClock;
use crate::scenario::CopyAbandons;

/// One random stream shared by the ports of a run. Tasks are polled one at a time, so
/// the order of draws, and with it the run, is a function of the seed.
#[derive(Debug, Clone)]
pub struct SharedRng(Arc<Mutex<ChaCha8Rng>>);

impl SharedRng {
    /// A stream from `seed`.
    pub fn new(seed: u64) -> Self {
        SharedRng(Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed))))
    }

    /// Runs `f` on the generator.
    pub fn with<R>(&self, f: impl FnOnce(&mut ChaCha8Rng) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The engine's view of one secret, as the store's interception needs it.
#[derive(Debug, Clone, Default)]
pub struct EngineWatch {
    /// Behaviour (a) for this secret.
    pub copy_abandons: Option<CopyAbandons>,
    /// Behaviour (c) for this secret.
    pub validate_rotation_token: bool,
    /// The token of the engine's rotation in progress: from its RotateSecret until its
    /// finishSecret returned (or a step failed, or the engine stopped waiting), and again
    /// during each retry's run.
    pub rotating: Option<VersionId>,
}

/// A foreign PutSecretValue that landed during the engine's rotation (behaviour (a)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abandonment {
    /// The secret.
    pub secret: SecretId,
    /// The engine's rotation token.
    pub token: VersionId,
    /// The version the write created.
    pub written: VersionId,
}

/// What the ports of one world share.
#[derive(Debug, Default)]
pub struct HubState {
    /// The engine per secret.
    pub watches: BTreeMap<SecretId, EngineWatch>,
    /// The secret of the invocation being polled (`None`: the world's own hands).
    pub caller: Option<SecretId>,
    /// Rotations abandoned by a foreign write, not yet handled by the world.
    pub abandoned: Vec<Abandonment>,
    /// PutSecretValue calls refused by behaviour (c), per secret.
    pub refused_writes: BTreeMap<SecretId, u32>,
    /// CreateSchedule calls refused by behaviour (e), per secret.
    pub refused_schedules: BTreeMap<SecretId, u32>,
    /// Calls an invocation for one secret made for another: (the invocation's secret,
    /// what it did).
    pub cross_talk: Vec<(SecretId, String)>,
    /// Secrets whose labels or values changed since the world last looked.
    pub dirty: BTreeSet<SecretId>,
    /// Which secret each stored value belongs to (values are unique), so that the
    /// target, which is told only a version and a value, can find the service.
    pub owners: BTreeMap<String, SecretId>,
}

/// The shared state of one world's ports.
#[derive(Debug, Clone, Default)]
pub struct SimHub(pub Arc<Mutex<HubState>>);

impl SimHub {
    /// The shared state.
    pub fn state(&self) -> std::sync::MutexGuard<'_, HubState> {
        lock(&self.0)
    }

    /// Sets the secret of the invocation about to be polled.
    pub fn set_caller(&self, secret: Option<SecretId>) {
        self.state().caller = secret;
    }

    /// Records a cross-talk finding when the invocation being polled is not for `secret`.
    fn check_caller(&self, secret: &SecretId, what: impl FnOnce() -> String) {
        let mut s = self.state();
        if let Some(caller) = s.caller.clone().filter(|c| c != secret) {
            let line = format!("an invocation for {caller} {} of {secret}", what());
            s.cross_talk.push((caller, line));
        }
    }
}

/// Secrets Manager: one in-memory store per secret (so that each secret's faults are its
/// own), each call taking a random virtual latency before it takes effect, so that
/// concurrent invocations interleave between calls.
///
/// Every PutSecretValue passes the engine's interception first: during the engine's
/// rotation of the secret, a write with another ClientRequestToken than the rotation's
/// is refused (behaviour (c)), or lands and abandons the rotation (behaviour (a)).
#[derive(Debug, Clone)]
pub struct SimStore {
    stores: Arc<BTreeMap<SecretId, Arc<MemorySecretsManager>>>,
    /// The world's shared state.
    pub hub: SimHub,
    clock: SimClock,
    rng: SharedRng,
    latency_ms: (u64, u64),
}

/// What the interception decided about one PutSecretValue.
enum WriteVerdict {
    Pass,
    Refuse,
    Abandon(VersionId),
}

impl SimStore {
    /// A store over `stores` (one per secret); every call waits
    /// `latency_ms.0..=latency_ms.1` first.
    pub fn new(
        stores: BTreeMap<SecretId, Arc<MemorySecretsManager>>,
        hub: SimHub,
        clock: SimClock,
        rng: SharedRng,
        latency_ms: (u64, u64),
    ) -> Self {
        SimStore {
            stores: Arc::new(stores),
            hub,
            clock,
            rng,
            latency_ms,
        }
    }

    /// The in-memory store holding `secret`.
    pub fn inner(&self, secret: &SecretId) -> Option<&Arc<MemorySecretsManager>> {
        self.stores.get(secret)
    }

    fn store(&self, secret: &SecretId) -> Result<&Arc<MemorySecretsManager>, StoreError> {
        self.inner(secret).ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::NotFound,
                format!(
                    "ResourceNotFoundException: Secrets Manager can't find the specified secret {secret}"
                ),
            )
        })
    }

    async fn latency(&self) {
        let ms = self
            .rng
            .with(|r| r.random_range(self.latency_ms.0..=self.latency_ms.1));
        let until = self.clock.now().plus(Duration::from_millis(ms));
        self.clock.sleep_until(until).await;
    }

    fn verdict(&self, secret: &SecretId, version: &VersionId) -> WriteVerdict {
        let s = self.hub.state();
        let Some(w) = s.watches.get(secret) else {
            return WriteVerdict::Pass;
        };
        match &w.rotating {
            Some(token) if token != version => {
                if w.validate_rotation_token {
                    WriteVerdict::Refuse
                } else if w.copy_abandons.is_some_and(|c| c != CopyAbandons::Off) {
                    WriteVerdict::Abandon(token.clone())
                } else {
                    WriteVerdict::Pass
                }
            }
            _ => WriteVerdict::Pass,
        }
    }

    /// One PutSecretValue through the engine's interception.
    fn write(
        &self,
        secret: &SecretId,
        version: &VersionId,
        value: &SecretValue,
        put: impl FnOnce(&MemorySecretsManager) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let store = self.store(secret)?;
        let verdict = self.verdict(secret, version);
        if let WriteVerdict::Refuse = verdict {
            *self.hub.state().refused_writes.entry(secret.clone()).or_default() += 1;
            return Err(StoreError::new(
                StoreErrorKind::InvalidRequest,
                "InvalidRequestException: the RotationToken does not match (a rotation is in progress)",
            ));
        }
        let out = put(store);
        let mut hub = self.hub.state();
        hub.dirty.insert(secret.clone());
        // A lost response took effect too: the value is stored either way when the
        // version now holds it.
        if out.is_ok() || store.value(secret, version).ok().flatten().as_ref() == Some(value) {
            hub.owners
                .entry(value.expose().to_owned())
                .or_insert_with(|| secret.clone());
            if let WriteVerdict::Abandon(token) = verdict {
                hub.abandoned.push(Abandonment {
                    secret: secret.clone(),
                    token,
                    written: version.clone(),
                });
            }
        }
        out
    }

    /// PutSecretValue by an operator (no latency, no fault accounting), through the
    /// engine's interception like any other write.
    pub fn operator_put(
        &self,
        secret: &SecretId,
        version: &VersionId,
        value: &SecretValue,
        stages: &[&str],
    ) -> Result<(), StoreError> {
        self.write(secret, version, value, |s| {
            s.put_secret_value(secret, version, value.clone(), stages)
        })
    }

    /// Marks `secret` changed by the world's own hands (engine, operator).
    pub fn touched(&self, secret: &SecretId) {
        self.hub.state().dirty.insert(secret.clone());
    }
}

impl SecretStore for SimStore {
    async fn describe(&self, secret: &SecretId, detail: Detail) -> Result<SecretState, StoreError> {
        self.latency().await;
        self.hub.check_caller(secret, || "described".into());
        self.store(secret)?.describe(secret, detail).await
    }

    async fn get_value(
        &self,
        secret: &SecretId,
        version: &VersionId,
    ) -> Result<Option<SecretValue>, StoreError> {
        self.latency().await;
        self.hub
            .check_caller(secret, || format!("read version {version}"));
        self.store(secret)?.get_value(secret, version).await
    }

    async fn put_pending(
        &self,
        secret: &SecretId,
        version: &VersionId,
        value: &SecretValue,
        rotation_token: Option<&str>,
    ) -> Result<(), StoreError> {
        self.latency().await;
        self.hub
            .check_caller(secret, || format!("wrote version {version}"));
        // The inner store's futures are ready at once (nothing in them waits).
        self.write(secret, version, value, |s| {
            crate::fleet::run_now(s.put_pending(secret, version, value, rotation_token))
        })
    }

    async fn update_stage(&self, secret: &SecretId, change: &LabelMove) -> Result<(), StoreError> {
        self.latency().await;
        self.hub
            .check_caller(secret, || format!("moved labels ({change})"));
        let out = self.store(secret)?.update_stage(secret, change).await;
        self.hub.state().dirty.insert(secret.clone());
        out
    }
}

/// What the scheduler model holds: live jobs by name, and the jobs created since the
/// world last looked (it turns each into a firing time).
#[derive(Debug, Default)]
pub struct SchedulerState {
    /// Jobs that have neither fired nor been deleted.
    pub live: BTreeMap<ScheduleName, Job>,
    /// Newly created jobs, drained by the world.
    pub outbox: Vec<Job>,
    /// CreateSchedule calls that found the name taken.
    pub conflicts: u64,
    /// Fail this many CreateSchedule calls for a secret (transiently) before succeeding
    /// again.
    pub fail_next_creates: BTreeMap<SecretId, u32>,
    /// Secrets whose jobs must fire strictly in the future (behaviour (e)).
    pub refuse_past: BTreeSet<SecretId>,
    /// Every name ever created, and the secret of its job.
    pub names: BTreeMap<ScheduleName, SecretId>,
}

/// EventBridge Scheduler as the function sees it: CreateSchedule with deterministic names
/// (a taken name is ConflictException, i.e. "already scheduled"), delete, and nothing
/// more. When a job fires is the world's business.
#[derive(Debug, Clone)]
pub struct SimScheduler {
    state: Arc<Mutex<SchedulerState>>,
    clock: SimClock,
    hub: SimHub,
}

impl Default for SimScheduler {
    /// A scheduler on its own (no world): a clock at the epoch, no refusals.
    fn default() -> Self {
        SimScheduler::new(SimClock::new(Timestamp::EPOCH), SimHub::default())
    }
}

impl SimScheduler {
    /// A scheduler reading `clock` (for behaviour (e)) and reporting to `hub`.
    pub fn new(clock: SimClock, hub: SimHub) -> Self {
        SimScheduler {
            state: Arc::default(),
            clock,
            hub,
        }
    }

    /// The shared state.
    pub fn state(&self) -> std::sync::MutexGuard<'_, SchedulerState> {
        lock(&self.state)
    }
}

impl Scheduler for SimScheduler {
    async fn schedule(&self, job: &Job) -> Result<Scheduled, SchedulerError> {
        let secret = job.invocation.secret_id.clone();
        self.hub
            .check_caller(&secret, || format!("created schedule {}", job.name));
        let mut s = lock(&self.state);
        if let Some(other) = s.names.get(&job.name).filter(|o| **o != secret) {
            let line = format!("schedule name {} is used for {other} and for {secret}", job.name);
            self.hub.state().cross_talk.push((secret.clone(), line));
        }
        if let Some(n) = s.fail_next_creates.get_mut(&secret).filter(|n| **n > 0) {
            *n -= 1;
            return Err(SchedulerError {
                retryable: true,
                message: "InternalServerException (injected)".into(),
            });
        }
        if s.refuse_past.contains(&secret) && job.fire_at <= self.clock.now() {
            *self.hub.state().refused_schedules.entry(secret).or_default() += 1;
            return Err(SchedulerError {
                retryable: false,
                message: format!(
                    "ValidationException: the schedule's start date {} must be in the future",
                    job.fire_at
                ),
            });
        }
        if s.live.contains_key(&job.name) {
            s.conflicts += 1;
            return Ok(Scheduled::AlreadyScheduled);
        }
        s.names.insert(job.name.clone(), secret);
        s.live.insert(job.name.clone(), job.clone());
        s.outbox.push(job.clone());
        Ok(Scheduled::Created)
    }

    async fn complete(&self, name: &ScheduleName) -> Result<(), SchedulerError> {
        lock(&self.state).live.remove(name);
        Ok(())
    }
}

/// A downstream service B that authenticates with one secret (docs/protocol.md, section 1):
/// setSecret makes the new value a second valid credential, removePending revokes the old.
#[derive(Debug, Default, Clone)]
pub struct Downstream {
    /// Values B accepts now.
    pub valid: BTreeSet<String>,
    /// Fail this many set/test calls before succeeding again (engine-step faults).
    pub fail_next: u32,
    /// Revocations B ignores (to show that the revocation check fires).
    pub withhold_revocations: bool,
}

/// The tag that names the kind of value a secret holds, as the stock function reads it.
pub const KIND_TAG: &str = "keyshift:kind";

/// The target: random values, registered with and revoked from the [`Downstream`] of the
/// secret that stores them. A secret tagged [`KIND_TAG`] with a key kind gets that kind's
/// stock value instead (keyshift-keys: a real key, from the operating system's
/// generator), as the stock function makes it; the draw of the world's stream happens
/// either way, so the schedule of a seed does not depend on the kind.
#[derive(Debug, Clone)]
pub struct SimTarget {
    /// Service B of each secret.
    pub services: Arc<Mutex<BTreeMap<SecretId, Downstream>>>,
    hub: SimHub,
    rng: SharedRng,
}

impl SimTarget {
    /// A target with no services yet.
    pub fn new(rng: SharedRng, hub: SimHub) -> Self {
        SimTarget {
            services: Arc::default(),
            hub,
            rng,
        }
    }

    /// Adds `secret`'s service B, which accepts `initial`.
    pub fn add_service(&self, secret: &SecretId, initial: &SecretValue) {
        let mut d = Downstream::default();
        d.valid.insert(initial.expose().to_owned());
        lock(&self.services).insert(secret.clone(), d);
        self.hub
            .state()
            .owners
            .insert(initial.expose().to_owned(), secret.clone());
    }

    /// The values `secret`'s service B accepts now.
    pub fn valid(&self, secret: &SecretId) -> BTreeSet<String> {
        lock(&self.services)
            .get(secret)
            .map(|d| d.valid.clone())
            .unwrap_or_default()
    }

    /// Runs `f` on `secret`'s service B.
    pub fn with_service<R>(&self, secret: &SecretId, f: impl FnOnce(&mut Downstream) -> R) -> Option<R> {
        lock(&self.services).get_mut(secret).map(f)
    }

    /// The service of the secret storing `value`, after the cross-talk check.
    fn owner(&self, value: &SecretValue, what: &str) -> Result<SecretId, TargetError> {
        let owner = self.hub.state().owners.get(value.expose()).cloned();
        let Some(owner) = owner else {
            return Err(TargetError::refused(format!(
                "{what}: the value is stored in no secret"
            )));
        };
        self.hub.check_caller(&owner, || format!("{what} a credential"));
        Ok(owner)
    }

    fn injected(&self, secret: &SecretId, what: &str) -> Result<(), TargetError> {
        let mut services = lock(&self.services);
        if let Some(d) = services.get_mut(secret).filter(|d| d.fail_next > 0) {
            d.fail_next -= 1;
            return Err(TargetError::retryable(format!(
                "service B refused {what} (injected)"
            )));
        }
        Ok(())
    }
}

impl Target for SimTarget {
    async fn generate(
        &self,
        ctx: &TargetContext<'_>,
        _current: Option<&SecretValue>,
    ) -> Result<SecretValue, TargetError> {
        let draw = self.rng.with(|r| r.random::<u64>());
        match ctx.tags.get(KIND_TAG) {
            None => Ok(SecretValue::new(format!("value-{draw:016x}"))),
            Some(name) => {
                let kind = keyshift_keys::KeyKind::parse(name).ok_or_else(|| {
                    TargetError::configuration(format!("{KIND_TAG} {name} is not a key kind"))
                })?;
                keyshift_keys::generate(kind)
                    .map(SecretValue::new)
                    .map_err(|e| TargetError::retryable(e.to_string()))
            }
        }
    }

    async fn set(
        &self,
        _ctx: &TargetContext<'_>,
        _version: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        let owner = self.owner(value, "registered")?;
        self.injected(&owner, "set")?;
        self.with_service(&owner, |d| d.valid.insert(value.expose().to_owned()));
        Ok(())
    }

    async fn test(
        &self,
        _ctx: &TargetContext<'_>,
        _version: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        let owner = self.owner(value, "tested")?;
        self.injected(&owner, "test")?;
        if self
            .with_service(&owner, |d| d.valid.contains(value.expose()))
            .unwrap_or(false)
        {
            Ok(())
        } else {
            Err(TargetError::retryable(
                "service B does not accept the pending credential",
            ))
        }
    }

    async fn revoke(
        &self,
        _ctx: &TargetContext<'_>,
        _version: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        let owner = self.owner(value, "revoked")?;
        self.with_service(&owner, |d| {
            if !d.withhold_revocations {
                d.valid.remove(value.expose());
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use keyshift::event::Step;
    use keyshift::{Invocation, Timestamp};

    use super::*;
    use crate::fleet::run_now;

    const START: i64 = 1_700_000_000;

    fn id(n: u32) -> VersionId {
        VersionId::new(format!("00000000-0000-4000-8000-{n:012}"))
    }

    /// A secret `a` with one version and the rotation of token `id(1)` begun, behind a
    /// store with no latency; the engine's watch on `a` set by `watch`.
    fn setup(watch: EngineWatch) -> (SimStore, SecretId, SimClock) {
        let clock = SimClock::new(Timestamp::from_secs(START));
        let a = SecretId::new("a");
        let inner = Arc::new(MemorySecretsManager::new(clock.reader()));
        inner
            .create_secret(&a, &id(0), SecretValue::new("initial"))
            .and_then(|()| inner.set_rotation_enabled(&a, true))
            .and_then(|()| inner.begin_rotation(&a, &id(1)))
            .expect("set up the secret");
        let hub = SimHub::default();
        hub.state().watches.insert(a.clone(), watch);
        let mut stores = BTreeMap::new();
        stores.insert(a.clone(), inner);
        let store = SimStore::new(stores, hub, clock.clone(), SharedRng::new(7), (0, 0));
        (store, a, clock)
    }

    fn rotating(token: VersionId) -> Option<VersionId> {
        Some(token)
    }

    #[test]
    fn validate_rotation_token_refuses_a_foreign_write_during_the_rotation_and_nothing_else() {
        let (store, a, _) = setup(EngineWatch {
            copy_abandons: Some(CopyAbandons::Off),
            validate_rotation_token: true,
            rotating: rotating(id(1)),
        });
        let foreign = run_now(store.put_pending(&a, &id(2), &SecretValue::new("copy"), None));
        let err = foreign.expect_err("a foreign token during the rotation is refused");
        assert_eq!(err.kind, StoreErrorKind::InvalidRequest);
        assert!(err.message.contains("RotationToken does not match"), "{err}");
        let state = store.inner(&a).expect("a").snapshot(&a).expect("a");
        assert!(
            state.version(&id(2)).is_none(),
            "a refused write has no effect: {state:?}"
        );
        assert_eq!(store.hub.state().refused_writes.get(&a), Some(&1));
        // The rotation's own token passes.
        run_now(store.put_pending(&a, &id(1), &SecretValue::new("pending"), None))
            .expect("the token's write");
        // Outside the rotation, any token passes.
        store.hub.state().watches.get_mut(&a).expect("watch").rotating = None;
        run_now(store.put_pending(&a, &id(3), &SecretValue::new("later"), None)).expect("after the rotation");
        assert!(store.hub.state().abandoned.is_empty());
    }

    #[test]
    fn copy_abandons_lets_a_foreign_write_land_and_reports_the_abandonment() {
        for variant in [CopyAbandons::TokenVersion, CopyAbandons::Holder] {
            let (store, a, _) = setup(EngineWatch {
                copy_abandons: Some(variant),
                validate_rotation_token: false,
                rotating: rotating(id(1)),
            });
            run_now(store.put_pending(&a, &id(1), &SecretValue::new("pending"), None)).expect("own token");
            assert!(
                store.hub.state().abandoned.is_empty(),
                "the token's own write abandons nothing"
            );
            run_now(store.put_pending(&a, &id(2), &SecretValue::new("copy"), None)).expect("the write lands");
            assert_eq!(
                store.hub.state().abandoned,
                vec![Abandonment {
                    secret: a.clone(),
                    token: id(1),
                    written: id(2),
                }]
            );
        }
        // Off: the same write is just a write.
        let (store, a, _) = setup(EngineWatch {
            copy_abandons: Some(CopyAbandons::Off),
            validate_rotation_token: false,
            rotating: rotating(id(1)),
        });
        run_now(store.put_pending(&a, &id(2), &SecretValue::new("copy"), None)).expect("the write lands");
        assert!(store.hub.state().abandoned.is_empty());
        // An operator's write goes through the same interception.
        store
            .hub
            .state()
            .watches
            .get_mut(&a)
            .expect("watch")
            .validate_rotation_token = true;
        let refused = store.operator_put(&a, &id(4), &SecretValue::new("note"), &["OPS_NOTE"]);
        assert_eq!(refused.map_err(|e| e.kind), Err(StoreErrorKind::InvalidRequest));
    }

    fn job(secret: &SecretId, name: &str, fire_at: Timestamp) -> Job {
        let name = ScheduleName::parse(name).expect("a valid name");
        Job {
            name: name.clone(),
            fire_at,
            invocation: Invocation {
                step: Step::SwapPending { due: fire_at },
                secret_id: secret.clone(),
                token: id(1),
                rotation_token: None,
                schedule: Some(name),
            },
        }
    }

    #[test]
    fn past_schedule_refused_refuses_a_fire_time_not_in_the_future_for_its_secrets_only() {
        let clock = SimClock::new(Timestamp::from_secs(START));
        let hub = SimHub::default();
        let scheduler = SimScheduler::new(clock.clone(), hub.clone());
        let (a, b) = (SecretId::new("a"), SecretId::new("b"));
        scheduler.state().refuse_past.insert(a.clone());
        let now = clock.now();
        let err = run_now(scheduler.schedule(&job(&a, "ks-a-now", now))).expect_err("now is not the future");
        assert!(!err.retryable, "{err}");
        assert!(err.message.contains("ValidationException"), "{err}");
        assert_eq!(hub.state().refused_schedules.get(&a), Some(&1));
        let later = now.plus(Duration::from_secs(1));
        let ok = run_now(scheduler.schedule(&job(&a, "ks-a-later", later)));
        assert_eq!(ok, Ok(Scheduled::Created));
        // Another secret's scheduler reading is the lenient one.
        let ok = run_now(scheduler.schedule(&job(&b, "ks-b-now", now)));
        assert_eq!(ok, Ok(Scheduled::Created));
    }

    #[test]
    fn a_call_for_another_secret_than_the_invocations_is_cross_talk() {
        let (store, a, clock) = setup(EngineWatch::default());
        let b = SecretId::new("b");
        store.hub.set_caller(Some(b.clone()));
        let _ = run_now(store.describe(&a, Detail::Full));
        let _ = run_now(store.update_stage(
            &a,
            &LabelMove {
                stage: "X".into(),
                move_to: Some(id(0)),
                remove_from: None,
            },
        ));
        let scheduler = SimScheduler::new(clock.clone(), store.hub.clone());
        let _ = run_now(scheduler.schedule(&job(&a, "ks-a-1", clock.now())));
        let talk = std::mem::take(&mut store.hub.state().cross_talk);
        assert_eq!(talk.len(), 3, "{talk:?}");
        assert!(talk.iter().all(|(caller, _)| *caller == b), "{talk:?}");
        // The right secret is no cross-talk.
        store.hub.set_caller(Some(a.clone()));
        let _ = run_now(store.describe(&a, Detail::Full));
        assert!(store.hub.state().cross_talk.is_empty());
        // One schedule name for two secrets is.
        store.hub.set_caller(Some(b.clone()));
        let _ = run_now(scheduler.schedule(&job(&b, "ks-a-1", clock.now())));
        let talk = std::mem::take(&mut store.hub.state().cross_talk);
        assert!(
            talk.iter()
                .any(|(_, line)| line.contains("is used for a and for b")),
            "{talk:?}"
        );
    }

    #[test]
    fn the_target_finds_each_values_service_and_flags_another_secrets_value() {
        let hub = SimHub::default();
        let target = SimTarget::new(SharedRng::new(1), hub.clone());
        let (a, b) = (SecretId::new("a"), SecretId::new("b"));
        target.add_service(&a, &SecretValue::new("a0"));
        target.add_service(&b, &SecretValue::new("b0"));
        hub.state().owners.insert("a1".into(), a.clone());
        hub.set_caller(Some(a.clone()));
        let tags = std::collections::BTreeMap::new();
        let ctx = TargetContext {
            secret: &a,
            tags: &tags,
        };
        run_now(target.set(&ctx, &id(1), &SecretValue::new("a1"))).expect("registered at a's service");
        assert!(target.valid(&a).contains("a1"));
        assert!(!target.valid(&b).contains("a1"));
        run_now(target.revoke(&ctx, &id(0), &SecretValue::new("b0"))).expect("revoked");
        assert!(!target.valid(&b).contains("b0"), "revoked at b's service");
        let talk = std::mem::take(&mut hub.state().cross_talk);
        assert_eq!(talk.len(), 1, "an invocation for a revoked b's value: {talk:?}");
    }
}
