//! The human report and the watch lines, from secret states built label by label.

use std::collections::BTreeSet;
use std::time::Duration;

use keyshift::secret::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, ROTATING, VersionInfo, swap_marker};
use keyshift::status::status;
use keyshift::{Policy, SecretState, Timestamp};
use serde_json::json;

use super::*;

const T: u64 = 600;
const BUDGET: u64 = 300;

fn v(n: char) -> VersionId {
    VersionId::new(n.to_string().repeat(32))
}

fn at(s: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + s)
}

fn copy(n: char, s: i64) -> VersionId {
    v(n).copy(u32::try_from(at(s).as_secs()).expect("fits"))
}

fn policy() -> Policy {
    Policy::new(Duration::from_secs(T), Duration::from_secs(BUDGET)).expect("valid")
}

fn put(s: &mut SecretState, id: VersionId, stages: &[&str], created: Option<i64>) {
    s.versions.insert(
        id,
        VersionInfo {
            stages: stages.iter().map(|x| x.to_string()).collect::<BTreeSet<_>>(),
            created: created.map(at),
        },
    );
}

fn secret() -> SecretId {
    SecretId::new("arn:aws:secretsmanager:us-east-1:123456789012:secret:keyshift/demo-AbCdEf")
}

/// The version ids sort `z...` before the copy's id (hex digits), so "oldest first"
/// must come from the dates, not from the ids.
fn idle() -> SecretState {
    let mut s = SecretState {
        rotation_enabled: true,
        ..Default::default()
    };
    put(&mut s, v('z'), &[AWSCURRENT], Some(0));
    s
}

/// z is AWSCURRENT (written at 0); the engine's token b was written at 100 and copied at
/// 200: the copy carries AWSPENDING.
fn first_gap() -> SecretState {
    let mut s = idle();
    put(&mut s, v('b'), &[], Some(100));
    put(&mut s, copy('b', 200), &[AWSPENDING], Some(200));
    s
}

fn second_gap() -> SecretState {
    let mut s = idle();
    let marker = swap_marker(at(900));
    s.versions.clear();
    put(&mut s, v('z'), &[AWSPREVIOUS, ROTATING, marker.as_str()], Some(0));
    put(&mut s, v('b'), &[], Some(100));
    put(&mut s, copy('b', 200), &[AWSCURRENT], Some(200));
    s
}

fn line_of<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

#[test]
fn durations_read_as_a_person_says_them() {
    assert_eq!(duration(252_000), "4m12s");
    assert_eq!(duration(3_723_000), "1h02m03s");
    assert_eq!(duration(7_000), "7s");
    assert_eq!(duration(6_001), "7s", "a part second counts as one");
    assert_eq!(duration(-63_000), "1m03s");
    assert_eq!(relative(252_000), "in 4m12s");
    assert_eq!(relative(-63_000), "overdue by 1m03s");
    assert_eq!(relative(400), "now");
    // The ends of i64 (a due time read from a function's answer) do not overflow.
    assert_eq!(relative(i64::MIN), "overdue by 2562047788015h12m56s");
    assert_eq!(relative(i64::MAX), "in 2562047788015h12m56s");
}

#[test]
fn an_idle_secret_has_nothing_next() {
    let report = status(&idle(), &policy(), at(50));
    let text = status_text(&report, &secret(), GapSource::Tag, &Lookup::NotExpected);
    assert!(
        text.contains("phase:    idle (no rotation in progress)"),
        "{text}"
    );
    assert!(
        text.contains("T = 10m00s (from the secret's keyshift:gap-seconds tag)"),
        "{text}"
    );
    assert!(
        line_of(&text, &v('z').to_string()).contains("AWSCURRENT"),
        "{text}"
    );
    assert!(
        line_of(&text, "created").contains("created 2027-01-15T08:00:00.000Z"),
        "{text}"
    );
    assert!(text.contains("next:     nothing"), "{text}");
    assert!(text.contains("stuck:    no"), "{text}");
    assert!(text.contains(&format!("in use:   {}", v('z'))), "{text}");
}

