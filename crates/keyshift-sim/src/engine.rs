//! The rotation engine model and the operator, one per secret of a world (methods on
//! [`World`], taking the secret's index). The fault injector is [`crate::faults`].
//!
//! The engine: RotateSecret leaves the value-less AWSPENDING placeholder under the
//! rotation's token, then createSecret, setSecret, testSecret and finishSecret run one
//! after another. Its undocumented behaviours are switched per secret
//! ([`crate::scenario::EngineBehaviours`]):
//!
//! * (a) copy-abandons: a PutSecretValue with another ClientRequestToken than the token
//!   while the engine's rotation runs (from RotateSecret to the return of finishSecret,
//!   and during each retry's run) abandons the rotation: the engine stops and strips
//!   AWSPENDING from its token's version, or from whichever version carries it.
//!   [`crate::ports::SimStore`] sees the write, the world reacts here.
//! * (b) strip-after-finish: a few seconds after a finishSecret that returned without
//!   AWSCURRENT on the token's version, AWSPENDING comes off the non-current version
//!   carrying it.
//! * (c) validate-rotation-token: the same foreign write is refused instead (in the store).
//! * (d) retry-reattach: a failed rotation is re-run with the same token 1 to 10 minutes
//!   later, AWSPENDING forced back onto the token's version, at most 5 times; with the
//!   not-current sub-variant also after a finishSecret that left the token not current.
//!   Off, the engine calls RotateSecret again after a failed step, which Secrets Manager
//!   refuses while AWSPENDING is elsewhere (up to 8 attempts).
//! * (e) past-schedule-refused lives in [`crate::ports::SimScheduler`].
//! * (f) operator: at a random moment of the first rotation, an operator writes a note
//!   labelled `OPS_NOTE`, strips AWSPENDING, adds `OPS_AUDIT` to the current version, or
//!   removes `OPS_OWNER`.
//!
//! After an abandonment (the engine's, the engine giving up, or an operator's write or
//! strip) the engine's next scheduled rotation starts, with a new token, 5 to 30 minutes
//! after the engine is done with the abandoned one.

use std::time::Duration;

use keyshift::event::Step;
use keyshift::ports::{LabelMove, SecretStore, StoreErrorKind};
use keyshift::secret::{AWSCURRENT, AWSPENDING};
use keyshift::{Invocation, SecretValue, Timestamp, VersionId};
use rand::Rng;

use crate::fleet::run_now;
use crate::scenario::{CopyAbandons, FaultClass, OperatorAction, RequestPhase, RetryReattach};
use crate::world::{Ev, MAX_FOLLOW_ONS, Owner, Rotation, TaskId, TaskOut, World, token};

const ENGINE_STEPS: [Step; 4] = [
    Step::CreateSecret,
    Step::SetSecret,
    Step::TestSecret,
    Step::FinishSecret,
];
/// Attempts of one rotation in the baseline (RotateSecret again after a failed step).
const MAX_ENGINE_ATTEMPTS: u32 = 8;
/// Retries of one rotation under retry-reattach.
const MAX_REATTACH_RETRIES: u32 = 5;
/// Custom labels the operator adds and writes with.
const OPS_NOTE: &str = "OPS_NOTE";
const OPS_AUDIT: &str = "OPS_AUDIT";

impl World {
    /// Queues a new rotation of secret `s` at `at`: a planned one, or the engine's next
    /// scheduled one after an abandonment.
    pub(crate) fn new_rotation(&mut self, s: usize, at: Timestamp, follow_on: bool) -> usize {
        let token = token(&mut self.rng);
        let sw = &mut self.secrets[s];
        if !follow_on {
            sw.planned += 1;
        }
        sw.rotations.push(Rotation {
            token,
            follow_on,
            due_start: at,
            started: None,
            accepted: None,
            engine_task: None,
            attempts: 0,
            became_current: None,
            value: None,
            engine_over: false,
            abandoned: false,
            gave_up: false,
            operator_hit: false,
            follow_on_created: false,
            finished: false,
            cancelled_at: None,
        });
        let r = sw.rotations.len() - 1;
        self.push_at(at, Ev::StartRotation { s, r });
        r
    }

