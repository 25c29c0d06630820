use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context, Poll, Waker};

use super::*;
use crate::secret::ROTATING;

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_800_000_000_000;

/// Drives a future of the fake, which never waits, to completion.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the in-memory store never waits"),
    }
}

fn v(n: u32) -> VersionId {
    VersionId::new(format!("{n:08x}-0000-4000-8000-000000000000"))
}

fn val(text: &str) -> SecretValue {
    SecretValue::new(text)
}

fn kind<T: fmt::Debug>(r: Result<T, StoreError>) -> StoreErrorKind {
    r.expect_err("expected an error").kind
}

/// A secret "app/key" with version 0 as AWSCURRENT, rotation enabled, on a manual clock.
struct Fx {
    sm: MemorySecretsManager,
    clock: Arc<AtomicI64>,
    id: SecretId,
}

impl Fx {
    fn new() -> Fx {
        let clock = Arc::new(AtomicI64::new(T0));
        let read = Arc::clone(&clock);
        let sm = MemorySecretsManager::new(move || Timestamp::from_millis(read.load(Ordering::SeqCst)));
        let id = SecretId::new("app/key");
        sm.create_secret(&id, &v(0), val("value-0")).expect("create");
        sm.set_rotation_enabled(&id, true).expect("enable");
        Fx { sm, clock, id }
    }

    fn advance(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.clock.load(Ordering::SeqCst))
    }

    fn state(&self) -> SecretState {
        self.sm.snapshot(&self.id).expect("snapshot")
    }

    fn stages(&self, n: u32) -> Vec<String> {
        let state = self.state();
        let info = state.version(&v(n)).expect("version exists");
        info.stages.iter().cloned().collect()
    }

    fn mv(&self, stage: &str, to: Option<u32>, from: Option<u32>) -> Result<(), StoreError> {
        let change = LabelMove {
            stage: stage.to_string(),
            move_to: to.map(v),
            remove_from: from.map(v),
        };
        ready(self.sm.update_stage(&self.id, &change))
    }

    fn put(&self, n: u32, value: &str) -> Result<(), StoreError> {
        ready(
            self.sm
                .put_pending(&self.id, &v(n), &val(value), Some("rotation-token")),
        )
    }

    fn history(&self) -> Vec<Change> {
        self.sm.history(&self.id)
    }
}

fn stages(list: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    out.sort();
    out
}

fn change(at: Timestamp, n: u32, what: ChangeKind) -> Change {
    Change {
        at,
        version: v(n),
        what,
    }
}

#[test]
fn create_secret_labels_the_first_version_current_and_refuses_a_second_create() {
    let fx = Fx::new();
    assert_eq!(fx.stages(0), stages(&[AWSCURRENT]));
    assert_eq!(
        fx.state().version(&v(0)).and_then(|i| i.created),
        Some(Timestamp::from_millis(T0))
    );
    assert_eq!(
        kind(fx.sm.create_secret(&fx.id, &v(9), val("other"))),
        StoreErrorKind::AlreadyExists
    );
    assert_eq!(fx.state().versions.len(), 1);
}

#[test]
fn describe_reports_rotation_enabled_and_every_version() {
    let fx = Fx::new();
    let state = ready(fx.sm.describe(&fx.id, Detail::Full)).expect("describe");
    assert!(state.rotation_enabled);
    assert_eq!(state, fx.state());
    fx.sm.set_rotation_enabled(&fx.id, false).expect("disable");
    assert!(
        !ready(fx.sm.describe(&fx.id, Detail::Full))
            .expect("describe")
            .rotation_enabled
    );
}

#[test]
fn unknown_secret_or_version_is_not_found() {
    let fx = Fx::new();
    let ghost = SecretId::new("ghost");
    assert_eq!(
        kind(ready(fx.sm.describe(&ghost, Detail::Full))),
        StoreErrorKind::NotFound
    );
    assert_eq!(
        kind(ready(fx.sm.get_value(&ghost, &v(0)))),
        StoreErrorKind::NotFound
    );
    assert_eq!(
        kind(ready(fx.sm.put_pending(&ghost, &v(1), &val("x"), None))),
        StoreErrorKind::NotFound
    );
    assert_eq!(
        kind(ready(fx.sm.get_value(&fx.id, &v(7)))),
        StoreErrorKind::NotFound
    );
    assert_eq!(kind(fx.mv(ROTATING, Some(7), None)), StoreErrorKind::NotFound);
    assert_eq!(
        kind(fx.mv(AWSCURRENT, Some(0), Some(7))),
        StoreErrorKind::NotFound
    );
    assert_eq!(kind(fx.sm.snapshot(&ghost)), StoreErrorKind::NotFound);
    assert_eq!(
        kind(fx.sm.begin_rotation(&ghost, &v(1))),
        StoreErrorKind::NotFound
    );
}

