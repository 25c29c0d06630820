//! The operator's requests: `emergencyRotate`, `cancel` and `redrive` sent
//! through keyshift's real [`keyshift::Executor::operate`], with the world's store,
//! scheduler, clock and target, at a random moment of the first rotation (while the
//! engine's steps run, between finishSecret and the first follow-up, in the first gap,
//! in the second gap), overlapping with the engine's retries and the scheduler's
//! duplicate, late and lost deliveries; sometimes sent twice, and sent again by the
//! operator after an error that is not a refusal.
//!
//! # What is checked
//!
//! * **Emergencies.** The world sees a cut when AWSCURRENT moves to a value no rotation
//!   owns while an emergency has been asked for; the version that lost AWSCURRENT is the
//!   compromised one. From the cut on, its value may be carried by no accepted label,
//!   except ROTATING on that version when the operator kept accepting it, and AWSPENDING
//!   the engine itself re-attached to its rotation's token while that engine run lasts;
//!   service B may accept it only while the emergency is still being handled or kept.
//!   AWSCURRENT never moves to a value first stored before the one it replaces (in any
//!   run).
//! * **Cancels.** A rotation whose cancel took effect (its token carries keyshift's cancel
//!   marker) never becomes current afterwards; the engine's next rotation runs and
//!   completes (convergence, in [`crate::world`]).
//! * **Consumers.** A failed operation is *by design* only if an emergency caused it
//!   after its cut, in one of three ways ([`Cause`]): the producer used the compromised
//!   version; the consumer had not seen the cut yet and missed the new key id; or the
//!   producer used the version the emergency released early from its second gap (the
//!   core releases it before the cut; a failure on it from that release on). Every other
//!   failure fails the run, as before. A miss healed by keyshift-client's refresh-on-miss
//!   inside the operation is no failure when it is by design, and a failure when not.
//! * **The failure window.** Per emergency, from the cut to its last by-design failure
//!   (reported next to R). Per instance, from its first by-design failure to its
//!   recovery (its view shows the cut): it must stay within one refresh round trip
//!   ([`crate::scenario::Scenario::round_trip`]), not R. In a fleet that refreshes on a
//!   miss, a failing instance does what keyshift-client offers: a consumer that misses a
//!   key id calls `fetch_accepted` (or `fetch_version`), a producer whose operation was
//!   refused refreshes its cache; and, as an application retrying its failed request,
//!   does so again once the client's miss interval allows until its view shows the cut.
//!   A fleet without refresh-on-miss waits for its scheduled refresh, up to R, and the
//!   check fails it.

use std::collections::BTreeMap;
use std::time::Duration;

use keyshift::decide::Rejection;
use keyshift::event::{Operation, OperatorRequest};
use keyshift::memory::{Change, ChangeKind, MemorySecretsManager};
use keyshift::secret::{ACCEPTED_STAGES, AWSCURRENT, AWSPENDING, ROTATING};
use keyshift::{ExecError, SecretId, SecretState, Timestamp, VersionId};
use keyshift_client::{Config, WindowCache};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::checker::GapKind;
use crate::clock::Task;
use crate::fleet::{Failure, Heal, SimSource, run_now};
use crate::scenario::{RequestKind, RequestPhase};
use crate::world::{Ev, Owner, SecretWorld, TaskId, TaskOut, World};

/// How often the operator sends a request again after an error that is not a refusal
/// (a store error, a write refused during the engine's rotation), at most.
pub const MAX_ATTEMPTS: u32 = 5;

/// One request as the operator sent it, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Which request.
    pub kind: RequestKind,
    /// 0: the request; 1: the same request sent again.
    pub copy: u8,
    /// Where the secret's latest rotation stood when it was first sent.
    pub phase: RequestPhase,
    /// When it was first sent.
    pub sent: Timestamp,
    /// How often it was sent (1, or more after errors).
    pub attempts: u32,
    /// How it ended: the outcome's name (`emergency-done`, `cancelled`, ...), or
    /// `refused: ...` / `failed: ...`. `None` while in flight.
    pub outcome: Option<String>,
    /// Whether the core refused it (a [`Rejection`]: nothing changed).
    pub refused: bool,
}

/// Why a failed operation after an emergency's cut is by design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// The producer used the compromised version (stale view), or the consumer checked
    /// something made with it.
    Compromised,
    /// The consumer had not seen the cut and did not find the new key id.
    StaleView,
    /// The producer used the version the emergency released from its second gap early.
    EarlyRelease,
}

impl Cause {
    /// Every cause, in report order.
    pub const EVERY: [Cause; 3] = [Cause::Compromised, Cause::StaleView, Cause::EarlyRelease];