    pub(crate) fn start_rotation(&mut self, s: usize, r: usize) {
        let now = self.now();
        self.secrets[s].rotations[r].started = Some(now);
        let kind = if self.secrets[s].rotations[r].follow_on {
            "the engine's next scheduled rotation"
        } else {
            "rotation"
        };
        let line = format!(
            "{kind} {r} starts with token {}",
            self.secrets[s].rotations[r].token
        );
        self.note(Some(s), line);
        // The rotations before it are over for the engine: it runs one at a time.
        for old in 0..r {
            self.secrets[s].rotations[old].engine_over = true;
        }
        if r == 0 && self.secrets[s].sc.behaviours.operator {
            let window = 1.5 * self.policy.gap.as_secs_f64();
            let after = self.rand_secs(0.0, window);
            self.push_in(after, Ev::Operator { s, r });
        }
        self.push_in(Duration::ZERO, Ev::EngineAttempt { s, r });
    }

    fn retry_cap(&self, s: usize) -> u32 {
        match self.secrets[s].sc.behaviours.retry {
            RetryReattach::Off => MAX_ENGINE_ATTEMPTS,
            _ => MAX_REATTACH_RETRIES + 1,
        }
    }

    /// Opens or closes the engine's rotation window of secret `s` (what the store's
    /// interception of writes looks at).
    fn set_window(&mut self, s: usize, token: Option<VersionId>) {
        let id = self.secrets[s].id.clone();
        if let Some(w) = self.hub.state().watches.get_mut(&id) {
            w.rotating = token;
        }
    }

    pub(crate) fn engine_attempt(&mut self, s: usize, r: usize) {
        let latest = r + 1 == self.secrets[s].rotations.len();
        let rot = &mut self.secrets[s].rotations[r];
        if rot.engine_over || rot.engine_task.is_some() {
            return;
        }
        if !latest {
            rot.engine_over = true;
            return;
        }
        rot.attempts += 1;
        let attempts = rot.attempts;
        let accepted_before = rot.accepted.is_some();
        let token = rot.token.clone();
        let cap = self.retry_cap(s);
        if attempts > cap {
            self.note(
                Some(s),
                format!("engine gives up rotation {r} after {cap} attempts"),
            );
            self.secrets[s].rotations[r].gave_up = true;
            self.engine_done(s, r);
            return;
        }
        let (id, inner) = (self.secrets[s].id.clone(), self.secrets[s].inner.clone());
        let reattach = self.secrets[s].sc.behaviours.retry != RetryReattach::Off && accepted_before;
        if reattach {
            // The engine's own retry: AWSPENDING goes back onto its token's version,
            // wherever the label is now.
            let state = self.snapshot(s);
            let holder = state.holder(AWSPENDING).cloned();
            if let Some(h) = holder.filter(|h| *h != token && !state.has(h, AWSCURRENT)) {
                inner.strip_label(&id, AWSPENDING);
                self.store.touched(&id);
                self.note(
                    Some(s),
                    format!("engine retry takes AWSPENDING off {h} to re-attach it to its token"),
                );
            }
            self.secrets[s].hits.reattached += 1;
        }
        match inner.begin_rotation(&id, &token) {
            Ok(()) => {
                self.store.touched(&id);
                let now = self.now();
                self.secrets[s].rotations[r].accepted.get_or_insert(now);
                let what = if reattach {
                    "retry re-attaches AWSPENDING to"
                } else {
                    "RotateSecret placeholder"
                };
                self.note(
                    Some(s),
                    format!("engine: {what} {token} (attempt {attempts}); invoking createSecret"),
                );
                self.set_window(s, Some(token));
                self.engine_step(s, r, 0);
            }
            Err(e) => {
                self.note(
                    Some(s),
                    format!("engine: RotateSecret refused ({e}); retrying later"),
                );
                // "A previous rotation isn't complete. That rotation will be reattempted.":
                // the engine runs the steps of the rotation whose token still holds
                // AWSPENDING (one that gave up after its steps kept failing) again.
                let state = self.snapshot(s);
                let stuck = state.holder(AWSPENDING).and_then(|h| {
                    self.secrets[s]
                        .rotations
                        .iter()
                        .position(|rot| rot.token == *h)
                        .filter(|&r0| r0 != r && self.secrets[s].rotations[r0].engine_task.is_none())
                });
                if let Some(r0) = stuck.filter(|_| e.kind == StoreErrorKind::InvalidRequest) {
                    let token0 = self.secrets[s].rotations[r0].token.clone();
                    self.note(
                        Some(s),
                        format!("engine: reattempts the incomplete rotation {r0} ({token0})"),
                    );
                    self.set_window(s, Some(token0));
                    self.engine_step(s, r0, 0);
                }
                let retry = self.rand_secs(120.0, 600.0);
                self.push_in(retry, Ev::EngineAttempt { s, r });
            }
        }
    }

