//! One seeded run: a discrete-event loop over virtual time.
//!
//! A world holds one or many secrets (`SecretWorld`), each with its own in-memory
//! Secrets Manager, rotation engine ([`crate::engine`]: RotateSecret makes the value-less
//! placeholder, then the four steps run one after another, with the engine's
//! undocumented behaviours switched per [`crate::scenario::EngineBehaviours`]), faults,
//! rotations, consumer fleet, service B and checks. All secrets share ONE executor, ONE
//! scheduler and delivery model (a job fires anywhere inside its minute, may be delivered
//! twice, late, or lost and re-delivered; a failed asynchronous invocation is retried
//! twice, a minute then two minutes later) and one clock, as they would share one
//! deployed function. Invocations are keyshift's real executor, polled as tasks; the
//! world jumps virtual time to the next event or wake-up and checks every invariant of
//! every secret the event touched.
//!
//! # Convergence
//!
//! The world never looks at which version ids keyshift writes. A rotation's value is
//! what the engine's token version was given in createSecret; the rotation *completed*
//! when a version holding that value became AWSCURRENT within the convergence bound
//! (2T + 1 h from the rotation's start; from its accepted RotateSecret for a rotation
//! the engine started after an abandoned one). A rotation *converged* if it completed
//! (and, being the last, left the secret clean: no ROTATING, AWSPENDING only on the
//! current version or on none), or if it was *abandoned cleanly*: its value never became
//! current, and at the end no keyshift label is left behind (the same clean state), its
//! value is revoked at service B, and a later rotation (the engine's next scheduled one,
//! which the world starts some minutes after an abandonment) completed. An abandonment is
//! the engine's (a foreign write during its rotation, behaviour (a)), the engine giving
//! up after its attempts, or an operator's write or strip, which may legitimately make
//! keyshift drop the rotation.
//!
//! # Revocation
//!
//! Every value service B accepts is carried by an accepted version, or stopped being
//! carried at most T + 1 h ago ([`crate::checker::RevocationCheck`]). At the end of a run
//! in which nothing is left to happen, a value B accepts that no accepted version carries
//! will never be revoked, and is a violation too.
//!
//! # Key secrets
//!
//! A secret of a key kind ([`crate::scenario::SecretKind`]) is created with a real key
//! and tagged `keyshift:kind`, so that the target generates the same kind on every
//! rotation, as the stock function does. Its fleet's operations are real cryptography
//! ([`crate::keys`]). At the end of every run, every producer operates towards every
//! consumer once more (the sweep), so every consumer of a key secret has checked every
//! kid in use at the end. A failed real operation is a failed consumer operation like
//! any other. Nothing
//! about the schedule depends on the kind: a seed runs the same events whatever its
//! secret holds.
//!
//! # Many secrets
//!
//! Every port call is checked against the secret of the invocation being polled: a call
//! for another secret, a job for another secret, or a schedule name used by two secrets,
//! is cross-talk and a violation of the calling secret.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyshift::event::OperatorRequest;
use keyshift::executor::Report;
use keyshift::memory::MemorySecretsManager;
use keyshift::ports::{Clock, Job};
use keyshift::secret::{ACCEPTED_STAGES, AWSCURRENT, AWSPENDING, ROTATING};
use keyshift::{ExecError, Executor, Invocation, SecretId, SecretState, SecretValue, Timestamp, VersionId};
use keyshift_client::{Config, Health, WindowCache};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checker::{Checker, Kind, RevocationCheck};
use crate::clock::{SimClock, Task, poll_once};
use crate::control::one_step;
use crate::fleet::{Failure, Fleet, Instance, SimSource, run_now};
use crate::keys::{KeyStats, KidUse};
use crate::ports::{EngineWatch, KIND_TAG, SharedRng, SimHub, SimScheduler, SimStore, SimTarget};
use crate::requests::{EmergencyRecord, RequestRecord, SimHeal};
use crate::scenario::{FaultClass, OperatorAction, Scenario, Strategy};

