//! Configuration from environment variables, validated once at cold start, and the
//! per-secret overrides read from the secret's tags.

use std::fmt;
use std::time::Duration;

use keyshift::Policy;

use keyshift_postgres::PgOptions;

use crate::kinds::{KindName, ValueKind};
use crate::secrets::CreatedDates;

/// `KEYSHIFT_GAP_SECONDS`: T, the propagation gap (required).
pub const GAP: &str = "KEYSHIFT_GAP_SECONDS";
/// `KEYSHIFT_INLINE_BUDGET_SECONDS`: how long one invocation may wait inline (default 600).
pub const INLINE_BUDGET: &str = "KEYSHIFT_INLINE_BUDGET_SECONDS";
/// `KEYSHIFT_SCHEDULER`: `scheduler` (EventBridge Scheduler, default) or `rules`.
pub const BACKEND: &str = "KEYSHIFT_SCHEDULER";
/// `KEYSHIFT_SCHEDULE_GROUP`: the Scheduler schedule group (default `keyshift`).
pub const GROUP: &str = "KEYSHIFT_SCHEDULE_GROUP";
/// `KEYSHIFT_SCHEDULER_ROLE_ARN`: the role Scheduler assumes to invoke the function
/// (required with the `scheduler` backend).
pub const ROLE_ARN: &str = "KEYSHIFT_SCHEDULER_ROLE_ARN";
/// `KEYSHIFT_FUNCTION_ARN`: the function's own ARN, the follow-ups' target (default: the
/// ARN the invocation context reports).
pub const FUNCTION_ARN: &str = "KEYSHIFT_FUNCTION_ARN";
/// `KEYSHIFT_DEAD_LETTER_ARN`: an SQS queue ARN for follow-ups that were never delivered.
pub const DEAD_LETTER_ARN: &str = "KEYSHIFT_DEAD_LETTER_ARN";
/// `KEYSHIFT_EVENT_BUS`: an EventBridge bus for lifecycle events (none: not published).
pub const EVENT_BUS: &str = "KEYSHIFT_EVENT_BUS";
/// `KEYSHIFT_PASSWORD_LENGTH`: length of generated values (default 48).
pub const PASSWORD_LENGTH: &str = "KEYSHIFT_PASSWORD_LENGTH";
/// `KEYSHIFT_DEFAULT_KIND`: the kind of value of secrets without a `keyshift:kind` tag
/// (default `password`; see [`crate::kinds`]).
pub const DEFAULT_KIND: &str = "KEYSHIFT_DEFAULT_KIND";
/// `KEYSHIFT_WATCHDOG_SECONDS`: the watchdog's margin after a rotation's expected end
/// (2T): finishSecret schedules one more follow-up that long after, which re-drives a
/// stuck rotation and reports it (metric `RotationsStuck`). 0 or unset: no watchdog.
pub const WATCHDOG: &str = "KEYSHIFT_WATCHDOG_SECONDS";
/// `KEYSHIFT_CREATED_DATES`: `list-versions` (default, AWS) or `get-value` (emulators
/// whose ListSecretVersionIds misreports CreatedDate, such as moto).
pub const CREATED_DATES: &str = "KEYSHIFT_CREATED_DATES";

/// The variables of `postgres` secrets, read by [`PgOptions::from_lookup`].
pub const PG_VARIABLES: [&str; 3] = [
    "KEYSHIFT_PG_CA_BUNDLE",
    "KEYSHIFT_PG_SESSION_GRACE_SECONDS",
    "KEYSHIFT_PG_CONNECT_TIMEOUT_SECONDS",
];

/// The secret tag that overrides T for one secret (whole seconds).
pub const GAP_TAG: &str = "keyshift:gap-seconds";

/// The default Scheduler group (`KEYSHIFT_SCHEDULE_GROUP`); the template creates it.
pub const DEFAULT_GROUP: &str = "keyshift";

