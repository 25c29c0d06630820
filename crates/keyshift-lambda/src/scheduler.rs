//! Follow-ups through Amazon EventBridge: Scheduler one-time schedules (the default) or
//! classic EventBridge rules, behind [`Scheduler`].

use aws_sdk_eventbridge::types::{RuleState, Target as RuleTarget};
use aws_sdk_scheduler::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, Target,
};
use keyshift::aws_errors::{AwsErrorClass, class_of};
use keyshift::event::ScheduleName;
use keyshift::ports::{Job, Scheduled, Scheduler, SchedulerError};
use keyshift::time::Timestamp;

use keyshift::ports::{Clock, short_error};

use crate::clock::SystemClock;

/// Where follow-ups are delivered and with what permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The rotation function's ARN: every follow-up invokes it.
    pub function_arn: String,
    /// The role EventBridge Scheduler assumes to invoke the function (Scheduler only).
    pub role_arn: String,
    /// An SQS queue for follow-ups that could not be delivered (Scheduler only).
    pub dead_letter_arn: Option<String>,
}

/// EventBridge Scheduler: one `at()` schedule per follow-up, FlexibleTimeWindow OFF,
/// ActionAfterCompletion DELETE, a retry policy, and the dead-letter queue if one is
/// configured.
#[derive(Debug, Clone)]
pub struct EventBridgeScheduler {
    client: aws_sdk_scheduler::Client,
    group: String,
    /// `None`: a reader ([`EventBridgeScheduler::reader`]), which schedules nothing.
    delivery: Option<Delivery>,
}

/// Retries the scheduler makes of a failed delivery before the dead-letter queue.
pub const DELIVERY_RETRIES: i32 = 10;
/// How long the scheduler keeps retrying a failed delivery.
pub const DELIVERY_MAX_AGE_SECS: i32 = 3600;

impl EventBridgeScheduler {
    /// Schedules in `group` (which must exist: the template creates it).
    pub fn new(client: aws_sdk_scheduler::Client, group: impl Into<String>, delivery: Delivery) -> Self {
        EventBridgeScheduler {
            client,
            group: group.into(),
            delivery: Some(delivery),
        }
    }

    /// Schedules in `group` read (and deleted) by name, as the CLI reads them: with no
    /// function and no role to deliver to, [`Scheduler::schedule`] refuses.
    pub fn reader(client: aws_sdk_scheduler::Client, group: impl Into<String>) -> Self {
        EventBridgeScheduler {
            client,
            group: group.into(),
            delivery: None,
        }
    }
}

/// What a reader answers when asked to schedule.
fn read_only() -> SchedulerError {
    SchedulerError {
        retryable: false,
        message: "this scheduler only reads follow-ups: it has no function or role to deliver to".into(),
    }
}

/// The time to name when a schedule was refused as not in the future: the first whole
/// minute at least a minute after `now`.
pub fn retry_fire_time(now: Timestamp) -> Timestamp {
    now.plus(std::time::Duration::from_secs(60))
        .ceil_to(std::time::Duration::from_secs(60))
}

/// `at(yyyy-mm-ddThh:mm:ss)` in UTC, as Scheduler wants it.
pub fn at_expression(t: Timestamp) -> String {
    format!("at({})", t.to_at_expression_time())
}

/// `cron(m h d mon ? yyyy)` for the minute of `t`, as classic rules want it.
pub fn cron_expression(t: Timestamp) -> String {
    let text = t.to_rfc3339();
    let (y, mo, d, h, mi) = (
        &text[0..4],
        &text[5..7],
        &text[8..10],
        &text[11..13],
        &text[14..16],
    );
    let n = |s: &str| s.trim_start_matches('0').to_owned();
    let or_zero = |s: String| if s.is_empty() { "0".to_owned() } else { s };
    format!(
        "cron({} {} {} {} ? {y})",
        or_zero(n(mi)),
        or_zero(n(h)),
        or_zero(n(d)),
        or_zero(n(mo))
    )
}

