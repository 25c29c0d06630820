//! The sample payloads in `events/` go through the function's own event parser, so they
//! never drift from the code: one file per step, named after it, each parsing to that
//! step; engine steps carry exactly the fields Secrets Manager sends; follow-ups are
//! byte-for-byte what keyshift's scheduler would deliver, schedule name included.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use keyshift::event::{Invocation, STEP_NAMES, Step};
use keyshift::ports::schedule_name;
use keyshift::{Timestamp, VersionId};
use serde_json::Value;

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn samples() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(events_dir())
        .expect("events/ exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let stem = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            (stem, std::fs::read(&p).expect("readable"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_step_has_a_sample_and_every_sample_is_a_step() {
    let files: BTreeSet<String> = samples().into_iter().map(|(s, _)| s).collect();
    let steps: BTreeSet<String> = STEP_NAMES.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(files, steps, "events/ must hold exactly one <step>.json per step");
}

#[test]
fn every_sample_parses_as_the_step_it_is_named_after() {
    for (stem, bytes) in samples() {
        let inv = Invocation::from_slice(&bytes).unwrap_or_else(|e| panic!("events/{stem}.json: {e}"));
        assert_eq!(inv.step.name(), stem, "events/{stem}.json");
        let json: Value = serde_json::from_slice(&bytes).expect("JSON");
        let fields: BTreeSet<&str> = json
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        if inv.step.is_engine_step() {
            // What Secrets Manager sends (RotationToken since 2025).
            let engine: BTreeSet<&str> = ["Step", "SecretId", "ClientRequestToken", "RotationToken"].into();
            assert_eq!(fields, engine, "events/{stem}.json");
            assert!(inv.rotation_token.is_some());
        } else {
            // Exactly what keyshift's scheduler puts in a schedule's input.
            assert_eq!(
                inv.to_value(),
                json,
                "events/{stem}.json is not what keyshift schedules"
            );
            let schedule = inv
                .schedule
                .as_ref()
                .expect("a follow-up sample names its schedule");
            let fire_secs: i64 = schedule
                .as_str()
                .rsplit('-')
                .next()
                .and_then(|s| s.parse().ok())
                .expect("the name ends with the fire time");
            let (kind, version, due): (&str, &VersionId, Timestamp) = match &inv.step {
                Step::SwapPending { due } => ("swap", &inv.token, *due),
                Step::RemovePending { due, release } => ("release", release, *due),
                _ => unreachable!("engine steps are handled above"),
            };
            let expected = schedule_name(&inv.secret_id, kind, version, Timestamp::from_secs(fire_secs));
            assert_eq!(schedule, &expected, "events/{stem}.json: schedule name");
            assert!(
                fire_secs >= due.as_secs(),
                "events/{stem}.json fires before it is due"
            );
        }
    }
}

#[test]
fn the_samples_use_one_secret_and_one_rotation() {
    let parsed: Vec<Invocation> = samples()
        .iter()
        .map(|(_, b)| Invocation::from_slice(b).expect("parses"))
        .collect();
    let secrets: BTreeSet<&str> = parsed.iter().map(|i| i.secret_id.as_str()).collect();
    let tokens: BTreeSet<&str> = parsed.iter().map(|i| i.token.as_str()).collect();
    assert_eq!(secrets.len(), 1, "{secrets:?}");
    assert_eq!(tokens.len(), 1, "{tokens:?}");
}

/// `events/operator/` holds one payload per operator request, each parsing as the
/// request it is named after (through the same parsers the handler uses).
#[test]
fn every_operator_sample_parses_as_the_request_it_is_named_after() {
    let dir = events_dir().join("operator");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("events/operator/ exists") {
        let path = entry.expect("a directory entry").path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let json: Value = serde_json::from_slice(&std::fs::read(&path).expect("readable")).expect("JSON");
        if stem == "status" {
            assert!(
                keyshift::event::status_request(&json)
                    .expect("a valid status request")
                    .is_some()
            );
        } else {
            let request = keyshift::event::operator_request(&json)
                .unwrap_or_else(|e| panic!("events/operator/{stem}.json: {e}"))
                .unwrap_or_else(|| panic!("events/operator/{stem}.json is no operator request"));
            assert_eq!(request.operation.name(), stem);
        }
        names.insert(stem);
    }
    let want: BTreeSet<String> = ["status", "emergencyRotate", "cancel", "redrive"]
        .map(String::from)
        .into();
    assert_eq!(names, want);
}
