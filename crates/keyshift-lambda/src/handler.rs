//! One invocation: parse, configure, execute, report.

use std::time::Duration;

use aws_config::SdkConfig;
use keyshift::Executor;
use keyshift::SecretId;
use keyshift::decide::Outcome;
use keyshift::decide::Rejection;
use keyshift::event::{Operation, OperatorRequest};
use keyshift::executor::{ExecError, Report, is_watchdog};
use keyshift::ports::Clock;
use keyshift::ports::{Detail, SecretStore, StoreErrorKind};
use keyshift::{Invocation, Policy};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::clock::SystemClock;
use crate::config::{Config, GAP_TAG, SchedulerConfig};
use crate::lifecycle::Lifecycle;
use crate::metrics;
use crate::scheduler::{Backend, Delivery, EventBridgeRules, EventBridgeScheduler};
use crate::secrets::SdkSecretStore;
use crate::target::StockTarget;
use keyshift::ports::{Target, TargetErrorKind};

/// Time kept free at the end of an invocation for the last calls after an inline wait.
pub const DEADLINE_HEADROOM: Duration = Duration::from_secs(30);

/// A failed invocation as the Lambda runtime reports it: the variant (its `errorType`)
/// tells a bad request (retrying will not help) from a bad moment (it may). The message
/// says what went wrong; it never holds a secret value or a RotationToken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// `keyshift.InvalidEvent`: the payload is not an event keyshift takes.
    #[error("keyshift.InvalidEvent: {0}")]
    InvalidEvent(String),
    /// `keyshift.Rejected`: the core refused the request (a token that is not the
    /// rotation's, a secret that does not exist, ...).
    #[error("keyshift.Rejected: {0}")]
    Rejected(String),
    /// `keyshift.Configuration`: the function, the secret's tags or the target are
    /// misconfigured; an operator must act.
    #[error("keyshift.Configuration: {0}")]
    Configuration(String),
    /// `keyshift.Retryable`: a passing failure (throttling, a timeout, a server error).
    #[error("keyshift.Retryable: {0}")]
    Retryable(String),
    /// `keyshift.Failed`: anything else; the same invocation fails the same way.
    #[error("keyshift.Failed: {0}")]
    Failed(String),
}

impl HandlerError {
    /// The Lambda `errorType`: `keyshift.InvalidEvent`, `keyshift.Rejected`,
    /// `keyshift.Configuration`, `keyshift.Retryable` or `keyshift.Failed`.
    pub const fn error_type(&self) -> &'static str {
        match self {
            HandlerError::InvalidEvent(_) => "keyshift.InvalidEvent",
            HandlerError::Rejected(_) => "keyshift.Rejected",
            HandlerError::Configuration(_) => "keyshift.Configuration",
            HandlerError::Retryable(_) => "keyshift.Retryable",
            HandlerError::Failed(_) => "keyshift.Failed",
        }
    }

    /// What went wrong (the Lambda `errorMessage`).
    pub fn message(&self) -> &str {
        match self {
            HandlerError::InvalidEvent(m)
            | HandlerError::Rejected(m)
            | HandlerError::Configuration(m)
            | HandlerError::Retryable(m)
            | HandlerError::Failed(m) => m,
        }
    }
}

/// The one mapping to what the Lambda runtime reports.
impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().to_owned(),
            error_message: match e {
                HandlerError::InvalidEvent(m)
                | HandlerError::Rejected(m)
                | HandlerError::Configuration(m)
                | HandlerError::Retryable(m)
                | HandlerError::Failed(m) => m,
            },
        }
    }
}

impl From<&ExecError> for HandlerError {
    fn from(e: &ExecError) -> Self {
        let message = e.to_string();
        match e {
            ExecError::Rejected(_) => HandlerError::Rejected(message),
            ExecError::Configuration(_) => HandlerError::Configuration(message),
            ExecError::Target(t) if t.kind == TargetErrorKind::Configuration => {
                HandlerError::Configuration(message)
            }
            e if e.is_retryable() => HandlerError::Retryable(message),
            _ => HandlerError::Failed(message),
        }
    }
}

/// The rotation function: configuration, SDK clients and the target, built once per
/// container. `T` is the system the secret is for ([`StockTarget`] unless you bring your
/// own).
#[derive(Debug, Clone)]
pub struct Function<T = StockTarget> {
    config: Config,
    store: SdkSecretStore,
    target: T,
    scheduler: aws_sdk_scheduler::Client,
    rules: aws_sdk_eventbridge::Client,
    lifecycle: Option<Lifecycle>,
}