/// Which EventBridge API carries follow-ups, with what it needs: Scheduler always has a
/// group and the role it invokes the function with (there is no Scheduler without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchedulerConfig {
    /// EventBridge Scheduler one-time schedules (`KEYSHIFT_SCHEDULER=scheduler`, the
    /// default).
    Scheduler {
        /// The schedule group (`KEYSHIFT_SCHEDULE_GROUP`, default `keyshift`).
        group: String,
        /// The role Scheduler assumes to invoke the function
        /// (`KEYSHIFT_SCHEDULER_ROLE_ARN`, required).
        role_arn: String,
    },
    /// Classic EventBridge rules with one-shot cron expressions
    /// (`KEYSHIFT_SCHEDULER=rules`).
    Rules,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// T and the inline budget.
    pub policy: Policy,
    /// Scheduler (with its group and role) or rules.
    pub backend: SchedulerConfig,
    /// The follow-ups' target, if configured.
    pub function_arn: Option<String>,
    /// The dead-letter queue.
    pub dead_letter_arn: Option<String>,
    /// The lifecycle event bus.
    pub event_bus: Option<String>,
    /// Length of generated passwords.
    pub password_length: i64,
    /// The kind of secrets without a kind tag.
    pub default_kind: KindName,
    /// Options of `postgres` secrets (`KEYSHIFT_PG_*`).
    pub postgres: PgOptions,
    /// Where creation dates come from.
    pub created_dates: CreatedDates,
    /// The CloudWatch namespace of the metric lines; `None`: no metric lines
    /// ([`crate::metrics`]).
    pub metrics_namespace: Option<String>,
}

/// A configuration error: names the variable, never echoes anything secret (none of
/// these variables holds a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable.
    pub variable: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration: {}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

