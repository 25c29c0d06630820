//! A status report for one secret: where its rotation stands, what comes next and when,
//! and whether it looks stuck. The first slice of the operator tools.
//!
//! Pure, like [`crate::decide`]: [`status`] takes the secret as the store reports it,
//! the policy and `now`, and reads no clock and calls nothing. The due times come from
//! the very functions the core times its moves with ([`first_gap_end`],
//! [`second_gap_end`]), so the report cannot disagree with what the next follow-up
//! will do.
//!
//! The report never holds a secret value: [`SecretState`] has none, and nothing here
//! reads one.
//!
//! For the dates to be known, report on a state read with
//! [`Detail::Full`](crate::ports::Detail::Full) (every version with its creation time);
//! with `Labels` the swap's due time may be unknown and the engine's token of a copy may
//! not be found.

use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};

use crate::decide::{FirstGapOpen, first_gap_end, second_gap_end};
use crate::event::ScheduleName;
use crate::policy::Policy;
use crate::ports::schedule_name;
use crate::secret::{
    AWSPENDING, AWSPREVIOUS, ROTATING, SecretId, SecretState, VersionId, parse_accepted_marker,
    parse_swap_marker,
};
use crate::time::Timestamp;

/// How long past its due time (plus the scheduler's precision) a move may be late before
/// the report calls the rotation stuck: room for the follow-up's own latency, a Lambda
/// retry or two, and clock skew.
pub const STUCK_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Where a rotation stands, read from the labels alone (docs/protocol.md, sections 2
/// and 3). Checked in this order; the first that matches wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// keyshift's copy ([`VersionId::is_keyshift_copy`]) carries AWSPENDING and is not
    /// AWSCURRENT: consumers accept it, producers do not use it yet. The swap is due at
    /// the end of its first gap ([`first_gap_end`]). A ROTATING still on an older
    /// version (a lost release) is reported in the same phase: the swap releases it first.
    FirstGap,
    /// A version other than AWSCURRENT carries ROTATING: the swap happened, the new
    /// version is AWSCURRENT and the old one is still accepted until its second gap
    /// ([`second_gap_end`]) ends and the release takes ROTATING off.
    SecondGap,
    /// A version that is not keyshift's copy (the engine's token) carries AWSPENDING and
    /// is not AWSCURRENT: the engine's steps are running, or finishSecret returned and
    /// the `swapPending` that writes keyshift's copy has not run yet (or the copy lost
    /// AWSPENDING and the engine put it back on its token: a new copy comes next).
    Pending,
    /// None of the above, and an AWSPREVIOUS exists: the last rotation finished (the
    /// release took ROTATING off).
    Released,
    /// None of the above, and no AWSPREVIOUS: the secret was never rotated (or its
    /// history was removed by hand).
    Idle,
}