impl Function<StockTarget> {
    /// The stock function: values of the kind each secret's tags ask for.
    pub fn new(config: Config, sdk: &SdkConfig) -> Self {
        let target = StockTarget::with_postgres(
            aws_sdk_secretsmanager::Client::new(sdk),
            config.default_kind,
            config.password_length,
            config.postgres.clone(),
        );
        Function::with_target(config, sdk, target)
    }
}

impl<T: Target> Function<T> {
    /// A function for your own target; builds the clients from `sdk` (region,
    /// credentials, endpoint).
    pub fn with_target(config: Config, sdk: &SdkConfig, target: T) -> Self {
        let sm = aws_sdk_secretsmanager::Client::new(sdk);
        let events = aws_sdk_eventbridge::Client::new(sdk);
        Function {
            store: SdkSecretStore::new(sm, config.created_dates).with_replica_reads(sdk.clone()),
            target,
            scheduler: aws_sdk_scheduler::Client::new(sdk),
            lifecycle: config
                .event_bus
                .as_ref()
                .map(|bus| Lifecycle::new(events.clone(), bus)),
            rules: events,
            config,
        }
    }

    /// `{"Step": "status", "SecretId": ...}`: the rotation's phase, which version holds
    /// which label, what consumers accept and use, the next move with its due time and
    /// expected follow-up schedule, and whether anything looks stuck
    /// ([`keyshift::status`]). Reads one DescribeSecret and the version dates; changes
    /// nothing; T is the secret's own (its `keyshift:gap-seconds` tag).
    pub async fn status(&self, secret: &SecretId) -> Result<Value, HandlerError> {
        let state = match self.store.describe(secret, Detail::Full).await {
            Ok(s) => s,
            Err(e) if matches!(e.kind, StoreErrorKind::NotFound) => {
                return Err(HandlerError::from(&ExecError::Rejected(
                    Rejection::SecretNotFound,
                )));
            }
            Err(e) => return Err(HandlerError::from(&ExecError::Store(e))),
        };
        let mut policy = self.config.policy;
        if let Some(value) = state.tags.get(GAP_TAG) {
            let gap = value
                .trim()
                .parse::<u64>()
                .ok()
                .and_then(|secs| policy.with_gap(Duration::from_secs(secs)).ok())
                .ok_or_else(|| {
                    HandlerError::Configuration(format!(
                        "secret tag {GAP_TAG} must be a whole number of seconds T allows"
                    ))
                })?;
            policy = gap;
        }
        let report = keyshift::status::status(&state, &policy, SystemClock.now());
        info!(
            phase = report.phase.as_str(),
            stuck = report.stuck.is_some(),
            "status"
        );
        let mut json = report.to_json();
        json["secret"] = Value::from(secret.as_str());
        json["expected_schedule"] = report
            .schedule_name(secret)
            .map_or(Value::Null, |n| Value::from(n.as_str()));
        // The expected follow-up, read by name: at its expected fire minute, or one
        // precision either side (the fire time depends on when it was scheduled).
        if let Some(expected) = report.next.as_ref().and_then(|n| n.schedule.as_ref()) {
            let mut names = vec![expected.name(secret)];
            for fire_at in [
                expected.fire_at.minus(policy.precision),
                expected.fire_at.plus(policy.precision),
                expected.fire_at.plus(Duration::from_secs(1)),
            ] {
                let mut other = expected.clone();
                other.fire_at = fire_at;
                names.push(other.name(secret));
            }
            json["schedule"] = match self.backend(String::new()).lookup(&names).await {
                Ok(Some(found)) => json!({
                    "name": found.name,
                    "expression": found.expression,
                    "state": found.state,
                }),
                Ok(None) => {
                    if let Some(notes) = json["notes"].as_array_mut() {
                        notes.push(Value::from(
                            "the expected follow-up schedule was not found (delivered already, lost, or not created yet): `redrive` runs the next move now",
                        ));
                    }
                    Value::Null
                }
                Err(e) => json!({ "error": e.to_string() }),
            };
        }
        Ok(json)
    }

