//! One seeded run: a discrete-event loop over virtual time.
//!
//! The world holds the in-memory Secrets Manager, the rotation engine model (RotateSecret
//! makes the value-less placeholder, then the four steps run one after another; a failed
//! step fails the attempt and the engine retries later from createSecret with the same
//! token), the scheduler and Lambda delivery model (a job fires anywhere inside its
//! minute, may be delivered twice, late, or lost and re-delivered; a failed asynchronous
//! invocation is retried twice, a minute then two minutes later), and the fleet.
//! Invocations are keyshift's real executor, polled as tasks; the world jumps virtual time
//! to the next event or wake-up and checks every invariant after each event.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use keyshift::event::Step;
use keyshift::memory::{Fault, MemorySecretsManager, Op};
use keyshift::ports::{Clock, Job, StoreErrorKind};
use keyshift::secret::{AWSCURRENT, AWSPENDING, ROTATING};
use keyshift::{Executor, Invocation, SecretId, SecretState, SecretValue, Timestamp, VersionId};
use keyshift_client::{Config, Health, WindowCache};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checker::Checker;
use crate::clock::{SimClock, Task, poll_once};
use crate::control::one_step;
use crate::fleet::{Failure, Fleet, Instance, SimSource, run_now};
use crate::ports::{SharedRng, SimScheduler, SimStore, SimTarget};
use crate::scenario::{FaultClass, Scenario, Strategy};

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The scenario it ran.
    pub scenario: Scenario,
    /// Rotations started.
    pub rotations: usize,
    /// Rotations whose new version became AWSCURRENT and whose secret ended clean, within
    /// the bound.
    pub converged: usize,
    /// Consumer operations attempted.
    pub operations: u64,
    /// Consumer operations that failed.
    pub failed_operations: u64,
    /// Invariant violations, as sentences (empty when the run is correct).
    pub violations: Vec<String>,
    /// Overshoot of each gap over T, in ms.
    pub overshoots_ms: Vec<i64>,
    /// Follow-ups that exhausted Lambda's retries (dead-letter queue).
    pub dead_letters: u64,
    /// The event trace (only when asked for).
    pub trace: Vec<String>,
}

impl RunResult {
    /// Whether the run broke nothing.
    pub fn ok(&self) -> bool {
        self.failed_operations == 0 && self.violations.is_empty() && self.converged == self.rotations
    }
}

type TaskOut = Result<String, String>;
type TaskId = u64;

#[derive(Debug, Clone)]
enum Owner {
    Engine { rotation: usize, step: usize },
    Delivery { job: Job, attempt: u32 },
}

#[derive(Debug, Clone)]
enum Ev {
    StartRotation(usize),
    EngineAttempt(usize),
    EngineGiveUp { rotation: usize, task: TaskId },
    Wake(TaskId),
    Fire(Job),
    Deliver { job: Job, attempt: u32 },
    Strip,
    Refresh(usize),
    Operate,
    Fault,
}

impl Ev {
    /// Periodic events keep happening forever; the run may end with them queued.
    fn is_periodic(&self) -> bool {
        matches!(self, Ev::Refresh(_) | Ev::Operate | Ev::Fault)
    }
}

struct Rotation {
    token: VersionId,
    started: Option<Timestamp>,
    engine_task: Option<TaskId>,
    attempts: u32,
    became_current: Option<Timestamp>,
}

const ENGINE_STEPS: [Step; 4] = [
    Step::CreateSecret,
    Step::SetSecret,
    Step::TestSecret,
    Step::FinishSecret,
];
const MAX_ENGINE_ATTEMPTS: u32 = 8;

type SimExecutor = Executor<SimStore, SimScheduler, SimClock, SimTarget>;