fn err(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

fn seconds(variable: &'static str, text: &str) -> Result<u64, ConfigError> {
    text.trim().parse::<u64>().map_err(|_| {
        err(
            variable,
            format!("must be a whole number of seconds, got {text:?}"),
        )
    })
}

impl Config {
    /// Reads and validates the configuration; `var` looks a variable up (the process
    /// environment in the Lambda, a map in tests).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let gap = seconds(
            GAP,
            &get(GAP).ok_or_else(|| err(GAP, "is required (T, in seconds)"))?,
        )?;
        let budget = match get(INLINE_BUDGET) {
            Some(v) => seconds(INLINE_BUDGET, &v)?,
            None => 600,
        };
        let policy = Policy::new(Duration::from_secs(gap), Duration::from_secs(budget)).map_err(|e| {
            let variable = match e {
                keyshift::policy::PolicyError::GapTooShort | keyshift::policy::PolicyError::GapTooLong => GAP,
                _ => INLINE_BUDGET,
            };
            err(variable, e.to_string())
        })?;
        let scheduler = match get(BACKEND).as_deref().map(str::trim) {
            None | Some("scheduler") => true,
            Some("rules") => false,
            Some(other) => {
                return Err(err(
                    BACKEND,
                    format!("must be `scheduler` or `rules`, got {other:?}"),
                ));
            }
        };
        // The group and the role are checked whichever the backend, as they always were.
        let group = get(GROUP).unwrap_or_else(|| DEFAULT_GROUP.to_owned());
        if !(1..=64).contains(&group.len())
            || !group
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(err(GROUP, "must be 1 to 64 of [0-9a-zA-Z-_.]"));
        }
        let arn = |name: &'static str| -> Result<Option<String>, ConfigError> {
            match get(name) {
                Some(v) if v.starts_with("arn:") => Ok(Some(v)),
                Some(_) => Err(err(name, "must be an ARN (arn:...)")),
                None => Ok(None),
            }
        };
        let role_arn = arn(ROLE_ARN)?;
        let backend = if scheduler {
            SchedulerConfig::Scheduler {
                group,
                role_arn: role_arn
                    .ok_or_else(|| err(ROLE_ARN, "is required with the `scheduler` backend"))?,
            }
        } else {
            SchedulerConfig::Rules
        };
        let password_length = match get(PASSWORD_LENGTH) {
            Some(v) => v
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| (16..=4096).contains(n))
                .ok_or_else(|| err(PASSWORD_LENGTH, "must be a whole number from 16 to 4096"))?,
            None => 48,
        };
        let default_kind = match get(DEFAULT_KIND) {
            None => KindName::Value(ValueKind::Password),
            Some(v) => KindName::parse(v.trim()).ok_or_else(|| {
                err(
                    DEFAULT_KIND,
                    format!("must be one of {}", KindName::all().join(", ")),
                )
            })?,
        };
        let postgres = PgOptions::from_lookup(&var).map_err(|problem| {
            let variable = PG_VARIABLES
                .into_iter()
                .find(|v| problem.contains(v))
                .unwrap_or(PG_VARIABLES[0]);
            err(variable, problem)
        })?;
        let created_dates = match get(CREATED_DATES).as_deref().map(str::trim) {
            None | Some("list-versions") => CreatedDates::ListVersions,
            Some("get-value") => CreatedDates::GetValue,
            Some(_) => return Err(err(CREATED_DATES, "must be `list-versions` or `get-value`")),
        };
        let watchdog = match get(WATCHDOG) {
            None => None,
            Some(v) => match seconds(WATCHDOG, &v)? {
                0 => None,
                s if s > 7 * 24 * 3600 => return Err(err(WATCHDOG, "must be at most 604800 (7 days)")),
                s => Some(Duration::from_secs(s)),
            },
        };
        let policy = policy.with_watchdog(watchdog);
        let metrics_namespace = match get(crate::metrics::NAMESPACE_ENV).as_deref().map(str::trim) {
            None => Some(crate::metrics::DEFAULT_NAMESPACE.to_owned()),
            Some("off") => None,
            Some(ns)
                if ns.len() <= 255
                    && ns
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-/#:".contains(&b)) =>
            {
                Some(ns.to_owned())
            }
            Some(_) => {
                return Err(err(
                    crate::metrics::NAMESPACE_ENV,
                    "must be `off` or a CloudWatch namespace (letters, digits and . _ - / # :)",
                ));
            }
        };
        Ok(Config {
            metrics_namespace,
            policy,
            backend,
            function_arn: arn(FUNCTION_ARN)?,
            dead_letter_arn: arn(DEAD_LETTER_ARN)?,
            event_bus: get(EVENT_BUS),
            password_length,
            default_kind,
            postgres,
            created_dates,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const ROLE: (&str, &str) = (ROLE_ARN, "arn:aws:iam::111122223333:role/keyshift-scheduler");

    #[test]
    fn the_minimum_is_t_and_the_scheduler_role() {
        let c = config(&[(GAP, "900"), ROLE]).expect("valid");
        assert_eq!(c.policy.gap, Duration::from_secs(900));
        assert_eq!(c.policy.inline_budget, Duration::from_secs(600));
        assert_eq!(
            c.backend,
            SchedulerConfig::Scheduler {
                group: "keyshift".into(),
                role_arn: ROLE.1.into()
            }
        );
        assert_eq!(c.created_dates, CreatedDates::ListVersions);
    }

    #[test]
    fn every_bad_variable_is_named() {
        let cases: [(&[(&str, &str)], &str); 10] = [
            (&[(GAP, "600"), ROLE, (DEFAULT_KIND, "rsa-1024")], DEFAULT_KIND),
            (&[ROLE], GAP),
            (&[(GAP, "ten"), ROLE], GAP),
            (&[(GAP, "0"), ROLE], GAP),
            (&[(GAP, "600"), (INLINE_BUDGET, "900"), ROLE], INLINE_BUDGET),
            (&[(GAP, "600")], ROLE_ARN),
            (&[(GAP, "600"), (ROLE_ARN, "role/x")], ROLE_ARN),
            (&[(GAP, "600"), ROLE, (BACKEND, "cron")], BACKEND),
            (&[(GAP, "600"), ROLE, (GROUP, "no spaces")], GROUP),
            (&[(GAP, "600"), ROLE, (PASSWORD_LENGTH, "8")], PASSWORD_LENGTH),
        ];
        for (vars, variable) in cases {
            let e = config(vars).expect_err("invalid");
            assert_eq!(e.variable, variable, "{e}");
            assert!(e.to_string().contains(variable), "{e}");
        }
    }

    #[test]
    fn rules_need_no_scheduler_role() {
        let c = config(&[(GAP, "600"), (BACKEND, "rules")]).expect("valid");
        assert_eq!(c.backend, SchedulerConfig::Rules);
        // The group and a role, if given, are still checked.
        let e = config(&[(GAP, "600"), (BACKEND, "rules"), (GROUP, "no spaces")]).expect_err("invalid");
        assert_eq!(e.variable, GROUP);
        let e = config(&[(GAP, "600"), (BACKEND, "rules"), (ROLE_ARN, "role/x")]).expect_err("invalid");
        assert_eq!(e.variable, ROLE_ARN);
    }

    #[test]
    fn the_scheduler_takes_its_group_and_role() {
        let c = config(&[
            (GAP, "600"),
            ROLE,
            (BACKEND, " scheduler "),
            (GROUP, "team-a.rotations"),
        ])
        .expect("valid");
        assert_eq!(
            c.backend,
            SchedulerConfig::Scheduler {
                group: "team-a.rotations".into(),
                role_arn: ROLE.1.into()
            }
        );
        // An empty role is no role.
        let e = config(&[(GAP, "600"), (ROLE_ARN, "  ")]).expect_err("no role");
        assert_eq!(e.variable, ROLE_ARN);
    }
}
