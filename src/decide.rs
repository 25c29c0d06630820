//! The rotation core: a pure function from (the invocation, the secret as it is now,
//! now, the policy) to what to do, as data.
//!
//! Nothing here reads a clock or calls AWS. Every decision is derived from the labels
//! as they are, never from memory of what should have happened, so that any invocation
//! may arrive twice, late, early or never, or be made by hand, and the result stays safe.
//!
//! # The one safety argument (docs/protocol.md, section 1)
//!
//! A version may become AWSCURRENT only after it has been accepted (carried AWSPENDING
//! with a value) for at least T, and a version that stopped being AWSCURRENT must stay
//! accepted (carry ROTATING) for at least T more. Waiting longer than T is always safe;
//! acting earlier never is. So every due time below is a *lower bound* assembled from
//! facts keyshift can trust, and where two facts give two bounds, the later one wins. A
//! time carried in an event (`DueAt`) is never such a fact: anyone may invoke the
//! function by hand, so it can only delay.
//!
//! # Only keyshift's own copy becomes AWSCURRENT, and it is written outside the engine
//!
//! The engine can put AWSPENDING back on its token's version behind keyshift's back (a
//! retry of the rotation re-attaches it after a strip), and nothing records when; a
//! swap timed by that version's age could come moments after consumers started
//! accepting it again. So the engine's version is never promoted: the first follow-up
//! writes the pending value again under [`VersionId::copy`] of the token, a version the
//! engine never learns of, so AWSPENDING on it can only be removed, never restored. If
//! the copy still carries AWSPENDING, it has carried it since it was written, a fact the
//! store keeps (its creation time). If the label is gone, a new copy is written and the
//! gap restarts from it.
//!
//! The copy is written by the first follow-up, never by an engine step: a write with
//! another ClientRequestToken during the engine's rotation may abandon that rotation or
//! be refused outright (the engine's behaviour there is undocumented). The engine's
//! steps only read, register with the target, and schedule: createSecret stores the
//! value under the token; finishSecret schedules `swapPending`, which runs outside the
//! engine's rotation, writes the copy, waits T (inline, or through another schedule),
//! swaps, waits T, releases.
//!
//! # Where each due time comes from
//!
//! * The swap: the copy's creation time + T, read from the store on every arrival.
//!   The invocation that writes the copy either sleeps T and decides again (when T fits
//!   its budget) or schedules the swap for T after the write.
//! * The release of ROTATING: the swap marker ([`crate::secret::swap_marker`]), a label
//!   keyshift puts on the old version after AWSCURRENT left it, stamped with a time at
//!   or after the move. A ROTATING found without a marker (the swap stopped between the
//!   move and the marker) gets one stamped now, which is later than the move: safe.
//! * A follow-up's `DueAt` only ever delays either.
//!
//! # What a decision may read
//!
//! Engine steps and `removePending` decide from labels ([`Detail::Labels`]): they read
//! the creation time of the AWSPENDING holder only. `swapPending` reads every version
//! and its creation time ([`Detail::Full`]) to time the swap and to see whether its
//! rotation is stale or superseded.
//!
//! [`Detail::Labels`]: crate::ports::Detail::Labels
//! [`Detail::Full`]: crate::ports::Detail::Full

use std::fmt;
use std::time::Duration;

use crate::event::{Invocation, Step};
use crate::policy::Policy;
use crate::ports::{Detail, LabelMove};
use crate::secret::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, CANCEL_SETTLE, ROTATING, SecretState, VersionId};
use crate::time::Timestamp;

/// Everything a decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The invocation being handled.
    pub invocation: &'a Invocation,
    /// The secret as the store reports it now, at [`detail`] for this step.
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
    /// Apply these actions in order, then do what the plan's [`Next`] says.
    Apply(Plan),
    /// Sleep until this time, then decide again from fresh labels.
    WaitUntil(Timestamp),
    /// Refuse: nothing is changed, and the invocation fails with this error.
    Reject(Rejection),
}

/// Actions, the outcome they reach, and what the invocation does after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Performed in order; each one is safe to stop after.
    pub actions: Vec<Action>,
    /// What the invocation reports once all actions are done.
    pub outcome: Outcome,
    /// What comes after.
    pub next: Next,
}

/// What an invocation does once a plan is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// It ends with the plan's outcome.
    Done,
    /// It decides again from fresh labels at once.
    Decide,
    /// It sleeps T from the moment the last action returned, then decides again from
    /// fresh labels: the gap that plan started (a copy's first gap, a swap's second) is
    /// over by then, so the next decision acts without another look in between.
    AfterGap,
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
    Copy {
        /// A version of the rotation that has the value.
        from: VersionId,
        /// keyshift's copy.
        to: VersionId,
    },
    /// One UpdateSecretVersionStage call.
    Label(LabelMove),
    /// Put a swap marker stamped with the time this action is applied on `version`
    /// (one UpdateSecretVersionStage call).
    MarkSwap {
        /// The version AWSCURRENT left.
        version: VersionId,
    },
    /// Put a swap marker on `version` (the compromised version of an emergency that keeps
    /// accepting it) stamped `keep - T` after the time this action is applied, so that its
    /// release, due at marker + T like every release, comes `keep` after the cut.
    MarkKeep {
        /// The compromised version, which keeps ROTATING.
        version: VersionId,
        /// How long it stays accepted after the cut.
        keep: Duration,
    },
    /// Put a cancel marker stamped with the time this action is applied on the cancelled
    /// rotation's token version ([`crate::secret::cancel_marker`]).
    MarkCancelled {
        /// The rotation's token.
        version: VersionId,
    },
    /// Put an accepted marker stamped with the time this action is applied on keyshift's
    /// copy (replicated secrets: every replica showed the copy with AWSPENDING).
    MarkAccepted {
        /// The copy.
        version: VersionId,
    },
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
    /// Revoke the version's value at the target.
    RevokeTarget {
        /// The version whose value no accepted label carries any more.
        version: VersionId,
    },
}

/// A follow-up invocation to schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// Which step, and its version.
    pub kind: FollowUpKind,
    /// The rotation's token (the `ClientRequestToken` of the follow-up).
    pub token: VersionId,
    /// When it is due (the earliest time its work may happen).
    pub due: Due,
}

/// A due time, possibly relative to when the action is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// At this time.
    At(Timestamp),
    /// T after the moment the executor applies the schedule, i.e. after every action
    /// before it in the plan returned: for the gap one of those actions started (a copy,
    /// a swap). The follow-up re-derives its real due when it arrives; this one only
    /// sets when it fires.
    GapAfterApply,
}

/// The two follow-up steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUpKind {
    /// `swapPending` for `token`: write the copy if needed, swap once it is T old.
    Swap,
    /// `removePending`: take ROTATING off `release`.
    Release {
        /// The old version.
        release: VersionId,
    },
    /// The watchdog ([`Policy::watchdog`]): a `swapPending` for `token` long after its
    /// rotation should have ended, under a schedule name of its own (`watch`).
    Watchdog,
}