    /// The report name.
    pub fn name(self) -> &'static str {
        match self {
            Cause::Compromised => "compromised version used",
            Cause::StaleView => "consumer had not seen the cut",
            Cause::EarlyRelease => "version released early",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One spell of an instance's by-design failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceWindow {
    /// Its first by-design failure.
    pub first: Timestamp,
    /// Its last.
    pub last: Timestamp,
    /// How many.
    pub failures: u32,
    /// When its view first showed the cut (or, for a failure on a version released
    /// early before the cut, a current version newer than the released one) after its
    /// first failure.
    pub recovered: Option<Timestamp>,
}

impl InstanceWindow {
    /// From the first failure to the recovery (or to `end`, if it never recovered).
    pub fn length(&self, end: Timestamp) -> Duration {
        self.recovered.unwrap_or(end).since(self.first)
    }
}

/// One emergency of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct EmergencyRecord {
    /// `GapSeconds` asked for.
    pub gap: Duration,
    /// `KeepAcceptingSeconds` asked for.
    pub keep: Option<Duration>,
    /// The version that lost AWSCURRENT at the cut, and its value.
    pub compromised: Option<(VersionId, String)>,
    /// The new AWSCURRENT, and its value.
    pub new: Option<(VersionId, String)>,
    /// When AWSCURRENT moved.
    pub cut: Option<Timestamp>,
    /// Versions that lost ROTATING from their second gap while the emergency was being
    /// handled, and when.
    pub released_early: Vec<(VersionId, Timestamp)>,
    /// Since when the version current at the early release was current: before the
    /// cut, a view whose current is at least that new no longer uses the released one.
    pub current_at_release: Option<Timestamp>,
    /// By-design failed operations, by cause ([`Cause::EVERY`] order).
    pub by_design: [u64; 3],
    /// By-design misses healed by refresh-on-miss inside the operation.
    pub healed: u64,
    /// The last by-design failure.
    pub last_failure: Option<Timestamp>,
    /// Per instance: its spells of failures, each with its recovery.
    pub windows: BTreeMap<usize, Vec<InstanceWindow>>,
    /// R of the run.
    pub refresh: Duration,
    /// The bound each instance's window is held to.
    pub round_trip: Duration,
    /// When the run ended (closes windows that never recovered).
    pub ended: Option<Timestamp>,
}

impl EmergencyRecord {
    /// From the cut to the last by-design failure (zero when nothing failed), if it cut.
    pub fn window(&self) -> Option<Duration> {
        let cut = self.cut?;
        Some(self.last_failure.map_or(Duration::ZERO, |l| l.since(cut)))
    }

    /// Each failing instance's window.
    pub fn instance_windows(&self) -> Vec<Duration> {
        let end = self.ended.unwrap_or(Timestamp::EPOCH);
        self.windows.values().flatten().map(|w| w.length(end)).collect()
    }

    /// How new a view's current version must be (since when it was current) for an
    /// instance to have recovered: the cut, or before it the early release's.
    fn recovery_threshold(&self) -> Option<Timestamp> {
        self.cut.or(self.current_at_release)
    }

    /// By-design failed operations, all causes.
    pub fn failures(&self) -> u64 {
        self.by_design.iter().sum()
    }
}

/// A lookup that missed in an operation, and whether refresh-on-miss found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    /// The consumer.
    pub consumer: usize,
    /// The key id looked up.
    pub kid: VersionId,
    /// The consumer's current version before the refresh.
    pub before: Option<VersionId>,
    /// Whether the second lookup found it.
    pub found: bool,
    /// Why not, if it did not.
    pub why: Option<String>,
}

/// The world's side of a miss: keyshift-client's `fetch_accepted` / `fetch_version`
/// through a source that reads the store as it was up to the read lag ago (replica
/// instances a replication lag more), as every refresh of the fleet does.
pub struct SimHeal<'a> {
    /// Now.
    pub now: Timestamp,
    /// The store's states so far.
    pub views: &'a [(Timestamp, SecretState)],
    /// The store, for values.
    pub store: &'a MemorySecretsManager,
    /// The secret.
    pub secret: &'a SecretId,
    /// The fleet's stream (the read lag draws).
    pub rng: &'a mut ChaCha8Rng,
    /// The most a read lags the store.
    pub read_lag: Duration,
    /// The Region of each instance.
    pub regions: &'a [usize],
    /// The replica's lag, if any.
    pub replica_lag: Option<Duration>,
    /// Whether the fleet refreshes on a miss at all.
    pub on: bool,
    /// The misses seen.
    pub misses: Vec<Miss>,
}

/// The newest state at or before `read_at` (the first one if none is).
pub(crate) fn read_view(views: &[(Timestamp, SecretState)], read_at: Timestamp) -> &SecretState {
    &views
        .iter()
        .rev()
        .find(|(t, _)| *t <= read_at)
        .unwrap_or(&views[0])
        .1
}

impl SimHeal<'_> {
    fn labels(&mut self, instance: usize) -> &SecretState {
        let lag = Duration::from_millis(self.rng.random_range(0..=self.read_lag.as_millis() as u64));
        let replication = match self.regions.get(instance) {
            Some(0) | None => Duration::ZERO,
            _ => self.replica_lag.unwrap_or_default(),
        };
        read_view(self.views, self.now.minus(lag + replication))
    }
}

impl Heal for SimHeal<'_> {
    fn miss(&mut self, consumer: usize, cache: &WindowCache, kid: &VersionId, accepted_only: bool) -> bool {
        let before = cache.current().ok().map(|v| v.id().clone());
        let out = if self.on {
            let (now, store, secret) = (self.now, self.store, self.secret);
            let labels = self.labels(consumer);
            let source = SimSource {
                fail: false,
                labels,
                store,
                secret,
            };
            let out = if accepted_only {
                run_now(cache.fetch_accepted(&source, kid.as_str(), now))
            } else {
                run_now(cache.fetch_version(&source, kid.as_str(), now))
            };
            out.map(|_| ()).map_err(|e| e.to_string())
        } else {
            Err("the fleet does not refresh on a miss".to_owned())
        };
        let found = out.is_ok();
        self.misses.push(Miss {
            consumer,
            kid: kid.clone(),
            before,
            found,
            why: out.err(),
        });
        found
    }
}