fn sched_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
    operation: &str,
) -> SchedulerError {
    // Only a moment's failure is retryable: throttling, a server error (Scheduler's
    // InternalServerException, EventBridge's InternalException) or a racing change to the
    // same rule. ValidationException, AccessDenied, a missing group and an exhausted quota
    // (Scheduler's ServiceQuotaExceededException, a bus's 300 rules) fail the same way on
    // every retry until someone acts.
    let retryable = match e {
        SdkError::ServiceError(_) => {
            let code = e.code().unwrap_or_default();
            code.is_empty() || class_of(code).is_some_and(AwsErrorClass::is_passing)
        }
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    };
    let message = e.message().map(str::to_owned).unwrap_or_else(|| short_error(e));
    SchedulerError {
        retryable,
        message: format!("{operation}: {}: {message}", e.code().unwrap_or("no error code")),
    }
}

/// The follow-up event as the JSON text both backends deliver as the target's input.
fn job_input(job: &Job) -> Result<String, SchedulerError> {
    serde_json::to_string(&job.invocation.to_value()).map_err(|_| SchedulerError {
        retryable: false,
        message: "the follow-up event could not be serialised".into(),
    })
}

/// Whether `e` is a service error of `class` (ValidationException, ConflictException,
/// ResourceNotFoundException: the codes Scheduler and EventBridge answer with).
fn is_class<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>, class: AwsErrorClass) -> bool {
    matches!(e, SdkError::ServiceError(_)) && class_of(e.code().unwrap_or_default()) == Some(class)
}

impl Scheduler for EventBridgeScheduler {
    async fn schedule(&self, job: &Job) -> Result<Scheduled, SchedulerError> {
        let delivery = self.delivery.as_ref().ok_or_else(read_only)?;
        let input = job_input(job)?;
        let mut target = Target::builder()
            .arn(&delivery.function_arn)
            .role_arn(&delivery.role_arn)
            .input(input)
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(DELIVERY_RETRIES)
                    .maximum_event_age_in_seconds(DELIVERY_MAX_AGE_SECS)
                    .build(),
            );
        if let Some(dlq) = &delivery.dead_letter_arn {
            target = target.dead_letter_config(DeadLetterConfig::builder().arn(dlq).build());
        }
        let target = target.build().map_err(|e| SchedulerError {
            retryable: false,
            message: format!("schedule target: {e}"),
        })?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| SchedulerError {
                retryable: false,
                message: format!("schedule window: {e}"),
            })?;
        let create = |fire_at: Timestamp| {
            self.client
                .create_schedule()
                .name(job.name.as_str())
                .group_name(&self.group)
                .schedule_expression(at_expression(fire_at))
                .schedule_expression_timezone("UTC")
                .flexible_time_window(window.clone())
                .action_after_completion(ActionAfterCompletion::Delete)
                .target(target.clone())
                .description(format!("keyshift {}", job.invocation.step.name()))
                .send()
        };
        let mut out = create(job.fire_at).await;
        if out
            .as_ref()
            .is_err_and(|e| is_class(e, AwsErrorClass::InvalidParameter))
        {
            // keyshift never names a time in the past (at least ten seconds ahead), but a
            // skewed clock or a slow request can make it one, and EventBridge refuses
            // that. Once more, a minute on: the follow-up re-checks its due on arrival.
            out = create(retry_fire_time(SystemClock.now())).await;
        }
        match out {
            Ok(_) => Ok(Scheduled::Created),
            // AWS answers 409, moto 400: the code is what matters.
            Err(e) if is_class(&e, AwsErrorClass::AlreadyExists) => Ok(Scheduled::AlreadyScheduled),
            Err(e) => Err(sched_error(&e, "CreateSchedule")),
        }
    }

    async fn complete(&self, _name: &ScheduleName) -> Result<(), SchedulerError> {
        // ActionAfterCompletion DELETE removes the schedule once it has run.
        Ok(())
    }
}

/// Classic EventBridge rules: one rule per follow-up with a one-shot `cron(... yyyy)`
/// expression and the function as its only target, removed (targets, then rule) once
/// the follow-up has run. AWS calls scheduled rules legacy and allows 300 per bus; prefer
/// Scheduler where it is available.
#[derive(Debug, Clone)]
pub struct EventBridgeRules {
    client: aws_sdk_eventbridge::Client,
    /// `None`: a reader ([`EventBridgeRules::reader`]), which schedules nothing.
    function_arn: Option<String>,
}