/// How an invocation ended, or a step along the way.
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
    /// The token (or keyshift's copy of it) is AWSCURRENT already: nothing to do
    /// (AWS's template rule), and no earlier rotation left anything to release.
    AlreadyCurrent,
    /// AWSCURRENT moved to keyshift's copy; ROTATING and the swap marker are on the old
    /// version.
    Swapped,
    /// finishSecret scheduled the `swapPending` that writes the copy and swaps.
    SwapScheduled {
        /// When the follow-up is due.
        due: Timestamp,
    },
    /// The next phase is due later than this invocation may wait: scheduled.
    Rescheduled {
        /// When it is due.
        due: Timestamp,
    },
    /// The pending value was written again as `new_version`, keyshift's own version,
    /// which becomes AWSCURRENT once it is T old (the first gap runs from now).
    Copied {
        /// keyshift's copy.
        new_version: VersionId,
    },
    /// ROTATING was found without a swap marker: one stamped now was added.
    Marked,
    /// A stray AWSPENDING (or an accepted marker) was taken off after the swap; the
    /// release comes next.
    Tidied,
    /// A replicated secret: every replica showed the copy with AWSPENDING; its first
    /// gap counts from now.
    AcceptedEverywhere,
    /// A replicated secret: one label moved; the next waits until every replica shows it.
    Moved,
    /// ROTATING is off the old version and its value revoked: the rotation is complete.
    Released,
    /// The old version carries no ROTATING any more (a duplicate or stale release).
    AlreadyReleased,
    /// A newer rotation or an operator's write took over; this rotation stands down
    /// (its AWSPENDING removed, its never-used value revoked).
    Superseded {
        /// The version that took over.
        by: VersionId,
    },
    /// A scheduled follow-up names a version that does not exist (any more): stale.
    Vanished {
        /// The missing version.
        version: VersionId,
    },
    /// Rotation was disabled before the swap: keyshift's AWSPENDING is removed and the
    /// never-used pending value revoked. (After the swap, the release still runs T
    /// after it, whatever the rotation setting.)
    Abandoned,
    /// The secret is deleted or scheduled for deletion: the follow-up ends, changing
    /// nothing.
    SecretGone,
    /// An emergency rotation stored the new value as AWSPENDING, registered it with the
    /// target and tested it; the cut comes once it has been accepted for the emergency's
    /// gap.
    EmergencyWritten {
        /// The new value's version.
        new_version: VersionId,
    },
    /// An emergency rotation moved AWSCURRENT to the new value.
    EmergencyCut {
        /// The new AWSCURRENT.
        new_version: VersionId,
        /// The compromised version.
        compromised: VersionId,
    },
    /// An emergency rotation is complete: the new value is AWSCURRENT and the compromised
    /// version is no longer accepted and revoked, or (when the operator kept accepting
    /// it) stays accepted until `accepted_until`, when its release revokes it.
    EmergencyDone {
        /// The new AWSCURRENT.
        new_version: VersionId,
        /// The compromised version.
        compromised: VersionId,
        /// When it stops being accepted, if it still is.
        accepted_until: Option<Timestamp>,
    },
    /// An operator's cancel marked the rotation of `token` and took its AWSPENDING off;
    /// its value is revoked once the mark has settled.
    CancelMarked {
        /// The cancelled rotation's token.
        token: VersionId,
    },
    /// The rotation of `token` was cancelled by an operator before its swap: no version
    /// of it is accepted and its value is revoked. Its later steps stand down.
    Cancelled {
        /// The cancelled rotation's token.
        token: VersionId,
    },
    /// A cancel found no rotation in flight.
    NothingToCancel,
    /// A re-drive found no rotation in flight.
    NothingToRedrive,
}

impl Outcome {
    /// A short, stable, machine-readable name (metrics, lifecycle events, scripts).
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::KeptExisting => "kept-existing",
            Outcome::TargetSet => "target-set",
            Outcome::Tested => "tested",
            Outcome::AlreadyCurrent => "already-current",
            Outcome::Swapped => "swapped",
            Outcome::SwapScheduled { .. } => "swap-scheduled",
            Outcome::Rescheduled { .. } => "rescheduled",
            Outcome::Copied { .. } => "copied",
            Outcome::Marked => "marked",
            Outcome::Tidied => "tidied",
            Outcome::AcceptedEverywhere => "accepted-everywhere",
            Outcome::Moved => "moved",
            Outcome::Released => "released",
            Outcome::AlreadyReleased => "already-released",
            Outcome::Superseded { .. } => "superseded",
            Outcome::Vanished { .. } => "vanished",
            Outcome::Abandoned => "abandoned",
            Outcome::SecretGone => "secret-gone",
            Outcome::EmergencyWritten { .. } => "emergency-written",
            Outcome::EmergencyCut { .. } => "emergency-cut",
            Outcome::EmergencyDone { .. } => "emergency-done",
            Outcome::CancelMarked { .. } => "cancel-marked",
            Outcome::Cancelled { .. } => "cancelled",
            Outcome::NothingToCancel => "nothing-to-cancel",
            Outcome::NothingToRedrive => "nothing-to-redrive",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Created => f.write_str("created the pending value"),
            Outcome::KeptExisting => f.write_str("kept the pending value already stored for this token"),
            Outcome::TargetSet => f.write_str("registered the pending value with the target"),
            Outcome::Tested => f.write_str("tested the pending value"),
            Outcome::AlreadyCurrent => f.write_str("the token is already AWSCURRENT; nothing to do"),
            Outcome::Swapped => {
                f.write_str("swapped: AWSCURRENT moved to the new version, ROTATING and the swap marker on the old one")
            }
            Outcome::SwapScheduled { due } => write!(f, "swap follow-up scheduled, due {due}"),
            Outcome::Rescheduled { due } => write!(f, "next phase due {due}; scheduled"),
            Outcome::Copied { new_version } => write!(
                f,
                "wrote the pending value again as version {new_version}; the first gap runs from its creation"
            ),
            Outcome::Marked => f.write_str("ROTATING had no swap marker; stamped one now"),
            Outcome::Tidied => f.write_str("took a stray label off after the swap"),
            Outcome::AcceptedEverywhere => {
                f.write_str("every replica Region shows the copy as AWSPENDING; the first gap counts from now")
            }
            Outcome::Moved => f.write_str("moved one label; the next waits until every replica Region shows it"),
            Outcome::Released => f.write_str("released: ROTATING removed from the old version, its value revoked"),
            Outcome::AlreadyReleased => f.write_str("the old version was already released; nothing to do"),
            Outcome::Superseded { by } => write!(f, "superseded by version {by}; this rotation stands down"),
            Outcome::Vanished { version } => {
                write!(f, "version {version} does not exist; stale follow-up, nothing to do")
            }
            Outcome::Abandoned => f.write_str(
                "rotation is disabled for this secret: the pending version lost AWSPENDING and its value was revoked; nothing was swapped",
            ),
            Outcome::SecretGone => f.write_str("the secret is deleted or scheduled for deletion; nothing to do"),
            Outcome::EmergencyWritten { new_version } => write!(
                f,
                "emergency: stored, registered and tested the new value as version {new_version} (AWSPENDING)"
            ),
            Outcome::EmergencyCut {
                new_version,
                compromised,
            } => write!(
                f,
                "emergency: AWSCURRENT moved from the compromised version {compromised} to {new_version}"
            ),
            Outcome::EmergencyDone {
                new_version,
                compromised,
                accepted_until: None,
            } => write!(
                f,
                "emergency rotation complete: {new_version} is AWSCURRENT; the compromised version {compromised} is no longer accepted (no AWSCURRENT, ROTATING or AWSPREVIOUS) and was revoked at the target"
            ),
            Outcome::EmergencyDone {
                new_version,
                compromised,
                accepted_until: Some(until),
            } => write!(
                f,
                "emergency rotation complete: {new_version} is AWSCURRENT; the compromised version {compromised} stays accepted (ROTATING) until {until}, when its release revokes it"
            ),
            Outcome::CancelMarked { token } => write!(
                f,
                "cancel: marked the rotation of {token} cancelled and took its AWSPENDING off"
            ),
            Outcome::Cancelled { token } => write!(
                f,
                "the rotation of {token} is cancelled: AWSCURRENT never moved, its value is not accepted and was revoked at the target"
            ),
            Outcome::NothingToCancel => f.write_str("no rotation is in flight; nothing to cancel"),
            Outcome::NothingToRedrive => f.write_str("no rotation is in flight; nothing to re-drive"),
        }
    }
}

