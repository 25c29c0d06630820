//! The rotation core: a pure function from (the invocation, the secret as it is now,
//! now, the policy) to what to do, as data.
//!
//! Nothing here reads a clock or calls AWS. Every decision is derived from the labels
//! as they are, never from memory of what should have happened, so that any invocation
//! may arrive twice, late, early or never and the result stays safe.
//!
//! # The one safety argument (DESIGN.md section 3)
//!
//! A version may become AWSCURRENT only after it has been accepted (carried AWSPENDING
//! with a value) for at least T, and a version that stopped being AWSCURRENT must stay
//! accepted (carry ROTATING) for at least T more. Waiting longer than T is always safe;
//! acting earlier never is. So every due time below is a *lower bound* assembled from
//! facts, and where two facts give two bounds, the later one wins.
//!
//! # Only keyshift's own versions become AWSCURRENT
//!
//! The rotation engine can put AWSPENDING back on its token's version behind keyshift's
//! back: after a strip (its undocumented clean-up after a finishSecret that did not move
//! AWSCURRENT), a retry of the rotation re-attaches the label to the same version, and
//! nothing in the store records when. A swap timed by that version's age could then make
//! it current moments after consumers started accepting it again.
//!
//! So the engine's version is never the one promoted. finishSecret writes the pending
//! value again as a version of keyshift's own, [`VersionId::reissue`] of the engine's
//! (same value, so what setSecret registered and testSecret tested is what becomes
//! current), and that version is swapped once it is T old. The engine never learns its
//! id, so AWSPENDING on it can only be removed, never restored: if it still carries the
//! label, it has carried it since its creation, a fact the store keeps. If the label is
//! gone, the value is re-issued once more and the gap restarts from that version's
//! creation. The copy costs nothing in time: finishSecret had to wait T from its own
//! start anyway, because a re-attachment just before it is invisible.
//!
//! The engine and every follow-up keep naming the engine's token; the decisions act on
//! the newest existing version of its re-issue chain (`chain_head`).
//!
//! # Where a due time comes from
//!
//! * The swap: the re-issued version's creation time + T. That is on the version
//!   itself, so a swap due is re-derived on every arrival. The `DueAt` a follow-up
//!   carries only ever delays it.
//! * The release of ROTATING: Secrets Manager does not record when AWSCURRENT moved, so
//!   the due travels in the `removePending` event (stamped after the move returned). A
//!   ROTATING found with no such event in hand (a lost follow-up) gets a new release due
//!   T from now, which is later than T after the move, so safe.
//! * An engine retry of a token older than the current version (a rotation that a newer
//!   one finished) is stale: it succeeds without moving anything but its own AWSPENDING.
//!
//! Inline waits are cut into slices by the executor, each followed by a fresh decision,
//! so a strip during the wait is seen and recovered rather than slept through.

use std::fmt;
use std::time::Duration;

use crate::event::{Invocation, Step};
use crate::policy::Policy;
use crate::ports::LabelMove;
use crate::secret::{AWSCURRENT, AWSPENDING, ROTATING, SecretState, VersionId};
use crate::time::Timestamp;

/// Everything a decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The invocation being handled.
    pub invocation: &'a Invocation,
    /// The secret as the store reports it now.
    pub secret: &'a SecretState,
    /// Now.
    pub now: Timestamp,
    /// The policy.
    pub policy: &'a Policy,
    /// How long this invocation may still wait inline (the budget minus time spent).
    pub wait_budget_left: Duration,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Apply these actions in order; then the invocation has finished with `outcome`.
    Apply(Plan),
    /// Sleep until this time, then decide again from fresh labels.
    WaitUntil(Timestamp),
    /// Refuse: nothing is changed, and the invocation fails with this error.
    Reject(Rejection),
}

/// Actions and the outcome they reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Performed in order; each one is safe to stop after.
    pub actions: Vec<Action>,
    /// What the invocation reports once all actions are done.
    pub outcome: Outcome,
}