/// The failed operation's producer, consumer (none for service B), the version at issue
/// and whether it was stored data.
fn parties(f: &Failure) -> Option<(usize, Option<usize>, &VersionId, bool)> {
    match f {
        Failure::NotAccepted {
            producer,
            consumer,
            version,
        } => Some((*producer, Some(*consumer), version, false)),
        Failure::DownstreamRefused { producer, version } => Some((*producer, None, version, false)),
        Failure::UnknownKid {
            producer,
            consumer,
            kid,
            stored,
        } => Some((*producer, Some(*consumer), kid, *stored)),
        // A key that does not work, or no key at all, is never by design.
        Failure::Rejected { .. } | Failure::NothingToUse { .. } | Failure::UnusableKey { .. } => None,
    }
}

impl World {
    // ---- sending ----

    /// Queues the run's request at `at` (once).
    pub(crate) fn aim_request(&mut self, s: usize, at: Timestamp) {
        let sw = &mut self.secrets[s];
        if sw.request_triggered || sw.sc.request.is_none() {
            return;
        }
        sw.request_triggered = true;
        self.push_at(
            at.max(self.now()),
            Ev::Request {
                s,
                req: None,
                copy: 0,
            },
        );
    }

    /// The phase-based aims: the first gap and the second gap of the first rotation,
    /// seen in the state after an event.
    pub(crate) fn aim_by_state(&mut self, s: usize, state: &SecretState) {
        let sw = &self.secrets[s];
        let Some(plan) = sw.sc.request.filter(|_| !sw.request_triggered) else {
            return;
        };
        let Some(rot) = sw.rotations.first() else {
            return;
        };
        let reached = match plan.phase {
            RequestPhase::FirstGap => rot.became_current.is_none() && self.copy_pending(s, 0, state),
            RequestPhase::SecondGap => {
                rot.became_current.is_some()
                    && state.holder(ROTATING).is_some_and(|r| !state.has(r, AWSCURRENT))
            }
            _ => false,
        };
        if reached {
            let at = self.now().plus(self.policy.gap.mul_f64(0.95 * plan.at));
            self.aim_request(s, at);
        }
    }

    /// Whether a version other than rotation `r`'s token holds its value and carries
    /// AWSPENDING (its first gap runs), whatever its id.
    fn copy_pending(&self, s: usize, r: usize, state: &SecretState) -> bool {
        let sw = &self.secrets[s];
        let rot = &sw.rotations[r];
        let Some(value) = rot.value.as_ref() else {
            return false;
        };
        state.versions.iter().any(|(id, v)| {
            *id != rot.token && v.has(AWSPENDING) && sw.values.get(id).is_some_and(|x| x == value)
        })
    }

    /// Where the secret's latest started rotation stands.
    pub(crate) fn phase_now(&self, s: usize) -> RequestPhase {
        let sw = &self.secrets[s];
        let Some(r) = sw.rotations.iter().rposition(|r| r.started.is_some()) else {
            return RequestPhase::Idle;
        };
        let rot = &sw.rotations[r];
        let state = sw.views.last().map(|(_, v)| v.clone()).unwrap_or_default();
        let window = self
            .hub
            .state()
            .watches
            .get(&sw.id)
            .and_then(|w| w.rotating.clone());
        if rot.engine_task.is_some() || window.as_ref() == Some(&rot.token) {
            return RequestPhase::Engine;
        }
        match rot.became_current {
            None if rot.engine_over && !rot.finished => RequestPhase::Idle,
            None if self.copy_pending(s, r, &state) => RequestPhase::FirstGap,
            None if rot.finished => RequestPhase::AfterFinish,
            None => RequestPhase::Engine,
            Some(_) if state.holder(ROTATING).is_some_and(|x| !state.has(x, AWSCURRENT)) => {
                RequestPhase::SecondGap
            }
            Some(_) => RequestPhase::Idle,
        }
    }

    /// The request as the operator writes it, resolved once (its version named as the
    /// operator sees the secret now).
    fn payload(&mut self, s: usize) -> Option<OperatorRequest> {
        let plan = self.secrets[s].sc.request?;
        let state = self.snapshot(s);
        self.secrets[s].request_compromised = state.current().cloned();
        let sw = &self.secrets[s];
        let operation = match plan.kind {
            RequestKind::Emergency => Operation::EmergencyRotate {
                reason: "simulated: the signing key was found in a public paste".into(),
                compromised: state.current().cloned().filter(|_| plan.named),
                gap: plan.gap,
                keep_accepting: plan.keep,
            },
            RequestKind::Cancel => Operation::Cancel {
                token: sw
                    .rotations
                    .iter()
                    .rfind(|r| r.started.is_some())
                    .map(|r| r.token.clone())
                    .filter(|_| plan.named),
            },
            RequestKind::Redrive => Operation::Redrive,
        };
        Some(OperatorRequest {
            secret_id: sw.id.clone(),
            operation,
        })
    }