#[test]
fn a_label_sits_on_one_version_only() {
    let fx = Fx::new();
    fx.put(1, "value-1").expect("put 1");
    fx.put(2, "value-2").expect("put 2");
    // PutSecretValue's VersionStages moves AWSPENDING off version 1.
    assert_eq!(fx.stages(1), Vec::<String>::new());
    assert_eq!(fx.stages(2), stages(&[AWSPENDING]));
    fx.mv(ROTATING, Some(0), None).expect("add");
    fx.mv(ROTATING, Some(1), Some(0)).expect("move");
    let state = fx.state();
    for label in [AWSCURRENT, AWSPENDING, ROTATING] {
        let holders = state.versions.values().filter(|i| i.has(label)).count();
        assert_eq!(holders, 1, "{label}");
    }
    assert_eq!(state.holder(ROTATING), Some(&v(1)));
}

#[test]
fn moving_an_attached_label_needs_the_right_remove_from_version_id() {
    let fx = Fx::new();
    fx.put(1, "value-1").expect("put");
    fx.put_secret_value_custom(2);
    fx.mv(ROTATING, Some(0), None).expect("add");
    let before = fx.state();

    let err = fx
        .mv(ROTATING, Some(1), None)
        .expect_err("no RemoveFromVersionId");
    assert_eq!(err.kind, StoreErrorKind::InvalidParameter);
    assert!(err.message.contains(v(0).as_str()), "{err}");
    assert_eq!(
        kind(fx.mv(ROTATING, Some(1), Some(2))),
        StoreErrorKind::InvalidParameter
    );
    assert_eq!(fx.state(), before);

    fx.mv(ROTATING, Some(1), Some(0)).expect("explicit move");
    assert_eq!(fx.state().holder(ROTATING), Some(&v(1)));
}

impl Fx {
    /// Version `n` with a value and only a custom label, so that it stays labelled.
    fn put_secret_value_custom(&self, n: u32) {
        let label = format!("KEEP{n}");
        self.sm
            .put_secret_value(&self.id, &v(n), val(&format!("value-{n}")), &[label.as_str()])
            .expect("put custom");
    }
}

#[test]
fn moving_awscurrent_moves_awsprevious_to_the_old_current() {
    let fx = Fx::new();
    fx.put(1, "value-1").expect("put 1");
    fx.mv(AWSCURRENT, Some(1), Some(0)).expect("finish 1");
    assert_eq!(fx.stages(0), stages(&[AWSPREVIOUS]));
    assert_eq!(fx.stages(1), stages(&[AWSCURRENT, AWSPENDING]));

    fx.put(2, "value-2").expect("put 2");
    fx.mv(AWSCURRENT, Some(2), Some(1)).expect("finish 2");
    assert_eq!(fx.stages(1), stages(&[AWSPREVIOUS]));
    assert_eq!(fx.stages(2), stages(&[AWSCURRENT, AWSPENDING]));
    // The version that lost AWSPREVIOUS is deprecated but still listed.
    assert_eq!(fx.stages(0), Vec::<String>::new());
}

#[test]
fn rolling_back_awscurrent_takes_awsprevious_off_the_new_current() {
    let fx = Fx::new();
    fx.put(1, "value-1").expect("put");
    fx.mv(AWSCURRENT, Some(1), Some(0)).expect("finish");
    fx.mv(AWSCURRENT, Some(0), Some(1)).expect("roll back");
    assert_eq!(fx.stages(0), stages(&[AWSCURRENT]));
    assert_eq!(fx.stages(1), stages(&[AWSPENDING, AWSPREVIOUS]));
}