/// Why an invocation is refused. Refusals change nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// AWS's template rule: rotation must be enabled for engine steps.
    #[error("secret is not enabled for rotation")]
    RotationDisabled,
    /// The secret is scheduled for deletion.
    #[error("secret is scheduled for deletion")]
    SecretDeleted,
    /// Secrets Manager knows no such secret (or the function may not see it).
    #[error("secret not found")]
    SecretNotFound,
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
    /// An emergency names a compromised version that is no longer AWSCURRENT (and the
    /// current one is not its emergency successor).
    #[error(
        "version {version} is not AWSCURRENT (version {current} is): nothing to cut over from; to rotate away from the current version in an emergency, ask again without VersionId"
    )]
    NotCurrent {
        /// The version named as compromised.
        version: VersionId,
        /// The AWSCURRENT version.
        current: VersionId,
    },
    /// `KeepAcceptingSeconds` longer than T: a routine rotation would keep the version
    /// accepted no longer.
    #[error("KeepAcceptingSeconds ({keep_secs}) must not exceed T ({gap_secs} s)")]
    KeepTooLong {
        /// Asked for.
        keep_secs: u64,
        /// T.
        gap_secs: u64,
    },
    /// The emergency gap does not fit in what this invocation may still wait.
    #[error(
        "GapSeconds ({gap_secs}) is longer than this invocation may wait ({budget_secs} s): use a shorter gap, or a routine rotation"
    )]
    EmergencyGapTooLong {
        /// Asked for (or left to wait).
        gap_secs: u64,
        /// The wait budget left.
        budget_secs: u64,
    },
    /// The emergency's new version was cancelled by an operator before the cut.
    #[error(
        "the emergency version {version} was cancelled before its cut; the compromised version is still AWSCURRENT"
    )]
    EmergencyCancelled {
        /// The emergency version.
        version: VersionId,
    },
    /// A cancel after the swap: the new version is in use, and taking it back would fail
    /// every producer that switched.
    #[error(
        "the rotation has swapped: the new version is AWSCURRENT and in use, so it cannot be cancelled; let it finish (the old version is released {}) or, if a value is compromised, use emergencyRotate",
        match release_due { Some(t) => format!("at {t}"), None => "at its due time".to_owned() }
    )]
    CancelAfterSwap {
        /// When the old version's release is due, if known.
        release_due: Option<Timestamp>,
    },
    /// A cancel names a rotation other than the one in flight.
    #[error("no rotation with token {token} is in flight (another one is); nothing was cancelled")]
    NotInFlight {
        /// The token named.
        token: VersionId,
    },
    /// A re-drive while an emergency rotation is between its write and its cut.
    #[error(
        "emergency version {version} is waiting for its cut: run the same emergencyRotate again (with the compromised VersionId) to finish it, or cancel it"
    )]
    RedriveEmergency {
        /// The emergency version.
        version: VersionId,
    },
    /// A re-drive of a rotation whose pending value does not work at the target: the
    /// engine's steps did not finish.
    #[error(
        "the pending version {version} did not pass testSecret, so the engine's rotation did not finish: cancel it, then rotate again"
    )]
    RedriveUntested {
        /// The pending version.
        version: VersionId,
    },
    /// The pending version has no value yet (createSecret has not run, or a read right
    /// after the write does not show it yet).
    #[error("version {version} has no value yet; createSecret must run first")]
    PendingValueMissing {
        /// The token.
        version: VersionId,
    },
}

/// How much of the secret `step` decides from (see the module docs). `swapped` says the
/// invocation has just swapped (or found the swap done): its release decides from labels.
pub fn detail(step: &Step, swapped: bool) -> Detail {
    match step {
        Step::SwapPending { .. } if !swapped => Detail::Full,
        Step::EmergencyRotate { .. } | Step::Cancel => Detail::Full,
        _ => Detail::Labels,
    }
}

/// Whether a state read at [`Detail::Labels`] is not enough for this invocation after
/// all: a `swapPending` whose rotation is not (or no longer) swapped needs the dates, and
/// so does a release while a cancel marker is about (which markers it may drop depends
/// on when the cancelled rotations stored their values: see this module's
/// `old_cancel_markers`).
pub fn needs_full(invocation: &Invocation, secret: &SecretState) -> bool {
    let cancelled = || {
        secret
            .versions
            .keys()
            .any(|v| secret.cancel_markers(v).next().is_some())
    };
    match invocation.step {
        Step::SwapPending { .. } => {
            !secret
                .current()
                .is_some_and(|c| SecretState::in_chain(c, &invocation.token))
                || cancelled()
        }
        Step::RemovePending { .. } => cancelled(),
        _ => false,
    }
}

/// How often a follow-up looks again while a replica Region has not caught up.
pub const REPLICA_POLL: Duration = Duration::from_secs(2);

/// Decides what `input.invocation` should do now.
pub fn decide(input: &Input<'_>) -> Decision {
    let decision = match &input.invocation.step {
        Step::CreateSecret | Step::SetSecret | Step::TestSecret | Step::FinishSecret => engine_step(input),
        Step::SwapPending { due } => swap_pending(input, *due),
        Step::RemovePending { due, release } => remove_pending(input, *due, release),
        Step::EmergencyRotate { gap, keep_accepting } => emergency(input, *gap, *keep_accepting),
        Step::Cancel => cancel(input),
    };
    replica_gate(input, decision)
}

/// A replicated secret's labels reach its replica Regions later, and consumers there
/// see them only then. So, for such a secret: no label moves until every replica shows
/// the previous move (and the markers that time the gaps are stamped only then, so a
/// gap counts from the moment the last replica caught up), and one move at a time, never
/// chained faster than replication runs (chained calls have left replication stuck).
fn replica_gate(i: &Input<'_>, decision: Decision) -> Decision {
    let s = i.secret;
    let Decision::Apply(mut plan) = decision else {
        return decision;
    };
    let moves = |a: &Action| {
        matches!(
            a,
            Action::Label(_)
                | Action::MarkSwap { .. }
                | Action::MarkKeep { .. }
                | Action::MarkCancelled { .. }
                | Action::MarkAccepted { .. }
                | Action::Copy { .. }
        )
    };
    if s.replicas.is_empty() || !plan.actions.iter().any(moves) {
        return Decision::Apply(plan);
    }
    if !s.replicas_caught_up() {
        if i.invocation.step.is_engine_step() {
            // The engine's steps do not wait: they hand the label work to a follow-up,
            // which waits for the replicas (a release for a marker to stamp, the
            // rotation's own swapPending for the rest, which tidies after its swap).
            let mut handed = Vec::new();
            for a in std::mem::take(&mut plan.actions) {
                let follow_up = match &a {
                    Action::MarkSwap { version } => Some(FollowUpKind::Release {
                        release: version.clone(),
                    }),
                    a if moves(a) => Some(FollowUpKind::Swap),
                    _ => None,
                };
                match follow_up {
                    Some(kind) => {
                        let job = Action::Schedule(FollowUp {
                            kind,
                            token: i.invocation.token.clone(),
                            due: Due::At(i.now),
                        });
                        if !handed.contains(&job) {
                            handed.push(job);
                        }
                    }
                    None => plan.actions.push(a),
                }
            }
            plan.actions.extend(handed);
            return Decision::Apply(plan);
        }
        let until = i.now.plus(REPLICA_POLL);
        if REPLICA_POLL <= i.wait_budget_left {
            return Decision::WaitUntil(until);
        }
        let kind = match &i.invocation.step {
            Step::RemovePending { release, .. } => FollowUpKind::Release {
                release: release.clone(),
            },
            _ => FollowUpKind::Swap,
        };
        let due = i.now.plus(i.policy.precision);
        return done(
            vec![Action::Schedule(FollowUp {
                kind,
                token: i.invocation.token.clone(),
                due: Due::At(due),
            })],
            Outcome::Rescheduled { due },
        );
    }
    if let Some(first) = plan.actions.iter().position(moves) {
        if plan.actions[first + 1..].iter().any(moves) {
            plan.actions.truncate(first + 1);
            plan.outcome = Outcome::Moved;
            plan.next = Next::Decide;
        }
    }
    Decision::Apply(plan)
}