impl Phase {
    /// A short machine-readable name: `first-gap`, `second-gap`, `pending`, `released`,
    /// `idle`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::FirstGap => "first-gap",
            Phase::SecondGap => "second-gap",
            Phase::Pending => "pending",
            Phase::Released => "released",
            Phase::Idle => "idle",
        }
    }

    /// One line on what the phase means.
    pub fn meaning(self) -> &'static str {
        match self {
            Phase::FirstGap => "keyshift's copy carries AWSPENDING: accepted by consumers, not used yet",
            Phase::SecondGap => {
                "swapped: the new version is AWSCURRENT, the old one is still accepted (ROTATING)"
            }
            Phase::Pending => "the engine's version carries AWSPENDING; keyshift's copy is not written yet",
            Phase::Released => "no rotation in progress; the last rotation finished",
            Phase::Idle => "no rotation in progress",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One labelled version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionStatus {
    /// Its id.
    pub id: VersionId,
    /// Its staging labels (markers included), sorted.
    pub labels: Vec<String>,
    /// When its value was written, when the state shows it.
    pub created: Option<Timestamp>,
    /// Whether it is one of keyshift's copies ([`VersionId::copy`]).
    pub keyshift_copy: bool,
}

/// The next move of a rotation in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Move {
    /// `swapPending` writes keyshift's copy of the engine's `token`. Paced by the engine
    /// (finishSecret schedules it due at once), so no due time is known from the labels.
    Copy {
        /// The engine's version carrying AWSPENDING.
        token: VersionId,
    },
    /// A replicated secret: `swapPending` stamps the accepted marker on `copy` once every
    /// replica Region shows it with AWSPENDING; the first gap counts from then.
    MarkAccepted {
        /// keyshift's copy.
        copy: VersionId,
    },
    /// `swapPending` moves AWSCURRENT from `from` to keyshift's copy `copy`.
    Swap {
        /// keyshift's copy, carrying AWSPENDING.
        copy: VersionId,
        /// The AWSCURRENT version now.
        from: VersionId,
    },
    /// The old version carries ROTATING without a swap marker (a swap stopped between
    /// its move and its marker): the next step that passes by stamps one, and the second
    /// gap counts from then.
    MarkSwap {
        /// The version carrying ROTATING.
        old: VersionId,
    },
    /// `removePending` revokes `old` and takes ROTATING off it.
    Release {
        /// The version carrying ROTATING.
        old: VersionId,
    },
}

impl Move {
    /// A short machine-readable name: `copy`, `mark-accepted`, `swap`, `mark-swap`,
    /// `release`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Move::Copy { .. } => "copy",
            Move::MarkAccepted { .. } => "mark-accepted",
            Move::Swap { .. } => "swap",
            Move::MarkSwap { .. } => "mark-swap",
            Move::Release { .. } => "release",
        }
    }

    /// The version the move acts on (the copy for a swap, the old version for a release).
    pub fn version(&self) -> &VersionId {
        match self {
            Move::Copy { token } => token,
            Move::MarkAccepted { copy } | Move::Swap { copy, .. } => copy,
            Move::MarkSwap { old } | Move::Release { old } => old,
        }
    }
}

/// The follow-up schedule the executor is expected to have created for the next move.
///
/// Derived as the executor derives it (`schedule_name(secret, kind, version, fire_at)`
/// with `fire_at = policy.fire_time(due, gap start)`), with two approximations: the
/// executor's `now` when it scheduled is taken to be the gap's start (the copy's
/// creation, the accepted or swap marker), which it precedes by the milliseconds of the
/// calls in between, so the fire time can differ by one precision when those straddle a
/// minute; and a job that collided with the schedule delivering it moved one second
/// later. It is left out when no schedule is expected: a gap that fits the inline budget
/// is waited inside the invocation that started it; the copy (paced by the engine's
/// finishSecret, whose time the labels do not keep); the markers (stamped by whichever
/// step passes by); and a swap whose engine token is not among the versions (the
/// schedule is named by the token, which cannot be recovered from the copy's id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedSchedule {
    /// `swap` or `release`, as in the schedule name.
    pub kind: &'static str,
    /// The version the name carries: the engine's token for a swap, the old version for
    /// a release.
    pub version: VersionId,
    /// When it fires.
    pub fire_at: Timestamp,
}

impl ExpectedSchedule {
    /// The schedule's name for `secret` (the id exactly as the rotation's events carry
    /// it: the state itself does not know it).
    pub fn name(&self, secret: &SecretId) -> ScheduleName {
        schedule_name(secret, self.kind, &self.version, self.fire_at)
    }
}

/// What comes next, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next {
    /// The move.
    pub action: Move,
    /// The earliest time the move may happen, when the labels tell it (the same rule
    /// the core uses); `None` when it waits for something else (see [`Move`]).
    pub due: Option<Timestamp>,
    /// `due - now` in milliseconds: negative when overdue.
    pub due_in_ms: Option<i64>,
    /// The follow-up schedule expected to carry the move, if one is.
    pub schedule: Option<ExpectedSchedule>,
}