/// The id of the function's target on each rule.
pub const RULE_TARGET_ID: &str = "keyshift";

impl EventBridgeRules {
    /// Rules on the default bus, invoking `function_arn` (which must allow
    /// `events.amazonaws.com` to invoke it for rules named `ks-*`).
    pub fn new(client: aws_sdk_eventbridge::Client, function_arn: impl Into<String>) -> Self {
        EventBridgeRules {
            client,
            function_arn: Some(function_arn.into()),
        }
    }

    /// Rules read (and deleted) by name, as the CLI reads them: with no function to
    /// invoke, [`Scheduler::schedule`] refuses.
    pub fn reader(client: aws_sdk_eventbridge::Client) -> Self {
        EventBridgeRules {
            client,
            function_arn: None,
        }
    }

    async fn delete_rule(&self, name: &str) -> Result<bool, SchedulerError> {
        match self
            .client
            .remove_targets()
            .rule(name)
            .ids(RULE_TARGET_ID)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if is_class(&e, AwsErrorClass::NotFound) => return Ok(false),
            Err(e) => return Err(sched_error(&e, "RemoveTargets")),
        }
        match self.client.delete_rule().name(name).send().await {
            Ok(_) => Ok(true),
            Err(e) if is_class(&e, AwsErrorClass::NotFound) => Ok(false),
            Err(e) => Err(sched_error(&e, "DeleteRule")),
        }
    }
}

impl Scheduler for EventBridgeRules {
    /// A rule is "already scheduled" only when it will deliver: enabled, at the job's
    /// minute, and with the function as target `keyshift` carrying the job's event. A
    /// rule whose PutTargets failed (or whose answer was lost) would otherwise count as
    /// scheduled for ever and never fire; whatever is missing is put back.
    async fn schedule(&self, job: &Job) -> Result<Scheduled, SchedulerError> {
        // Rules fire at the minute's start at the earliest; round up so that the cron
        // minute is never before the intended fire time.
        let function_arn = self.function_arn.as_deref().ok_or_else(read_only)?;
        let expression = cron_expression(job.fire_at.ceil_to(std::time::Duration::from_secs(60)));
        let input = job_input(job)?;
        let mut rule_fits = match self.client.describe_rule().name(job.name.as_str()).send().await {
            Ok(rule) => Some(
                rule.schedule_expression() == Some(expression.as_str())
                    && rule.state() == Some(&RuleState::Enabled),
            ),
            Err(e) if is_class(&e, AwsErrorClass::NotFound) => None,
            Err(e) => return Err(sched_error(&e, "DescribeRule")),
        };
        let target_there = match rule_fits {
            Some(_) => match self
                .client
                .list_targets_by_rule()
                .rule(job.name.as_str())
                .send()
                .await
            {
                Ok(out) => out.targets().iter().any(|t| {
                    t.id() == RULE_TARGET_ID && t.arn() == function_arn && t.input() == Some(input.as_str())
                }),
                // Deleted since DescribeRule (a racing complete): create it again.
                Err(e) if is_class(&e, AwsErrorClass::NotFound) => {
                    rule_fits = None;
                    false
                }
                Err(e) => return Err(sched_error(&e, "ListTargetsByRule")),
            },
            None => false,
        };
        if rule_fits == Some(true) && target_there {
            return Ok(Scheduled::AlreadyScheduled);
        }
        if rule_fits != Some(true) {
            self.client
                .put_rule()
                .name(job.name.as_str())
                .schedule_expression(expression)
                .state(RuleState::Enabled)
                .description(format!("keyshift {}", job.invocation.step.name()))
                .send()
                .await
                .map_err(|e| sched_error(&e, "PutRule"))?;
        }
        if !target_there {
            let target = RuleTarget::builder()
                .id(RULE_TARGET_ID)
                .arn(function_arn)
                .input(input)
                .build()
                .map_err(|e| SchedulerError {
                    retryable: false,
                    message: format!("rule target: {e}"),
                })?;
            let out = self
                .client
                .put_targets()
                .rule(job.name.as_str())
                .targets(target)
                .send()
                .await
                .map_err(|e| sched_error(&e, "PutTargets"))?;
            if out.failed_entry_count() > 0 {
                return Err(SchedulerError {
                    retryable: true,
                    message: format!("PutTargets: {} failed entries", out.failed_entry_count()),
                });
            }
        }
        Ok(Scheduled::Created)
    }