#[test]
fn put_secret_value_without_stages_makes_the_version_current() {
    let fx = Fx::new();
    fx.sm
        .put_secret_value(&fx.id, &v(1), val("value-1"), &[])
        .expect("put");
    assert_eq!(fx.stages(1), stages(&[AWSCURRENT]));
    assert_eq!(fx.stages(0), stages(&[AWSPREVIOUS]));
}

#[test]
fn removing_awscurrent_is_refused() {
    let fx = Fx::new();
    let before = fx.state();
    assert_eq!(
        kind(fx.mv(AWSCURRENT, None, Some(0))),
        StoreErrorKind::InvalidParameter
    );
    assert_eq!(fx.state(), before);
}

#[test]
fn removing_a_label_not_attached_there_is_refused() {
    let fx = Fx::new();
    fx.put(1, "value-1").expect("put");
    fx.mv(ROTATING, Some(0), None).expect("add");
    let before = fx.state();
    assert_eq!(
        kind(fx.mv(ROTATING, None, Some(1))),
        StoreErrorKind::InvalidParameter
    );
    assert_eq!(
        kind(fx.mv("NOWHERE", None, Some(0))),
        StoreErrorKind::InvalidParameter
    );
    assert_eq!(
        kind(fx.mv(ROTATING, None, None)),
        StoreErrorKind::InvalidParameter
    );
    assert_eq!(fx.state(), before);
    fx.mv(ROTATING, None, Some(0)).expect("remove");
    assert_eq!(fx.state().holder(ROTATING), None);
}

#[test]
fn adding_a_label_to_the_version_that_has_it_is_a_no_op() {
    let fx = Fx::new();
    fx.put(1, "value-1").expect("put");
    let (before, log) = (fx.state(), fx.history());
    fx.mv(AWSCURRENT, Some(0), None).expect("no-op");
    fx.mv(AWSCURRENT, Some(0), Some(0)).expect("no-op with itself");
    assert_eq!(fx.state(), before);
    assert_eq!(fx.history(), log, "a no-op must not move AWSPREVIOUS");
    assert_eq!(
        kind(fx.mv(AWSCURRENT, Some(0), Some(1))),
        StoreErrorKind::InvalidParameter
    );
}

#[test]
fn same_token_and_value_is_a_no_op_without_label_changes() {
    let fx = Fx::new();
    fx.put(1, "value-1").expect("put");
    fx.mv(AWSPENDING, None, Some(1)).expect("strip pending");
    let (before, log) = (fx.state(), fx.history());
    fx.advance(HOUR);
    fx.put(1, "value-1").expect("idempotent put");
    assert_eq!(
        fx.state(),
        before,
        "AWSPENDING is not re-attached, created not restamped"
    );
    assert_eq!(fx.history(), log);
}

#[test]
fn same_token_other_value_is_already_exists() {
    let fx = Fx::new();
    fx.put(1, "value-1").expect("put");
    let before = fx.state();
    assert_eq!(kind(fx.put(1, "value-other")), StoreErrorKind::AlreadyExists);
    assert_eq!(
        kind(fx.sm.put_secret_value(&fx.id, &v(0), val("value-other"), &[])),
        StoreErrorKind::AlreadyExists
    );
    assert_eq!(fx.state(), before);
    assert_eq!(fx.sm.value(&fx.id, &v(1)).expect("value"), Some(val("value-1")));
}

#[test]
fn begin_rotation_creates_a_valueless_pending_placeholder() {
    let fx = Fx::new();
    fx.sm.begin_rotation(&fx.id, &v(1)).expect("begin");
    let state = fx.state();
    let info = state.version(&v(1)).expect("placeholder listed");
    assert_eq!(info.created, None);
    assert_eq!(fx.stages(1), stages(&[AWSPENDING]));
    assert_eq!(ready(fx.sm.get_value(&fx.id, &v(1))), Ok(None));
    assert_eq!(fx.sm.value(&fx.id, &v(1)), Ok(None));
    assert!(
        !fx.history()
            .iter()
            .any(|c| c.version == v(1) && c.what == ChangeKind::ValueStored)
    );
}

