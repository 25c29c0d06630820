//! The follow-up schedule a status report expects, read by name, as the function's own
//! status payload reads it.

use std::time::Duration;

use aws_config::SdkConfig;
use keyshift::SecretId;
use keyshift::event::ScheduleName;
use keyshift::status::Status;
/// The schedule group when `KEYSHIFT_SCHEDULE_GROUP` is not set: the function's default.
pub use keyshift_lambda::config::DEFAULT_GROUP;
use keyshift_lambda::config::{BACKEND, GROUP};
use keyshift_lambda::scheduler::{Backend, EventBridgeRules, EventBridgeScheduler, Found};
use serde_json::{Value, json};

use crate::exit::{CliError, Exit};

/// What a read of the expected schedule found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No schedule is expected (no rotation, or a move no schedule carries).
    NotExpected,
    /// It exists.
    Found(Found),
    /// None of the names it may have exists: delivered already, lost, or not created yet.
    Missing,
    /// It could not be read (for instance no `scheduler:GetSchedule` permission).
    Error(String),
}

/// The note the function adds when the expected schedule is missing.
pub const MISSING_NOTE: &str = "the expected follow-up schedule was not found (delivered already, lost, or not created yet): `redrive` runs the next move now";

impl Lookup {
    /// The `schedule` field of the status JSON: absent when none is expected, else the
    /// schedule (`name`, `expression`, `state`), null when missing, or `{"error"}`.
    pub fn to_json(&self) -> Option<Value> {
        match self {
            Lookup::NotExpected => None,
            Lookup::Found(f) => Some(json!({
                "name": f.name,
                "expression": f.expression,
                "state": f.state,
            })),
            Lookup::Missing => Some(Value::Null),
            Lookup::Error(e) => Some(json!({ "error": e })),
        }
    }

    /// Adds the `schedule` field (and the note when it is missing) to the status JSON.
    pub fn add_to(&self, status: &mut Value) {
        if let Some(v) = self.to_json() {
            status["schedule"] = v;
        }
        if *self == Lookup::Missing {
            if let Some(notes) = status["notes"].as_array_mut() {
                notes.push(Value::from(MISSING_NOTE));
            }
        }
    }
}

/// The backend the function schedules with, from the variables its configuration reads:
/// `KEYSHIFT_SCHEDULER` (`scheduler`, the default, or `rules`) and
/// `KEYSHIFT_SCHEDULE_GROUP` (default `keyshift`).
pub fn backend(sdk: &SdkConfig, var: impl Fn(&str) -> Option<String>) -> Result<Backend, CliError> {
    let get = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    match get(BACKEND).as_deref() {
        // Only read by name here: nothing is scheduled, so no function and no role.
        None | Some("scheduler") => Ok(Backend::Scheduler(EventBridgeScheduler::reader(
            aws_sdk_scheduler::Client::new(sdk),
            get(GROUP).unwrap_or_else(|| DEFAULT_GROUP.to_owned()),
        ))),
        Some("rules") => Ok(Backend::Rules(EventBridgeRules::reader(
            aws_sdk_eventbridge::Client::new(sdk),
        ))),
        Some(other) => Err(CliError::new(
            Exit::Usage,
            format!("{BACKEND} must be `scheduler` or `rules`, got {other:?}"),
        )),
    }
}

/// The names the expected schedule may have, as the function looks for them: at its
/// expected fire minute, one precision either side (the fire time depends on when it was
/// scheduled), and one second later (a job that collided with the one delivering it).
pub fn candidate_names(report: &Status, secret: &SecretId, precision: Duration) -> Vec<ScheduleName> {
    let Some(expected) = report.next.as_ref().and_then(|n| n.schedule.as_ref()) else {
        return Vec::new();
    };
    let mut names = vec![expected.name(secret)];
    for fire_at in [
        expected.fire_at.minus(precision),
        expected.fire_at.plus(precision),
        expected.fire_at.plus(Duration::from_secs(1)),
    ] {
        let mut other = expected.clone();
        other.fire_at = fire_at;
        names.push(other.name(secret));
    }
    names
}

/// Reads the expected schedule by name (GetSchedule or DescribeRule; no list permission
/// needed). A failure to read is reported in the result, never fails the status.
pub async fn lookup(backend: &Backend, report: &Status, secret: &SecretId, precision: Duration) -> Lookup {
    let names = candidate_names(report, secret, precision);
    if names.is_empty() {
        return Lookup::NotExpected;
    }
    match backend.lookup(&names).await {
        Ok(Some(found)) => Lookup::Found(found),
        Ok(None) => Lookup::Missing,
        Err(e) => Lookup::Error(e.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_is_the_functions() {
        let mut status = json!({"notes": []});
        Lookup::NotExpected.add_to(&mut status);
        assert_eq!(status, json!({"notes": []}));
        Lookup::Missing.add_to(&mut status);
        assert_eq!(status, json!({"notes": [MISSING_NOTE], "schedule": null}));
        let found = Lookup::Found(Found {
            name: "ks-x".into(),
            expression: Some("at(2027-01-15T08:12:00)".into()),
            state: Some("ENABLED".into()),
        });
        assert_eq!(
            found.to_json(),
            Some(json!({"name": "ks-x", "expression": "at(2027-01-15T08:12:00)", "state": "ENABLED"}))
        );
        assert_eq!(
            Lookup::Error("GetSchedule: AccessDeniedException".into()).to_json(),
            Some(json!({"error": "GetSchedule: AccessDeniedException"}))
        );
    }

    #[tokio::test]
    async fn the_backend_follows_the_functions_variables() {
        let sdk = aws_config::SdkConfig::builder().build();
        let none = |_: &str| None;
        assert!(matches!(backend(&sdk, none), Ok(Backend::Scheduler(_))));
        let rules = |k: &str| (k == BACKEND).then(|| "rules".to_owned());
        assert!(matches!(backend(&sdk, rules), Ok(Backend::Rules(_))));
        let bad = |k: &str| (k == BACKEND).then(|| "cron".to_owned());
        let e = backend(&sdk, bad).expect_err("refused");
        assert_eq!(e.exit, Exit::Usage);
        assert!(e.message.contains(BACKEND), "{e}");
    }
}
