//! The invariants, checked after every event of a run.
//!
//! From the store's state: exactly one AWSCURRENT, AWSPENDING on at most one version,
//! ROTATING only on the current version or the one that was current before it. From the
//! store's audit log: every gap. The first gap is measured from the moment the new
//! version became accepted (a value and an accepted label) to the moment it became
//! AWSCURRENT; the second from the moment the old version lost AWSCURRENT to the moment
//! it stopped being accepted. Both must be at least T; the excess is the overshoot.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use keyshift::memory::{Change, ChangeKind};
use keyshift::secret::{ACCEPTED_STAGES, AWSCURRENT, AWSPENDING, ROTATING};
use keyshift::{SecretState, Timestamp, VersionId};

/// Which gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapKind {
    /// New version accepted -> new version AWSCURRENT.
    First,
    /// Old version loses AWSCURRENT -> old version no longer accepted.
    Second,
}

/// One measured gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// Which one.
    pub kind: GapKind,
    /// How long it lasted.
    pub length: Duration,
    /// When it ended.
    pub ended: Timestamp,
}

#[derive(Debug, Default, Clone)]
struct Track {
    stages: BTreeSet<String>,
    has_value: bool,
    accepted_since: Option<Timestamp>,
    lost_current_at: Option<Timestamp>,
}

impl Track {
    fn accepted(&self) -> bool {
        self.has_value && ACCEPTED_STAGES.iter().any(|s| self.stages.contains(*s))
    }
}

/// Follows one secret's audit log and state.
#[derive(Debug, Clone)]
pub struct Checker {
    gap: Duration,
    check_gaps: bool,
    seen: usize,
    tracks: BTreeMap<VersionId, Track>,
    previous_current: Option<VersionId>,
    had_current: bool,
    /// Every gap measured so far.
    pub gaps: Vec<Gap>,
    /// Every invariant violation so far, as a sentence.
    pub violations: Vec<String>,
}

impl Checker {
    /// A checker for gap `gap`. With `check_gaps` false (the one-step control) gaps are
    /// measured but not held against T.
    pub fn new(gap: Duration, check_gaps: bool) -> Self {
        Checker {
            gap,
            check_gaps,
            seen: 0,
            tracks: BTreeMap::new(),
            previous_current: None,
            had_current: false,
            gaps: Vec::new(),
            violations: Vec::new(),
        }
    }

    /// Consumes the log entries not seen yet, then checks the state invariants.
    pub fn observe(&mut self, history: &[Change], state: &SecretState, now: Timestamp) {
        for change in &history[self.seen.min(history.len())..] {
            self.apply(change);
        }
        self.seen = history.len();
        self.check_state(state, now);
    }

    /// Consumes the log entries not seen yet, without the state checks: for the log of a
    /// replica Region (its changes stamped with when they got there), whose gaps must
    /// hold for the consumers that read it.
    pub fn observe_history(&mut self, history: &[Change]) {
        for change in &history[self.seen.min(history.len())..] {
            self.apply(change);
        }
        self.seen = history.len();
    }

    fn apply(&mut self, c: &Change) {
        let track = self.tracks.entry(c.version.clone()).or_default();
        let was_accepted = track.accepted();
        match &c.what {
            ChangeKind::Attached(stage) => {
                track.stages.insert(stage.clone());
            }
            ChangeKind::Detached(stage) => {
                track.stages.remove(stage);
            }
            ChangeKind::ValueStored => track.has_value = true,
            ChangeKind::Deleted => {
                track.stages.clear();
                track.has_value = false;
            }
        }
        let now_accepted = track.accepted();
        let accepted_since = track.accepted_since;
        match (was_accepted, now_accepted) {
            (false, true) => track.accepted_since = Some(c.at),
            (true, false) => {
                track.accepted_since = None;
                if let Some(lost) = track.lost_current_at {
                    self.record(GapKind::Second, c.at.since(lost), c.at, &c.version);
                }
            }
            _ => {}
        }
        match &c.what {
            ChangeKind::Attached(s) if s == AWSCURRENT => {
                if self.had_current {
                    let length = accepted_since.map_or(Duration::ZERO, |since| c.at.since(since));
                    self.record(GapKind::First, length, c.at, &c.version);
                }
                self.had_current = true;
                if let Some(t) = self.tracks.get_mut(&c.version) {
                    t.lost_current_at = None;
                }
            }
            ChangeKind::Detached(s) if s == AWSCURRENT => {
                if let Some(t) = self.tracks.get_mut(&c.version) {
                    t.lost_current_at = Some(c.at);
                }
                self.previous_current = Some(c.version.clone());
            }
            _ => {}
        }
    }

    fn record(&mut self, kind: GapKind, length: Duration, ended: Timestamp, version: &VersionId) {
        if self.check_gaps && length < self.gap {
            self.violations.push(format!(
                "{ended}: {kind:?} gap of version {version} lasted {} ms, shorter than T = {} ms",
                length.as_millis(),
                self.gap.as_millis()
            ));
        }
        self.gaps.push(Gap { kind, length, ended });
    }

    fn check_state(&mut self, s: &SecretState, now: Timestamp) {
        let count = |stage: &str| s.versions.values().filter(|v| v.has(stage)).count();
        if count(AWSCURRENT) != 1 {
            self.violations
                .push(format!("{now}: {} versions carry AWSCURRENT", count(AWSCURRENT)));
        }
        if count(AWSPENDING) > 1 {
            self.violations
                .push(format!("{now}: {} versions carry AWSPENDING", count(AWSPENDING)));
        }
        if let Some(r) = s.holder(ROTATING) {
            let ok = Some(r) == s.current() || Some(r) == self.previous_current.as_ref();
            if !ok {
                self.violations.push(format!(
                    "{now}: ROTATING is on {r}, which is neither current nor the version current before"
                ));
            }
        }
    }

    /// The overshoot of each gap over T, in milliseconds.
    pub fn overshoots_ms(&self) -> Vec<(GapKind, i64)> {
        let t = self.gap.as_millis() as i64;
        self.gaps
            .iter()
            .map(|g| (g.kind, g.length.as_millis() as i64 - t))
            .collect()
    }
}