#[test]
fn put_pending_fills_the_placeholder_and_stamps_created_at_put_time() {
    let fx = Fx::new();
    fx.sm.begin_rotation(&fx.id, &v(1)).expect("begin");
    fx.advance(5 * 60_000);
    fx.put(1, "value-1").expect("fill");
    let state = fx.state();
    assert_eq!(state.version(&v(1)).and_then(|i| i.created), Some(fx.now()));
    assert_eq!(fx.stages(1), stages(&[AWSPENDING]));
    assert_eq!(ready(fx.sm.get_value(&fx.id, &v(1))), Ok(Some(val("value-1"))));
}

#[test]
fn begin_rotation_refused_while_pending_is_on_a_non_current_version() {
    let fx = Fx::new();
    fx.sm.begin_rotation(&fx.id, &v(1)).expect("begin");
    fx.put(1, "value-1").expect("fill");
    let before = fx.state();
    let err = fx.sm.begin_rotation(&fx.id, &v(2)).expect_err("stuck rotation");
    assert_eq!(err.kind, StoreErrorKind::InvalidRequest);
    assert!(
        err.message.contains("A previous rotation isn't complete"),
        "{err}"
    );
    assert_eq!(fx.state(), before);
    // The engine's retry of the same rotation is not a new one.
    fx.sm
        .begin_rotation(&fx.id, &v(1))
        .expect("retry with the same token");
    assert_eq!(fx.state(), before);
}

#[test]
fn begin_rotation_allowed_when_pending_is_on_current_or_nowhere() {
    let fx = Fx::new();
    fx.sm.begin_rotation(&fx.id, &v(1)).expect("begin 1");
    fx.put(1, "value-1").expect("fill 1");
    fx.mv(AWSCURRENT, Some(1), Some(0)).expect("finish 1");
    fx.sm.begin_rotation(&fx.id, &v(2)).expect("pending on current");
    assert_eq!(fx.stages(1), stages(&[AWSCURRENT]));
    assert_eq!(fx.stages(2), stages(&[AWSPENDING]));

    assert_eq!(fx.sm.strip_label(&fx.id, AWSPENDING), Some(v(2)));
    fx.sm.begin_rotation(&fx.id, &v(3)).expect("pending nowhere");
    assert_eq!(fx.state().holder(AWSPENDING), Some(&v(3)));
    // A stripped token that comes back gets AWSPENDING again.
    fx.sm.strip_label(&fx.id, AWSPENDING);
    fx.sm.begin_rotation(&fx.id, &v(2)).expect("re-attach");
    assert_eq!(fx.state().holder(AWSPENDING), Some(&v(2)));
}

#[test]
fn begin_rotation_refused_while_rotation_is_disabled() {
    let fx = Fx::new();
    fx.sm.set_rotation_enabled(&fx.id, false).expect("disable");
    assert_eq!(
        kind(fx.sm.begin_rotation(&fx.id, &v(1))),
        StoreErrorKind::InvalidRequest
    );
    assert_eq!(fx.state().versions.len(), 1);
}

/// Puts versions `1..=n` as AWSCURRENT, one millisecond apart: all but the last two end
/// up deprecated.
fn fill_versions(fx: &Fx, n: u32) {
    for i in 1..=n {
        fx.advance(1);
        fx.sm
            .put_secret_value(&fx.id, &v(i), val(&format!("value-{i}")), &[])
            .expect("put");
    }
}

#[test]
fn deprecated_versions_stay_listed_without_stages() {
    let fx = Fx::new();
    fill_versions(&fx, 3);
    let state = fx.state();
    assert_eq!(state.versions.len(), 4);
    for n in [0, 1] {
        let info = state.version(&v(n)).expect("deprecated version listed");
        assert!(info.stages.is_empty());
        assert!(info.created.is_some());
    }
    assert_eq!(fx.sm.value(&fx.id, &v(0)), Ok(Some(val("value-0"))));
}

#[test]
fn no_purge_at_100_versions_even_when_old() {
    let fx = Fx::new();
    fill_versions(&fx, 99);
    fx.advance(48 * HOUR);
    fx.mv(ROTATING, Some(0), None).expect("a write");
    fx.mv(ROTATING, None, Some(0)).expect("another write");
    assert_eq!(fx.state().versions.len(), 100);
}

