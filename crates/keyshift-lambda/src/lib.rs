//! keyshift's rotation function: the AWS SDK adapters behind the core's ports, the
//! configuration, and the handler the Lambda binary runs.
//!
//! | module | what |
//! |---|---|
//! | [`secrets`] | Secrets Manager: describe (labels, creation dates, rotation enabled), values, PutSecretValue, UpdateSecretVersionStage; SDK errors classified once |
//! | [`scheduler`] | follow-ups through EventBridge Scheduler (default) or classic EventBridge rules |
//! | [`lifecycle`] | optional phase-change events on an EventBridge bus |
//! | [`target`] | the default target: values from GetRandomPassword, no downstream system |
//! | [`config`] | environment variables, validated at cold start, and per-secret tags |
//! | [`handler`] | one invocation: parse, execute, report, map errors |
//! | [`logging`] | JSON logs through `tracing`; every crate but keyshift's own capped at `warn` |
//!
//! The decisions are the pure core's ([`keyshift::decide`]); nothing here decides.

pub mod clock;
pub mod config;
pub mod handler;
pub mod lifecycle;
pub mod logging;
pub mod scheduler;
pub mod secrets;
pub mod target;
#[cfg(test)]
mod testing;

pub use config::Config;
pub use handler::{Function, HandlerError};