mod checks;
mod consumers;
mod delivery;
mod result;

pub use result::{Hits, RunResult};

pub(crate) type TaskOut = Result<String, String>;
pub(crate) type TaskId = u64;

#[derive(Debug, Clone)]
pub(crate) enum Owner {
    Engine {
        rotation: usize,
        step: usize,
    },
    Delivery {
        job: Job,
        attempt: u32,
    },
    /// An operator's request (its index in the secret's records).
    Operator {
        req: usize,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum Ev {
    StartRotation {
        s: usize,
        r: usize,
    },
    EngineAttempt {
        s: usize,
        r: usize,
    },
    EngineGiveUp {
        s: usize,
        r: usize,
        task: TaskId,
    },
    Wake(TaskId),
    Fire(Job),
    Deliver {
        job: Job,
        attempt: u32,
    },
    Strip {
        s: usize,
        after_finish: bool,
    },
    Operator {
        s: usize,
        r: usize,
    },
    Refresh {
        s: usize,
        i: usize,
    },
    Operate(usize),
    Fault(usize),
    /// The operator sends its request: a new one (`req` none; `copy` 1 is the
    /// duplicate), or record `req` again after an error.
    Request {
        s: usize,
        req: Option<usize>,
        copy: u8,
    },
    /// Instance `i`, still failing after emergency `em`'s cut, retries (see
    /// [`crate::requests`]).
    Heal {
        s: usize,
        i: usize,
        em: usize,
        kid: Option<VersionId>,
    },
}

impl Ev {
    /// Periodic events keep happening forever; the run may end with them queued.
    fn is_periodic(&self) -> bool {
        matches!(
            self,
            Ev::Refresh { .. } | Ev::Operate(_) | Ev::Fault(_) | Ev::Heal { .. }
        )
    }
}

/// One rotation of one secret, from the engine's side and the checks'.
#[derive(Debug, Clone)]
pub(crate) struct Rotation {
    pub token: VersionId,
    /// Started by the engine after an abandoned rotation (not a planned one).
    pub follow_on: bool,
    pub due_start: Timestamp,
    pub started: Option<Timestamp>,
    /// When RotateSecret was first accepted.
    pub accepted: Option<Timestamp>,
    pub engine_task: Option<TaskId>,
    pub attempts: u32,
    pub became_current: Option<Timestamp>,
    /// The value createSecret gave the token's version.
    pub value: Option<String>,
    /// The engine will not run this rotation again.
    pub engine_over: bool,
    pub abandoned: bool,
    pub gave_up: bool,
    /// An operator wrote or stripped AWSPENDING during it.
    pub operator_hit: bool,
    pub follow_on_created: bool,
    /// finishSecret returned successfully at least once.
    pub finished: bool,
    /// When an operator's cancel of this rotation was seen to have taken effect.
    pub cancelled_at: Option<Timestamp>,
}

/// One secret of a world: its scenario, store, engine state, fleet and checks.
pub(crate) struct SecretWorld {
    pub sc: Scenario,
    pub id: SecretId,
    pub inner: Arc<MemorySecretsManager>,
    /// The fleet's own stream (instance configurations, jitter seeds, read lags), so that
    /// a seed's faults and deliveries do not depend on how often consumers refresh.
    pub fleet_rng: ChaCha8Rng,
    pub fleet: Fleet,
    /// Which Region each instance reads (0: the primary; 1: the replica).
    pub regions: Vec<usize>,
    pub views: Vec<(Timestamp, SecretState)>,
    pub checker: Checker,
    pub revocation: RevocationCheck,
    /// Values by version id (a version's value never changes once written).
    pub values: BTreeMap<VersionId, String>,
    /// The value the secret was created with.
    pub initial: String,
    pub rotations: Vec<Rotation>,
    pub planned: usize,
    pub faults: u32,
    pub operations: u64,
    pub failed: u64,
    pub failed_by_region: [u64; 3],
    pub dead_letters: u64,
    pub cross_talk: usize,
    pub hits: Hits,
    pub operator_acted: bool,
    pub operator_notes: u32,
    /// The operator's requests so far, and the request they send (resolved when first
    /// sent; the duplicate and the retries send the very same).
    pub requests: Vec<RequestRecord>,
    pub request_payload: Option<OperatorRequest>,
    /// The current version when the request was first sent (an emergency's compromised
    /// version when it names none).
    pub request_compromised: Option<VersionId>,
    pub request_triggered: bool,
    /// Requests in flight or waiting for the operator's retry.
    pub requests_open: u32,
    pub emergencies: Vec<EmergencyRecord>,
    /// When each version first became AWSCURRENT.
    pub current_since: BTreeMap<VersionId, Timestamp>,
    /// The current version as last checked, with when its value was first stored.
    pub last_current: Option<(VersionId, Timestamp)>,
    /// How much of the audit log the request checks have read.
    pub history_seen: usize,
    /// When each instance last refreshed because an operation failed.
    pub healed_at: Vec<Option<Timestamp>>,
    pub by_design: [u64; 3],
    pub healed: u64,
    /// Violations already reported once (by key).
    pub flagged: BTreeSet<String>,
}

pub(crate) const MAX_FOLLOW_ONS: usize = 3;

pub(crate) type SimExecutor = Executor<SimStore, SimScheduler, SimClock, SimTarget>;

/// What an operator's request returned.
pub(crate) type OperatorOut = Result<(Report, Option<Invocation>), ExecError>;

pub(crate) struct TaskEntry {
    task: Task<TaskOut>,
    owner: Owner,
    secret: usize,
}

/// The state of one run.
pub struct World {
    pub(crate) strategy: Strategy,
    pub(crate) policy: keyshift::Policy,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) clock: SimClock,
    pub(crate) start: Timestamp,
    pub(crate) store: SimStore,
    pub(crate) hub: SimHub,
    pub(crate) scheduler: SimScheduler,
    pub(crate) target: SimTarget,
    pub(crate) executor: Arc<SimExecutor>,
    /// Operator tasks put their structured result here (by task id) before they return.
    pub(crate) operator_out: Arc<Mutex<BTreeMap<TaskId, OperatorOut>>>,
    queue: BTreeMap<(Timestamp, u64), Ev>,
    seq: u64,
    important: usize,
    tasks: BTreeMap<TaskId, TaskEntry>,
    next_task: TaskId,
    pub(crate) secrets: Vec<SecretWorld>,
    index: BTreeMap<SecretId, usize>,
    trace: Option<Vec<String>>,
    hard_limit: Timestamp,
}

impl World {
    /// Sets up one world: one secret per scenario (all sharing the first one's policy
    /// and strategy), each with one version, its fleet's first views, and its first
    /// rotation queued.
    pub fn new(scenarios: Vec<Scenario>, trace: bool) -> Self {
        assert!(!scenarios.is_empty(), "a world needs a secret");
        let first = &scenarios[0];
        let (seed, policy, strategy) = (first.seed, first.policy, first.strategy);
        let multi = scenarios.len() > 1;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let start = Timestamp::parse_rfc3339("2026-11-24T00:00:00Z")
            .unwrap_or(Timestamp::EPOCH)
            .plus(Duration::from_millis(rng.random_range(0..60_000)));
        let clock = SimClock::new(start);
        let ports_rng = SharedRng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let hub = SimHub::default();
        let target = SimTarget::new(ports_rng.clone(), hub.clone());
        let scheduler = SimScheduler::new(clock.clone(), hub.clone());
        let mut stores = BTreeMap::new();
        let mut secrets = Vec::new();
        let mut index = BTreeMap::new();
        for sc in scenarios {
            let id = if multi {
                SecretId::new(format!(
                    "arn:aws:secretsmanager:us-east-1:111122223333:secret:sim-{}-{}-AbCdEf",
                    sc.seed, sc.secret_index
                ))
            } else {
                SecretId::new(format!(
                    "arn:aws:secretsmanager:us-east-1:111122223333:secret:sim-{}-AbCdEf",
                    sc.seed
                ))
            };
            let inner = Arc::new(MemorySecretsManager::new(clock.reader()));
            let initial_version = token(&mut rng);
            // A key secret starts with a real key, and is tagged with its kind as the stock
            // function's secrets are, so that the target generates the same kind.
            let initial = match sc.kind.key_kind() {
                None => SecretValue::new(format!("value-initial-{}-{}", sc.seed, sc.secret_index)),
                Some(kind) => SecretValue::new(
                    keyshift_keys::generate(kind)
                        .unwrap_or_else(|e| panic!("generating the initial {} key: {e}", kind.name())),
                ),
            };
            inner
                .create_secret(&id, &initial_version, initial.clone())
                .and_then(|()| inner.set_rotation_enabled(&id, true))
                .and_then(|()| match sc.kind.key_kind() {
                    Some(kind) => inner.tag(&id, KIND_TAG, kind.name()),
                    None => Ok(()),
                })
                .unwrap_or_else(|e| panic!("setting up the simulated secret: {e}"));
            if let Some(lag) = sc.replica_lag {
                // The store replicates as the replica Region's consumers read: every change
                // arrives `lag` later. keyshift sees it through ReplicationStatus and the
                // replica's labels, as it does on AWS.
                inner
                    .add_replica(&id, "replica-1", lag, lag, sc.seed)
                    .unwrap_or_else(|e| panic!("replicating the simulated secret: {e}"));
            }
            if sc.behaviours.operator && sc.operator_action == OperatorAction::RemoveLabel {
                // The label the operator will remove, there from the start.
                run_now(keyshift::ports::SecretStore::update_stage(
                    &*inner,
                    &id,
                    &keyshift::ports::LabelMove {
                        stage: OPS_OWNER.into(),
                        move_to: Some(initial_version.clone()),
                        remove_from: None,
                    },
                ))
                .unwrap_or_else(|e| panic!("setting up the operator's label: {e}"));
            }
            target.add_service(&id, &initial);
            hub.state().watches.insert(
                id.clone(),
                EngineWatch {
                    copy_abandons: Some(sc.behaviours.copy_abandons),
                    validate_rotation_token: sc.behaviours.validate_rotation_token,
                    rotating: None,
                },
            );
            if sc.behaviours.past_schedule_refused {
                scheduler.state().refuse_past.insert(id.clone());
            }
            stores.insert(id.clone(), Arc::clone(&inner));
            index.insert(id.clone(), secrets.len());
            let gap = sc.policy.gap;
            let revocation = RevocationCheck::new(sc.revocation_bound());
            secrets.push(SecretWorld {
                checker: Checker::new(gap, strategy == Strategy::Keyshift),
                revocation,
                fleet_rng: ChaCha8Rng::seed_from_u64(
                    sc.seed ^ 0xf1ee_7000_c11e_0000 ^ (sc.secret_index as u64).wrapping_mul(0x1000_0001),
                ),
                fleet: Fleet::new(
                    sc.kind,
                    sc.seed ^ 0x6b65_7973_0000_0000 ^ (sc.secret_index as u64).wrapping_mul(0x1000_0001),
                ),
                initial: initial.expose().to_owned(),
                regions: Vec::new(),
                views: Vec::new(),
                values: BTreeMap::new(),
                rotations: Vec::new(),
                planned: 0,
                faults: 0,
                operations: 0,
                failed: 0,
                failed_by_region: [0; 3],
                dead_letters: 0,
                cross_talk: 0,
                hits: Hits::default(),
                operator_acted: false,
                operator_notes: 0,
                requests: Vec::new(),
                request_payload: None,
                request_compromised: None,
                request_triggered: false,
                requests_open: 0,
                emergencies: Vec::new(),
                current_since: BTreeMap::new(),
                last_current: None,
                history_seen: 0,
                healed_at: Vec::new(),
                by_design: [0; 3],
                healed: 0,
                flagged: BTreeSet::new(),
                id,
                inner,
                sc,
            });
        }
        let store = SimStore::new(
            stores,
            hub.clone(),
            clock.clone(),
            ports_rng,
            secrets[0].sc.latency_ms,
        );
        let executor = Arc::new(Executor::new(
            store.clone(),
            scheduler.clone(),
            clock.clone(),
            target.clone(),
            policy,
        ));
        let mut w = World {
            strategy,
            policy,
            rng,
            clock,
            start,
            store,
            hub,
            scheduler,
            target,
            executor,
            operator_out: Arc::default(),
            queue: BTreeMap::new(),
            seq: 0,
            important: 0,
            tasks: BTreeMap::new(),
            next_task: 0,
            secrets,
            index,
            trace: trace.then(Vec::new),
            hard_limit: start.plus(Duration::from_secs(48 * 3600)),
        };
        for s in 0..w.secrets.len() {
            w.setup_fleet(s);
            let at = w.start.plus(w.secrets[s].sc.first_start);
            w.new_rotation(s, at, false);
            w.push_in(Duration::from_secs(1), Ev::Operate(s));
            w.push_in(Duration::from_secs(5), Ev::Fault(s));
        }
        w
    }

