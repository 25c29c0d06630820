//! The invariants, checked after every event of a run.
//!
//! From the store's state: exactly one AWSCURRENT, AWSPENDING on at most one version,
//! ROTATING only on the current version or the one that was current before it. From the
//! store's audit log: every gap. The first gap is measured from the moment the new
//! version became accepted (a value and an accepted label) to the moment it became
//! AWSCURRENT; the second from the moment the old version lost AWSCURRENT to the moment
//! it stopped being accepted. Both must be at least T; the excess is the overshoot.
//!
//! [`RevocationCheck`] holds service B to the revocation bound: every value B accepts is
//! carried by a version the consumer contract accepts (AWSCURRENT, AWSPENDING or
//! ROTATING), or stopped being carried by one at most T + 1 h ago. It tracks values, not
//! versions: keyshift may keep one value under two version ids.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use keyshift::memory::{Change, ChangeKind};
use keyshift::secret::{ACCEPTED_STAGES, AWSCURRENT, AWSPENDING, ROTATING};
use keyshift::{SecretState, Timestamp, VersionId};

/// Which gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// Every gap measured so far (an emergency's excepted, see [`Checker::expect`]).
    pub gaps: Vec<Gap>,
    /// Gaps an emergency shortens by design, each held to its own bound instead of T.
    overrides: BTreeMap<(VersionId, GapKind), Duration>,
    /// The gaps measured against an override.
    pub emergency_gaps: Vec<Gap>,
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
            overrides: BTreeMap::new(),
            emergency_gaps: Vec::new(),
            violations: Vec::new(),
        }
    }

    /// Holds `version`'s gap of `kind` to `min` instead of T: an emergency's new value is
    /// accepted for its `GapSeconds` before its cut, the compromised version for its
    /// `KeepAcceptingSeconds` (or not at all) after it, and a version in its second gap
    /// is released early. Call it before the checker reads the change that ends the gap.
    pub fn expect(&mut self, version: &VersionId, kind: GapKind, min: Duration) {
        self.overrides.insert((version.clone(), kind), min);
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
        if let Some(min) = self.overrides.get(&(version.clone(), kind)).copied() {
            if self.check_gaps && length < min {
                self.violations.push(format!(
                    "{ended}: {kind:?} gap of version {version} lasted {} ms, shorter than the {} ms the emergency asked for",
                    length.as_millis(),
                    min.as_millis()
                ));
            }
            self.emergency_gaps.push(Gap { kind, length, ended });
            return;
        }
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

/// A value service B still accepted too long after no accepted version carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateRevocation {
    /// The value (the simulation's values are not secret).
    pub value: String,
    /// Since when no accepted version has carried it.
    pub uncarried_since: Timestamp,
}

/// Holds service B to the revocation bound: a value no accepted version carries any more
/// must be revoked within `bound` (T + 1 h).
#[derive(Debug, Clone)]
pub struct RevocationCheck {
    bound: Duration,
    uncarried_since: BTreeMap<String, Timestamp>,
    reported: BTreeSet<String>,
}

impl RevocationCheck {
    /// A check with the given bound.
    pub fn new(bound: Duration) -> Self {
        RevocationCheck {
            bound,
            uncarried_since: BTreeMap::new(),
            reported: BTreeSet::new(),
        }
    }

    /// Called after every event: `carried` are the values of the versions that carry an
    /// accepted label now, `valid` the values B accepts now. Returns the values that have
    /// just become late (each value once). A value B accepts that was never seen carried
    /// counts from the first time it is seen.
    pub fn observe(
        &mut self,
        now: Timestamp,
        carried: &BTreeSet<String>,
        valid: &BTreeSet<String>,
    ) -> Vec<LateRevocation> {
        self.uncarried_since
            .retain(|v, _| valid.contains(v) && !carried.contains(v));
        let mut late = Vec::new();
        for v in valid.iter().filter(|v| !carried.contains(*v)) {
            let since = *self.uncarried_since.entry(v.clone()).or_insert(now);
            if now.since(since) > self.bound && self.reported.insert(v.clone()) {
                late.push(LateRevocation {
                    value: v.clone(),
                    uncarried_since: since,
                });
            }
        }
        late
    }

    /// The values B accepts that no accepted version carries now and that were not
    /// reported late yet, with the time each stopped being carried (as last observed).
    pub fn pending(&self) -> impl Iterator<Item = (&String, &Timestamp)> {
        self.uncarried_since
            .iter()
            .filter(|(v, _)| !self.reported.contains(*v))
    }
}

/// What kind of failure a violation is, for the report and the tests' allowances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A failed consumer operation, or a producer/consumer pair that would fail.
    Contract,
    /// AWSCURRENT / AWSPENDING counts, or ROTATING where it may not be.
    Labels,
    /// A gap shorter than T.
    Gap,
    /// Service B accepts a value no accepted version carried for more than T + 1 h.
    Revocation,
    /// A rotation that neither completed nor was abandoned cleanly, keyshift labels left
    /// behind, or a follow-up in the dead-letter queue.
    Convergence,
    /// A call for another secret than the invocation's.
    CrossTalk,
    /// An instance failed, after an emergency's cut, for longer than one refresh round
    /// trip.
    Window,
}

impl Kind {
    /// Every kind, in report order.
    pub const EVERY: [Kind; 7] = [
        Kind::Contract,
        Kind::Labels,
        Kind::Gap,
        Kind::Revocation,
        Kind::Convergence,
        Kind::CrossTalk,
        Kind::Window,
    ];