fn engine_step(i: &Input<'_>) -> Decision {
    let s = i.secret;
    let token = &i.invocation.token;
    let step = &i.invocation.step;
    // AWS's template checks, in its order, on every engine step.
    if !s.rotation_enabled {
        return Decision::Reject(Rejection::RotationDisabled);
    }
    if s.deleted {
        return Decision::Reject(Rejection::SecretDeleted);
    }
    if s.version(token).is_none() && s.newest_copy(token).is_none() {
        return Decision::Reject(Rejection::UnknownVersion {
            version: token.clone(),
        });
    }
    let Some(current) = s.current() else {
        return Decision::Reject(Rejection::NoCurrentVersion);
    };
    // setSecret and testSecret never touch labels or schedules (a test-only rotation
    // runs testSecret alone and must leave nothing behind).
    let side_effects = matches!(step, Step::CreateSecret | Step::FinishSecret);
    if SecretState::in_chain(current, token) {
        // Done already: succeed. Outside set/test, take AWSPENDING off the engine's
        // version if a retry re-attached it (or later rotations would be refused), and
        // see that an old version left with ROTATING gets released.
        let actions = if side_effects {
            drop_stray_pending(s, token)
                .into_iter()
                .chain(leftover(i))
                .collect()
        } else {
            Vec::new()
        };
        return done(actions, Outcome::AlreadyCurrent);
    }
    if s.cancel_markers(token).next().is_some() {
        // An operator cancelled this rotation: succeed without doing anything, so the
        // engine ends it, and (outside set/test) take off an AWSPENDING a retry put back.
        let actions = if side_effects {
            drop_stray_pending(s, token).into_iter().collect()
        } else {
            Vec::new()
        };
        return done(actions, Outcome::Cancelled { token: token.clone() });
    }
    // The version carrying this attempt's AWSPENDING: the engine's own (a fresh attempt,
    // or a retry that re-attached it), or keyshift's copy of it.
    let Some(pending) = s.holder(AWSPENDING).filter(|p| SecretState::in_chain(p, token)) else {
        return Decision::Reject(Rejection::NotPending {
            version: token.clone(),
        });
    };
    // Engine steps decide from labels: whether the version has a value is not read
    // here (it would cost a call per step). createSecret writes, and a value already
    // stored under the token makes that write fail as AWS documents (same token, other
    // value): the executor reports the value kept. setSecret and testSecret read the
    // value they need, and fail (to be retried) if there is none yet.
    let known_value = s.version(pending).is_some_and(|v| v.created.is_some()) || pending != token;
    match step {
        Step::CreateSecret if !known_value => {
            let mut actions = vec![Action::PutPending {
                version: pending.clone(),
            }];
            actions.extend(leftover(i));
            done(actions, Outcome::Created)
        }
        // An engine retry, or our own retry after a lost response: keep the value (a
        // new one would be a different credential than setSecret may have registered).
        Step::CreateSecret => done(leftover(i).into_iter().collect(), Outcome::KeptExisting),
        Step::SetSecret => done(
            vec![Action::SetTarget {
                version: pending.clone(),
            }],
            Outcome::TargetSet,
        ),
        Step::TestSecret => done(
            vec![Action::TestTarget {
                version: pending.clone(),
            }],
            Outcome::Tested,
        ),
        _ => {
            // finishSecret: the copy, the swap and the release happen in a follow-up,
            // outside the engine's rotation. Due now: it fires at the scheduler's
            // earliest, and times the swap from the copy it writes.
            let due = i.now;
            let mut actions = vec![Action::Schedule(FollowUp {
                kind: FollowUpKind::Swap,
                token: token.clone(),
                due: Due::At(due),
            })];
            if let Some(margin) = i.policy.watchdog {
                // Saturating: T comes from a secret tag, which may say any number.
                let after = i.policy.gap.saturating_mul(2).saturating_add(margin);
                actions.push(Action::Schedule(FollowUp {
                    kind: FollowUpKind::Watchdog,
                    token: token.clone(),
                    due: Due::At(i.now.plus(after)),
                }));
            }
            done(actions, Outcome::SwapScheduled { due })
        }
    }
}

fn swap_pending(i: &Input<'_>, event_due: Timestamp) -> Decision {
    let s = i.secret;
    let token = &i.invocation.token;
    if s.deleted {
        return done(Vec::new(), Outcome::SecretGone);
    }
    let head = match s.newest_copy(token) {
        Some((copy, _)) => copy.clone(),
        None if s.version(token).is_some() => token.clone(),
        None => return unknown_in_follow_up(i, token),
    };
    let Some(current) = s.current() else {
        return Decision::Reject(Rejection::NoCurrentVersion);
    };
    if SecretState::in_chain(current, token) {
        // The swap happened (maybe by a duplicate, maybe this invocation before a crash):
        // finish the rotation, i.e. the release.
        return after_swap(i, event_due);
    }
    if s.cancel_markers(token).next().is_some() {
        // Cancelled by an operator before its swap: never write a new copy. Take off an
        // AWSPENDING an engine retry put back; the cancel itself revokes the value.
        return done(
            drop_stray_pending(s, token).into_iter().collect(),
            Outcome::Cancelled { token: token.clone() },
        );
    }
    // The rotation's value, on the newest version of its chain that has one.
    let valued = [&head, token]
        .into_iter()
        .find(|v| s.version(v).is_some_and(|v| v.created.is_some()));
    if let Some(by) = stale(s, valued).or_else(|| taken_over(s, token)) {
        // Older than the current version (a newer rotation finished, or an operator wrote
        // a new AWSCURRENT by hand), or a newer rotation began after this one lost its
        // AWSPENDING: never move AWSCURRENT back. Stand down: take this rotation's
        // AWSPENDING off, so later rotations are not refused, and revoke its value unless
        // one of its versions is still accepted as current or through ROTATING (then it
        // was promoted once, and the release in progress revokes it in its time).
        let by = by.clone();
        return done(stand_down(s, token, valued), Outcome::Superseded { by });
    }
    if !s.rotation_enabled {
        // Disabled before the swap: leave no AWSPENDING behind (the next RotateSecret
        // would be refused) and revoke the value nobody ever used.
        return done(stand_down(s, token, valued), Outcome::Abandoned);
    }
    if head != *token && s.has(&head, AWSPENDING) {
        // The event's due can only delay the swap.
        return match first_gap_end(s, &head, i.policy) {
            Ok(end) => swap_when_due(i, &head, current, end.max(event_due)),
            Err(FirstGapOpen::NoValue) => Decision::Reject(Rejection::PendingValueMissing { version: head }),
            Err(FirstGapOpen::NotAccepted) => decide_again(
                vec![Action::MarkAccepted { version: head }],
                Outcome::AcceptedEverywhere,
            ),
        };
    }
    // No copy yet, or the copy lost AWSPENDING: write a (new) copy.
    let Some(from) = valued else {
        return Decision::Reject(Rejection::PendingValueMissing { version: head });
    };
    let newest = s.newest_copy(token).map_or(0, |(_, g)| g.saturating_add(1));
    let generation = u32::try_from(i.now.as_secs()).unwrap_or(u32::MAX).max(newest);
    let new_version = token.copy(generation);
    let copy = Action::Copy {
        from: from.clone(),
        to: new_version.clone(),
    };
    let swap = FollowUp {
        kind: FollowUpKind::Swap,
        token: token.clone(),
        due: Due::GapAfterApply,
    };
    // Schedule first, then write, when the gap is not waited here: once the copy exists
    // the engine cannot run this rotation again (RotateSecret refuses while AWSPENDING
    // sits on a version other than its token), so the copy must never exist without a
    // follow-up to finish it. (Waited here, the invocation is that follow-up; if it dies,
    // Lambda's retry of the same event re-derives and finishes.)
    gap_then(i, vec![copy], swap, Outcome::Copied { new_version })
}