    /// Makes every secret's service B ignore revocations, so that a test can show the
    /// revocation check firing.
    pub fn withhold_revocations(self) -> Self {
        for sw in &self.secrets {
            self.target
                .with_service(&sw.id, |d| d.withhold_revocations = true);
        }
        self
    }

    fn setup_fleet(&mut self, s: usize) {
        let state = self.snapshot(s);
        let start = self.start;
        let sw = &mut self.secrets[s];
        sw.views.push((start, state.clone()));
        sw.healed_at = vec![None; sw.sc.fleet_size];
        if let Some(current) = state.current() {
            sw.current_since.insert(current.clone(), start);
            let born = state.version(current).and_then(|v| v.created).unwrap_or(start);
            sw.last_current = Some((current.clone(), born));
        }
        let mut wakes = Vec::new();
        for i in 0..sw.sc.fleet_size {
            // Each instance's own longest refresh interval is at most R (drift included),
            // jittered down to half of it like the library's default; its own seed.
            let max = sw.sc.refresh.mul_f64(sw.fleet_rng.random_range(0.8..=1.0));
            let config = Config::builder(sw.sc.policy.gap)
                .refresh(max / 2, max)
                .read_lag(sw.sc.read_lag)
                .build()
                .unwrap_or_else(|e| panic!("instance {i}'s client configuration: {e}"));
            let cache = WindowCache::new(config, sw.fleet_rng.random());
            let source = SimSource {
                fail: false,
                labels: &state,
                store: &sw.inner,
                secret: &sw.id,
            };
            run_now(cache.refresh(&source, start))
                .unwrap_or_else(|e| panic!("instance {i}'s first refresh: {e}"));
            let wake = cache.next_wake();
            sw.fleet.instances.push(Instance { cache });
            // With replicas, every other instance reads the replica Region.
            let region = usize::from(sw.sc.replica_lag.is_some() && i % 2 == 1);
            sw.regions.push(region);
            wakes.push(wake);
        }
        for (i, wake) in wakes.into_iter().enumerate() {
            self.push_at(wake, Ev::Refresh { s, i });
        }
    }