    /// Handles one payload. `context_arn` is the ARN the invocation context reports (the
    /// follow-ups' target unless configured); `time_left` is how long the runtime will
    /// let this invocation run, which caps the inline budget.
    ///
    /// Every invocation ends with its metric lines on standard output ([`metrics`]).
    pub async fn handle(
        &self,
        payload: &Value,
        context_arn: &str,
        time_left: Option<Duration>,
    ) -> Result<Value, HandlerError> {
        let started = std::time::Instant::now();
        let mut seen = Seen {
            step: "invalid",
            ..Seen::default()
        };
        let result = self.dispatch(payload, context_arn, time_left, &mut seen).await;
        if let Some(namespace) = &self.config.metrics_namespace {
            let observed = metrics::Observed {
                step: seen.step,
                secret: &seen.secret,
                report: seen.report.as_ref(),
                error_type: result.as_ref().err().map(HandlerError::error_type),
                duration: started.elapsed(),
                watchdog: seen.watchdog,
            };
            for line in metrics::lines(namespace, SystemClock.now(), &observed) {
                println!("{line}");
            }
        }
        result
    }

    async fn dispatch(
        &self,
        payload: &Value,
        context_arn: &str,
        time_left: Option<Duration>,
        seen: &mut Seen,
    ) -> Result<Value, HandlerError> {
        let invalid = |e: keyshift::event::EventError| HandlerError::InvalidEvent(e.to_string());
        if let Some(secret) = keyshift::event::status_request(payload).map_err(invalid)? {
            seen.step = "status";
            seen.secret = secret.as_str().to_owned();
            return self.status(&secret).await;
        }
        if let Some(request) = keyshift::event::operator_request(payload).map_err(invalid)? {
            seen.step = request.operation.name();
            seen.secret = request.secret_id.as_str().to_owned();
            return self.operate(&request, context_arn, time_left, seen).await;
        }
        let invocation = Invocation::from_value(payload).map_err(invalid)?;
        seen.step = invocation.step.name();
        seen.secret = invocation.secret_id.as_str().to_owned();
        seen.watchdog = is_watchdog(invocation.schedule.as_ref());
        let executor = self.executor(context_arn, time_left);
        let started = SystemClock.now();
        let report = executor
            .handle(&invocation)
            .await
            .map_err(|e| HandlerError::from(&e))?;
        if seen.watchdog && metrics::watchdog_found_work(&report) {
            warn!(
                outcome = %report.last(),
                "watchdog: the rotation had not finished 2T plus the watchdog margin after it began; re-driven"
            );
        }
        self.publish(&invocation, &report).await;
        let out = answer(invocation.step.name(), &report, started);
        seen.report = Some(report);
        Ok(out)
    }

    /// An operator's `emergencyRotate`, `cancel` or `redrive` ([`keyshift::operate`]):
    /// resolved against the labels, run like any invocation, answered with what it did
    /// and the status report after it.
    async fn operate(
        &self,
        request: &OperatorRequest,
        context_arn: &str,
        time_left: Option<Duration>,
        seen: &mut Seen,
    ) -> Result<Value, HandlerError> {
        let executor = self.executor(context_arn, time_left);
        let started = SystemClock.now();
        let (report, invocation) = executor
            .operate(request)
            .await
            .map_err(|e| HandlerError::from(&e))?;
        let mut out = match &invocation {
            Some(inv) => {
                self.publish(inv, &report).await;
                let mut out = answer(request.operation.name(), &report, started);
                out["token"] = Value::from(inv.token.as_str());
                out
            }
            // Nothing to do: the report has no actions, no schedule and no continuation.
            None => answer(request.operation.name(), &report, started),
        };
        if let Operation::EmergencyRotate { reason, .. } = &request.operation {
            out["reason"] = Value::from(reason.as_str());
        }
        let outcomes = std::iter::once(&report.outcome).chain(report.continued.iter());
        for outcome in outcomes {
            if let Outcome::EmergencyDone {
                new_version,
                compromised,
                accepted_until,
            } = outcome
            {
                out["newVersion"] = Value::from(new_version.as_str());
                out["compromisedVersion"] = Value::from(compromised.as_str());
                out["acceptedUntil"] = accepted_until.map_or(Value::Null, |t| Value::from(t.to_rfc3339()));
            }
        }
        // Where the rotation stands now, for the operator (a read; a failure to read it
        // does not fail what was done).
        out["status"] = match self.status(&request.secret_id).await {
            Ok(status) => status,
            Err(e) => json!({ "error": e.message() }),
        };
        seen.report = Some(report);
        Ok(out)
    }

    /// Lifecycle events for what an invocation did, when a bus is configured; a failure
    /// is logged, never fails the invocation.
    async fn publish(&self, invocation: &Invocation, report: &Report) {
        if let Some(lifecycle) = &self.lifecycle {
            let mut outcomes = vec![report.outcome.clone()];
            outcomes.extend(report.continued.iter().cloned());
            match lifecycle
                .publish(&invocation.secret_id, &invocation.token, &outcomes)
                .await
            {
                Ok(n) => info!(events = n, "lifecycle events published"),
                Err(e) => warn!(error = %e, "lifecycle events not published"),
            }
        }
    }