    /// The report name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Contract => "contract",
            Kind::Labels => "labels",
            Kind::Gap => "gap",
            Kind::Revocation => "revocation",
            Kind::Convergence => "convergence",
            Kind::CrossTalk => "cross-talk",
            Kind::Window => "window",
        }
    }

    /// The kind of a violation sentence (the simulation's own wording).
    pub fn of(violation: &str) -> Kind {
        let has = |s: &str| violation.contains(s);
        if has("cross-talk") {
            Kind::CrossTalk
        } else if has("failure window") {
            Kind::Window
        } else if has("service B still accepts") {
            Kind::Revocation
        } else if has("gap of version") {
            Kind::Gap
        } else if has("versions carry")
            || has("ROTATING is on")
            || has("moved back")
            || has("is accepted again")
            || has("not at rest")
        {
            Kind::Labels
        } else if has("consumer contract") || has("NothingToUse") || has("UnusableKey") {
            Kind::Contract
        } else {
            Kind::Convergence
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(values: &[&str]) -> BTreeSet<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn a_value_no_accepted_version_carries_must_be_revoked_within_the_bound() {
        let bound = Duration::from_secs(3600 + 300);
        let mut c = RevocationCheck::new(bound);
        let t0 = Timestamp::from_secs(1_700_000_000);
        // K1 carried, then only K2: K1 stops being carried at t1.
        assert!(c.observe(t0, &set(&["k1"]), &set(&["k1"])).is_empty());
        let t1 = t0.plus(Duration::from_secs(10));
        assert!(c.observe(t1, &set(&["k2"]), &set(&["k1", "k2"])).is_empty());
        // Exactly at the bound: still fine.
        assert!(
            c.observe(t1.plus(bound), &set(&["k2"]), &set(&["k1", "k2"]))
                .is_empty()
        );
        // A millisecond later: late, reported once.
        let late = c.observe(
            t1.plus(bound + Duration::from_millis(1)),
            &set(&["k2"]),
            &set(&["k1", "k2"]),
        );
        assert_eq!(
            late,
            vec![LateRevocation {
                value: "k1".into(),
                uncarried_since: t1,
            }]
        );
        assert!(
            c.observe(t1.plus(bound * 2), &set(&["k2"]), &set(&["k1", "k2"]))
                .is_empty()
        );
    }

    #[test]
    fn revoking_or_carrying_again_resets_and_values_not_versions_count() {
        let bound = Duration::from_secs(100);
        let mut c = RevocationCheck::new(bound);
        let t = |s: u64| Timestamp::from_secs(1_700_000_000).plus(Duration::from_secs(s));
        // Uncarried for 90 s, then carried again (the same value under another version,
        // as a copy would be), then uncarried again: the clock restarts.
        assert!(c.observe(t(0), &set(&[]), &set(&["k"])).is_empty());
        assert!(c.observe(t(90), &set(&["k"]), &set(&["k"])).is_empty());
        assert!(c.observe(t(100), &set(&[]), &set(&["k"])).is_empty());
        assert!(c.observe(t(195), &set(&[]), &set(&["k"])).is_empty());
        assert_eq!(c.pending().count(), 1);
        // Revoked: nothing pending, nothing late.
        assert!(c.observe(t(300), &set(&[]), &set(&[])).is_empty());
        assert_eq!(c.pending().count(), 0);
    }

    #[test]
    fn every_violation_sentence_has_its_kind() {
        let cases = [
            (
                "t: First gap of version v lasted 0 ms, shorter than T = 1 ms",
                Kind::Gap,
            ),
            ("t: 2 versions carry AWSCURRENT", Kind::Labels),
            (
                "t: ROTATING is on v, which is neither current nor the version current before",
                Kind::Labels,
            ),
            (
                "t: consumer contract broken after instance 1 refreshed: x",
                Kind::Contract,
            ),
            ("t: NothingToUse { producer: 1 }", Kind::Contract),
            (
                "t: UnusableKey { producer: 0, version: v, why: \"x\" }",
                Kind::Contract,
            ),
            (
                "t: service B still accepts the initial value, which ...",
                Kind::Revocation,
            ),
            (
                "t: the run is over and service B still accepts rotation 0's value",
                Kind::Revocation,
            ),
            ("rotation 0 did not converge within 1s: ...", Kind::Convergence),
            ("1 follow-ups ended in the dead-letter queue", Kind::Convergence),
            (
                "t: emergency 0's failure window of instance 1 lasted 9000 ms from its first failure to its recovery",
                Kind::Window,
            ),
            (
                "t: the compromised value of version v is accepted again after emergency 0's cut: version w carries AWSPENDING",
                Kind::Labels,
            ),
            (
                "t: AWSCURRENT moved back to an older value: version v holds a value first stored at a",
                Kind::Labels,
            ),
            (
                "the run is over and AWSPENDING is still on version v: not at rest",
                Kind::Labels,
            ),
            (
                "t: service B still accepts the compromised value of version v after emergency 0 ended",
                Kind::Revocation,
            ),
            (
                "t: rotation 0 was cancelled at a and resumed: its value became AWSCURRENT",
                Kind::Convergence,
            ),
            (
                "t: cross-talk: an invocation for a described of b",
                Kind::CrossTalk,
            ),
        ];
        for (sentence, kind) in cases {
            assert_eq!(Kind::of(sentence), kind, "{sentence}");
        }
    }
}