    /// Runs to quiescence or to the convergence bound, and reports one result per
    /// secret.
    pub fn run(mut self) -> Vec<RunResult> {
        while let Some(((at, _), ev)) = self.queue.pop_first() {
            if at > self.limit() {
                break;
            }
            if !ev.is_periodic() {
                self.important -= 1;
            }
            self.clock.advance_to(at);
            let concerned = self.handle(ev);
            self.after_event(concerned);
            if self.quiescent() {
                break;
            }
        }
        self.finish()
    }

    /// The end of the run: the convergence bound after the latest start of any
    /// secret's rotations (generous for rotations not started yet).
    fn limit(&self) -> Timestamp {
        let mut limit = self.start;
        for sw in &self.secrets {
            let bound = sw.sc.convergence_bound();
            for r in &sw.rotations {
                let from = r.accepted.or(r.started).unwrap_or(r.due_start).max(r.due_start);
                let pad = if r.started.is_none() {
                    bound
                } else {
                    Duration::ZERO
                };
                limit = limit.max(from.plus(bound + pad));
            }
        }
        limit.min(self.hard_limit)
    }

    fn handle(&mut self, ev: Ev) -> Option<usize> {
        match ev {
            Ev::StartRotation { s, r } => {
                self.start_rotation(s, r);
                Some(s)
            }
            Ev::EngineAttempt { s, r } => {
                self.engine_attempt(s, r);
                Some(s)
            }
            Ev::EngineGiveUp { s, r, task } => {
                self.engine_give_up(s, r, task);
                Some(s)
            }
            Ev::Wake(id) => {
                let s = self.tasks.get(&id).map(|t| t.secret);
                self.poll(id);
                s
            }
            Ev::Fire(job) => {
                let s = self.secret_of(&job);
                self.fire(job);
                s
            }
            Ev::Deliver { job, attempt } => {
                let s = self.secret_of(&job);
                self.note(s, format!("deliver {} (attempt {attempt})", job.name));
                match s {
                    Some(s) => {
                        self.spawn(job.invocation.clone(), Owner::Delivery { job, attempt }, s);
                    }
                    None => self.note(None, format!("{} names no secret of this world", job.name)),
                }
                s
            }
            Ev::Strip { s, after_finish } => {
                self.engine_strip(s, after_finish);
                Some(s)
            }
            Ev::Operator { s, r } => {
                self.operator(s, r);
                Some(s)
            }
            Ev::Refresh { s, i } => {
                self.refresh(s, i);
                Some(s)
            }
            Ev::Operate(s) => {
                self.operate(s);
                Some(s)
            }
            Ev::Fault(s) => {
                self.inject_fault(s);
                Some(s)
            }
            Ev::Request { s, req, copy } => {
                self.send_request(s, req, copy);
                Some(s)
            }
            Ev::Heal { s, i, em, kid } => {
                self.heal_retry(s, i, em, kid);
                Some(s)
            }
        }
    }