/// A secret's rotation status at `now`. Holds ids, labels and times only, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// When the report was made.
    pub now: Timestamp,
    /// T as the report applied it.
    pub gap: Duration,
    /// Where the rotation stands.
    pub phase: Phase,
    /// Whether rotation is enabled.
    pub rotation_enabled: bool,
    /// Whether the secret is scheduled for deletion.
    pub deleted: bool,
    /// Every labelled version, by id.
    pub versions: Vec<VersionStatus>,
    /// The versions consumers accept now (AWSCURRENT, AWSPENDING, ROTATING).
    pub accepted: Vec<VersionId>,
    /// The version producers use now (AWSCURRENT).
    pub in_use: Option<VersionId>,
    /// The next move, when a rotation is in progress.
    pub next: Option<Next>,
    /// What to do by hand, when the next move is later than its due time plus the
    /// scheduler's precision plus [`STUCK_MARGIN`]; `None` otherwise (and whenever the
    /// due time is not known).
    pub stuck: Option<String>,
    /// Anything unusual the labels show, one line each.
    pub notes: Vec<String>,
}

/// The status of `secret` at `now` under `policy` (T, the inline budget and the
/// scheduler's precision). Pass the policy the function applies to this secret (with
/// its `keyshift:gap-seconds` tag, if it has one: [`Policy::with_gap`]).
pub fn status(secret: &SecretState, policy: &Policy, now: Timestamp) -> Status {
    let s = secret;
    let current = s.current();
    let pending = s.holder(AWSPENDING).filter(|p| Some(*p) != current);
    let rotating = s.holder(ROTATING);
    // A ROTATING on a version that is not current: the old version of a swap.
    let old = rotating.filter(|r| Some(*r) != current);
    let mut notes = Vec::new();

    let (phase, next) = if let Some(copy) = pending.filter(|p| p.is_keyshift_copy()) {
        (
            Phase::FirstGap,
            Some(swap_next(s, policy, now, copy, current, old, &mut notes)),
        )
    } else if let Some(old) = old {
        (Phase::SecondGap, Some(release_next(s, policy, now, old)))
    } else if let Some(token) = pending {
        if s.versions.keys().any(|v| v.copy_generation_of(token).is_some()) {
            notes.push(format!(
                "earlier copies of {token} exist but none carries AWSPENDING: swapPending writes a new one and the first gap restarts from it"
            ));
        }
        let next = Next {
            action: Move::Copy { token: token.clone() },
            due: None,
            due_in_ms: None,
            schedule: None,
        };
        (Phase::Pending, Some(next))
    } else if s.holder(AWSPREVIOUS).is_some() {
        (Phase::Released, None)
    } else {
        (Phase::Idle, None)
    };

    if let Some(r) = rotating.filter(|r| Some(*r) == current) {
        notes.push(format!(
            "ROTATING is on the AWSCURRENT version {r}: a swap is between its first two calls, or AWSCURRENT was moved back by hand"
        ));
    }
    if let Some(c) = current.filter(|c| s.has(c, AWSPENDING)) {
        notes.push(format!(
            "AWSPENDING is on the AWSCURRENT version {c}: the swap's last label call is still to come (the next follow-up takes it off)"
        ));
    }
    if current.is_none() {
        notes.push("no version carries AWSCURRENT".into());
    }
    if let Some(e) = s
        .holder(AWSPENDING)
        .filter(|p| Some(*p) != current && p.is_keyshift_emergency())
    {
        notes.push(format!(
            "AWSPENDING is on {e}, the new value of an emergency rotation that has not cut over yet: run the same emergencyRotate again (VersionId = the AWSCURRENT version) to finish it, or cancel it"
        ));
    }
    if let Some(c) = current.filter(|c| c.is_keyshift_emergency()) {
        notes.push(format!(
            "AWSCURRENT {c} was written by an emergency rotation (emergencyRotate)"
        ));
    }
    for id in s.versions.keys() {
        if let Some(at) = s.cancel_markers(id).map(|(_, t)| t).max() {
            notes.push(format!(
                "the rotation of {id} was cancelled by an operator at {at}: its late steps stand down; the marker goes with the next rotation's release"
            ));
        }
    }
    for (id, v) in &s.versions {
        let stray_swap = !v.has(ROTATING) && v.stages.iter().any(|l| parse_swap_marker(l).is_some());
        let stray_accepted =
            phase != Phase::FirstGap && v.stages.iter().any(|l| parse_accepted_marker(l).is_some());
        if stray_swap || stray_accepted {
            notes.push(format!(
                "version {id} keeps a marker its phase no longer needs (a step stopped half-way); the next follow-up takes it off"
            ));
        }
    }
    if !s.rotation_enabled {
        notes.push(match phase {
            Phase::SecondGap => "rotation is disabled: the release still runs T after the swap".into(),
            Phase::FirstGap | Phase::Pending => {
                "rotation is disabled: the next follow-up abandons this rotation (AWSPENDING off, its value revoked)".into()
            }
            Phase::Released | Phase::Idle => "rotation is disabled".to_string(),
        });
    }
    if s.deleted {
        notes.push("the secret is scheduled for deletion: follow-ups end without changing anything".into());
    }
    if !s.replicas_caught_up() {
        notes.push("a replica Region has not caught up with the labels: no label moves until it does".into());
    }

    let stuck = next.as_ref().and_then(|n| stuck_advice(n, policy, now, s));
    Status {
        now,
        gap: policy.gap,
        phase,
        rotation_enabled: s.rotation_enabled,
        deleted: s.deleted,
        versions: s
            .versions
            .iter()
            .filter(|(_, v)| !v.stages.is_empty())
            .map(|(id, v)| VersionStatus {
                id: id.clone(),
                labels: v.stages.iter().cloned().collect(),
                created: v.created,
                keyshift_copy: id.is_keyshift_copy(),
            })
            .collect(),
        accepted: s.accepted().into_iter().cloned().collect(),
        in_use: current.cloned(),
        next,
        stuck,
        notes,
    }
}