#[test]
fn the_first_gap_shows_the_timeline_oldest_first_and_the_swap_due() {
    let s = first_gap();
    let report = status(&s, &policy(), at(300));
    let text = status_text(&report, &secret(), GapSource::Flag, &Lookup::NotExpected);
    let c = copy('b', 200);
    assert!(text.contains("phase:    first-gap"), "{text}");
    // Oldest first: z (written at 0) before the copy (200), though "z..." sorts after it.
    let z_at = text.find(v('z').as_str()).expect("z listed");
    let c_at = text.find(c.as_str()).expect("copy listed");
    assert!(z_at < c_at, "oldest first:\n{text}");
    assert!(
        line_of(&text, c.as_str()).contains("AWSPENDING  [keyshift copy]"),
        "{text}"
    );
    assert!(
        !text.contains(v('b').as_str()) || text.contains("copy of"),
        "an unlabelled version is not in the timeline:\n{text}"
    );
    let next = line_of(&text, "next:");
    assert!(
        next.contains(&format!(
            "swap: {c} becomes AWSCURRENT; {} keeps being accepted",
            v('z')
        )),
        "{text}"
    );
    // Due at the copy's creation + T = 800: 500 s after now.
    assert!(text.contains("due 2027-01-15T08:13:20.000Z (in 8m20s)"), "{text}");
    // T (600) is longer than the budget (300): a schedule is expected.
    let sched = line_of(&text, "expected schedule");
    let name = report.schedule_name(&secret()).expect("a schedule");
    assert!(sched.contains(name.as_str()), "{text}");
    assert!(text.contains("stuck:    no"), "{text}");
    assert!(
        text.contains(&format!(
            "accepted: {}, {}",
            c.as_str().min(v('z').as_str()),
            c.as_str().max(v('z').as_str())
        )),
        "{text}"
    );
}

#[test]
fn an_overdue_swap_is_stuck_with_advice() {
    // Due at 800; stuck past 800 + 60 (precision) + 300 (margin).
    let report = status(&first_gap(), &policy(), at(800 + 60 + 300 + 5));
    let text = status_text(&report, &secret(), GapSource::Environment, &Lookup::Missing);
    assert!(text.contains("(overdue by 6m05s)"), "{text}");
    let stuck = line_of(&text, "stuck:");
    assert!(stuck.contains("YES. the swap is overdue by 6m05s"), "{text}");
    assert!(
        stuck.contains(v('b').as_str()),
        "the advice names the token: {text}"
    );
    assert!(
        text.contains(&format!("Or: keyshift redrive {}", secret())),
        "{text}"
    );
    assert!(text.contains("from KEYSHIFT_GAP_SECONDS"), "{text}");
    assert!(
        text.contains("NOT FOUND (delivered already, lost, or not created yet)"),
        "{text}"
    );
}

#[test]
fn the_second_gap_shows_the_release() {
    let report = status(&second_gap(), &policy(), at(1000));
    let text = status_text(&report, &secret(), GapSource::Default, &Lookup::NotExpected);
    assert!(text.contains("phase:    second-gap"), "{text}");
    assert!(
        line_of(&text, "next:").contains(&format!("release: {} stops being accepted", v('z'))),
        "{text}"
    );
    // The release is due at the swap marker + T = 1500.
    assert!(text.contains("(in 8m20s)"), "{text}");
    assert!(line_of(&text, v('z').as_str()).contains("ROTATING"), "{text}");
    assert!(text.contains("the template's default"), "{text}");
}

#[test]
fn a_released_secret_and_a_disabled_one() {
    let mut s = second_gap();
    s.versions.clear();
    put(&mut s, v('z'), &[AWSPREVIOUS], Some(0));
    put(&mut s, copy('b', 200), &[AWSCURRENT], Some(200));
    s.rotation_enabled = false;
    let report = status(&s, &policy(), at(2000));
    let text = status_text(&report, &secret(), GapSource::Tag, &Lookup::NotExpected);
    assert!(text.contains("phase:    released"), "{text}");
    assert!(text.contains("rotation: disabled"), "{text}");
    assert!(text.contains("note:     rotation is disabled"), "{text}");
}