    async fn complete(&self, name: &ScheduleName) -> Result<(), SchedulerError> {
        self.delete_rule(name.as_str()).await.map(|_| ())
    }
}

/// The scheduler backend chosen by configuration.
#[derive(Debug, Clone)]
pub enum Backend {
    /// EventBridge Scheduler (the default).
    Scheduler(EventBridgeScheduler),
    /// Classic EventBridge rules.
    Rules(EventBridgeRules),
}

/// A follow-up's schedule (or rule) as the backend reports it, read by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its name.
    pub name: String,
    /// Its expression (`at(...)` or `cron(...)`).
    pub expression: Option<String>,
    /// Its state (`ENABLED`, ...).
    pub state: Option<String>,
}

impl Backend {
    /// The first of `names` that exists, read by name (GetSchedule or DescribeRule: no
    /// list permission needed). `Ok(None)`: none exists.
    pub async fn lookup(&self, names: &[ScheduleName]) -> Result<Option<Found>, SchedulerError> {
        for name in names {
            let found = match self {
                Backend::Scheduler(s) => {
                    match s
                        .client
                        .get_schedule()
                        .group_name(&s.group)
                        .name(name.as_str())
                        .send()
                        .await
                    {
                        Ok(out) => Some(Found {
                            name: name.as_str().to_owned(),
                            expression: out.schedule_expression().map(str::to_owned),
                            state: out.state().map(|x| x.as_str().to_owned()),
                        }),
                        Err(e) if is_class(&e, AwsErrorClass::NotFound) => None,
                        Err(e) => return Err(sched_error(&e, "GetSchedule")),
                    }
                }
                Backend::Rules(r) => match r.client.describe_rule().name(name.as_str()).send().await {
                    Ok(out) => Some(Found {
                        name: name.as_str().to_owned(),
                        expression: out.schedule_expression().map(str::to_owned),
                        state: out.state().map(|x| x.as_str().to_owned()),
                    }),
                    Err(e) if is_class(&e, AwsErrorClass::NotFound) => None,
                    Err(e) => return Err(sched_error(&e, "DescribeRule")),
                },
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }
}

impl Scheduler for Backend {
    async fn schedule(&self, job: &Job) -> Result<Scheduled, SchedulerError> {
        match self {
            Backend::Scheduler(s) => s.schedule(job).await,
            Backend::Rules(r) => r.schedule(job).await,
        }
    }

    async fn complete(&self, name: &ScheduleName) -> Result<(), SchedulerError> {
        match self {
            Backend::Scheduler(s) => s.complete(name).await,
            Backend::Rules(r) => r.complete(name).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_eventbridge::operation::put_rule::PutRuleError;
    use aws_sdk_scheduler::operation::create_schedule::CreateScheduleError;
    use keyshift::executor::ExecError;

    use super::*;
    use crate::HandlerError;
    use crate::testing::{meta, service_error};

    /// Whether the error is retryable, and the Lambda error type it ends up as.
    fn retryable_and_type(e: SchedulerError) -> (bool, &'static str) {
        (
            e.retryable,
            HandlerError::from(&ExecError::Scheduler(e)).error_type(),
        )
    }

    /// The same for a service's answer `code` to Scheduler's CreateSchedule and to
    /// EventBridge's PutRule.
    fn answers(code: &str) -> [(bool, &'static str); 2] {
        let schedule = CreateScheduleError::generic(meta(code, "the service's message"));
        let rule = PutRuleError::generic(meta(code, "the service's message"));
        [
            retryable_and_type(sched_error(&service_error(schedule), "CreateSchedule")),
            retryable_and_type(sched_error(&service_error(rule), "PutRule")),
        ]
    }

    #[test]
    fn errors_that_cannot_heal_are_not_retryable() {
        let failed = (false, "keyshift.Failed");
        for code in [
            "ValidationException",
            "AccessDeniedException",
            "ResourceNotFoundException",
            // Scheduler's quota of schedules and a bus's 300 rules: retrying the
            // invocation does not free one.
            "ServiceQuotaExceededException",
            "LimitExceededException",
            // A name EventBridge keeps for a managed rule.
            "ManagedRuleException",
        ] {
            assert_eq!(answers(code), [failed; 2], "{code}");
        }
        let e: SdkError<PutRuleError, ()> = SdkError::construction_failure("bad request");
        assert_eq!(retryable_and_type(sched_error(&e, "PutRule")), failed);
    }

    #[test]
    fn passing_failures_are_retryable() {
        let retryable = (true, "keyshift.Retryable");
        for code in [
            "ThrottlingException",
            // Scheduler's and EventBridge's names for a server error, and a racing change.
            "InternalServerException",
            "InternalException",
            "ConcurrentModificationException",
        ] {
            assert_eq!(answers(code), [retryable; 2], "{code}");
        }
        let e: SdkError<PutRuleError, ()> = SdkError::timeout_error("timed out");
        assert_eq!(retryable_and_type(sched_error(&e, "PutRule")), retryable);
    }

    #[test]
    fn a_refused_schedule_is_retried_a_minute_on_at_a_whole_minute() {
        for now in [
            "2026-03-04T05:06:07.890Z",
            "2026-03-04T05:06:00.000Z",
            "2026-03-04T05:06:59.999Z",
        ] {
            let now = Timestamp::parse_rfc3339(now).expect("a timestamp");
            let fire = retry_fire_time(now);
            assert!(
                fire.since(now) >= std::time::Duration::from_secs(60),
                "{now} -> {fire}"
            );
            assert!(
                fire.since(now) < std::time::Duration::from_secs(120),
                "{now} -> {fire}"
            );
            assert_eq!(fire, fire.floor_to(std::time::Duration::from_secs(60)));
        }
    }

    #[test]
    fn expressions_are_what_the_services_parse() {
        let t = Timestamp::parse_rfc3339("2026-03-04T05:06:07.890Z").expect("a timestamp");
        assert_eq!(at_expression(t), "at(2026-03-04T05:06:07)");
        assert_eq!(cron_expression(t), "cron(6 5 4 3 ? 2026)");
        let midnight = Timestamp::parse_rfc3339("2027-01-01T00:00:00.000Z").expect("a timestamp");
        assert_eq!(cron_expression(midnight), "cron(0 0 1 1 ? 2027)");
    }
}

#[cfg(test)]
mod readers {
    use keyshift::event::{Invocation, Step};
    use keyshift::ports::schedule_name;
    use keyshift::{SecretId, Timestamp, VersionId};

    use super::*;

    fn job() -> Job {
        let secret = SecretId::new("arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf");
        let token = VersionId::new("0b6b0e4e-5d49-4bd5-9c4f-6a1f5c8e2d31");
        let due = Timestamp::from_millis(1_700_000_000_000);
        let name = schedule_name(&secret, "swap", &token, due);
        Job {
            name: name.clone(),
            fire_at: due,
            invocation: Invocation {
                step: Step::SwapPending { due },
                secret_id: secret,
                token,
                rotation_token: None,
                schedule: Some(name),
            },
        }
    }

    /// Clients with no endpoint and no credentials: a reader must refuse before any call.
    fn sdk() -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build()
    }

    #[tokio::test]
    async fn a_reader_schedules_nothing_and_says_so() {
        let scheduler = EventBridgeScheduler::reader(aws_sdk_scheduler::Client::new(&sdk()), "keyshift");
        let rules = EventBridgeRules::reader(aws_sdk_eventbridge::Client::new(&sdk()));
        for e in [
            scheduler.schedule(&job()).await.expect_err("a reader refuses"),
            rules.schedule(&job()).await.expect_err("a reader refuses"),
        ] {
            assert!(!e.retryable, "{e:?}");
            assert!(e.message.contains("only reads"), "{e:?}");
        }
    }
}