/// One thing to do to the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Generate a new value and store it as `version` with AWSPENDING.
    PutPending {
        /// The token / new version id.
        version: VersionId,
    },
    /// Store `from`'s value again as the new version `to`, with AWSPENDING.
    Reissue {
        /// The version that lost AWSPENDING.
        from: VersionId,
        /// Its deterministic successor.
        to: VersionId,
    },
    /// One UpdateSecretVersionStage call.
    Label(LabelMove),
    /// Schedule a follow-up.
    Schedule(FollowUp),
    /// Register the version's value with the target (setSecret).
    SetTarget {
        /// The pending version.
        version: VersionId,
    },
    /// Test the version's value against the target (testSecret).
    TestTarget {
        /// The pending version.
        version: VersionId,
    },
    /// Revoke the version's value at the target (removePending).
    RevokeTarget {
        /// The released version.
        version: VersionId,
    },
}

/// A follow-up invocation to schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// Which step, and its version.
    pub kind: FollowUpKind,
    /// The rotation's version (the `ClientRequestToken` of the follow-up).
    pub token: VersionId,
    /// When it is due.
    pub due: Due,
}

/// The two follow-up steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUpKind {
    /// `swapPending` for `token`.
    Swap,
    /// `removePending`: take ROTATING off `release`.
    Release {
        /// The old version.
        release: VersionId,
    },
}

/// A due time, possibly relative to when the action is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// At this time.
    At(Timestamp),
    /// T after the moment the executor applies this action, i.e. after every action
    /// before it in the plan has returned. Used for gaps that start with one of those
    /// actions (a label move, a new version), so the gap is never measured from a
    /// decision made before the change it waits on.
    GapAfterApply,
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// createSecret stored a new pending value.
    Created,
    /// createSecret found a value already stored for the token and kept it.
    KeptExisting,
    /// setSecret registered the pending value with the target.
    TargetSet,
    /// testSecret found the pending value working.
    Tested,
    /// The token is AWSCURRENT already: nothing to do (AWS's template rule).
    AlreadyCurrent,
    /// AWSCURRENT moved to the token's version; ROTATING marks the old one.
    Swapped,
    /// finishSecret scheduled the swap for `due` (deferred mode).
    SwapScheduled {
        /// When the swap is due.
        due: Timestamp,
    },
    /// A follow-up arrived long before its due time and was scheduled again.
    Rescheduled {
        /// When it is due.
        due: Timestamp,
    },
    /// The pending value was written again as `new_version`, keyshift's own version,
    /// which becomes AWSCURRENT once it is T old (the first gap runs from now).
    Reissued {
        /// The re-issued version.
        new_version: VersionId,
    },
    /// ROTATING is off the old version: the rotation is complete.
    Released,
    /// The old version carries no ROTATING any more (a duplicate or stale release).
    AlreadyReleased,
    /// A newer rotation took over; this follow-up is stale and does nothing.
    Superseded {
        /// The version that superseded the token.
        by: VersionId,
    },
    /// A scheduled follow-up names a version that does not exist (any more): stale.
    Vanished {
        /// The missing version.
        version: VersionId,
    },
    /// Rotation is disabled: the follow-up abandoned the rotation and deleted the
    /// secret's follow-ups, restoring nothing.
    Abandoned,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Created => f.write_str("created the pending value"),
            Outcome::KeptExisting => f.write_str("kept the pending value already stored for this token"),
            Outcome::TargetSet => f.write_str("registered the pending value with the target"),
            Outcome::Tested => f.write_str("tested the pending value"),
            Outcome::AlreadyCurrent => f.write_str("the token is already AWSCURRENT; nothing to do"),
            Outcome::Swapped => f.write_str("swapped: AWSCURRENT moved to the new version, ROTATING on the old one"),
            Outcome::SwapScheduled { due } => write!(f, "swap scheduled for {due}"),
            Outcome::Rescheduled { due } => write!(f, "arrived early; scheduled again for {due}"),
            Outcome::Reissued { new_version } => write!(
                f,
                "re-issued the pending value as version {new_version}; the first gap runs from its creation"
            ),
            Outcome::Released => f.write_str("released: ROTATING removed from the old version"),
            Outcome::AlreadyReleased => f.write_str("the old version was already released; nothing to do"),
            Outcome::Superseded { by } => write!(f, "superseded by version {by}; stale follow-up, nothing to do"),
            Outcome::Vanished { version } => {
                write!(f, "version {version} does not exist; stale follow-up, nothing to do")
            }
            Outcome::Abandoned => f.write_str(
                "rotation is disabled for this secret: this follow-up abandons itself (each other one does the same when it fires), restored nothing",
            ),
        }
    }
}