/// The swap of `copy`: due at its first gap's end, and no sooner than the release of an
/// older version still carrying ROTATING (the swap releases it first), as in the core.
fn swap_next(
    s: &SecretState,
    policy: &Policy,
    now: Timestamp,
    copy: &VersionId,
    current: Option<&VersionId>,
    old: Option<&VersionId>,
    notes: &mut Vec<String>,
) -> Next {
    let first = match first_gap_end(s, copy, policy) {
        Ok(end) => end,
        Err(FirstGapOpen::NotAccepted) => {
            return Next {
                action: Move::MarkAccepted { copy: copy.clone() },
                due: None,
                due_in_ms: None,
                schedule: None,
            };
        }
        Err(FirstGapOpen::NoValue) => {
            notes.push(format!(
                "the creation time of copy {copy} is not known (read the secret with every version's date): the swap's due time cannot be told"
            ));
            return Next {
                action: swap_move(copy, current),
                due: None,
                due_in_ms: None,
                schedule: None,
            };
        }
    };
    let mut due = first;
    if let Some(old) = old {
        notes.push(format!(
            "version {old} still carries ROTATING from an earlier rotation: the swap releases it first, no sooner than T after its swap marker"
        ));
        match second_gap_end(s, old, policy) {
            Some(end) => due = due.max(end),
            None => {
                return Next {
                    action: Move::MarkSwap { old: old.clone() },
                    due: None,
                    due_in_ms: None,
                    schedule: None,
                };
            }
        }
    }
    // The gap started at the copy's creation, or at the accepted marker when that is
    // later (replicated secrets): the executor scheduled from about then.
    let started = first.minus(policy.gap);
    let token = s.versions.keys().find(|t| copy.copy_generation_of(t).is_some());
    let schedule = token
        .filter(|_| policy.gap > policy.inline_budget)
        .map(|token| ExpectedSchedule {
            kind: "swap",
            version: token.clone(),
            fire_at: policy.fire_time(due, started),
        });
    Next {
        action: swap_move(copy, current),
        due: Some(due),
        due_in_ms: Some(due.millis_since(now)),
        schedule,
    }
}