    /// The version of the emergency the operator gave up on, as the secret shows it now
    /// (its status report names it): a keyshift emergency version that carries
    /// AWSPENDING, or the emergency version of the current or of the compromised
    /// version, if one was written and is not current.
    fn stranded_version(&self, s: usize) -> Option<VersionId> {
        let sw = &self.secrets[s];
        let state = sw.views.last().map(|(_, v)| v)?;
        let current = state.current()?;
        let named = match &sw.request_payload.as_ref()?.operation {
            Operation::EmergencyRotate {
                compromised: Some(v), ..
            } => Some(v.clone()),
            _ => None,
        };
        let pending = state
            .holder(AWSPENDING)
            .filter(|p| p.is_keyshift_emergency() && *p != current)
            .cloned();
        pending
            .into_iter()
            .chain([current.emergency()])
            .chain(
                named
                    .iter()
                    .chain(sw.request_compromised.iter())
                    .map(VersionId::emergency),
            )
            .find(|e| state.version(e).is_some() && e != current)
    }

    /// The operator's cancel of an emergency it gave up on: as the core's refusals say,
    /// the way out is to finish it or to cancel it, naming its version.
    fn giving_up(&self, s: usize) -> Option<OperatorRequest> {
        Some(OperatorRequest {
            secret_id: self.secrets[s].id.clone(),
            operation: Operation::Cancel {
                token: Some(self.stranded_version(s)?),
            },
        })
    }

    /// Sends the request: a new one (`copy` 0 the first, 1 its duplicate, 2 the
    /// operator's cancel of an emergency it gave up on), or record `req` again.
    pub(crate) fn send_request(&mut self, s: usize, req: Option<usize>, copy: u8) {
        let Some(mut plan) = self.secrets[s].sc.request else {
            return;
        };
        if copy == 2 {
            plan.kind = RequestKind::Cancel;
        }
        let now = self.now();
        let idx = match req {
            Some(i) => {
                self.secrets[s].requests[i].attempts += 1;
                i
            }
            None => {
                if self.secrets[s].request_payload.is_none() {
                    self.secrets[s].request_payload = self.payload(s);
                }
                let phase = self.phase_now(s);
                // The version in its second gap, if any: the emergency releases it early
                // (revoked first, then ROTATING off), failures on it count from now.
                let state = self.snapshot(s);
                let second_gap = state
                    .holder(ROTATING)
                    .filter(|r| !state.has(r, AWSCURRENT))
                    .cloned();
                let current_since = state
                    .current()
                    .and_then(|c| self.secrets[s].current_since.get(c))
                    .copied();
                let sw = &mut self.secrets[s];
                sw.requests.push(RequestRecord {
                    kind: plan.kind,
                    copy,
                    phase,
                    sent: now,
                    attempts: 1,
                    outcome: None,
                    refused: false,
                });
                sw.requests_open += 1;
                if plan.kind == RequestKind::Emergency && copy < 2 {
                    sw.emergencies.push(EmergencyRecord {
                        gap: plan.gap,
                        keep: plan.keep,
                        compromised: None,
                        new: None,
                        cut: None,
                        released_early: second_gap.into_iter().map(|v| (v, now)).collect(),
                        current_at_release: current_since,
                        by_design: [0; 3],
                        healed: 0,
                        last_failure: None,
                        windows: BTreeMap::new(),
                        refresh: sw.sc.refresh,
                        round_trip: sw.sc.round_trip(),
                        ended: None,
                    });
                }
                if plan.kind == RequestKind::Emergency && copy < 2 {
                    // Whatever is in flight is the operator's to stand down now (even if
                    // the emergency then fails: its written value takes the rotation
                    // over), so the engine's next scheduled rotation follows it.
                    for r in 0..self.secrets[s].rotations.len() {
                        let rot = &mut self.secrets[s].rotations[r];
                        if rot.started.is_some() && rot.became_current.is_none() && !rot.operator_hit {
                            rot.operator_hit = true;
                            if rot.engine_over {
                                self.engine_done(s, r);
                            }
                        }
                    }
                }
                if let (0, Some(after)) = (copy, plan.twice) {
                    self.push_in(
                        after,
                        Ev::Request {
                            s,
                            req: None,
                            copy: 1,
                        },
                    );
                }
                self.secrets[s].requests.len() - 1
            }
        };
        let request = match self.secrets[s].requests[idx].copy {
            2 => self.giving_up(s),
            _ => self.secrets[s].request_payload.clone(),
        };
        let Some(request) = request else {
            return;
        };
        let r = &self.secrets[s].requests[idx];
        let line = format!(
            "OPERATOR REQUEST #{idx} {} ({}{}, attempt {}) during {}: {}",
            request.operation.name(),
            match r.copy {
                0 => "first",
                1 => "the same request again",
                _ => "the operator gives up on its emergency",
            },
            match &request.operation {
                Operation::EmergencyRotate {
                    compromised: Some(v), ..
                } => format!(", VersionId {v}"),
                Operation::Cancel { token: Some(t) } => format!(", ClientRequestToken {t}"),
                _ => String::new(),
            },
            r.attempts,
            self.phase_now(s).name(),
            plan.describe()
        );
        self.note(Some(s), line);
        let ex = std::sync::Arc::clone(&self.executor);
        let out = std::sync::Arc::clone(&self.operator_out);
        let id: TaskId = self.next_task_id();
        let task: Task<TaskOut> = Box::pin(async move {
            let result = ex.operate(&request).await;
            let text = match &result {
                Ok((report, _)) => Ok(report.last().to_string()),
                Err(e) => Err(e.to_string()),
            };
            out.lock().unwrap_or_else(|e| e.into_inner()).insert(id, result);
            text
        });
        self.spawn_task(task, Owner::Operator { req: idx }, s);
    }

