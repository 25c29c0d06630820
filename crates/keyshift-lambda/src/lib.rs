//! keyshift's rotation function: the AWS SDK adapters behind the core's ports, the
//! configuration, and the handler the Lambda binary runs.
//!
//! | module | what |
//! |---|---|
//! | [`secrets`] | Secrets Manager: describe (labels, creation dates, rotation enabled), values, PutSecretValue, UpdateSecretVersionStage; SDK errors classified once |
//! | [`scheduler`] | follow-ups through EventBridge Scheduler (default) or classic EventBridge rules |
//! | [`lifecycle`] | optional phase-change events on an EventBridge bus |
//! | [`target`] | the stock target: the value the secret's `keyshift:kind` tag asks for, no downstream system |
//! | [`kinds`] | the kinds and their tags, parsed and validated |
//! | [`config`] | environment variables, validated at cold start, and per-secret tags |
//! | [`handler`] | one invocation: parse, execute, report, map errors |
//! | [`run`](mod@run) | the runtime loop: `run(MyTarget)` for your own system, `run_stock()` for the stock kinds |
//! | [`metrics`] | CloudWatch Embedded Metric Format lines: invocations, gaps, rotations, emergencies, stuck rotations |
//! | [`logging`] | JSON logs through `tracing`; every crate but keyshift's own capped at `warn` |
//!
//! Key material comes from [`keyshift_keys`] (aws-lc-rs).
//!
//! The decisions are the pure core's ([`keyshift::decide`]); nothing here decides.

pub mod clock;
pub mod config;
pub mod handler;
pub mod kinds;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod run;
pub mod scheduler;
pub mod secrets;
pub mod target;
#[cfg(test)]
mod testing;

pub use config::Config;
pub use handler::{Function, HandlerError};
pub use run::{run, run_stock, run_with};