    pub(crate) fn spawn(&mut self, inv: Invocation, owner: Owner, s: usize) -> TaskId {
        let id = self.insert_task(inv, owner, s);
        self.poll(id);
        id
    }

    /// Takes what the ports recorded: abandoned rotations (the engine reacts), refusals
    /// (counted), cross-talk (violations).
    pub(crate) fn drain_hub(&mut self) {
        let (abandoned, refused_writes, refused_schedules, cross_talk) = {
            let mut h = self.hub.state();
            (
                std::mem::take(&mut h.abandoned),
                std::mem::take(&mut h.refused_writes),
                std::mem::take(&mut h.refused_schedules),
                std::mem::take(&mut h.cross_talk),
            )
        };
        for (secret, n) in refused_writes {
            if let Some(&s) = self.index.get(&secret) {
                self.secrets[s].hits.refused_writes += n;
                self.note(
                    Some(s),
                    "engine: a PutSecretValue with another token than the rotation's was REFUSED (RotationToken does not match)".into(),
                );
            }
        }
        for (secret, n) in refused_schedules {
            if let Some(&s) = self.index.get(&secret) {
                self.secrets[s].hits.refused_schedules += n;
                self.note(
                    Some(s),
                    "scheduler: CreateSchedule REFUSED, its fire time is not in the future (ValidationException)"
                        .into(),
                );
            }
        }
        for (caller, line) in cross_talk {
            if let Some(&s) = self.index.get(&caller) {
                let now = self.now();
                self.secrets[s].cross_talk += 1;
                self.secrets[s]
                    .checker
                    .violations
                    .push(format!("{now}: cross-talk: {line}"));
                self.note(Some(s), format!("VIOLATION cross-talk: {line}"));
            }
        }
        for a in abandoned {
            if let Some(&s) = self.index.get(&a.secret) {
                self.engine_abandon(s, &a.token, &a.written);
            }
        }
    }