    fn engine_step(&mut self, s: usize, r: usize, step: usize) {
        let inv = Invocation {
            step: ENGINE_STEPS[step].clone(),
            secret_id: self.secrets[s].id.clone(),
            token: self.secrets[s].rotations[r].token.clone(),
            rotation_token: None,
            schedule: None,
        };
        let aimed = self.secrets[s].sc.request.filter(|p| {
            p.phase == RequestPhase::Engine
                && p.engine_step == step
                && r == 0
                && self.secrets[s].rotations[0].attempts == 1
        });
        if let Some(plan) = aimed {
            // While this step's calls are in flight.
            let at = self.now().plus(Duration::from_millis((plan.at * 150.0) as u64));
            self.aim_request(s, at);
        }
        let id = self.insert_engine_task(inv, Owner::Engine { rotation: r, step }, s);
        self.secrets[s].rotations[r].engine_task = Some(id);
        if let Some(timeout) = self.secrets[s].sc.engine_timeout {
            self.push_in(timeout, Ev::EngineGiveUp { s, r, task: id });
        }
        self.poll_task(id);
    }

    pub(crate) fn engine_give_up(&mut self, s: usize, r: usize, task: TaskId) {
        if self.secrets[s].rotations[r].engine_task == Some(task) {
            self.note(
                Some(s),
                format!("engine gives up waiting on task {task}; will retry the rotation"),
            );
            self.secrets[s].rotations[r].engine_task = None;
            self.set_window(s, None);
            let retry = self.rand_secs(60.0, 300.0);
            self.push_in(retry, Ev::EngineAttempt { s, r });
        }
    }