/// Why an invocation is refused. Refusals change nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// AWS's template rule: rotation must be enabled for engine steps.
    #[error("secret is not enabled for rotation")]
    RotationDisabled,
    /// The token names no version this secret has (with a label, for engine steps).
    #[error("secret has no version {version} to rotate")]
    UnknownVersion {
        /// The version asked for.
        version: VersionId,
    },
    /// AWS's template rule: the token must carry AWSPENDING.
    #[error("version {version} is not AWSPENDING for rotation")]
    NotPending {
        /// The token.
        version: VersionId,
    },
    /// The secret has no AWSCURRENT version to rotate from.
    #[error("secret has no AWSCURRENT version")]
    NoCurrentVersion,
    /// The pending version has no value yet (createSecret has not run).
    #[error("version {version} has no value yet; createSecret must run first")]
    PendingValueMissing {
        /// The token.
        version: VersionId,
    },
}

/// Decides what `input.invocation` should do now.
pub fn decide(input: &Input<'_>) -> Decision {
    match &input.invocation.step {
        Step::CreateSecret | Step::SetSecret | Step::TestSecret | Step::FinishSecret => engine_step(input),
        Step::SwapPending { due } => swap_pending(input, *due),
        Step::RemovePending { due, release } => remove_pending(input, *due, release),
    }
}

fn engine_step(i: &Input<'_>) -> Decision {
    let s = i.secret;
    let token = &i.invocation.token;
    let step = &i.invocation.step;
    // AWS's template checks, in its order, on every engine step.
    if !s.rotation_enabled {
        return Decision::Reject(Rejection::RotationDisabled);
    }
    if s.version(token).is_none() {
        return Decision::Reject(Rejection::UnknownVersion {
            version: token.clone(),
        });
    }
    // The engine knows its token; keyshift re-issues it. Act on the newest version of
    // the token's re-issue chain.
    let head = chain_head(s, token);
    // setSecret and testSecret never touch labels or schedules.
    let side_effects = matches!(step, Step::CreateSecret | Step::FinishSecret);
    if s.has(&head, AWSCURRENT) || s.has(token, AWSCURRENT) {
        // Done already: succeed. Outside set/test, take AWSPENDING off the engine's
        // version if a retry re-attached it (or later rotations would be refused), and
        // make sure a ROTATING left behind by a swap whose release was lost is released.
        let actions = if side_effects {
            drop_stray_pending(s, token, &head)
                .into_iter()
                .chain(release_leftover(s))
                .collect()
        } else {
            Vec::new()
        };
        return apply(actions, Outcome::AlreadyCurrent);
    }
    if let Some(current) = stale(s, &head) {
        // An engine retry of a rotation that a newer version already finished: never move
        // AWSCURRENT back. Take AWSPENDING off the stale version so that later rotations
        // are not refused ("a previous rotation isn't complete"), and succeed.
        let actions = if side_effects {
            drop_stray_pending(s, token, &head).into_iter().collect()
        } else {
            Vec::new()
        };
        return apply(actions, Outcome::Superseded { by: current.clone() });
    }
    if s.current().is_none() {
        return Decision::Reject(Rejection::NoCurrentVersion);
    }
    if step == &Step::FinishSecret {
        return promote(i, None);
    }
    // The version carrying this attempt's AWSPENDING: the engine's own (a fresh attempt,
    // or a retry that re-attached it), or keyshift's re-issue of it.
    let Some(pending) = [token, &head].into_iter().find(|v| s.has(v, AWSPENDING)) else {
        return Decision::Reject(Rejection::NotPending {
            version: token.clone(),
        });
    };
    let created = s.version(pending).and_then(|v| v.created);
    match (step, created) {
        (Step::CreateSecret, None) => {
            let mut actions = vec![Action::PutPending {
                version: pending.clone(),
            }];
            actions.extend(release_leftover(s));
            apply(actions, Outcome::Created)
        }
        (Step::CreateSecret, Some(_)) => {
            // An engine retry, or our own retry after a lost response: keep the value (a
            // new one would be a different credential than setSecret may have registered).
            apply(release_leftover(s).into_iter().collect(), Outcome::KeptExisting)
        }
        (Step::SetSecret, Some(_)) => apply(
            vec![Action::SetTarget {
                version: pending.clone(),
            }],
            Outcome::TargetSet,
        ),
        (Step::TestSecret, Some(_)) => apply(
            vec![Action::TestTarget {
                version: pending.clone(),
            }],
            Outcome::Tested,
        ),
        _ => Decision::Reject(Rejection::PendingValueMissing {
            version: pending.clone(),
        }),
    }
}