/// Why the first gap of keyshift's copy has no end time yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstGapOpen {
    /// The copy shows no value (creation time): a read that has not caught up with the
    /// write (keyshift writes copies with their value).
    NoValue,
    /// A replicated secret whose copy has no accepted marker yet: the gap starts once
    /// every replica Region shows the copy with AWSPENDING and the marker is stamped.
    NotAccepted,
}

/// When the first gap of keyshift's copy `copy` (which carries AWSPENDING) ends, i.e.
/// the earliest time it may become AWSCURRENT: its creation + T, and for a replicated
/// secret also its latest accepted marker + T (the later wins). A follow-up's `DueAt`
/// and a lingering ROTATING on an older version (see [`second_gap_end`]) can only delay
/// the swap further.
///
/// The copy has carried AWSPENDING since its creation (the label cannot be restored on
/// it), so it has been accepted for exactly its age, in every replica Region from the
/// accepted marker on.
pub fn first_gap_end(s: &SecretState, copy: &VersionId, policy: &Policy) -> Result<Timestamp, FirstGapOpen> {
    let created = s
        .version(copy)
        .and_then(|v| v.created)
        .ok_or(FirstGapOpen::NoValue)?;
    let mut end = created.plus(policy.gap);
    if !s.replicas.is_empty() {
        let accepted = s
            .accepted_markers(copy)
            .map(|(_, t)| t)
            .max()
            .ok_or(FirstGapOpen::NotAccepted)?;
        end = end.max(accepted.plus(policy.gap));
    }
    Ok(end)
}

/// When the second gap of `old` (the version AWSCURRENT left, carrying ROTATING) ends,
/// i.e. the earliest time ROTATING may come off it: its latest swap marker + T. `None`
/// when it carries no marker (the swap stopped between its move and its marker): the
/// next step stamps one, and the gap counts from then.
pub fn second_gap_end(s: &SecretState, old: &VersionId, policy: &Policy) -> Option<Timestamp> {
    s.swap_marker(old).map(|marked| marked.plus(policy.gap))
}

/// `actions` start a gap of T: wait it out in this invocation if it fits the budget
/// left, else schedule `follow_up` for T after they are applied (first, when the
/// actions create what the follow-up finishes; last otherwise).
fn gap_then(i: &Input<'_>, actions: Vec<Action>, follow_up: FollowUp, outcome: Outcome) -> Decision {
    if i.policy.gap <= i.wait_budget_left {
        return Decision::Apply(Plan {
            actions,
            outcome,
            next: Next::AfterGap,
        });
    }
    let schedule = Action::Schedule(follow_up);
    let actions = match outcome {
        Outcome::Copied { .. } => std::iter::once(schedule).chain(actions).collect(),
        _ => actions.into_iter().chain(std::iter::once(schedule)).collect(),
    };
    done(actions, outcome)
}

/// The swap of `copy` (due at `due`) with the current version `current`, or a wait or a
/// schedule until then. A ROTATING still on an older version K0 (its release was lost)
/// is released first, when K0's own release is due: no credential may stay valid
/// downstream once its labels are gone, and the release is what revokes it.
fn swap_when_due(i: &Input<'_>, copy: &VersionId, current: &VersionId, due: Timestamp) -> Decision {
    let s = i.secret;
    let mut actions = Vec::new();
    let mut due = due;
    if let Some(old) = s.holder(ROTATING).filter(|r| *r != current) {
        match second_gap_end(s, old, i.policy) {
            None => return decide_again(vec![Action::MarkSwap { version: old.clone() }], Outcome::Marked),
            Some(end) => due = due.max(end),
        }
        actions.extend(release_actions(s, old));
    }
    if i.now < due {
        let follow_up = FollowUp {
            kind: FollowUpKind::Swap,
            token: i.invocation.token.clone(),
            due: Due::At(due),
        };
        return wait_or_schedule(i, due, follow_up);
    }
    if !s.has(current, ROTATING) {
        actions.push(Action::Label(LabelMove {
            stage: ROTATING.into(),
            move_to: Some(current.clone()),
            remove_from: None,
        }));
    }
    actions.push(Action::Label(LabelMove {
        stage: AWSCURRENT.into(),
        move_to: Some(copy.clone()),
        remove_from: Some(current.clone()),
    }));
    actions.push(Action::MarkSwap {
        version: current.clone(),
    });
    // Leaves AWSPENDING on no version: the end state every reading of the engine (and
    // every emulator) takes as a finished rotation. The copy stays accepted through
    // AWSCURRENT.
    actions.push(Action::Label(remove(AWSPENDING, copy)));
    actions.extend(
        s.accepted_markers(copy)
            .map(|(label, _)| Action::Label(remove(label, copy))),
    );
    let release = FollowUp {
        kind: FollowUpKind::Release {
            release: current.clone(),
        },
        token: i.invocation.token.clone(),
        due: Due::GapAfterApply,
    };
    gap_then(i, actions, release, Outcome::Swapped)
}

/// After the swap: take stray labels off, then release whichever old version still
/// carries ROTATING, T after its swap marker.
fn after_swap(i: &Input<'_>, event_due: Timestamp) -> Decision {
    let s = i.secret;
    let token = &i.invocation.token;
    let mut actions: Vec<Action> = drop_stray_pending(s, token).into_iter().collect();
    // A swap that stopped after AWSCURRENT moved: what it had left to take off the copy.
    if let Some(current) = s.current() {
        if s.has(current, AWSPENDING) {
            actions.push(Action::Label(remove(AWSPENDING, current)));
        }
    }
    // Accepted markers, on the copy that became current or on an earlier copy that lost
    // AWSPENDING after it was marked: the first gap they timed is over.
    for id in s.versions.keys() {
        actions.extend(
            s.accepted_markers(id)
                .map(|(label, _)| Action::Label(remove(label, id))),
        );
    }
    // A release that stopped after ROTATING came off: its marker.
    for (id, v) in &s.versions {
        if !v.has(ROTATING) {
            actions.extend(s.markers(id).map(|(label, _)| Action::Label(remove(label, id))));
        }
    }
    match release_decision(i, event_due) {
        Some(Decision::Apply(mut plan)) => {
            actions.append(&mut plan.actions);
            plan.actions = actions;
            Decision::Apply(plan)
        }
        Some(other) if actions.is_empty() => other,
        // Tidy the strays first; the next decision waits or schedules.
        Some(_) => decide_again(actions, Outcome::Tidied),
        None => done(actions, Outcome::AlreadyCurrent),
    }
}

/// The release of the version that carries ROTATING without being current, if any:
/// a marker first if it has none, then the release once marker + T has passed.
fn release_decision(i: &Input<'_>, event_due: Timestamp) -> Option<Decision> {
    let s = i.secret;
    let current = s.current()?;
    let old = s.holder(ROTATING).filter(|r| *r != current)?;
    Some(release_of(i, old, event_due))
}

fn release_of(i: &Input<'_>, old: &VersionId, event_due: Timestamp) -> Decision {
    let s = i.secret;
    let Some(end) = second_gap_end(s, old, i.policy) else {
        return decide_again(vec![Action::MarkSwap { version: old.clone() }], Outcome::Marked);
    };
    let due = end.max(event_due);
    if i.now >= due {
        let mut actions = release_actions(s, old);
        actions.extend(old_cancel_markers(s, end.minus(i.policy.gap)));
        return done(actions, Outcome::Released);
    }
    let follow_up = FollowUp {
        kind: FollowUpKind::Release { release: old.clone() },
        token: i.invocation.token.clone(),
        due: Due::At(due),
    };
    wait_or_schedule(i, due, follow_up)
}