    pub(crate) fn engine_step_done(&mut self, s: usize, r: usize, step: usize, id: TaskId, out: TaskOut) {
        let rot = &mut self.secrets[s].rotations[r];
        if rot.engine_task != Some(id) {
            return; // the engine gave up on this one, or abandoned the rotation
        }
        rot.engine_task = None;
        match out {
            Ok(_) if step + 1 < ENGINE_STEPS.len() => self.engine_step(s, r, step + 1),
            Ok(_) => {
                self.set_window(s, None);
                self.secrets[s].rotations[r].finished = true;
                if r == 0
                    && let Some(plan) = self.secrets[s]
                        .sc
                        .request
                        .filter(|p| p.phase == RequestPhase::AfterFinish)
                {
                    // Before the first follow-up, due now, fires within its minute.
                    let at = self.now().plus(Duration::from_secs_f64(60.0 * plan.at));
                    self.aim_request(s, at);
                }
                let state = self.snapshot(s);
                let token = self.secrets[s].rotations[r].token.clone();
                let token_current = state.has(&token, AWSCURRENT);
                let b = self.secrets[s].sc.behaviours;
                // The backend "cleans up the pending label on rotation completion":
                // shortly after finishSecret succeeded, if it is still on a version that
                // is not current. As a fault, now and then; as behaviour (b), always.
                if self.secrets[s].sc.class.has(FaultClass::EngineStrip) && self.rng.random_bool(0.8) {
                    let after = self.rand_secs(0.0, 5.0);
                    self.push_in(
                        after,
                        Ev::Strip {
                            s,
                            after_finish: false,
                        },
                    );
                }
                if b.strip_after_finish && !token_current {
                    let after = self.rand_secs(1.0, 5.0);
                    self.push_in(
                        after,
                        Ev::Strip {
                            s,
                            after_finish: true,
                        },
                    );
                }
                if b.retry == RetryReattach::NotCurrent
                    && !token_current
                    && self.secrets[s].rotations[r].attempts < self.retry_cap(s)
                {
                    let retry = self.rand_secs(60.0, 600.0);
                    self.note(
                        Some(s),
                        format!(
                            "engine: finishSecret returned without AWSCURRENT on {token}; retrying the rotation in {retry:?}"
                        ),
                    );
                    self.secrets[s].hits.not_current_retries += 1;
                    self.push_in(retry, Ev::EngineAttempt { s, r });
                } else {
                    self.engine_done(s, r);
                }
            }
            Err(_) => {
                self.set_window(s, None);
                let retry = self.rand_secs(60.0, 600.0);
                self.push_in(retry, Ev::EngineAttempt { s, r });
            }
        }
    }

    /// The engine is done with rotation `r`; after an abandonment its next scheduled
    /// rotation follows.
    pub(crate) fn engine_done(&mut self, s: usize, r: usize) {
        let follow_ons = self.secrets[s].rotations.iter().filter(|x| x.follow_on).count();
        let latest = r + 1 == self.secrets[s].rotations.len();
        let rot = &mut self.secrets[s].rotations[r];
        rot.engine_over = true;
        let abandoned = rot.abandoned || rot.gave_up || rot.operator_hit;
        if abandoned && latest && !rot.follow_on_created && follow_ons < MAX_FOLLOW_ONS {
            rot.follow_on_created = true;
            let after = self.rand_secs(300.0, 1800.0);
            let at = self.now().plus(after);
            let next = self.new_rotation(s, at, true);
            self.note(
                Some(s),
                format!("engine: rotation {r} was abandoned; its next scheduled rotation {next} starts in {after:?}"),
            );
        }
    }

    /// Behaviour (a): a foreign write landed during the engine's rotation of `token`.
    pub(crate) fn engine_abandon(&mut self, s: usize, token: &VersionId, written: &VersionId) {
        let Some(r) = self.secrets[s].rotations.iter().position(|x| &x.token == token) else {
            return;
        };
        if self.secrets[s].rotations[r].engine_over {
            return;
        }
        let (id, inner) = (self.secrets[s].id.clone(), self.secrets[s].inner.clone());
        self.note(
            Some(s),
            format!("engine: RotationAbandoned (PutSecretValue of {written} during rotation {r}); no further steps"),
        );
        self.secrets[s].hits.abandoned += 1;
        let rot = &mut self.secrets[s].rotations[r];
        rot.abandoned = true;
        rot.engine_task = None;
        self.set_window(s, None);
        let state = self.snapshot(s);
        let stripped = match self.secrets[s].sc.behaviours.copy_abandons {
            CopyAbandons::TokenVersion if state.has(token, AWSPENDING) => inner.strip_label(&id, AWSPENDING),
            CopyAbandons::Holder => inner.strip_label(&id, AWSPENDING),
            _ => None,
        };
        self.store.touched(&id);
        match stripped {
            Some(v) => self.note(Some(s), format!("engine strips AWSPENDING from {v}")),
            None => self.note(Some(s), "engine finds no AWSPENDING to strip".into()),
        }
        self.engine_done(s, r);
    }