/// The state of one run.
pub struct World {
    sc: Scenario,
    rng: ChaCha8Rng,
    /// The fleet's own stream (instance configurations, jitter seeds, read lags), so that
    /// a seed's faults and deliveries do not depend on how often consumers refresh.
    fleet_rng: ChaCha8Rng,
    clock: SimClock,
    start: Timestamp,
    secret: SecretId,
    store: SimStore,
    scheduler: SimScheduler,
    target: SimTarget,
    executor: Arc<SimExecutor>,
    queue: BTreeMap<(Timestamp, u64), Ev>,
    seq: u64,
    important: usize,
    tasks: BTreeMap<TaskId, (Task<TaskOut>, Owner)>,
    next_task: TaskId,
    rotations: Vec<Rotation>,
    fleet: Fleet,
    views: Vec<(Timestamp, SecretState)>,
    checker: Checker,
    faults: u32,
    operations: u64,
    failed: u64,
    dead_letters: u64,
    trace: Option<Vec<String>>,
}

impl World {
    /// Sets up `sc`: a secret with one version, the fleet's first views, and the first
    /// rotation queued.
    pub fn new(sc: Scenario, trace: bool) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(sc.seed);
        let start = Timestamp::parse_rfc3339("2026-11-24T00:00:00Z")
            .unwrap_or(Timestamp::EPOCH)
            .plus(Duration::from_millis(rng.random_range(0..60_000)));
        let clock = SimClock::new(start);
        let ports_rng = SharedRng::new(sc.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let inner = Arc::new(MemorySecretsManager::new(clock.reader()));
        let secret = SecretId::new(format!(
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:sim-{}-AbCdEf",
            sc.seed
        ));
        let first = token(&mut rng);
        let initial = SecretValue::new(format!("value-initial-{}", sc.seed));
        inner
            .create_secret(&secret, &first, initial.clone())
            .and_then(|()| inner.set_rotation_enabled(&secret, true))
            .unwrap_or_else(|e| panic!("setting up the simulated secret: {e}"));
        let store = SimStore::new(
            Arc::clone(&inner),
            clock.clone(),
            ports_rng.clone(),
            sc.latency_ms,
        );
        let scheduler = SimScheduler::default();
        let target = SimTarget::new(ports_rng, &initial);
        let executor = Arc::new(Executor::new(
            store.clone(),
            scheduler.clone(),
            clock.clone(),
            target.clone(),
            sc.policy,
        ));
        let rotations = (0..sc.rotations)
            .map(|_| Rotation {
                token: token(&mut rng),
                started: None,
                engine_task: None,
                attempts: 0,
                became_current: None,
            })
            .collect();
        let check_gaps = sc.strategy == Strategy::Keyshift;
        let mut w = World {
            checker: Checker::new(sc.policy.gap, check_gaps),
            rng,
            fleet_rng: ChaCha8Rng::seed_from_u64(sc.seed ^ 0xf1ee_7000_c11e_0000),
            clock,
            start,
            secret,
            store,
            scheduler,
            target,
            executor,
            queue: BTreeMap::new(),
            seq: 0,
            important: 0,
            tasks: BTreeMap::new(),
            next_task: 0,
            rotations,
            fleet: Fleet::default(),
            views: Vec::new(),
            faults: 0,
            operations: 0,
            failed: 0,
            dead_letters: 0,
            trace: trace.then(Vec::new),
            sc,
        };
        w.setup_fleet();
        let first_start = w.rand_secs(0.0, w.sc.refresh.as_secs_f64());
        w.push_in(first_start, Ev::StartRotation(0));
        w.push_in(Duration::from_secs(1), Ev::Operate);
        w.push_in(Duration::from_secs(5), Ev::Fault);
        w
    }