/// Revoke first: if a label call fails, the retry still finds ROTATING and revokes again
/// (revoke is idempotent); the other order could lose the revoke. Then ROTATING, then
/// the markers (a marker without ROTATING is only tidied away later).
fn release_actions(s: &SecretState, old: &VersionId) -> Vec<Action> {
    let mut actions = vec![
        Action::RevokeTarget { version: old.clone() },
        Action::Label(remove(ROTATING, old)),
    ];
    actions.extend(s.markers(old).map(|(label, _)| Action::Label(remove(label, old))));
    actions
}

fn remove_pending(i: &Input<'_>, event_due: Timestamp, release: &VersionId) -> Decision {
    let s = i.secret;
    if s.deleted {
        return done(Vec::new(), Outcome::SecretGone);
    }
    let Some(old) = s.version(release) else {
        return unknown_in_follow_up(i, release);
    };
    if !old.has(ROTATING) || old.has(AWSCURRENT) {
        // Released already, or ROTATING moved on with a later swap, or the version is
        // current (a newer swap is between its first two calls, or it was rolled back by
        // hand): there is nothing of ours to release. A marker left by a release that
        // stopped half-way goes.
        let tidy = if old.has(ROTATING) {
            Vec::new()
        } else {
            s.markers(release)
                .map(|(label, _)| Action::Label(remove(label, release)))
                .collect()
        };
        return done(tidy, Outcome::AlreadyReleased);
    }
    // Rotation disabled or not, the old version is released T after its swap: dropping
    // ROTATING earlier would fail producers still using it, and never dropping it would
    // keep a retired credential valid for ever.
    release_of(i, release, event_due)
}