    /// A version's value (cached: values never change once written).
    pub(crate) fn value_of(&mut self, s: usize, version: &VersionId) -> Option<String> {
        let sw = &mut self.secrets[s];
        if let Some(v) = sw.values.get(version) {
            return Some(v.clone());
        }
        let value = sw.inner.value(&sw.id, version).ok().flatten()?;
        let value = value.expose().to_owned();
        sw.values.insert(version.clone(), value.clone());
        Some(value)
    }

    // ---- small helpers ----

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn rel(&self, t: Timestamp) -> String {
        format!("{:.3}s", t.millis_since(self.start) as f64 / 1000.0)
    }

    pub(crate) fn snapshot(&self, s: usize) -> SecretState {
        let sw = &self.secrets[s];
        sw.inner
            .snapshot(&sw.id)
            .unwrap_or_else(|e| panic!("the simulated secret vanished: {e}"))
    }

    pub(crate) fn rand_secs(&mut self, lo: f64, hi: f64) -> Duration {
        Duration::from_secs_f64(if hi > lo {
            self.rng.random_range(lo..hi)
        } else {
            lo
        })
    }

    pub(crate) fn push_in(&mut self, after: Duration, ev: Ev) {
        let at = self.now().plus(after);
        self.push_at(at, ev);
    }