    /// The engine's AWSPENDING clean-up: the EngineStrip fault, or behaviour (b).
    pub(crate) fn engine_strip(&mut self, s: usize, after_finish: bool) {
        let state = self.snapshot(s);
        if let Some(p) = state.holder(AWSPENDING).filter(|p| !state.has(p, AWSCURRENT)) {
            let p = p.clone();
            let id = self.secrets[s].id.clone();
            self.secrets[s].inner.strip_label(&id, AWSPENDING);
            self.store.touched(&id);
            if after_finish {
                self.secrets[s].hits.strips_after_finish += 1;
                self.note(
                    Some(s),
                    format!("engine strips AWSPENDING from {p} after a finishSecret that left its token not current"),
                );
            } else {
                self.note(Some(s), format!("FAULT engine strips AWSPENDING from {p}"));
            }
        }
    }

    /// Behaviour (f): the operator's one action, if rotation `r` is still in flight.
    pub(crate) fn operator(&mut self, s: usize, r: usize) {
        let state = self.snapshot(s);
        let rot = &self.secrets[s].rotations[r];
        let in_flight =
            rot.started.is_some() && !(rot.became_current.is_some() && crate::world::is_clean(&state));
        if !in_flight || self.secrets[s].operator_acted {
            self.note(Some(s), "operator: no rotation in flight; does nothing".into());
            return;
        }
        let (id, inner) = (self.secrets[s].id.clone(), self.secrets[s].inner.clone());
        let action = self.secrets[s].sc.operator_action;
        self.secrets[s].operator_acted = true;
        self.secrets[s].hits.operator += 1;
        let outcome = match action {
            OperatorAction::Write => {
                self.secrets[s].operator_notes += 1;
                let version = token(&mut self.rng);
                let value = SecretValue::new(format!(
                    "ops-note-{}-{}-{}",
                    self.secrets[s].sc.seed, s, self.secrets[s].operator_notes
                ));
                self.secrets[s].rotations[r].operator_hit = true;
                match self.store.operator_put(&id, &version, &value, &[OPS_NOTE]) {
                    Ok(()) => format!("wrote version {version} labelled {OPS_NOTE}"),
                    Err(e) => format!("tried to write version {version} labelled {OPS_NOTE}: {e}"),
                }
            }
            OperatorAction::StripPending => {
                match state.holder(AWSPENDING).filter(|p| !state.has(p, AWSCURRENT)) {
                    Some(p) => {
                        let p = p.clone();
                        self.secrets[s].rotations[r].operator_hit = true;
                        inner.strip_label(&id, AWSPENDING);
                        format!("removed AWSPENDING from {p} by hand")
                    }
                    None => "found no AWSPENDING to remove".into(),
                }
            }
            OperatorAction::AddLabel => {
                let current = state.current().cloned();
                let change = LabelMove {
                    stage: OPS_AUDIT.into(),
                    move_to: current,
                    remove_from: None,
                };
                match run_now(inner.update_stage(&id, &change)) {
                    Ok(()) => format!("{change}"),
                    Err(e) => format!("tried to {change}: {e}"),
                }
            }
            OperatorAction::RemoveLabel => match state.holder(crate::world::OPS_OWNER).cloned() {
                Some(holder) => {
                    let change = LabelMove {
                        stage: crate::world::OPS_OWNER.into(),
                        move_to: None,
                        remove_from: Some(holder),
                    };
                    match run_now(inner.update_stage(&id, &change)) {
                        Ok(()) => format!("{change}"),
                        Err(e) => format!("tried to {change}: {e}"),
                    }
                }
                None => format!("found no {} to remove", crate::world::OPS_OWNER),
            },
        };
        self.store.touched(&id);
        self.note(Some(s), format!("OPERATOR ({}) {outcome}", action.name()));
        self.drain_hub();
        if self.secrets[s].rotations[r].operator_hit && self.secrets[s].rotations[r].engine_over {
            self.engine_done(s, r);
        }
    }
}