    fn setup_fleet(&mut self) {
        let state = self.snapshot();
        self.views.push((self.start, state.clone()));
        for i in 0..self.sc.fleet_size {
            // Each instance's own longest refresh interval is at most R (drift included),
            // jittered down to half of it like the library's default; its own seed.
            let max = self.sc.refresh.mul_f64(self.fleet_rng.random_range(0.8..=1.0));
            let config = Config::builder(self.sc.policy.gap)
                .refresh(max / 2, max)
                .read_lag(self.sc.read_lag)
                .build()
                .unwrap_or_else(|e| panic!("instance {i}'s client configuration: {e}"));
            let cache = WindowCache::new(config, self.fleet_rng.random());
            let source = SimSource {
                fail: false,
                labels: &state,
                store: &self.store.inner,
                secret: &self.secret,
            };
            run_now(cache.refresh(&source, self.start))
                .unwrap_or_else(|e| panic!("instance {i}'s first refresh: {e}"));
            let wake = cache.next_wake();
            self.fleet.instances.push(Instance { cache });
            self.push_at(wake, Ev::Refresh(i));
        }
    }

    /// Runs to quiescence or to the convergence bound, and reports.
    pub fn run(mut self) -> RunResult {
        let mut limit = self.start.plus(self.sc.convergence_bound() * 2);
        while let Some(((at, _), ev)) = self.queue.pop_first() {
            if at > limit {
                break;
            }
            if !ev.is_periodic() {
                self.important -= 1;
            }
            self.clock.advance_to(at);
            self.handle(ev);
            self.after_event();
            if let Some(last_start) = self.rotations.last().and_then(|r| r.started) {
                limit = limit.min(last_start.plus(self.sc.convergence_bound()));
                if self.quiescent() {
                    break;
                }
            }
        }
        self.finish()
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::StartRotation(r) => {
                self.rotations[r].started = Some(self.now());
                self.note(format!(
                    "rotation {r} starts with token {}",
                    self.rotations[r].token
                ));
                self.push_in(Duration::ZERO, Ev::EngineAttempt(r));
            }
            Ev::EngineAttempt(r) => self.engine_attempt(r),
            Ev::EngineGiveUp { rotation, task } => {
                if self.rotations[rotation].engine_task == Some(task) {
                    self.note(format!(
                        "engine gives up waiting on task {task}; will retry the rotation"
                    ));
                    self.rotations[rotation].engine_task = None;
                    let retry = self.rand_secs(60.0, 300.0);
                    self.push_in(retry, Ev::EngineAttempt(rotation));
                }
            }
            Ev::Wake(id) => self.poll(id),
            Ev::Fire(job) => self.fire(job),
            Ev::Deliver { job, attempt } => {
                self.note(format!("deliver {} (attempt {attempt})", job.name));
                self.spawn(job.invocation.clone(), Owner::Delivery { job, attempt });
            }
            Ev::Strip => {
                let state = self.snapshot();
                if let Some(p) = state.holder(AWSPENDING).filter(|p| !state.has(p, AWSCURRENT)) {
                    let p = p.clone();
                    self.store.inner.strip_label(&self.secret, AWSPENDING);
                    self.note(format!("FAULT engine strips AWSPENDING from {p}"));
                }
            }
            Ev::Refresh(i) => self.refresh(i),
            Ev::Operate => self.operate(),
            Ev::Fault => self.inject_fault(),
        }
    }

    fn engine_attempt(&mut self, r: usize) {
        let rot = &mut self.rotations[r];
        if rot.engine_task.is_some() {
            return;
        }
        rot.attempts += 1;
        if rot.attempts > MAX_ENGINE_ATTEMPTS {
            self.note(format!(
                "engine gives up rotation {r} after {MAX_ENGINE_ATTEMPTS} attempts"
            ));
            return;
        }
        let token = rot.token.clone();
        match self.store.inner.begin_rotation(&self.secret, &token) {
            Ok(()) => {
                self.note(format!(
                    "engine: RotateSecret placeholder {token}; invoking createSecret"
                ));
                self.engine_step(r, 0);
            }
            Err(e) => {
                self.note(format!("engine: RotateSecret refused ({e}); retrying later"));
                let retry = self.rand_secs(120.0, 600.0);
                self.push_in(retry, Ev::EngineAttempt(r));
            }
        }
    }

    fn engine_step(&mut self, r: usize, step: usize) {
        let inv = Invocation {
            step: ENGINE_STEPS[step].clone(),
            secret_id: self.secret.clone(),
            token: self.rotations[r].token.clone(),
            rotation_token: None,
            schedule: None,
        };
        let id = self.insert_task(inv, Owner::Engine { rotation: r, step });
        self.rotations[r].engine_task = Some(id);
        if let Some(timeout) = self.sc.engine_timeout {
            self.push_in(
                timeout,
                Ev::EngineGiveUp {
                    rotation: r,
                    task: id,
                },
            );
        }
        self.poll(id);
    }

    fn fire(&mut self, job: Job) {
        // ActionAfterCompletion DELETE: a job that was deleted (cancelled) never fires; one
        // that fires is deleted.
        if self.scheduler.state().live.remove(&job.name).is_none() {
            self.note(format!("{} was deleted before it fired", job.name));
            return;
        }
        let class = self.sc.class;
        if class.has(FaultClass::LostDelivery) && self.rng.random_bool(0.5) {
            let after = self.rand_secs(60.0, 300.0);
            self.note(format!(
                "FAULT delivery of {} lost; re-delivered in {after:?}",
                job.name
            ));
            self.push_in(after, Ev::Deliver { job, attempt: 0 });
            return;
        }
        if class.has(FaultClass::DuplicateDelivery) && self.rng.random_bool(0.5) {
            let after = self.rand_secs(0.0, 180.0);
            self.note(format!(
                "FAULT {} will be delivered twice (again in {after:?})",
                job.name
            ));
            self.push_in(
                after,
                Ev::Deliver {
                    job: job.clone(),
                    attempt: 0,
                },
            );
        }
        self.push_in(Duration::ZERO, Ev::Deliver { job, attempt: 0 });
    }

    fn spawn(&mut self, inv: Invocation, owner: Owner) {
        let id = self.insert_task(inv, owner);
        self.poll(id);
    }

    fn insert_task(&mut self, inv: Invocation, owner: Owner) -> TaskId {
        let id = self.next_task;
        self.next_task += 1;
        self.note(format!("invoke {} {} (task {id})", inv.step.name(), inv.token));
        let task: Task<TaskOut> = match self.sc.strategy {
            Strategy::Keyshift => {
                let ex = Arc::clone(&self.executor);
                Box::pin(async move {
                    ex.handle(&inv)
                        .await
                        .map(|r| r.outcome.to_string())
                        .map_err(|e| e.to_string())
                })
            }
            Strategy::OneStep => Box::pin(one_step(self.store.clone(), self.target.clone(), inv)),
        };
        self.tasks.insert(id, (task, owner));
        id
    }

    fn poll(&mut self, id: TaskId) {
        let Some((mut task, owner)) = self.tasks.remove(&id) else {
            return;
        };
        match poll_once(&mut task, &self.clock) {
            Err(wake) => {
                self.tasks.insert(id, (task, owner));
                self.push_at(wake, Ev::Wake(id));
            }
            Ok(out) => self.task_done(id, owner, out),
        }
        self.drain_scheduler();
    }

    fn task_done(&mut self, id: TaskId, owner: Owner, out: TaskOut) {
        match &out {
            Ok(o) => self.note(format!("task {id} ok: {o}")),
            Err(e) => self.note(format!("task {id} failed: {e}")),
        }
        match owner {
            Owner::Engine { rotation, step } => {
                let rot = &mut self.rotations[rotation];
                if rot.engine_task != Some(id) {
                    return; // the engine gave up on this one and moved on
                }
                rot.engine_task = None;
                match out {
                    Ok(_) if step + 1 < ENGINE_STEPS.len() => self.engine_step(rotation, step + 1),
                    Ok(_) => {
                        // The backend "cleans up the pending label on rotation completion":
                        // shortly after finishSecret succeeded, if it is still on a
                        // version that is not current.
                        if self.sc.class.has(FaultClass::EngineStrip) && self.rng.random_bool(0.8) {
                            let after = self.rand_secs(0.0, 5.0);
                            self.push_in(after, Ev::Strip);
                        }
                    }
                    Err(_) => {
                        let retry = self.rand_secs(60.0, 600.0);
                        self.push_in(retry, Ev::EngineAttempt(rotation));
                    }
                }
            }
            Owner::Delivery { job, attempt } => {
                if out.is_err() {
                    if attempt < 2 {
                        let after = Duration::from_secs(60 * u64::from(attempt + 1));
                        self.push_in(
                            after,
                            Ev::Deliver {
                                job,
                                attempt: attempt + 1,
                            },
                        );
                    } else {
                        self.note(format!(
                            "{} exhausted Lambda's retries: dead-letter queue",
                            job.name
                        ));
                        self.dead_letters += 1;
                    }
                }
            }
        }
    }

    /// Turns newly created schedules into firing times: anywhere inside the minute of
    /// `fire_at`, plus minutes when deliveries run late.
    fn drain_scheduler(&mut self) {
        let jobs = std::mem::take(&mut self.scheduler.state().outbox);
        let precision = self.sc.policy.precision;
        for job in jobs {
            let mut at = job.fire_at.floor_to(precision).plus(Duration::from_millis(
                self.rng.random_range(0..precision.as_millis() as u64),
            ));
            if self.sc.class.has(FaultClass::LateDelivery) && self.rng.random_bool(0.5) {
                let late = self.rand_secs(60.0, 900.0);
                self.note(format!("FAULT {} will fire {late:?} late", job.name));
                at = at.plus(late);
            }
            self.note(format!(
                "scheduled {} {} for {} (fires at +{})",
                job.invocation.step.name(),
                job.name,
                job.fire_at,
                self.rel(at)
            ));
            self.push_at(at.max(self.now()), Ev::Fire(job));
        }
    }

    fn refresh(&mut self, i: usize) {
        let now = self.now();
        let cache = self.fleet.instances[i].cache.clone();
        cache.handle_timeout(now);
        if cache.refresh_due(now) {
            let lag = Duration::from_millis(
                self.fleet_rng
                    .random_range(0..=self.sc.read_lag.as_millis() as u64),
            );
            let read_at = now.minus(lag);
            // The newest state at or before `read_at` (eventually consistent reads).
            let labels = self
                .views
                .iter()
                .rev()
                .find(|(t, _)| *t <= read_at)
                .unwrap_or(&self.views[0])
                .1
                .clone();
            // Brief outages of the fleet's own reads: at most two failures in a row,
            // so that the view stays younger than T (R + two retries + the read lag).
            let failures = match cache.view().map(|v| v.health()) {
                Ok(Health::Stale { failures, .. }) => failures,
                _ => 0,
            };
            let fail =
                self.sc.class.has(FaultClass::StoreErrors) && failures < 2 && self.fleet_rng.random_bool(0.2);
            let source = SimSource {
                fail,
                labels: &labels,
                store: &self.store.inner,
                secret: &self.secret,
            };
            if let Err(e) = run_now(cache.refresh(&source, now)) {
                self.note(format!("instance {i}: refresh failed: {e}"));
            }
        }
        self.push_at(
            cache.next_wake().max(now.plus(Duration::from_millis(1))),
            Ev::Refresh(i),
        );
        if self.sc.strategy == Strategy::Keyshift {
            let downstream = self
                .target
                .downstream
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .valid
                .clone();
            if let Some(f) = self.fleet.broken_pairs(&downstream).first() {
                let msg = format!("{now}: consumer contract broken after instance {i} refreshed: {f:?}");
                self.checker.violations.push(msg);
            }
        }
    }

    fn operate(&mut self) {
        let n = self.fleet.instances.len();
        let (p, c) = (self.rng.random_range(0..n), self.rng.random_range(0..n));
        let downstream = self
            .target
            .downstream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .valid
            .clone();
        self.operations += 1;
        if let Err(f) = self.fleet.operate(p, c, &downstream) {
            self.failed += 1;
            if self.failed <= 3 {
                self.note(format!("FAILED consumer operation: {f:?}"));
            }
            if let Failure::NothingToUse { .. } = f {
                self.checker.violations.push(format!("{}: {f:?}", self.now()));
            }
        }
        let mean = (self.sc.refresh.as_secs_f64() / 20.0).max(0.5);
        let next = self.rand_secs(mean * 0.5, mean * 1.5);
        self.push_in(next, Ev::Operate);
    }

    fn inject_fault(&mut self) {
        if self.faults >= self.sc.max_faults || self.rotations.iter().all(|r| r.became_current.is_some()) {
            return;
        }
        let class = self.sc.class;
        let ops = [Op::Describe, Op::GetValue, Op::PutPending, Op::UpdateStage];
        let mut injected = Vec::new();
        if class.has(FaultClass::StoreErrors) && self.rng.random_bool(0.5) {
            let op = ops[self.rng.random_range(0..ops.len())];
            self.store.inner.inject(Fault::FailNext {
                op,
                kind: StoreErrorKind::Transient,
            });
            injected.push(format!("{op:?} fails next"));
        }
        if class.has(FaultClass::LostResponses) && self.rng.random_bool(0.5) {
            let op = [Op::PutPending, Op::UpdateStage][self.rng.random_range(0..2)];
            self.store.inner.inject(Fault::LoseResponse { op });
            injected.push(format!("{op:?} response lost next"));
        }
        if class.has(FaultClass::Throttling) && self.rng.random_bool(0.5) {
            let calls = self.rng.random_range(1..=3);
            self.store.inner.inject(Fault::Throttle { op: None, calls });
            injected.push(format!("{calls} calls throttled"));
        }
        if class.has(FaultClass::SchedulerErrors) && self.rng.random_bool(0.5) {
            self.scheduler.state().fail_next_creates += 1;
            injected.push("CreateSchedule fails next".into());
        }
        if class.has(FaultClass::EngineStrip) && self.rng.random_bool(0.2) {
            // A strip at any moment, behind everyone's back.
            self.push_in(Duration::ZERO, Ev::Strip);
            injected.push("AWSPENDING stripped at a random moment".into());
        }
        if class.has(FaultClass::EngineStepFailures) && self.rng.random_bool(0.3) {
            self.target
                .downstream
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .fail_next += 1;
            injected.push("service B refuses next set/test".into());
        }
        if !injected.is_empty() {
            self.faults += injected.len() as u32;
            self.note(format!("FAULT {}", injected.join(", ")));
        }
        let next = self.rand_secs(5.0, 60.0);
        self.push_in(next, Ev::Fault);
    }

    fn after_event(&mut self) {
        let state = self.snapshot();
        if self.views.last().is_none_or(|(_, s)| *s != state) {
            self.views.push((self.now(), state.clone()));
            if self.views.len() > 256 {
                self.views.drain(..128);
            }
        }
        let history = self.store.inner.history(&self.secret);
        let before = self.checker.violations.len();
        self.checker.observe(&history, &state, self.now());
        if self.trace.is_some() {
            for v in &self.checker.violations[before..].to_vec() {
                self.note(format!("VIOLATION {v}"));
            }
        }
        let now = self.now();
        for r in 0..self.rotations.len() {
            if self.rotations[r].became_current.is_none()
                && chain_is_current(&state, &self.rotations[r].token)
            {
                self.rotations[r].became_current = Some(now);
                self.note(format!("rotation {r}: new version is AWSCURRENT"));
                if r + 1 < self.rotations.len() {
                    let after = self.rand_secs(0.0, 2.0 * self.sc.policy.gap.as_secs_f64());
                    self.push_in(after, Ev::StartRotation(r + 1));
                }
            }
        }
    }

    fn quiescent(&self) -> bool {
        self.important == 0
            && self.tasks.is_empty()
            && self.rotations.iter().all(|r| r.became_current.is_some())
            && is_clean(&self.snapshot())
    }

    fn finish(mut self) -> RunResult {
        let state = self.snapshot();
        for (id, v) in &state.versions {
            let line = format!(
                "final: version {id} labels {:?} value since {:?}",
                v.stages, v.created
            );
            self.note(line);
        }
        let clean = is_clean(&state);
        let bound = self.sc.convergence_bound();
        let mut converged = 0;
        for (i, r) in self.rotations.iter().enumerate() {
            let in_time = match (r.started, r.became_current) {
                (Some(s), Some(c)) => c.since(s) <= bound,
                _ => false,
            };
            let last = i + 1 == self.rotations.len();
            if in_time && (!last || clean) {
                converged += 1;
            } else {
                self.checker.violations.push(format!(
                    "rotation {i} did not converge within {bound:?} (current: {:?}, clean: {clean})",
                    state.current()
                ));
            }
        }
        if self.dead_letters > 0 {
            self.checker.violations.push(format!(
                "{} follow-ups ended in the dead-letter queue",
                self.dead_letters
            ));
        }
        let overshoots_ms = self.checker.overshoots_ms().into_iter().map(|(_, o)| o).collect();
        RunResult {
            rotations: self.rotations.len(),
            converged,
            operations: self.operations,
            failed_operations: self.failed,
            violations: self.checker.violations,
            overshoots_ms,
            dead_letters: self.dead_letters,
            trace: self.trace.unwrap_or_default(),
            scenario: self.sc,
        }
    }

    // ---- small helpers ----

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn rel(&self, t: Timestamp) -> String {
        format!("{:.3}s", t.millis_since(self.start) as f64 / 1000.0)
    }

    fn snapshot(&self) -> SecretState {
        self.store
            .inner
            .snapshot(&self.secret)
            .unwrap_or_else(|e| panic!("the simulated secret vanished: {e}"))
    }

    fn rand_secs(&mut self, lo: f64, hi: f64) -> Duration {
        Duration::from_secs_f64(if hi > lo {
            self.rng.random_range(lo..hi)
        } else {
            lo
        })
    }

    fn push_in(&mut self, after: Duration, ev: Ev) {
        let at = self.now().plus(after);
        self.push_at(at, ev);
    }

    fn push_at(&mut self, at: Timestamp, ev: Ev) {
        if !ev.is_periodic() {
            self.important += 1;
        }
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn note(&mut self, line: String) {
        if self.trace.is_some() {
            let stamp = format!("[+{:>10}] ", self.rel(self.now()));
            if let Some(t) = self.trace.as_mut() {
                let mut s = stamp;
                let _ = write!(s, "{line}");
                t.push(s);
            }
        }
    }
}

/// A version id shaped like the engine's UUID tokens.
fn token(rng: &mut ChaCha8Rng) -> VersionId {
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

/// Whether `token` or one of keyshift's copies of it is AWSCURRENT.
fn chain_is_current(state: &SecretState, token: &VersionId) -> bool {
    state.current().is_some_and(|c| SecretState::in_chain(c, token))
}

/// No ROTATING anywhere and AWSPENDING on the current version or on none.
fn is_clean(state: &SecretState) -> bool {
    state.holder(ROTATING).is_none() && state.holder(AWSPENDING).is_none_or(|p| state.has(p, AWSCURRENT))
}

/// Runs one seed.
pub fn run_seed(sc: Scenario, trace: bool) -> RunResult {
    World::new(sc, trace).run()
}