#[test]
fn no_purge_of_versions_younger_than_24_hours() {
    let fx = Fx::new();
    fill_versions(&fx, 105);
    fx.advance(23 * HOUR);
    fx.put(200, "value-200").expect("a write");
    assert_eq!(fx.state().versions.len(), 107);
    assert!(!fx.history().iter().any(|c| c.what == ChangeKind::Deleted));
}

#[test]
fn purge_deletes_the_oldest_deprecated_versions_down_to_100() {
    let fx = Fx::new();
    fill_versions(&fx, 99);
    fx.mv("KEEP", Some(0), None).expect("label the oldest");
    fx.advance(25 * HOUR);
    fx.put(200, "value-200").expect("101st version");
    let state = fx.state();
    assert_eq!(state.versions.len(), 100);
    assert!(
        state.version(&v(0)).is_some(),
        "labelled versions are never deleted"
    );
    assert!(
        state.version(&v(1)).is_none(),
        "the oldest deprecated version goes"
    );
    assert!(state.version(&v(2)).is_some(), "only as many as needed go");
    let deleted: Vec<_> = fx
        .history()
        .into_iter()
        .filter(|c| c.what == ChangeKind::Deleted)
        .collect();
    assert_eq!(deleted, vec![change(fx.now(), 1, ChangeKind::Deleted)]);
}

#[test]
fn a_secret_carries_at_most_20_labels() {
    let fx = Fx::new();
    fx.put_secret_value_custom(1);
    for i in 2..20 {
        fx.mv(&format!("L{i}"), Some(0), None)
            .expect("label within quota");
    }
    let before = fx.state();
    assert_eq!(kind(fx.mv("L20", Some(0), None)), StoreErrorKind::LimitExceeded);
    assert_eq!(
        kind(fx.put(2, "value-2")),
        StoreErrorKind::LimitExceeded,
        "AWSPENDING would be a 21st"
    );
    assert_eq!(
        kind(fx.sm.begin_rotation(&fx.id, &v(3))),
        StoreErrorKind::LimitExceeded
    );
    assert_eq!(fx.state(), before);
    // Moving an existing label adds none.
    fx.mv("L2", Some(1), Some(0)).expect("move within quota");
}

#[test]
fn fail_next_fails_once_and_changes_nothing() {
    let fx = Fx::new();
    fx.sm.inject(Fault::FailNext {
        op: Op::PutPending,
        kind: StoreErrorKind::AccessDenied,
    });
    ready(fx.sm.describe(&fx.id, Detail::Full)).expect("other ops unaffected");
    let before = fx.state();
    assert_eq!(kind(fx.put(1, "value-1")), StoreErrorKind::AccessDenied);
    assert_eq!(fx.state(), before);
    fx.put(1, "value-1").expect("consumed once");
    assert_eq!(fx.sm.calls(Op::PutPending), 2);
    assert_eq!(fx.sm.calls(Op::Describe), 1);
}

#[test]
fn throttle_counts_down() {
    let fx = Fx::new();
    fx.sm.inject(Fault::Throttle { op: None, calls: 2 });
    assert_eq!(
        kind(ready(fx.sm.describe(&fx.id, Detail::Full))),
        StoreErrorKind::Throttled
    );
    assert_eq!(kind(fx.mv(ROTATING, Some(0), None)), StoreErrorKind::Throttled);
    assert_eq!(fx.state().holder(ROTATING), None);
    ready(fx.sm.describe(&fx.id, Detail::Full)).expect("throttle over");

    fx.sm.inject(Fault::Throttle {
        op: Some(Op::GetValue),
        calls: 1,
    });
    fx.mv(ROTATING, Some(0), None).expect("other op");
    assert_eq!(
        kind(ready(fx.sm.get_value(&fx.id, &v(0)))),
        StoreErrorKind::Throttled
    );
    assert_eq!(ready(fx.sm.get_value(&fx.id, &v(0))), Ok(Some(val("value-0"))));
    assert_eq!(fx.sm.calls(Op::GetValue), 2);
    assert_eq!(fx.sm.calls(Op::UpdateStage), 2);
}

