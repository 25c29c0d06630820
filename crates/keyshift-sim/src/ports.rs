//! The simulation's side of keyshift's ports: the in-memory Secrets Manager behind a
//! call latency, a scheduler model that only records jobs (the world decides when they
//! fire), and a target with a downstream service that keeps a set of valid credentials.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyshift::event::ScheduleName;
use keyshift::memory::MemorySecretsManager;
use keyshift::ports::{
    Clock, Detail, Job, LabelMove, Scheduled, Scheduler, SchedulerError, SecretStore, StoreError, Target,
    TargetError,
};
use keyshift::{SecretId, SecretState, SecretValue, VersionId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::clock::SimClock;

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

/// The in-memory Secrets Manager, each call taking a random virtual latency before it
/// takes effect, so that concurrent invocations interleave between calls.
#[derive(Debug, Clone)]
pub struct SimStore {
    /// The store itself (the world reads it directly for consumers and the checker).
    pub inner: Arc<MemorySecretsManager>,
    clock: SimClock,
    rng: SharedRng,
    latency_ms: (u64, u64),
}

impl SimStore {
    /// Wraps `inner`; every call waits `latency_ms.0..=latency_ms.1` first.
    pub fn new(
        inner: Arc<MemorySecretsManager>,
        clock: SimClock,
        rng: SharedRng,
        latency_ms: (u64, u64),
    ) -> Self {
        SimStore {
            inner,
            clock,
            rng,
            latency_ms,
        }
    }

    async fn latency(&self) {
        let ms = self
            .rng
            .with(|r| r.random_range(self.latency_ms.0..=self.latency_ms.1));
        let until = self.clock.now().plus(Duration::from_millis(ms));
        self.clock.sleep_until(until).await;
    }
}

impl SecretStore for SimStore {
    async fn describe(&self, secret: &SecretId, detail: Detail) -> Result<SecretState, StoreError> {
        self.latency().await;
        self.inner.describe(secret, detail).await
    }

    async fn get_value(
        &self,
        secret: &SecretId,
        version: &VersionId,
    ) -> Result<Option<SecretValue>, StoreError> {
        self.latency().await;
        self.inner.get_value(secret, version).await
    }

    async fn put_pending(
        &self,
        secret: &SecretId,
        version: &VersionId,
        value: &SecretValue,
        rotation_token: Option<&str>,
    ) -> Result<(), StoreError> {
        self.latency().await;
        self.inner
            .put_pending(secret, version, value, rotation_token)
            .await
    }

    async fn update_stage(&self, secret: &SecretId, change: &LabelMove) -> Result<(), StoreError> {
        self.latency().await;
        self.inner.update_stage(secret, change).await
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
    /// Fail this many CreateSchedule calls (transiently) before succeeding again.
    pub fail_next_creates: u32,
}

/// EventBridge Scheduler as the function sees it: CreateSchedule with deterministic names
/// (a taken name is ConflictException, i.e. "already scheduled"), delete, and nothing
/// more. When a job fires is the world's business.
#[derive(Debug, Clone, Default)]
pub struct SimScheduler(pub Arc<Mutex<SchedulerState>>);

impl SimScheduler {
    /// The shared state.
    pub fn state(&self) -> std::sync::MutexGuard<'_, SchedulerState> {
        lock(&self.0)
    }
}

impl Scheduler for SimScheduler {
    async fn schedule(&self, job: &Job) -> Result<Scheduled, SchedulerError> {
        let mut s = lock(&self.0);
        if s.fail_next_creates > 0 {
            s.fail_next_creates -= 1;
            return Err(SchedulerError {
                retryable: true,
                message: "InternalServerException (injected)".into(),
            });
        }
        if s.live.contains_key(&job.name) {
            s.conflicts += 1;
            return Ok(Scheduled::AlreadyScheduled);
        }
        s.live.insert(job.name.clone(), job.clone());
        s.outbox.push(job.clone());
        Ok(Scheduled::Created)
    }

    async fn complete(&self, name: &ScheduleName) -> Result<(), SchedulerError> {
        lock(&self.0).live.remove(name);
        Ok(())
    }
}

/// A downstream service B that authenticates with the secret (DESIGN.md section 3):
/// setSecret makes the new value a second valid credential, removePending revokes the old.
#[derive(Debug, Default)]
pub struct Downstream {
    /// Values B accepts now.
    pub valid: BTreeSet<String>,
    /// Fail this many set/test calls before succeeding again (engine-step faults).
    pub fail_next: u32,
}

/// The target: random values, registered with and revoked from [`Downstream`].
#[derive(Debug, Clone)]
pub struct SimTarget {
    /// Service B.
    pub downstream: Arc<Mutex<Downstream>>,
    rng: SharedRng,
}

impl SimTarget {
    /// A target whose service B accepts `initial`.
    pub fn new(rng: SharedRng, initial: &SecretValue) -> Self {
        let mut d = Downstream::default();
        d.valid.insert(initial.expose().to_owned());
        SimTarget {
            downstream: Arc::new(Mutex::new(d)),
            rng,
        }
    }

    fn injected(&self, what: &str) -> Result<(), TargetError> {
        let mut d = lock(&self.downstream);
        if d.fail_next > 0 {
            d.fail_next -= 1;
            return Err(TargetError {
                retryable: true,
                message: format!("service B refused {what} (injected)"),
            });
        }
        Ok(())
    }
}

impl Target for SimTarget {
    async fn generate(&self) -> Result<SecretValue, TargetError> {
        Ok(SecretValue::new(format!(
            "value-{:016x}",
            self.rng.with(|r| r.random::<u64>())
        )))
    }

    async fn set(&self, _version: &VersionId, value: &SecretValue) -> Result<(), TargetError> {
        self.injected("set")?;
        lock(&self.downstream).valid.insert(value.expose().to_owned());
        Ok(())
    }

    async fn test(&self, _version: &VersionId, value: &SecretValue) -> Result<(), TargetError> {
        self.injected("test")?;
        if lock(&self.downstream).valid.contains(value.expose()) {
            Ok(())
        } else {
            Err(TargetError {
                retryable: true,
                message: "service B does not accept the pending credential".into(),
            })
        }
    }

    async fn revoke(&self, _version: &VersionId, value: &SecretValue) -> Result<(), TargetError> {
        lock(&self.downstream).valid.remove(value.expose());
        Ok(())
    }
}
