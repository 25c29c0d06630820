//! keyshift: zero-downtime secret rotation for AWS Secrets Manager.
//!
//! This crate is the rotation function's brain and everything that must be proven
//! about it, with no AWS SDK in sight:
//!
//! * [`event`]: the one event type for every invocation (the engine's four steps and
//!   keyshift's `swapPending` / `removePending` follow-ups), parsed without ever echoing
//!   a value. A RotationToken never prints, not even through `Debug`.
//! * [`decide`]: the pure core. `decide(invocation, labels as they are, now, policy)`
//!   returns what to do as data: label moves in a safe order, a value to put, an inline
//!   wait, a follow-up to schedule, done, or a refusal. **It never reads a clock or
//!   calls anything**; if it seems to need to, the design is wrong.
//! * [`ports`]: the small traits the world is reached through (store, scheduler, clock,
//!   target), in keyshift's own types.
//! * `executor` (feature `executor`): loads the labels, asks the core, applies the plan,
//!   re-derives after every wait or failure. The Lambda and the simulation drive this
//!   same executor.
//! * `memory` (feature `test-util`): a faithful in-memory Secrets Manager that enforces
//!   AWS's label rules, with typed fault verbs, for the simulation and the tests.
//! * [`operate`]: an operator's emergency rotation, cancel or re-drive, resolved against
//!   the labels into an invocation the core decides like any other.
//! * [`status`]: a pure report on where a secret's rotation stands, what comes next and
//!   when (by the core's own due-time rules), and what to do by hand when it is stuck.
//! * [`aws_errors`]: the one table of AWS error codes and their class, which each
//!   adapter (the function's, the client's) maps to its own error kind.
//! * [`hex`]: the one hex codec (hashes, key ids, schedule names).
//! * [`policy`] and [`time`]: T, the inline budget, the scheduler's precision, and UTC
//!   timestamps as plain data.
//!
//! The protocol (docs/protocol.md, section 1): the new version is accepted for at least T
//! before it becomes AWSCURRENT, and the old one stays accepted (ROTATING) for at least
//! T after. Every step is idempotent and derived from the labels as they are.
//!
//! # Features
//!
//! None by default: a consumer (keyshift-client) needs only the types, and gets no
//! executor, no in-memory store and no `tracing`.
//!
//! * `executor`: `Executor` and `ExecError`, the `executor` module.
//! * `test-util`: the in-memory Secrets Manager, `memory::MemorySecretsManager`.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod aws_errors;
pub mod decide;
pub mod event;
#[cfg(any(test, feature = "executor"))]
pub mod executor;
pub mod hex;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;
pub mod operate;
pub mod policy;
pub mod ports;
pub mod secret;
pub mod status;
pub mod time;

pub use decide::{Action, Decision, Outcome, Rejection};
pub use event::{Invocation, Step};
#[cfg(any(test, feature = "executor"))]
pub use executor::{ExecError, Executor};
pub use policy::Policy;
pub use secret::{SecretId, SecretState, SecretValue, VersionId};
pub use time::Timestamp;