    /// The executor for one invocation: the configured backend, and an inline budget
    /// capped by the time the runtime leaves this invocation.
    fn executor(
        &self,
        context_arn: &str,
        time_left: Option<Duration>,
    ) -> Executor<SdkSecretStore, Backend, SystemClock, &T> {
        // T may be overridden per secret by a tag, read with the labels (no extra call).
        let mut policy: Policy = self.config.policy;
        if let Some(left) = time_left {
            policy.inline_budget = policy.inline_budget.min(left.saturating_sub(DEADLINE_HEADROOM));
        }
        let function_arn = self
            .config
            .function_arn
            .clone()
            .unwrap_or_else(|| context_arn.to_owned());
        let backend = self.backend(function_arn);
        let mut executor = Executor::new(self.store.clone(), backend, SystemClock, &self.target, policy);
        executor.gap_tag = Some(GAP_TAG.to_owned());
        executor
    }

    /// The configured scheduler backend, delivering to `function_arn`.
    fn backend(&self, function_arn: String) -> Backend {
        match &self.config.backend {
            SchedulerConfig::Scheduler { group, role_arn } => Backend::Scheduler(EventBridgeScheduler::new(
                self.scheduler.clone(),
                group,
                Delivery {
                    function_arn,
                    role_arn: role_arn.clone(),
                    dead_letter_arn: self.config.dead_letter_arn.clone(),
                },
            )),
            SchedulerConfig::Rules => Backend::Rules(EventBridgeRules::new(self.rules.clone(), function_arn)),
        }
    }
}

/// What one invocation was, for its metric lines.
#[derive(Debug, Default)]
struct Seen {
    step: &'static str,
    secret: String,
    report: Option<Report>,
    watchdog: bool,
}

/// The answer to an invocation: what it did, in words, and what it scheduled.
fn answer(step: &str, report: &Report, started: keyshift::Timestamp) -> Value {
    json!({
        "step": step,
        "outcome": report.outcome.to_string(),
        "continued": report.continued.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "scheduled": report.scheduled.iter().map(|j| json!({
            "name": j.name.as_str(),
            "step": j.invocation.step.name(),
            "fireAt": j.fire_at.to_rfc3339(),
        })).collect::<Vec<_>>(),
        "attempts": report.attempts,
        "startedAt": started.to_rfc3339(),
        "gapSeconds": report.gap.as_secs(),
        "final": report.last().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use keyshift::ports::{StoreError, StoreErrorKind, TargetError};

    use super::*;

    #[test]
    fn each_error_type_keeps_its_name_and_message_on_the_wire() {
        for (e, error_type) in [
            (HandlerError::InvalidEvent("m".into()), "keyshift.InvalidEvent"),
            (HandlerError::Rejected("m".into()), "keyshift.Rejected"),
            (HandlerError::Configuration("m".into()), "keyshift.Configuration"),
            (HandlerError::Retryable("m".into()), "keyshift.Retryable"),
            (HandlerError::Failed("m".into()), "keyshift.Failed"),
        ] {
            assert_eq!(e.error_type(), error_type);
            assert_eq!(e.message(), "m");
            assert_eq!(e.to_string(), format!("{error_type}: m"));
            let d = lambda_runtime::Diagnostic::from(e);
            assert_eq!(
                (d.error_type.as_str(), d.error_message.as_str()),
                (error_type, "m")
            );
        }
    }

    #[test]
    fn executor_errors_map_to_their_error_type() {
        let cases = [
            (
                ExecError::Rejected(Rejection::RotationDisabled),
                "keyshift.Rejected",
            ),
            (
                ExecError::Configuration("a bad tag".into()),
                "keyshift.Configuration",
            ),
            (
                ExecError::Target(TargetError::configuration("no master secret")),
                "keyshift.Configuration",
            ),
            (
                ExecError::Store(StoreError::new(StoreErrorKind::Throttled, "slow down")),
                "keyshift.Retryable",
            ),
            (
                ExecError::Store(StoreError::new(StoreErrorKind::AccessDenied, "no")),
                "keyshift.Failed",
            ),
        ];
        for (e, error_type) in cases {
            let h = HandlerError::from(&e);
            assert_eq!(h.error_type(), error_type, "{e}");
            assert_eq!(h.message(), e.to_string());
        }
    }
}