fn swap_pending(i: &Input<'_>, event_due: Timestamp) -> Decision {
    let s = i.secret;
    let token = &i.invocation.token;
    if !s.rotation_enabled {
        return apply(Vec::new(), Outcome::Abandoned);
    }
    if s.version(token).is_none() {
        return unknown_in_follow_up(i, token);
    }
    let head = chain_head(s, token);
    if s.has(&head, AWSCURRENT) || s.has(token, AWSCURRENT) {
        // The swap happened (maybe by a duplicate, maybe we crashed half-way): finish it.
        let mut actions: Vec<Action> = drop_stray_pending(s, token, &head).into_iter().collect();
        actions.extend(release_leftover(s));
        return apply(actions, Outcome::AlreadyCurrent);
    }
    if let Some(current) = stale(s, &head) {
        let actions = drop_stray_pending(s, token, &head).into_iter().collect();
        return apply(actions, Outcome::Superseded { by: current.clone() });
    }
    if s.current().is_none() {
        return Decision::Reject(Rejection::NoCurrentVersion);
    }
    promote(i, Some(event_due))
}

/// finishSecret and swapPending, once the template checks passed: swap the token's
/// re-issue when it is due, or re-issue first.
///
/// Only a re-issue (a version the engine does not know) that carries AWSPENDING is ever
/// swapped: it has carried the label since its creation, so its age is how long it has
/// been accepted. Anything else (the engine's own version, or a re-issue that lost
/// AWSPENDING) is re-issued, and the gap runs from the new version's creation.
fn promote(i: &Input<'_>, event_due: Option<Timestamp>) -> Decision {
    let s = i.secret;
    let token = &i.invocation.token;
    let head = chain_head(s, token);
    let later = |due| match event_due {
        None => Outcome::SwapScheduled { due },
        Some(_) => Outcome::Rescheduled { due },
    };
    if s.has(&head, AWSPENDING) && is_reissue(s, &head) {
        let Some(created) = s.version(&head).and_then(|v| v.created) else {
            return Decision::Reject(Rejection::PendingValueMissing { version: head });
        };
        // The event's due can only delay the swap; the version's own age bounds it below.
        let due = created
            .plus(i.policy.gap)
            .max(event_due.unwrap_or(Timestamp::EPOCH));
        let follow_up = swap_follow_up(token, due);
        return when_due(i, due, || swap_plan(s, &head), later, follow_up);
    }
    reissue(s, token, &head)
}