    /// An operator's task returned.
    pub(crate) fn request_done(&mut self, s: usize, req: usize, id: TaskId) {
        let result = self
            .operator_out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        let now = self.now();
        let again = self.secrets[s].requests[req].attempts < MAX_ATTEMPTS;
        let (outcome, refused, retry) = match &result {
            Some(Ok((report, _))) => (report.last().name().to_owned(), false, false),
            // "GapSeconds is longer than this invocation may wait": the emergency's value
            // is written and waits for its cut; a new invocation has a new budget.
            Some(Err(ExecError::Rejected(r @ Rejection::EmergencyGapTooLong { .. }))) => {
                (format!("refused: {}", rejection_name(r)), true, again)
            }
            Some(Err(ExecError::Rejected(r))) => (format!("refused: {}", rejection_name(r)), true, false),
            Some(Err(e)) => (format!("failed: {}", error_kind(e)), false, again),
            None => ("failed: no result".into(), false, false),
        };
        if !retry {
            self.secrets[s].requests_open = self.secrets[s].requests_open.saturating_sub(1);
        }
        let give_up = !retry && result.as_ref().is_some_and(|r| r.is_err()) && self.stranded(s, req);
        let line = match &result {
            Some(Ok((report, _))) => format!("OPERATOR REQUEST #{req} done: {}", report.last()),
            Some(Err(e)) if retry => {
                format!("OPERATOR REQUEST #{req} failed: {e}; the operator sends it again in 1 to 3 minutes")
            }
            Some(Err(e)) if give_up => {
                format!("OPERATOR REQUEST #{req} refused: {e}; the operator cancels the emergency's version")
            }
            Some(Err(e)) => format!(
                "OPERATOR REQUEST #{req} {}: {e}",
                if refused { "refused" } else { "failed" }
            ),
            None => format!("OPERATOR REQUEST #{req} ended without a result"),
        };
        self.note(Some(s), line);
        let r = &mut self.secrets[s].requests[req];
        r.outcome = Some(outcome);
        r.refused = refused;
        if retry {
            let after = self.rand_secs(60.0, 180.0);
            self.push_in(
                after,
                Ev::Request {
                    s,
                    req: Some(req),
                    copy: 0,
                },
            );
        }
        if give_up {
            self.push_in(
                Duration::from_secs(30),
                Ev::Request {
                    s,
                    req: None,
                    copy: 2,
                },
            );
        }
        self.note_cancels(s, now);
    }

    /// Whether the emergency request `req` ended (for good, with an error) leaving its
    /// new version written but not current, and no other request of the operator's is
    /// still running: the operator then cancels that version, as the core's refusals
    /// advise (finish it or cancel it), rather than leave AWSPENDING on it (which would
    /// block every later rotation) or its value registered at the target.
    fn stranded(&mut self, s: usize, req: usize) -> bool {
        let sw = &self.secrets[s];
        let r = &sw.requests[req];
        r.kind == RequestKind::Emergency
            && r.copy < 2
            && sw.requests_open == 0
            && self.stranded_version(s).is_some()
    }

    /// Rotations whose token carries keyshift's cancel marker are cancelled: the engine
    /// treats them as abandoned (its next scheduled rotation follows), and they must
    /// never become current.
    fn note_cancels(&mut self, s: usize, now: Timestamp) {
        let state = self.snapshot(s);
        for r in 0..self.secrets[s].rotations.len() {
            let rot = &self.secrets[s].rotations[r];
            if rot.cancelled_at.is_some()
                || rot.became_current.is_some()
                || state.cancel_markers(&rot.token).next().is_none()
            {
                continue;
            }
            let rot = &mut self.secrets[s].rotations[r];
            rot.cancelled_at = Some(now);
            rot.operator_hit = true;
            let over = rot.engine_over;
            self.note(
                Some(s),
                format!("rotation {r} is cancelled (its token carries the cancel marker)"),
            );
            if over {
                self.engine_done(s, r);
            }
        }
    }

    // ---- watching the store ----

    /// After every event touching secret `s`: emergencies' cuts and early releases, the
    /// checks on the compromised value, AWSCURRENT never moving back, and the aims.
    pub(crate) fn observe_requests(&mut self, s: usize, state: &SecretState, history: &[Change]) {
        let now = self.now();
        let from = self.secrets[s].history_seen.min(history.len());
        self.secrets[s].history_seen = history.len();
        let emergency_open = self.secrets[s].requests_open > 0
            && self.secrets[s]
                .sc
                .request
                .is_some_and(|p| p.kind == RequestKind::Emergency);
        let current_since = state
            .current()
            .and_then(|c| self.secrets[s].current_since.get(c))
            .copied();
        for c in &history[from..] {
            match &c.what {
                ChangeKind::Detached(stage) if stage == ROTATING && emergency_open => {
                    let sw = &mut self.secrets[s];
                    if !state.has(&c.version, AWSCURRENT)
                        && let Some(em) = sw.emergencies.iter_mut().rev().find(|e| e.cut.is_none())
                    {
                        em.released_early.push((c.version.clone(), c.at));
                        em.current_at_release = em.current_at_release.or(current_since);
                        sw.checker.expect(&c.version, GapKind::Second, Duration::ZERO);
                    }
                }
                ChangeKind::Attached(stage) if stage == AWSCURRENT => {
                    self.secrets[s]
                        .current_since
                        .entry(c.version.clone())
                        .or_insert(c.at);
                }
                _ => {}
            }
        }
        self.current_moved(s, state, now);
        self.check_compromised(s, state, now);
    }