    pub(crate) fn push_at(&mut self, at: Timestamp, ev: Ev) {
        if !ev.is_periodic() {
            self.important += 1;
        }
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    pub(crate) fn note(&mut self, s: Option<usize>, line: String) {
        if self.trace.is_some() {
            let mut stamp = format!("[+{:>10}] ", self.rel(self.now()));
            if self.secrets.len() > 1
                && let Some(s) = s
            {
                let _ = write!(stamp, "[s{s}] ");
            }
            if let Some(t) = self.trace.as_mut() {
                let _ = write!(stamp, "{line}");
                t.push(stamp);
            }
        }
    }

    pub(crate) fn insert_engine_task(&mut self, inv: Invocation, owner: Owner, s: usize) -> TaskId {
        self.insert_task(inv, owner, s)
    }

    pub(crate) fn poll_task(&mut self, id: TaskId) {
        self.poll(id);
    }

    /// Inserts a prepared task (an operator's request) and polls it once.
    pub(crate) fn spawn_task(&mut self, task: Task<TaskOut>, owner: Owner, s: usize) -> TaskId {
        let id = self.next_task;
        self.next_task += 1;
        self.tasks.insert(
            id,
            TaskEntry {
                task,
                owner,
                secret: s,
            },
        );
        self.poll(id);
        id
    }

    /// The id the next task will get.
    pub(crate) fn next_task_id(&self) -> TaskId {
        self.next_task
    }
}

/// The custom label an operator removes in a run with that action.
pub(crate) const OPS_OWNER: &str = "OPS_OWNER";

/// A version id shaped like the engine's UUID tokens.
pub(crate) fn token(rng: &mut ChaCha8Rng) -> VersionId {
    let h = format!("{:032x}", rng.random::<u128>());
    VersionId::new(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// No ROTATING anywhere and AWSPENDING on the current version or on none.
pub(crate) fn is_clean(state: &SecretState) -> bool {
    state.holder(ROTATING).is_none() && state.holder(AWSPENDING).is_none_or(|p| state.has(p, AWSCURRENT))
}

/// Runs one single-secret seed.
pub fn run_seed(sc: Scenario, trace: bool) -> RunResult {
    World::new(vec![sc], trace)
        .run()
        .pop()
        .unwrap_or_else(|| panic!("a world of one secret reports one result"))
}

/// Runs one many-secrets world; one result per secret (the trace on the first).
pub fn run_world(scenarios: Vec<Scenario>, trace: bool) -> Vec<RunResult> {
    World::new(scenarios, trace).run()
}