#[test]
fn lose_response_takes_effect_then_reports_transient() {
    let fx = Fx::new();
    fx.sm.inject(Fault::LoseResponse { op: Op::PutPending });
    assert_eq!(kind(fx.put(1, "value-1")), StoreErrorKind::Transient);
    assert_eq!(fx.stages(1), stages(&[AWSPENDING]));
    fx.put(1, "value-1").expect("the retry is idempotent");

    // A call that fails by itself reports its own error and still consumes the fault.
    fx.sm.inject(Fault::LoseResponse { op: Op::UpdateStage });
    assert_eq!(
        kind(fx.mv(AWSCURRENT, None, Some(0))),
        StoreErrorKind::InvalidParameter
    );
    fx.mv(ROTATING, Some(0), None).expect("fault consumed");
}

#[test]
fn queued_faults_apply_in_order_once_each() {
    let fx = Fx::new();
    fx.sm.inject(Fault::FailNext {
        op: Op::UpdateStage,
        kind: StoreErrorKind::Transient,
    });
    fx.sm.inject(Fault::LoseResponse { op: Op::UpdateStage });
    assert_eq!(kind(fx.mv(ROTATING, Some(0), None)), StoreErrorKind::Transient);
    assert_eq!(fx.state().holder(ROTATING), None);
    assert_eq!(kind(fx.mv(ROTATING, Some(0), None)), StoreErrorKind::Transient);
    assert_eq!(fx.state().holder(ROTATING), Some(&v(0)));
    fx.mv(ROTATING, None, Some(0)).expect("no fault left");
}

#[test]
fn strip_label_removes_without_remove_from_and_without_fault_accounting() {
    let fx = Fx::new();
    fx.put(1, "value-1").expect("put");
    fx.sm.inject(Fault::Throttle { op: None, calls: 5 });
    assert_eq!(fx.sm.strip_label(&fx.id, AWSPENDING), Some(v(1)));
    assert_eq!(fx.sm.strip_label(&fx.id, AWSPENDING), None);
    assert_eq!(fx.sm.strip_label(&SecretId::new("ghost"), AWSPENDING), None);
    assert_eq!(fx.stages(1), Vec::<String>::new());
    assert_eq!(
        fx.history().last(),
        Some(&change(fx.now(), 1, ChangeKind::Detached(AWSPENDING.into())))
    );
    assert_eq!(fx.sm.calls(Op::UpdateStage), 0);
}

#[test]
fn history_records_every_change_in_order() {
    let fx = Fx::new();
    let t0 = fx.now();
    fx.sm.begin_rotation(&fx.id, &v(1)).expect("begin");
    fx.advance(1000);
    let t1 = fx.now();
    fx.put(1, "value-1").expect("fill");
    fx.advance(1000);
    let t2 = fx.now();
    fx.mv(AWSCURRENT, Some(1), Some(0)).expect("finish 1");
    fx.put(2, "value-2").expect("put 2");
    fx.mv(AWSCURRENT, Some(2), Some(1)).expect("finish 2");
    use ChangeKind::{Attached, Detached, ValueStored};
    let label = |s: &str| s.to_string();
    assert_eq!(
        fx.history(),
        vec![
            change(t0, 0, ValueStored),
            change(t0, 0, Attached(label(AWSCURRENT))),
            change(t0, 1, Attached(label(AWSPENDING))),
            change(t1, 1, ValueStored),
            change(t2, 0, Detached(label(AWSCURRENT))),
            change(t2, 1, Attached(label(AWSCURRENT))),
            change(t2, 0, Attached(label(AWSPREVIOUS))),
            change(t2, 2, ValueStored),
            change(t2, 1, Detached(label(AWSPENDING))),
            change(t2, 2, Attached(label(AWSPENDING))),
            change(t2, 1, Detached(label(AWSCURRENT))),
            change(t2, 2, Attached(label(AWSCURRENT))),
            change(t2, 0, Detached(label(AWSPREVIOUS))),
            change(t2, 1, Attached(label(AWSPREVIOUS))),
        ]
    );
}