fn swap_move(copy: &VersionId, current: Option<&VersionId>) -> Move {
    match current {
        Some(from) => Move::Swap {
            copy: copy.clone(),
            from: from.clone(),
        },
        // No AWSCURRENT at all: the core refuses to swap; report the copy as the move's
        // version all the same (a note says what is wrong).
        None => Move::Swap {
            copy: copy.clone(),
            from: copy.clone(),
        },
    }
}

/// The release of `old`: due at its second gap's end, as in the core.
fn release_next(s: &SecretState, policy: &Policy, now: Timestamp, old: &VersionId) -> Next {
    let Some(due) = second_gap_end(s, old, policy) else {
        return Next {
            action: Move::MarkSwap { old: old.clone() },
            due: None,
            due_in_ms: None,
            schedule: None,
        };
    };
    let marked = due.minus(policy.gap);
    let schedule = (policy.gap > policy.inline_budget).then(|| ExpectedSchedule {
        kind: "release",
        version: old.clone(),
        fire_at: policy.fire_time(due, marked),
    });
    Next {
        action: Move::Release { old: old.clone() },
        due: Some(due),
        due_in_ms: Some(due.millis_since(now)),
        schedule,
    }
}

/// Advice when `next` is later than its due + the scheduler's precision + the margin.
fn stuck_advice(next: &Next, policy: &Policy, now: Timestamp, s: &SecretState) -> Option<String> {
    let due = next.due?;
    let late = due.plus(policy.precision).plus(STUCK_MARGIN);
    if now <= late {
        return None;
    }
    let overdue = human(now.millis_since(due));
    Some(match &next.action {
        Move::Swap { copy, .. } => {
            let token = s
                .versions
                .keys()
                .find(|t| copy.copy_generation_of(t).is_some())
                .map_or_else(
                    || "the rotation's token (the engine's version id)".to_string(),
                    |t| t.to_string(),
                );
            format!(
                "the swap is overdue by {overdue}: invoke swapPending for this secret with ClientRequestToken {token} \
                 (events/swapPending.json), see README 'Invoking it by hand'; it re-derives everything from the labels \
                 and swaps at once. Then look for the failed follow-up in the function's dead-letter queue and log."
            )
        }
        Move::Release { old } => format!(
            "the release is overdue by {overdue}: invoke removePending for this secret with Release {old} and the \
             rotation's token (events/removePending.json), see README 'Invoking it by hand'; it revokes the old value \
             and takes ROTATING off at once. Then look for the failed follow-up in the function's dead-letter queue and log."
        ),
        // No due time is known for these, so they never get here.
        Move::Copy { .. } | Move::MarkAccepted { .. } | Move::MarkSwap { .. } => return None,
    })
}

/// `ms` as `1h02m03s` (sign kept).
fn human(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let total = ms.unsigned_abs() / 1000;
    let (h, m, sec) = (total / 3600, (total / 60) % 60, total % 60);
    if h > 0 {
        format!("{sign}{h}h{m:02}m{sec:02}s")
    } else if m > 0 {
        format!("{sign}{m}m{sec:02}s")
    } else {
        format!("{sign}{sec}s")
    }
}

impl Status {
    /// The expected follow-up schedule's name for the next move, for `secret` (the id as
    /// the rotation's events carry it), when one is expected.
    pub fn schedule_name(&self, secret: &SecretId) -> Option<ScheduleName> {
        self.next.as_ref()?.schedule.as_ref().map(|j| j.name(secret))
    }