#[test]
fn the_json_is_the_functions_shape() {
    let report = status(&first_gap(), &policy(), at(300));
    let j = status_json(&report, &secret());
    assert_eq!(j["secret"], json!(secret().as_str()));
    assert_eq!(
        j["expected_schedule"],
        json!(report.schedule_name(&secret()).expect("expected").as_str())
    );
    assert_eq!(j["phase"], "first-gap");
    assert_eq!(j["next"]["move"], "swap");
    assert_eq!(j["next"]["due_in_ms"], 500_000);
    assert_eq!(j["gap_seconds"], 600);
    assert!(j["stuck"].is_null());
    let idle = status_json(&status(&idle(), &policy(), at(0)), &secret());
    assert!(idle["expected_schedule"].is_null());
    assert!(idle["next"].is_null());
}

#[test]
fn watch_lines_change_with_the_labels_only() {
    let a = status(&first_gap(), &policy(), at(300));
    let b = status(&first_gap(), &policy(), at(310));
    assert_eq!(watch_key(&a), watch_key(&b), "time alone is no change");
    let c = status(&second_gap(), &policy(), at(1000));
    assert_ne!(watch_key(&a), watch_key(&c));
    let line = watch_line(&a);
    assert!(line.starts_with("2027-01-15T08:05:00.000Z  first-gap"), "{line}");
    assert!(line.contains("zzzzzzzz:AWSCURRENT"), "{line}");
    assert!(line.contains("| next: swap"), "{line}");
    assert!(line.contains("in 8m20s"), "{line}");
    assert_eq!(
        countdown(&a, at(790)).as_deref(),
        Some(format!("next: swap of {} in 10s", &copy('b', 200).as_str()[..8]).as_str())
    );
    let stuck = status(&first_gap(), &policy(), at(2000));
    assert!(watch_line(&stuck).ends_with("| STUCK"));
}

#[test]
fn an_answer_is_summarised_with_every_field() {
    let answer = json!({
        "step": "emergencyRotate",
        "outcome": "wrote keyshift's copy",
        "continued": ["swapped", "released"],
        "scheduled": [{"name": "keyshift-release-x", "step": "removePending", "fireAt": "2027-01-15T09:00:00Z"}],
        "final": "released",
        "newVersion": "n",
        "compromisedVersion": "c",
        "gapSeconds": 0,
        "status": {"phase": "second-gap", "in_use": "n", "next": {"move": "release", "version": "c", "due_in_ms": 2000}, "stuck": null},
    });
    let text = answer_text(&answer);
    assert!(text.contains("step:      emergencyRotate"), "{text}");
    assert!(text.contains("outcome:   wrote keyshift's copy"), "{text}");
    assert!(text.contains("continued: swapped\n           released"), "{text}");
    assert!(
        text.contains("scheduled: removePending at 2027-01-15T09:00:00Z (keyshift-release-x)"),
        "{text}"
    );
    assert!(text.contains("final:     released"), "{text}");
    assert!(text.contains("newVersion: n"), "{text}");
    assert!(text.contains("compromisedVersion: c"), "{text}");
    assert!(text.contains("gapSeconds: 0"), "{text}");
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l == "status:    second-gap; in use n; next release of c in 2s"),
        "{text}"
    );
}

#[test]
fn labels_version_ids_and_answers_cannot_write_control_characters_to_the_terminal() {
    // Labels and version ids are what Secrets Manager returns, the answer is what the
    // function (or whoever answers in its place) says: an escape sequence in any of
    // them is shown escaped, one line stays one line.
    let mut s = first_gap();
    put(
        &mut s,
        VersionId::new("evil\u{1b}[2Jid"),
        &["LABEL\n\u{1b}]0;x\u{7}"],
        Some(50),
    );
    let report = status(&s, &policy(), at(250));
    let text = status_text(&report, &secret(), GapSource::Tag, &Lookup::NotExpected);
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
    assert!(text.contains("evil\\u{1b}[2Jid"), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with('\u{1b}') || l.starts_with("]0;")),
        "{text}"
    );
    let answer = json!({"step": "status", "outcome": "x\u{1b}[31m\nFORGED: line"});
    let shown = answer_text(&answer);
    assert!(!shown.chars().any(|c| c.is_control() && c != '\n'), "{shown:?}");
    assert!(!shown.lines().any(|l| l.starts_with("FORGED")), "{shown}");
}