/// Writes the value of `head` (the newest version of `token`'s chain) again as a new
/// version carrying AWSPENDING, unless another rotation took over, and schedules its
/// swap.
fn reissue(s: &SecretState, token: &VersionId, head: &VersionId) -> Decision {
    // AWSPENDING on a version outside this chain: a newer rotation started.
    let ours = |v: &VersionId| v == token || v == head;
    if let Some(pending) = s.holder(AWSPENDING).filter(|p| !ours(p) && !s.has(p, AWSCURRENT)) {
        return apply(Vec::new(), Outcome::Superseded { by: pending.clone() });
    }
    // A value written after this chain's: a newer rotation, or an operator's write, which
    // abandons this rotation (as it would in AWS's engine).
    if let Some(newer) = s.newer_than(head).into_iter().next() {
        return apply(Vec::new(), Outcome::Superseded { by: newer.clone() });
    }
    if s.version(head).and_then(|v| v.created).is_none() {
        return Decision::Reject(Rejection::PendingValueMissing {
            version: head.clone(),
        });
    }
    let new_version = head.reissue();
    // Schedule first, then write: once the re-issue exists, the engine cannot run this
    // rotation again (RotateSecret refuses while AWSPENDING sits on another version than
    // its token), so the re-issue must never exist without a follow-up to finish it. An
    // early due is harmless: swapPending re-derives it from the re-issue's creation.
    apply(
        vec![
            Action::Schedule(FollowUp {
                kind: FollowUpKind::Swap,
                token: token.clone(),
                due: Due::GapAfterApply,
            }),
            Action::Reissue {
                from: head.clone(),
                to: new_version.clone(),
            },
        ],
        Outcome::Reissued { new_version },
    )
}

/// Takes AWSPENDING off whichever of the engine's version and its chain head still
/// carries it once the rotation is over or stale: an engine retry may have re-attached
/// it, or a swap stopped before its last call. Left there, it would make AWS refuse
/// every later rotation.
fn drop_stray_pending(s: &SecretState, token: &VersionId, head: &VersionId) -> Option<Action> {
    [token, head]
        .into_iter()
        .find(|v| s.has(v, AWSPENDING))
        .map(|v| Action::Label(remove(AWSPENDING, v)))
}

/// A follow-up naming a version the secret does not have. One delivered by keyshift's own
/// schedule is stale (a re-issue whose write never happened, or a version deleted since):
/// nothing to do, and failing would only send it through Lambda's retries to the
/// dead-letter queue. One made by hand is refused with a clear error.
fn unknown_in_follow_up(i: &Input<'_>, version: &VersionId) -> Decision {
    if i.invocation.schedule.is_some() {
        apply(
            Vec::new(),
            Outcome::Vanished {
                version: version.clone(),
            },
        )
    } else {
        Decision::Reject(Rejection::UnknownVersion {
            version: version.clone(),
        })
    }
}

/// The newest existing version of `token`'s re-issue chain (`token` itself if never
/// re-issued). Bounded: each re-issue is a real restart, and there are only so many.
fn chain_head(s: &SecretState, token: &VersionId) -> VersionId {
    let mut head = token.clone();
    for _ in 0..32 {
        let next = head.reissue();
        if s.version(&next).is_none() {
            break;
        }
        head = next;
    }
    head
}

/// Whether `version` is keyshift's re-issue of a version this secret has. A re-issue
/// whose parent was deleted is not recognised, which is safe: it is re-issued again.
fn is_reissue(s: &SecretState, version: &VersionId) -> bool {
    s.versions.keys().any(|parent| parent.reissue() == *version)
}

/// The current version, if `version`'s value is older than it: promoting `version` would
/// move AWSCURRENT back in time.
fn stale<'a>(s: &'a SecretState, version: &VersionId) -> Option<&'a VersionId> {
    let current = s.current()?;
    let mine = s.version(version)?.created?;
    let theirs = s.version(current)?.created?;
    (mine < theirs).then_some(current)
}

fn remove_pending(i: &Input<'_>, due: Timestamp, release: &VersionId) -> Decision {
    let s = i.secret;
    let token = &i.invocation.token;
    if !s.rotation_enabled {
        return apply(Vec::new(), Outcome::Abandoned);
    }
    let Some(old) = s.version(release) else {
        return unknown_in_follow_up(i, release);
    };
    if !old.has(ROTATING) || old.has(AWSCURRENT) {
        // Released already, or ROTATING moved on with a later swap, or the old version
        // is current again (rolled back by hand): there is nothing of ours to release.
        return apply(Vec::new(), Outcome::AlreadyReleased);
    }
    let plan = || Plan {
        // Revoke first: if the label call fails, the retry still finds ROTATING and
        // revokes again (revoke is idempotent); the other order could lose the revoke.
        actions: vec![
            Action::RevokeTarget {
                version: release.clone(),
            },
            Action::Label(remove(ROTATING, release)),
        ],
        outcome: Outcome::Released,
    };
    let follow_up = FollowUp {
        kind: FollowUpKind::Release {
            release: release.clone(),
        },
        token: token.clone(),
        due: Due::At(due),
    };
    when_due(i, due, plan, |due| Outcome::Rescheduled { due }, follow_up)
}