    /// The report as JSON: `phase`, `meaning`, `now`, `gap_seconds`, `rotation_enabled`,
    /// `deleted`, `versions` (`id`, `labels`, `created`, `keyshift_copy`), `accepted`,
    /// `in_use`, `next` (`move`, `version`, `due`, `due_in_ms`, `schedule` with `kind`,
    /// `version`, `fire_at`; or null), `stuck` (advice or null) and `notes`. Times are
    /// RFC 3339 text; unknown ones are null.
    pub fn to_json(&self) -> Value {
        let time = |t: Option<Timestamp>| t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()));
        json!({
            "phase": self.phase.as_str(),
            "meaning": self.phase.meaning(),
            "now": self.now.to_rfc3339(),
            "gap_seconds": self.gap.as_secs(),
            "rotation_enabled": self.rotation_enabled,
            "deleted": self.deleted,
            "versions": self.versions.iter().map(|v| json!({
                "id": v.id.as_str(),
                "labels": v.labels,
                "created": time(v.created),
                "keyshift_copy": v.keyshift_copy,
            })).collect::<Vec<_>>(),
            "accepted": self.accepted.iter().map(VersionId::as_str).collect::<Vec<_>>(),
            "in_use": self.in_use.as_ref().map(VersionId::as_str),
            "next": self.next.as_ref().map(|n| json!({
                "move": n.action.as_str(),
                "version": n.action.version().as_str(),
                "due": time(n.due),
                "due_in_ms": n.due_in_ms,
                "schedule": n.schedule.as_ref().map(|j| json!({
                    "kind": j.kind,
                    "version": j.version.as_str(),
                    "fire_at": j.fire_at.to_rfc3339(),
                })),
            })),
            "stuck": self.stuck,
            "notes": self.notes,
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "phase:    {} ({})", self.phase, self.phase.meaning())?;
        writeln!(
            f,
            "rotation: {}{}, T = {}s, at {}",
            if self.rotation_enabled {
                "enabled"
            } else {
                "disabled"
            },
            if self.deleted {
                ", scheduled for deletion"
            } else {
                ""
            },
            self.gap.as_secs(),
            self.now
        )?;
        writeln!(f, "versions:")?;
        for v in &self.versions {
            let created = v
                .created
                .map_or_else(|| "created ?".to_string(), |t| format!("created {t}"));
            let copy = if v.keyshift_copy { ", keyshift copy" } else { "" };
            writeln!(f, "  {}  {}  ({created}{copy})", v.id, v.labels.join(" "))?;
        }
        let accepted: Vec<&str> = self.accepted.iter().map(VersionId::as_str).collect();
        writeln!(f, "accepted: {}", accepted.join(", "))?;
        writeln!(
            f,
            "in use:   {}",
            self.in_use.as_ref().map_or("none", VersionId::as_str)
        )?;
        match &self.next {
            None => writeln!(f, "next:     nothing")?,
            Some(n) => {
                write!(f, "next:     {} of {}", n.action.as_str(), n.action.version())?;
                match (n.due, n.due_in_ms) {
                    (Some(due), Some(ms)) if ms >= 0 => writeln!(f, ", due {due} (in {})", human(ms))?,
                    (Some(due), Some(ms)) => writeln!(f, ", due {due} (overdue by {})", human(-ms))?,
                    _ => writeln!(f, ", due time not known from the labels")?,
                }
                if let Some(j) = &n.schedule {
                    writeln!(
                        f,
                        "          expected schedule: {} of {}, firing at {}",
                        j.kind, j.version, j.fire_at
                    )?;
                }
            }
        }
        match &self.stuck {
            None => writeln!(f, "stuck:    no")?,
            Some(advice) => writeln!(f, "stuck:    {advice}")?,
        }
        for note in &self.notes {
            writeln!(f, "note:     {note}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