    /// AWSCURRENT moved: never to an older value; and an emergency's cut.
    fn current_moved(&mut self, s: usize, state: &SecretState, now: Timestamp) {
        let Some(current) = state.current().cloned() else {
            return;
        };
        let Some((before, before_born)) = self.secrets[s].last_current.clone() else {
            return;
        };
        if before == current {
            return;
        }
        let value = self.value_of(s, &current);
        // When the value was first stored, under any version id.
        let mut born = state.version(&current).and_then(|v| v.created).unwrap_or(now);
        for (id, v) in &state.versions {
            if let (Some(created), Some(value)) = (v.created, value.as_ref())
                && self.value_of(s, id).as_ref() == Some(value)
            {
                born = born.min(created);
            }
        }
        self.secrets[s].last_current = Some((current.clone(), born));
        if self.strategy == crate::scenario::Strategy::Keyshift && born < before_born {
            self.violation(
                s,
                format!("moved-back-{current}"),
                format!(
                    "{now}: AWSCURRENT moved back to an older value: version {current} holds a value first stored at {born}, before the value of {before} it replaced (first stored at {before_born})"
                ),
            );
        }
        let cut_at = self.secrets[s]
            .current_since
            .get(&current)
            .copied()
            .unwrap_or(now);
        let sw = &self.secrets[s];
        let owned = value
            .as_ref()
            .is_some_and(|v| *v == sw.initial || sw.rotations.iter().any(|r| r.value.as_ref() == Some(v)));
        if owned || sw.emergencies.is_empty() {
            return;
        }
        let compromised = self.value_of(s, &before).unwrap_or_default();
        let new_value = value.unwrap_or_default();
        let sw = &mut self.secrets[s];
        let idx = match sw.emergencies.iter().position(|e| e.cut.is_none()) {
            Some(i) => i,
            None => {
                // A second cut: the same request, sent again without naming its version
                // after the first cut, rotated the emergency's own value away.
                let mut again = sw.emergencies[sw.emergencies.len() - 1].clone();
                again.by_design = [0; 3];
                again.healed = 0;
                again.last_failure = None;
                again.windows.clear();
                again.released_early.clear();
                sw.emergencies.push(again);
                sw.emergencies.len() - 1
            }
        };
        let em = &mut sw.emergencies[idx];
        em.cut = Some(cut_at);
        em.compromised = Some((before.clone(), compromised));
        em.new = Some((current.clone(), new_value));
        // The emergency's own gaps: the new value accepted for GapSeconds before the cut,
        // the compromised one for KeepAcceptingSeconds (or not at all) after it.
        let (gap, keep) = (em.gap, em.keep.unwrap_or_default());
        sw.checker.expect(&current, GapKind::First, gap);
        sw.checker.expect(&before, GapKind::Second, keep);
        self.note(
            Some(s),
            format!("EMERGENCY CUT: AWSCURRENT moved from the compromised version {before} to {current}"),
        );
        // Every rotation in flight stood down: the engine treats it as abandoned.
        for r in 0..self.secrets[s].rotations.len() {
            let rot = &mut self.secrets[s].rotations[r];
            if rot.started.is_some() && rot.became_current.is_none() && !rot.operator_hit {
                rot.operator_hit = true;
                if rot.engine_over {
                    self.engine_done(s, r);
                }
            }
        }
    }

    /// The compromised value after the cut: carried by no accepted label but the kept
    /// ROTATING (or the engine's own re-attached AWSPENDING while its run lasts), and
    /// accepted by service B only while the emergency is handled or kept.
    fn check_compromised(&mut self, s: usize, state: &SecretState, now: Timestamp) {
        if !self.secrets[s].emergencies.iter().any(|e| e.cut.is_some()) {
            return;
        }
        let engine_token = self
            .hub
            .state()
            .watches
            .get(&self.secrets[s].id)
            .and_then(|w| w.rotating.clone());
        let valid = self.target.valid(&self.secrets[s].id);
        let emergencies: Vec<(usize, VersionId, String, Option<Duration>)> = self.secrets[s]
            .emergencies
            .iter()
            .enumerate()
            .filter(|(_, e)| e.cut.is_some())
            .filter_map(|(i, e)| e.compromised.clone().map(|(v, x)| (i, v, x, e.keep)))
            .collect();
        for (i, k1, value, keep) in emergencies {
            let kept = keep.is_some() && state.has(&k1, ROTATING) && !state.has(&k1, AWSCURRENT);
            for (id, v) in &state.versions {
                if !ACCEPTED_STAGES.iter().any(|st| v.has(st))
                    || self.value_of(s, id).as_ref() != Some(&value)
                {
                    continue;
                }
                let allowed = (*id == k1 && kept && !v.has(AWSPENDING))
                    || (v.has(AWSPENDING) && !v.has(AWSCURRENT) && engine_token.as_ref() == Some(id));
                if !allowed {
                    let labels: Vec<&str> = v
                        .stages
                        .iter()
                        .map(String::as_str)
                        .filter(|l| ACCEPTED_STAGES.contains(l))
                        .collect();
                    self.violation(
                        s,
                        format!("accepted-{i}-{id}-{}", labels.join("+")),
                        format!(
                            "{now}: the compromised value of version {k1} is accepted again after emergency {i}'s cut: version {id} carries {}",
                            labels.join(", ")
                        ),
                    );
                }
            }
            if valid.contains(&value) && !kept && self.secrets[s].requests_open == 0 {
                self.violation(
                    s,
                    format!("b-accepts-{i}"),
                    format!(
                        "{now}: service B still accepts the compromised value of version {k1} after emergency {i} ended"
                    ),
                );
            }
        }
    }