/// The swap, ordered so that every intermediate state keeps the consumer contract:
///
/// 1. ROTATING onto the current version K1 (accepted set unchanged: K1, K2);
/// 2. AWSCURRENT K1 -> K2 (Secrets Manager moves AWSPREVIOUS to K1; K1 stays accepted
///    through ROTATING, K2 through AWSCURRENT);
/// 3. AWSPENDING off K2 (K2 stays accepted through AWSCURRENT);
/// 4. schedule the release of K1, due T after step 2 returned.
///
/// A ROTATING still on an older version K0 (its release was lost) moves to K1 in step 1.
/// That stops K0 being accepted, which is safe: K0 got ROTATING when K1 became current,
/// before K2 was created, and K2 is at least T old now.
fn swap_plan(s: &SecretState, pending: &VersionId) -> Plan {
    let Some(current) = s.current() else {
        // engine_step and swap_pending check this before asking; keep the plan total.
        return Plan {
            actions: Vec::new(),
            outcome: Outcome::AlreadyCurrent,
        };
    };
    let mut actions = Vec::new();
    match s.holder(ROTATING) {
        Some(r) if r == current => {}
        other => actions.push(Action::Label(LabelMove {
            stage: ROTATING.into(),
            move_to: Some(current.clone()),
            remove_from: other.cloned(),
        })),
    }
    actions.push(Action::Label(LabelMove {
        stage: AWSCURRENT.into(),
        move_to: Some(pending.clone()),
        remove_from: Some(current.clone()),
    }));
    actions.push(Action::Label(remove(AWSPENDING, pending)));
    actions.push(Action::Schedule(FollowUp {
        kind: FollowUpKind::Release {
            release: current.clone(),
        },
        token: pending.clone(),
        due: Due::GapAfterApply,
    }));
    Plan {
        actions,
        outcome: Outcome::Swapped,
    }
}

/// A ROTATING on a version that is not current, with no release in hand: release it T
/// from now (later than T after the swap that put it there, so safe).
fn release_leftover(s: &SecretState) -> Option<Action> {
    let current = s.current()?;
    let rotating = s.holder(ROTATING).filter(|r| *r != current)?;
    Some(Action::Schedule(FollowUp {
        kind: FollowUpKind::Release {
            release: rotating.clone(),
        },
        token: current.clone(),
        due: Due::GapAfterApply,
    }))
}

/// Act now if `due` has passed, wait inline if the rest fits the budget, else schedule.
fn when_due(
    i: &Input<'_>,
    due: Timestamp,
    act: impl FnOnce() -> Plan,
    later: impl FnOnce(Timestamp) -> Outcome,
    follow_up: FollowUp,
) -> Decision {
    if i.now >= due {
        Decision::Apply(act())
    } else if due.since(i.now) <= i.wait_budget_left {
        Decision::WaitUntil(due)
    } else {
        apply(vec![Action::Schedule(follow_up)], later(due))
    }
}

fn swap_follow_up(token: &VersionId, due: Timestamp) -> FollowUp {
    FollowUp {
        kind: FollowUpKind::Swap,
        token: token.clone(),
        due: Due::At(due),
    }
}

fn remove(stage: &str, from: &VersionId) -> LabelMove {
    LabelMove {
        stage: stage.into(),
        move_to: None,
        remove_from: Some(from.clone()),
    }
}

fn apply(actions: Vec<Action>, outcome: Outcome) -> Decision {
    Decision::Apply(Plan { actions, outcome })
}

#[cfg(test)]
mod tests;
