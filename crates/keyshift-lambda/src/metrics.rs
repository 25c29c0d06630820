//! CloudWatch metrics as Embedded Metric Format (EMF) lines: JSON objects the function
//! prints to standard output, which CloudWatch Logs turns into metrics. No API call, no
//! extra permission, nothing to fail a rotation over.
//!
//! | metric | unit | dimensions | when |
//! |---|---|---|---|
//! | `Invocations` | Count | `Step`, `Outcome` | every invocation; `Outcome` is the outcome's short name ([`Outcome::name`]) or the error type (`keyshift.Rejected`, ...) |
//! | `DurationMs` | Milliseconds | `Step`, `Outcome` | every invocation |
//! | `GapSeconds`, `GapOvershootSeconds` | Seconds | `Gap` (`first`, `second`) | a gap ended: its length, and how much longer than T it was |
//! | `RotationSeconds` | Seconds | none | a rotation ended (its release): from keyshift's copy to the release |
//! | `EmergencyRotations` | Count | none | an emergency rotation moved AWSCURRENT |
//! | `RotationsStuck` | Count | none | the watchdog found a rotation unfinished 2T plus its margin after it began, and re-drove it |
//!
//! Every line also carries `SecretId` (a name or ARN, never a value) as a plain property,
//! so CloudWatch Logs Insights can find the secret behind a data point without making it
//! a dimension (one metric per secret would cost one metric per secret).

use std::time::Duration;

use keyshift::Timestamp;
use keyshift::decide::Outcome;
use keyshift::executor::{Measured, Report};
use serde_json::{Map, Value, json};

/// `KEYSHIFT_METRICS_NAMESPACE`: the CloudWatch namespace (default `keyshift`); `off`
/// prints no metric lines.
pub const NAMESPACE_ENV: &str = "KEYSHIFT_METRICS_NAMESPACE";
/// The default namespace.
pub const DEFAULT_NAMESPACE: &str = "keyshift";

/// What one invocation did, as the metrics see it.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    /// The step's wire name.
    pub step: &'a str,
    /// The secret (name or ARN as asked).
    pub secret: &'a str,
    /// The report, when the invocation succeeded.
    pub report: Option<&'a Report>,
    /// The error type, when it failed.
    pub error_type: Option<&'a str>,
    /// How long it ran.
    pub duration: Duration,
    /// Whether a watchdog delivered it.
    pub watchdog: bool,
}

/// The EMF lines for one invocation, in `namespace`, stamped `now`.
pub fn lines(namespace: &str, now: Timestamp, o: &Observed<'_>) -> Vec<Value> {
    let outcome = match (o.report, o.error_type) {
        (Some(r), _) => r.last().name(),
        (None, Some(e)) => e,
        (None, None) => "unknown",
    };
    let mut out = vec![line(
        namespace,
        now,
        &[&["Step", "Outcome"]],
        &[
            ("Invocations", "Count", 1.0),
            ("DurationMs", "Milliseconds", o.duration.as_millis() as f64),
        ],
        &[("Step", o.step), ("Outcome", outcome), ("SecretId", o.secret)],
    )];
    let Some(report) = o.report else {
        return out;
    };
    let t = report.gap.as_secs_f64();
    for m in &report.measured {
        match m {
            Measured::FirstGap(d) | Measured::SecondGap(d) => {
                let gap = if matches!(m, Measured::FirstGap(_)) {
                    "first"
                } else {
                    "second"
                };
                let secs = d.as_secs_f64();
                out.push(line(
                    namespace,
                    now,
                    &[&["Gap"]],
                    &[
                        ("GapSeconds", "Seconds", round3(secs)),
                        ("GapOvershootSeconds", "Seconds", round3(secs - t)),
                    ],
                    &[("Gap", gap), ("SecretId", o.secret)],
                ));
            }
            Measured::Rotation(d) => out.push(line(
                namespace,
                now,
                &[&[]],
                &[("RotationSeconds", "Seconds", round3(d.as_secs_f64()))],
                &[("SecretId", o.secret)],
            )),
        }
    }
    let outcomes = || std::iter::once(&report.outcome).chain(report.continued.iter());
    if outcomes().any(|x| matches!(x, Outcome::EmergencyCut { .. })) {
        out.push(line(
            namespace,
            now,
            &[&[]],
            &[("EmergencyRotations", "Count", 1.0)],
            &[("SecretId", o.secret)],
        ));
    }
    if o.watchdog && watchdog_found_work(report) {
        out.push(line(
            namespace,
            now,
            &[&[]],
            &[("RotationsStuck", "Count", 1.0)],
            &[("SecretId", o.secret)],
        ));
    }
    out
}