/// Cancel markers stamped before `swapped`, the swap whose release this is, on rotations
/// that had stored their value before it: such a rotation is older than the value now in
/// use, so its late steps find themselves stale anyway, and the marker (the only label
/// keeping the cancelled version from being deprecated) can go. A marker stamped after
/// the swap stays: that cancelled rotation began during this one's second gap. So does
/// the marker of a rotation cancelled before its createSecret stored anything: an engine
/// retry of it would store a value newer than the current one, and only the marker keeps
/// it from resuming. (Decided from every version's date: see [`needs_full`].)
fn old_cancel_markers(s: &SecretState, swapped: Timestamp) -> Vec<Action> {
    s.versions
        .keys()
        .filter(|id| value_stored(s, id).is_some_and(|t| t < swapped))
        .flat_map(|id| {
            s.cancel_markers(id)
                .filter(|(_, at)| *at < swapped)
                .map(|(label, _)| Action::Label(remove(label, id)))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// An operator's emergency rotation away from the token's version `k1`, which is
/// compromised (see the crate's operator documentation).
///
/// 1. Before the cut, everything in flight stands down: the rotation of a pending version
///    is marked cancelled and the version loses AWSPENDING (its value is revoked once the
///    marker has settled), an older version still in its second gap is released
///    (revoked, ROTATING off). The new value `E` ([`VersionId::emergency`] of `k1`, so a
///    rerun finds it) is stored as AWSPENDING, registered and tested.
/// 2. Once `E` has been accepted for `gap` (usually 0), counted from an accepted marker
///    stamped after a read that showed it with AWSPENDING (and after `E` was registered
///    and tested again), the cut: AWSCURRENT moves to `E`, with ROTATING on `k1` first
///    when the operator keeps accepting it. A rotation stood down in step 1 carries a
///    cancel marker from then on, so none of its later steps resumes it.
/// 3. After the cut ([`after_emergency`]): `k1` loses AWSPREVIOUS and is revoked, or keeps
///    ROTATING until its release `keep` after the cut.
///
/// Every round decides from the labels as they are, so a rerun (or a duplicate) of the
/// same request continues where the last one stopped, and a rerun after the cut only
/// checks that the compromised version is gone.
fn emergency(i: &Input<'_>, gap: Duration, keep: Option<Duration>) -> Decision {
    let s = i.secret;
    let k1 = &i.invocation.token;
    if s.deleted {
        return Decision::Reject(Rejection::SecretDeleted);
    }
    if s.version(k1).is_none() {
        return Decision::Reject(Rejection::UnknownVersion { version: k1.clone() });
    }
    if let Some(keep) = keep.filter(|k| *k > i.policy.gap) {
        return Decision::Reject(Rejection::KeepTooLong {
            keep_secs: keep.as_secs(),
            gap_secs: i.policy.gap.as_secs(),
        });
    }
    let Some(current) = s.current() else {
        return Decision::Reject(Rejection::NoCurrentVersion);
    };
    let e = k1.emergency();
    if *current == e {
        return after_emergency(i, k1, &e, keep);
    }
    if current != k1 {
        return Decision::Reject(Rejection::NotCurrent {
            version: k1.clone(),
            current: current.clone(),
        });
    }
    if s.cancel_markers(&e).next().is_some() {
        return Decision::Reject(Rejection::EmergencyCancelled { version: e });
    }
    // Whatever is in flight stands down first: its rotation is marked cancelled, then its
    // pending version loses AWSPENDING (the marker first, as a cancel puts it). From the
    // marker on, every later step of that rotation (an engine retry putting AWSPENDING
    // back on its token, a follow-up already scheduled) stands down instead of writing a
    // new copy of its value, a copy younger than the new value that could otherwise be
    // promoted over it. Its value is not revoked here: a swap of that rotation may have
    // read the labels just before, and would then make a revoked value current. It is
    // revoked once the marker has settled ([`cancelled_values`], as a cancel does: by
    // then a racing swap has happened, and the chain is in use, or never will), which also
    // catches a value a step of it stored or registered after reading the labels early.
    let mut actions = Vec::new();
    if let Some(p) = s.holder(AWSPENDING).filter(|p| **p != e) {
        let token = s.token_of(p).unwrap_or(p);
        if s.cancel_markers(token).next().is_none() {
            actions.push(Action::MarkCancelled {
                version: token.clone(),
            });
        }
        actions.push(Action::Label(remove(AWSPENDING, p)));
    }
    if let Some(old) = s.holder(ROTATING).filter(|r| *r != current) {
        actions.extend(release_actions(s, old));
    }
    let Some(created) = s.version(&e).and_then(|v| v.created) else {
        if gap > i.wait_budget_left {
            return Decision::Reject(Rejection::EmergencyGapTooLong {
                gap_secs: gap.as_secs(),
                budget_secs: i.wait_budget_left.as_secs(),
            });
        }
        // Rotations an earlier attempt stood down, whose marker has settled, are revoked
        // again here and when the accepted marker is stamped (each runs once per
        // attempt): this attempt may never cut.
        actions.extend(cancelled_values(s, i.now).0);
        actions.extend([
            Action::PutPending { version: e.clone() },
            Action::SetTarget { version: e.clone() },
            Action::TestTarget { version: e.clone() },
        ]);
        return decide_again(actions, Outcome::EmergencyWritten { new_version: e });
    };
    if !s.has(&e, AWSPENDING) {
        // Written, then its label was taken off (an engine strip, by hand): accepted again
        // from the marker a round stamps once it sees the label back. Older markers go
        // first, so that no round between these calls times the gap from one of them.
        actions.extend(
            s.accepted_markers(&e)
                .map(|(label, _)| Action::Label(remove(label, &e))),
        );
        actions.push(Action::Label(LabelMove {
            stage: AWSPENDING.into(),
            move_to: Some(e.clone()),
            remove_from: None,
        }));
        return decide_again(actions, Outcome::EmergencyWritten { new_version: e });
    }
    if !actions.is_empty() {
        return decide_again(actions, Outcome::Tidied);
    }
    // Accepted since the latest accepted marker, stamped after a read that showed the
    // label (for a replicated secret, in every replica Region). Never timed from the
    // value's creation: the label may have come off and been put back since, and a
    // duplicate of this request may be between those two calls right now.
    //
    // The round that stamps it registers and tests the value first, whatever an earlier
    // round did (a rerun may find it written by an invocation that died before setSecret
    // registered it; both calls are idempotent): every cut needs the marker, so no cut
    // ever moves AWSCURRENT to a value the target has not accepted, and the cut itself
    // stays label moves only (a strip between its decision and its move is the known race
    // of docs/protocol.md, section 9; calls in between would widen it).
    let Some(marked) = s.accepted_markers(&e).map(|(_, t)| t).max() else {
        let outcome = if s.replicas.is_empty() {
            Outcome::EmergencyWritten {
                new_version: e.clone(),
            }
        } else {
            Outcome::AcceptedEverywhere
        };
        let mut mark = cancelled_values(s, i.now).0;
        mark.extend([
            Action::SetTarget { version: e.clone() },
            Action::TestTarget { version: e.clone() },
            Action::MarkAccepted { version: e },
        ]);
        return decide_again(mark, outcome);
    };
    let due = marked.max(created).plus(gap);
    if i.now < due {
        let left = due.since(i.now);
        if left > i.wait_budget_left {
            return Decision::Reject(Rejection::EmergencyGapTooLong {
                gap_secs: left.as_secs(),
                budget_secs: i.wait_budget_left.as_secs(),
            });
        }
        return Decision::WaitUntil(due);
    }
    let mut cut = Vec::new();
    if keep.is_some() && !s.has(k1, ROTATING) {
        cut.push(Action::Label(LabelMove {
            stage: ROTATING.into(),
            move_to: Some(k1.clone()),
            remove_from: None,
        }));
    }
    cut.push(Action::Label(LabelMove {
        stage: AWSCURRENT.into(),
        move_to: Some(e.clone()),
        remove_from: Some(k1.clone()),
    }));
    decide_again(
        cut,
        Outcome::EmergencyCut {
            new_version: e,
            compromised: k1.clone(),
        },
    )
}

/// After an emergency's cut (AWSCURRENT is on `e`): the new version's own labels tidied,
/// and the compromised `k1` either out of every label consumers read and revoked, or,
/// when the operator keeps accepting it, with ROTATING and a swap marker timed so that
/// its ordinary release comes `keep` after the cut.
fn after_emergency(i: &Input<'_>, k1: &VersionId, e: &VersionId, keep: Option<Duration>) -> Decision {
    let s = i.secret;
    let mut actions = Vec::new();
    if s.has(e, AWSPENDING) {
        actions.push(Action::Label(remove(AWSPENDING, e)));
    }
    actions.extend(
        s.accepted_markers(e)
            .map(|(label, _)| Action::Label(remove(label, e))),
    );
    let mut accepted_until = None;
    match keep {
        Some(keep) if s.has(k1, ROTATING) => match second_gap_end(s, k1, i.policy) {
            None => actions.push(Action::MarkKeep {
                version: k1.clone(),
                keep,
            }),
            Some(end) if i.now >= end => actions.extend(release_actions(s, k1)),
            Some(end) => {
                accepted_until = Some(end);
                actions.push(Action::Schedule(FollowUp {
                    kind: FollowUpKind::Release { release: k1.clone() },
                    token: k1.clone(),
                    due: Due::At(end),
                }));
            }
        },
        // Released already (the release revoked it), or never kept.
        Some(_) => {}
        None => {
            // Revoke first: a failed label call is retried by a rerun, which revokes
            // again (revoking is idempotent) before it looks at the labels.
            actions.push(Action::RevokeTarget { version: k1.clone() });
            if s.has(k1, ROTATING) {
                actions.push(Action::Label(remove(ROTATING, k1)));
                actions.extend(s.markers(k1).map(|(label, _)| Action::Label(remove(label, k1))));
            }
            if s.has(k1, AWSPREVIOUS) {
                actions.push(Action::Label(remove(AWSPREVIOUS, k1)));
            }
        }
    }
    // The compromised rotation's token carries a cancel marker from the cut on: an engine
    // retry of that rotation (AWSPENDING back on its token, whose value is the compromised
    // one) stands down instead of registering that value with the target again.
    // (Only a copy has such a token: the initial version or an emergency's is no rotation
    // the engine could retry.)
    let k1_token = s.token_of(k1).filter(|t| *t != k1);
    let mark_k1 = k1_token.is_some_and(|t| s.cancel_markers(t).next().is_none());
    if let (true, Some(token)) = (mark_k1, k1_token) {
        actions.push(Action::MarkCancelled {
            version: token.clone(),
        });
    }
    // The rotations it stood down carry a cancel marker: once that has settled, their
    // value is revoked (again), as a cancel revokes.
    let (revokes, settling) = cancelled_values(s, i.now);
    actions.extend(revokes);
    let outcome = Outcome::EmergencyDone {
        new_version: e.clone(),
        compromised: k1.clone(),
        accepted_until,
    };
    if let Some(until) = settling {
        // Label work first; then wait for the marker to settle (the revokes and the
        // release's schedule, idempotent, come again with the last round).
        let moves = actions
            .iter()
            .any(|a| !matches!(a, Action::RevokeTarget { .. } | Action::Schedule(_)));
        if !moves {
            return Decision::WaitUntil(until);
        }
        return decide_again(actions, outcome);
    }
    if mark_k1 || actions.iter().any(|a| matches!(a, Action::MarkKeep { .. })) {
        return decide_again(actions, outcome);
    }
    done(actions, outcome)
}

/// The values of cancelled rotations (their token carries a cancel marker) that no
/// accepted version of theirs carries as AWSCURRENT or ROTATING: revocations for those
/// whose marker is [`CANCEL_SETTLE`] old at `now`, and when the latest of the others
/// settles. An emergency revokes the rotations it stood down again this way: a step of
/// theirs that read the labels before the marker (createSecret storing the value,
/// setSecret registering it) may have done so after the stand-down's own revoke.
fn cancelled_values(s: &SecretState, now: Timestamp) -> (Vec<Action>, Option<Timestamp>) {
    let mut revokes = Vec::new();
    let mut settling: Option<Timestamp> = None;
    for token in s.versions.keys() {
        let Some(marked) = s.cancel_markers(token).map(|(_, t)| t).max() else {
            continue;
        };
        if chain_in_use(s, token) {
            continue;
        }
        let Some(valued) = newest_valued(s, &chain(s, token)) else {
            continue;
        };
        let settled = marked.plus(CANCEL_SETTLE);
        if now < settled {
            settling = Some(settling.map_or(settled, |t| t.max(settled)));
            continue;
        }
        revokes.push(Action::RevokeTarget {
            version: valued.clone(),
        });
    }
    (revokes, settling)
}

/// An operator's cancel of the rotation of the token, before its swap.
///
/// The first round stamps a cancel marker on the token's version and takes AWSPENDING
/// off every version of the rotation: from then on every step of it stands down (an
/// engine retry succeeds doing nothing, a follow-up writes no new copy). Once the marker
/// is [`CANCEL_SETTLE`] old, a step that decided to swap before it has either swapped,
/// and the cancel refuses, or never will, and the cancel revokes the value (setSecret
/// may have registered it). A rerun of a finished cancel revokes again (idempotent).
fn cancel(i: &Input<'_>) -> Decision {
    let s = i.secret;
    let token = &i.invocation.token;
    if s.deleted {
        return Decision::Reject(Rejection::SecretDeleted);
    }
    if s.version(token).is_none() && s.newest_copy(token).is_none() {
        return Decision::Reject(Rejection::UnknownVersion {
            version: token.clone(),
        });
    }
    let Some(current) = s.current() else {
        return Decision::Reject(Rejection::NoCurrentVersion);
    };
    let chain = chain(s, token);
    if chain_in_use(s, token) {
        let release_due = s
            .holder(ROTATING)
            .filter(|r| *r != current)
            .and_then(|old| second_gap_end(s, old, i.policy));
        return Decision::Reject(Rejection::CancelAfterSwap { release_due });
    }
    let mut actions: Vec<Action> = chain
        .iter()
        .filter(|v| s.has(v, AWSPENDING))
        .map(|v| Action::Label(remove(AWSPENDING, v)))
        .collect();
    for v in &chain {
        actions.extend(
            s.accepted_markers(v)
                .map(|(label, _)| Action::Label(remove(label, v))),
        );
    }
    let Some(marked) = s.cancel_markers(token).map(|(_, t)| t).max() else {
        // The marker first: a follow-up that reads the labels between the two calls
        // must not find AWSPENDING gone and no marker (it would write a new copy).
        let mut plan = vec![Action::MarkCancelled {
            version: token.clone(),
        }];
        plan.append(&mut actions);
        return decide_again(plan, Outcome::CancelMarked { token: token.clone() });
    };
    if !actions.is_empty() {
        return decide_again(actions, Outcome::Tidied);
    }
    let settled = marked.plus(CANCEL_SETTLE);
    if i.now < settled {
        return Decision::WaitUntil(settled);
    }
    done(
        newest_valued(s, &chain)
            .map(|v| Action::RevokeTarget { version: v.clone() })
            .into_iter()
            .collect(),
        Outcome::Cancelled { token: token.clone() },
    )
}

/// Takes AWSPENDING off the engine's version or a copy of it when it is not on the
/// current version: an engine retry may have re-attached it after the swap. Left there,
/// it would make AWS refuse every later rotation.
fn drop_stray_pending(s: &SecretState, token: &VersionId) -> Option<Action> {
    let p = s.holder(AWSPENDING)?;
    (SecretState::in_chain(p, token) && !s.has(p, AWSCURRENT)).then(|| Action::Label(remove(AWSPENDING, p)))
}

/// The versions of the rotation of `token`: the token's own and keyshift's copies of it.
fn chain<'a>(s: &'a SecretState, token: &VersionId) -> Vec<&'a VersionId> {
    s.versions
        .keys()
        .filter(|v| SecretState::in_chain(v, token))
        .collect()
}

/// Whether a version of the rotation of `token` is AWSCURRENT or ROTATING: its value
/// was promoted, and is in use or in its second gap.
fn chain_in_use(s: &SecretState, token: &VersionId) -> bool {
    s.versions
        .iter()
        .any(|(id, v)| SecretState::in_chain(id, token) && (v.has(AWSCURRENT) || v.has(ROTATING)))
}

/// The rotation's value: the newest version of `chain` that has one.
fn newest_valued<'a>(s: &SecretState, chain: &[&'a VersionId]) -> Option<&'a VersionId> {
    chain
        .iter()
        .copied()
        .filter(|v| s.version(v).is_some_and(|x| x.created.is_some()))
        .max_by_key(|v| s.version(v).and_then(|x| x.created))
}