    /// Records a violation once per `key`.
    pub(crate) fn violation(&mut self, s: usize, key: String, sentence: String) {
        if self.secrets[s].flagged.insert(key) {
            self.note(Some(s), format!("VIOLATION {sentence}"));
            self.secrets[s].checker.violations.push(sentence);
        }
    }

    // ---- consumers ----

    /// Whether failure `f` at `now` is an emergency's by design: which emergency, why,
    /// and which instance's stale view it is.
    pub(crate) fn by_design(
        &mut self,
        s: usize,
        f: &Failure,
        now: Timestamp,
    ) -> Option<(usize, Cause, usize)> {
        let (producer, consumer, version, stored) = parties(f)?;
        let consumer_current = consumer.and_then(|c| {
            self.secrets[s].fleet.instances[c]
                .cache
                .current()
                .ok()
                .map(|v| v.id().clone())
        });
        self.classify(
            s,
            producer,
            consumer,
            version,
            stored,
            consumer_current.as_ref(),
            now,
        )
    }

    /// See [`World::by_design`]; `consumer_current` is the consumer's current version
    /// as it was when the lookup missed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn classify(
        &mut self,
        s: usize,
        producer: usize,
        consumer: Option<usize>,
        version: &VersionId,
        stored: bool,
        consumer_current: Option<&VersionId>,
        now: Timestamp,
    ) -> Option<(usize, Cause, usize)> {
        let value = self.value_of(s, version);
        let sw = &self.secrets[s];
        let seen_cut = |cut: Timestamp| {
            consumer_current
                .and_then(|c| sw.current_since.get(c))
                .is_some_and(|since| *since >= cut)
        };
        let blame = match (stored, consumer) {
            (true, Some(c)) => c,
            _ => producer,
        };
        for (i, em) in sw.emergencies.iter().enumerate().rev() {
            if let (Some(cut), Some((_, k1)), Some((_, e))) = (em.cut, &em.compromised, &em.new)
                && now >= cut
            {
                if value.as_ref() == Some(k1) {
                    return Some((i, Cause::Compromised, blame));
                }
                if let Some(c) = consumer
                    && value.as_ref() == Some(e)
                    && !seen_cut(cut)
                {
                    return Some((i, Cause::StaleView, c));
                }
            }
            if em.released_early.iter().any(|(v, at)| v == version && *at <= now) {
                return Some((i, Cause::EarlyRelease, blame));
            }
        }
        None
    }

    /// Records a by-design failure of instance `who` and, in a fleet that refreshes on a
    /// miss, has it retry until its view shows the cut.
    pub(crate) fn record_by_design(
        &mut self,
        s: usize,
        (em, cause, who): (usize, Cause, usize),
        kid: Option<VersionId>,
        now: Timestamp,
    ) {
        let sw = &mut self.secrets[s];
        sw.by_design[cause.index()] += 1;
        let record = &mut sw.emergencies[em];
        record.by_design[cause.index()] += 1;
        record.last_failure = Some(now);
        let spells = record.windows.entry(who).or_default();
        if spells.last().is_none_or(|w| w.recovered.is_some()) {
            spells.push(InstanceWindow {
                first: now,
                last: now,
                failures: 0,
                recovered: None,
            });
        }
        let w = spells
            .last_mut()
            .unwrap_or_else(|| unreachable!("a spell was just pushed"));
        w.last = now;
        w.failures += 1;
        let open = w.recovered.is_none();
        if sw.sc.refresh_on_miss && open {
            let interval = Config::DEFAULT_MISS_INTERVAL;
            self.push_in(
                interval,
                Ev::Heal {
                    s,
                    i: who,
                    em,
                    kid: kid.filter(|_| cause == Cause::StaleView),
                },
            );
        }
        self.update_windows(s, who);
    }

    /// Closes instance `i`'s open windows when its view shows the cut.
    pub(crate) fn update_windows(&mut self, s: usize, i: usize) {
        let now = self.now();
        let sw = &mut self.secrets[s];
        let current = sw.fleet.instances[i].cache.current().ok().map(|v| v.id().clone());
        let since = current.as_ref().and_then(|c| sw.current_since.get(c)).copied();
        for em in &mut sw.emergencies {
            let Some(threshold) = em.recovery_threshold() else {
                continue;
            };
            if let Some(w) = em.windows.get_mut(&i).and_then(|w| w.last_mut())
                && w.recovered.is_none()
                && since.is_some_and(|t| t >= threshold)
            {
                w.recovered = Some(now);
            }
        }
    }

    /// An instance still failing after a cut tries again: the consumer looks the new key
    /// id up again (`fetch_accepted`), the producer refreshes.
    pub(crate) fn heal_retry(&mut self, s: usize, i: usize, em: usize, kid: Option<VersionId>) {
        let open = |w: &World| {
            w.secrets[s].emergencies[em]
                .windows
                .get(&i)
                .and_then(|w| w.last())
                .is_some_and(|w| w.recovered.is_none())
        };
        if !open(self) {
            return;
        }
        let now = self.now();
        self.note(
            Some(s),
            format!(
                "instance {i} tries again after its failure ({})",
                if kid.is_some() {
                    "fetch_accepted"
                } else {
                    "refresh"
                }
            ),
        );
        match &kid {
            Some(kid) => {
                let SecretWorld {
                    fleet,
                    views,
                    inner,
                    id,
                    fleet_rng,
                    regions,
                    sc,
                    ..
                } = &mut self.secrets[s];
                let mut heal = SimHeal {
                    now,
                    views,
                    store: inner,
                    secret: id,
                    rng: fleet_rng,
                    read_lag: sc.read_lag,
                    regions,
                    replica_lag: sc.replica_lag,
                    on: true,
                    misses: Vec::new(),
                };
                let cache = fleet.instances[i].cache.clone();
                heal.miss(i, &cache, kid, true);
            }
            None => self.heal_refresh(s, i, true),
        }
        self.update_windows(s, i);
        if open(self) {
            self.push_in(Config::DEFAULT_MISS_INTERVAL, Ev::Heal { s, i, em, kid });
        }
    }

    /// Instance `i`'s operation was refused: it refreshes its cache (keyshift-client's
    /// `WindowCache::refresh`), at most once per the client's miss interval.
    pub(crate) fn heal_refresh(&mut self, s: usize, i: usize, retry: bool) {
        let now = self.now();
        let sw = &mut self.secrets[s];
        if !sw.sc.refresh_on_miss {
            return;
        }
        let interval = sw.fleet.instances[i].cache.config().miss_interval();
        if sw.healed_at[i].is_some_and(|t| now < t.plus(interval)) && !retry {
            return;
        }
        sw.healed_at[i] = Some(now);
        let lag = Duration::from_millis(sw.fleet_rng.random_range(0..=sw.sc.read_lag.as_millis() as u64));
        let replication = match sw.regions[i] {
            0 => Duration::ZERO,
            _ => sw.sc.replica_lag.unwrap_or_default(),
        };
        let labels = read_view(&sw.views, now.minus(lag + replication));
        let source = SimSource {
            fail: false,
            labels,
            store: &sw.inner,
            secret: &sw.id,
        };
        let cache = sw.fleet.instances[i].cache.clone();
        if let Err(e) = run_now(cache.refresh(&source, now)) {
            let line = format!("instance {i}: refresh after a refused operation failed: {e}");
            self.note(Some(s), line);
        }
        self.update_windows(s, i);
    }

    /// The misses of one operation: one healed by refresh-on-miss is fine when an
    /// emergency caused it by design, and a failed operation otherwise (routine
    /// rotations are held to the contract without healing).
    pub(crate) fn account_misses(
        &mut self,
        s: usize,
        producer: usize,
        misses: &[Miss],
        now: Timestamp,
    ) -> u64 {
        let mut failed = 0;
        if self.secrets[s].sc.refresh_on_miss {
            for m in misses {
                let line = format!(
                    "instance {} missed key id {}: refresh-on-miss {}",
                    m.consumer,
                    m.kid,
                    match &m.why {
                        None => "found it".to_owned(),
                        Some(why) => format!("did not find it ({why})"),
                    }
                );
                self.note(Some(s), line);
            }
        }
        for m in misses.iter().filter(|m| m.found) {
            match self.classify(
                s,
                producer,
                Some(m.consumer),
                &m.kid,
                false,
                m.before.as_ref(),
                now,
            ) {
                Some((em, _, _)) => {
                    self.secrets[s].healed += 1;
                    self.secrets[s].emergencies[em].healed += 1;
                }
                _ => {
                    failed += 1;
                    let line = format!(
                        "FAILED consumer operation: instance {} did not know version {} and needed refresh-on-miss, outside an emergency's by-design window",
                        m.consumer, m.kid
                    );
                    self.note(Some(s), line);
                }
            }
        }
        failed
    }

    /// The end of the run: windows closed, held to the round trip.
    pub(crate) fn finish_requests(&mut self, s: usize) {
        let now = self.now();
        let sw = &mut self.secrets[s];
        let mut late = Vec::new();
        for (k, em) in sw.emergencies.iter_mut().enumerate() {
            em.ended = Some(now);
            for (i, w) in em
                .windows
                .iter()
                .flat_map(|(i, ws)| ws.iter().map(move |w| (i, w)))
            {
                let length = w.length(now);
                if length > em.round_trip {
                    late.push(format!(
                        "{}: emergency {k}'s failure window of instance {i} lasted {} ms from its first failure to {} ({} failures), longer than one refresh round trip ({} ms; R = {} ms)",
                        w.first,
                        length.as_millis(),
                        if w.recovered.is_some() { "its recovery" } else { "the end of the run" },
                        w.failures,
                        em.round_trip.as_millis(),
                        em.refresh.as_millis()
                    ));
                }
            }
        }
        sw.checker.violations.extend(late);
    }
}

/// An error's short kind for reports.
fn error_kind(e: &ExecError) -> String {
    match e {
        ExecError::Rejected(r) => rejection_name(r),
        ExecError::Store(e) => format!("store {:?}", e.kind),
        ExecError::Scheduler(_) => "scheduler".into(),
        ExecError::Target(_) => "target".into(),
        ExecError::ValueMissing { .. } => "value missing".into(),
        ExecError::Configuration(_) => "configuration".into(),
        ExecError::TooManyRounds(_) => "too many rounds".into(),
    }
}

/// A refusal's short name for reports.
fn rejection_name(r: &Rejection) -> String {
    let debug = format!("{r:?}");
    debug.split([' ', '{', '(']).next().unwrap_or_default().to_owned()
}