#[test]
fn error_messages_never_contain_a_value() {
    const SECRET: &str = "zebra-plutonium-7781";
    let fx = Fx::new();
    fx.put(1, SECRET).expect("put");
    let mut errors = vec![
        fx.put(1, "another-value").expect_err("conflict"),
        ready(fx.sm.put_pending(&fx.id, &v(0), &val(SECRET), Some(SECRET))).expect_err("conflict"),
        fx.sm
            .create_secret(&fx.id, &v(5), val(SECRET))
            .expect_err("exists"),
        fx.mv(AWSCURRENT, None, Some(0)).expect_err("remove current"),
        fx.mv(AWSPENDING, Some(0), None).expect_err("no remove-from"),
    ];
    fx.sm.inject(Fault::LoseResponse { op: Op::PutPending });
    errors.push(ready(fx.sm.put_pending(&fx.id, &v(3), &val(SECRET), Some(SECRET))).expect_err("lost"));
    for err in errors {
        for shown in [format!("{err}"), format!("{err:?}")] {
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!shown.contains("another-value"), "{shown}");
        }
    }
}

#[test]
fn labels_detail_lists_labelled_versions_without_dates_full_lists_all_with_dates() {
    let fx = Fx::new();
    fx.sm.begin_rotation(&fx.id, &v(1)).expect("begin");
    fx.put(1, "value-1").expect("fill");
    // A deprecated version: written with a custom label, then the label removed.
    fx.sm
        .put_secret_value(&fx.id, &v(2), val("value-2"), &["OPS"])
        .expect("put");
    fx.mv("OPS", None, Some(2)).expect("unlabel");
    let full = ready(fx.sm.describe(&fx.id, Detail::Full)).expect("full");
    let labels = ready(fx.sm.describe(&fx.id, Detail::Labels)).expect("labels");
    assert!(full.version(&v(2)).is_some(), "Full lists deprecated versions");
    assert!(
        labels.version(&v(2)).is_none(),
        "Labels lists labelled versions only"
    );
    assert!(
        labels.versions.values().all(|i| i.created.is_none()),
        "and no dates"
    );
    assert_eq!(full.version(&v(1)).and_then(|i| i.created), Some(fx.now()));
    assert!(full.version(&v(0)).and_then(|i| i.created).is_some());
}

#[test]
fn a_read_lag_hides_a_new_value_from_reads_until_it_passes() {
    let fx = Fx::new();
    fx.sm.set_read_lag(Duration::from_millis(500));
    fx.sm.begin_rotation(&fx.id, &v(1)).expect("begin");
    fx.put(1, "value-1").expect("fill");
    assert_eq!(
        kind(ready(fx.sm.get_value(&fx.id, &v(1)))),
        StoreErrorKind::NotFound
    );
    let seen = ready(fx.sm.describe(&fx.id, Detail::Full)).expect("describe");
    assert_eq!(
        seen.version(&v(1)).and_then(|i| i.created),
        None,
        "looks like a placeholder"
    );
    fx.advance(500);
    assert_eq!(ready(fx.sm.get_value(&fx.id, &v(1))), Ok(Some(val("value-1"))));
    let seen = ready(fx.sm.describe(&fx.id, Detail::Full)).expect("describe");
    assert!(seen.version(&v(1)).and_then(|i| i.created).is_some());
}

#[test]
fn a_secret_scheduled_for_deletion_is_described_and_refuses_everything_else() {
    let fx = Fx::new();
    fx.sm.tag(&fx.id, "keyshift:gap-seconds", "900").expect("tag");
    fx.sm.delete_secret(&fx.id, false).expect("schedule deletion");
    let state = ready(fx.sm.describe(&fx.id, Detail::Labels)).expect("described");
    assert!(state.deleted);
    assert_eq!(
        state.tags.get("keyshift:gap-seconds").map(String::as_str),
        Some("900")
    );
    assert_eq!(
        kind(ready(fx.sm.get_value(&fx.id, &v(0)))),
        StoreErrorKind::Deleted
    );
    assert_eq!(
        kind(ready(fx.sm.update_stage(
            &fx.id,
            &LabelMove {
                stage: ROTATING.into(),
                move_to: Some(v(0)),
                remove_from: None
            }
        ))),
        StoreErrorKind::Deleted
    );
    fx.sm.delete_secret(&fx.id, true).expect("force delete");
    assert_eq!(
        kind(ready(fx.sm.describe(&fx.id, Detail::Full))),
        StoreErrorKind::NotFound
    );
}