/// This rotation stands down before its swap: its AWSPENDING comes off, and its value is
/// revoked (setSecret may have registered it) unless a version of its chain is still
/// AWSCURRENT or ROTATING: then its value was promoted and is still in use or in its
/// second gap, whose release revokes it in time.
fn stand_down(s: &SecretState, token: &VersionId, valued: Option<&VersionId>) -> Vec<Action> {
    let in_use = chain_in_use(s, token);
    valued
        .filter(|_| !in_use)
        .map(|v| Action::RevokeTarget { version: v.clone() })
        .into_iter()
        .chain(drop_stray_pending(s, token))
        .collect()
}

/// A release of an old version left with ROTATING, for steps that pass by (createSecret,
/// finishSecret of a finished rotation): schedule it at its marker + T, or stamp the
/// marker if it has none (the next step by, or the release, then times it).
fn leftover(i: &Input<'_>) -> Option<Action> {
    let s = i.secret;
    let current = s.current()?;
    let old = s.holder(ROTATING).filter(|r| *r != current)?;
    Some(match second_gap_end(s, old, i.policy) {
        None => Action::MarkSwap { version: old.clone() },
        Some(end) => Action::Schedule(FollowUp {
            kind: FollowUpKind::Release { release: old.clone() },
            token: current.clone(),
            due: Due::At(end),
        }),
    })
}

/// A follow-up naming a version the secret does not have. One delivered by keyshift's own
/// schedule is stale (a version deleted since, a rotation long over): nothing to do, and
/// failing would only send it through Lambda's retries to the dead-letter queue. One made
/// by hand is refused with a clear error.
fn unknown_in_follow_up(i: &Input<'_>, version: &VersionId) -> Decision {
    if i.invocation.schedule.is_some() {
        done(
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

/// The current version, if the rotation's value is older than it: promoting it would
/// move AWSCURRENT back in time.
///
/// Values are compared by when they were first stored ([`value_stored`]), not by when
/// the versions holding them were: a copy written late (after a strip) holds a value as
/// old as its token's.
///
/// An emergency version as AWSCURRENT supersedes every rotation whose value is not
/// newer than it, a tie included: the emergency stood down whatever was in flight when
/// it wrote its value, possibly within the same second as that rotation's value.
fn stale<'a>(s: &'a SecretState, valued: Option<&VersionId>) -> Option<&'a VersionId> {
    let current = s.current()?;
    let mine = value_stored(s, valued?)?;
    let theirs = value_stored(s, current)?;
    (mine < theirs || (mine == theirs && current.is_keyshift_emergency())).then_some(current)
}

/// When `version`'s value was first stored: the earliest creation in its chain (the
/// engine's token, where createSecret stored it, and keyshift's copies of it) that the
/// state shows.
fn value_stored(s: &SecretState, version: &VersionId) -> Option<Timestamp> {
    let token = s.token_of(version).unwrap_or(version);
    s.versions
        .iter()
        .filter(|(id, _)| SecretState::in_chain(id, token))
        .filter_map(|(_, v)| v.created)
        .min()
}

/// Who took over from this rotation, if anyone: AWSPENDING on a version outside its
/// chain (a newer rotation started after this one lost its label). A version written
/// by hand with a label of its own (a note, a backup) takes nothing over; one written as
/// AWSCURRENT makes this rotation stale instead.
fn taken_over<'a>(s: &'a SecretState, token: &VersionId) -> Option<&'a VersionId> {
    s.holder(AWSPENDING)
        .filter(|p| !SecretState::in_chain(p, token) && !s.has(p, AWSCURRENT))
}

/// Not due yet: wait inline if the rest fits the budget, else schedule.
fn wait_or_schedule(i: &Input<'_>, due: Timestamp, follow_up: FollowUp) -> Decision {
    if due.since(i.now) <= i.wait_budget_left {
        Decision::WaitUntil(due)
    } else {
        done(vec![Action::Schedule(follow_up)], Outcome::Rescheduled { due })
    }
}

fn remove(stage: &str, from: &VersionId) -> LabelMove {
    LabelMove {
        stage: stage.into(),
        move_to: None,
        remove_from: Some(from.clone()),
    }
}

/// A plan that ends the invocation.
fn done(actions: Vec<Action>, outcome: Outcome) -> Decision {
    Decision::Apply(Plan {
        actions,
        outcome,
        next: Next::Done,
    })
}

/// A plan after which the invocation decides again at once.
fn decide_again(actions: Vec<Action>, outcome: Outcome) -> Decision {
    Decision::Apply(Plan {
        actions,
        outcome,
        next: Next::Decide,
    })
}

#[cfg(test)]
mod tests;