/// Whether a watchdog's arrival found its rotation unfinished: it had anything to do
/// (a copy, a swap, a release, a label left behind) or had to schedule a next step.
/// A finished rotation is "already current" with nothing applied, or was superseded,
/// cancelled, abandoned or deleted since.
pub fn watchdog_found_work(report: &Report) -> bool {
    let ended = |o: &Outcome| {
        matches!(
            o,
            Outcome::AlreadyCurrent
                | Outcome::AlreadyReleased
                | Outcome::Superseded { .. }
                | Outcome::Vanished { .. }
                | Outcome::SecretGone
                | Outcome::Cancelled { .. }
                | Outcome::Abandoned
        )
    };
    !(ended(report.last()) && report.applied.is_empty() && report.scheduled.is_empty())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn line(
    namespace: &str,
    now: Timestamp,
    dimensions: &[&[&str]],
    metrics: &[(&str, &str, f64)],
    properties: &[(&str, &str)],
) -> Value {
    let mut m = Map::new();
    m.insert(
        "_aws".into(),
        json!({
            "Timestamp": now.as_millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimensions,
                "Metrics": metrics.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    for (name, _, value) in metrics {
        m.insert((*name).into(), json!(value));
    }
    for (name, value) in properties {
        m.insert((*name).into(), Value::from(*value));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyshift::VersionId;

    fn report(outcome: Outcome, continued: Vec<Outcome>, measured: Vec<Measured>) -> Report {
        Report {
            outcome,
            continued,
            applied: Vec::new(),
            scheduled: Vec::new(),
            attempts: 1,
            gap: Duration::from_secs(300),
            measured,
        }
    }

    fn observed<'a>(report: Option<&'a Report>, error_type: Option<&'a str>, watchdog: bool) -> Observed<'a> {
        Observed {
            step: "swapPending",
            secret: "prod/api-key",
            report,
            error_type,
            duration: Duration::from_millis(1234),
            watchdog,
        }
    }

    /// Every metric a line declares is a number in the line, under the namespace, and
    /// every dimension it names is a property of the line (the EMF rules CloudWatch
    /// checks before it extracts anything).
    fn valid_emf(line: &Value) {
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "keyshift");
        assert!(line["_aws"]["Timestamp"].is_i64());
        for m in directive["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(line[name].is_number(), "{name} in {line}");
        }
        for set in directive["Dimensions"].as_array().unwrap() {
            for d in set.as_array().unwrap() {
                assert!(line[d.as_str().unwrap()].is_string(), "{d} in {line}");
            }
        }
    }

    #[test]
    fn every_invocation_counts_its_step_and_outcome() {
        let r = report(
            Outcome::Rescheduled {
                due: Timestamp::from_secs(0),
            },
            vec![],
            vec![],
        );
        let out = lines(
            "keyshift",
            Timestamp::from_secs(1),
            &observed(Some(&r), None, false),
        );
        assert_eq!(out.len(), 1);
        valid_emf(&out[0]);
        assert_eq!(out[0]["Outcome"], "rescheduled");
        assert_eq!(out[0]["Invocations"], 1.0);
        assert_eq!(out[0]["DurationMs"], 1234.0);
        let failed = lines(
            "keyshift",
            Timestamp::from_secs(1),
            &observed(None, Some("keyshift.Rejected"), false),
        );
        assert_eq!(failed[0]["Outcome"], "keyshift.Rejected");
    }

    #[test]
    fn gaps_rotations_and_emergencies_get_lines_of_their_own() {
        let e = VersionId::new("e".repeat(32));
        let r = report(
            Outcome::Swapped,
            vec![
                Outcome::Released,
                Outcome::EmergencyCut {
                    new_version: e.clone(),
                    compromised: e,
                },
            ],
            vec![
                Measured::FirstGap(Duration::from_millis(301_500)),
                Measured::SecondGap(Duration::from_secs(300)),
                Measured::Rotation(Duration::from_secs(660)),
            ],
        );
        let out = lines(
            "keyshift",
            Timestamp::from_secs(1),
            &observed(Some(&r), None, false),
        );
        assert_eq!(out.len(), 5);
        out.iter().for_each(valid_emf);
        assert_eq!(out[1]["Gap"], "first");
        assert_eq!(out[1]["GapSeconds"], 301.5);
        assert_eq!(out[1]["GapOvershootSeconds"], 1.5);
        assert_eq!(out[2]["Gap"], "second");
        assert_eq!(out[2]["GapOvershootSeconds"], 0.0);
        assert_eq!(out[3]["RotationSeconds"], 660.0);
        assert_eq!(out[4]["EmergencyRotations"], 1.0);
        assert!(out.iter().all(|l| l["SecretId"] == "prod/api-key"));
    }

    #[test]
    fn a_watchdog_reports_stuck_only_when_it_found_work() {
        let done = report(Outcome::AlreadyCurrent, vec![], vec![]);
        let out = lines(
            "keyshift",
            Timestamp::from_secs(1),
            &observed(Some(&done), None, true),
        );
        assert!(out.iter().all(|l| l.get("RotationsStuck").is_none()));
        let healed = report(Outcome::Tidied, vec![Outcome::Released], vec![]);
        let out = lines(
            "keyshift",
            Timestamp::from_secs(1),
            &observed(Some(&healed), None, true),
        );
        assert_eq!(out.last().unwrap()["RotationsStuck"], 1.0);
        // The same work delivered by an ordinary follow-up is not "stuck".
        let out = lines(
            "keyshift",
            Timestamp::from_secs(1),
            &observed(Some(&healed), None, false),
        );
        assert!(out.iter().all(|l| l.get("RotationsStuck").is_none()));
    }
}
