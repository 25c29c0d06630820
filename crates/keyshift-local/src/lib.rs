//! keyshift on a machine with no AWS account.
//!
//! * [`moto`]: moto's server as Secrets Manager, EventBridge Scheduler, SQS and KMS,
//!   started on a free loopback port and stopped on drop; a KMS key behind an alias.
//! * [`proxy`]: a counting proxy in front of moto's server: requests by (secret,
//!   operation), counted on the wire.
//! * [`watch`]: the rotation function's release binary under `cargo lambda watch`,
//!   invoked through the Lambda Invoke API with aws-sdk-lambda, retries disabled (the
//!   call the operator CLI makes).
//! * [`calls`]: the AWS calls the function made, per invocation, as a table.
//! * [`local`]: a whole rotation: a driver that plays the rotation engine and the
//!   scheduler, a consumer fleet on the real SDK, a label timeline and the gaps measured.
//! * [`kinds`]: one secret of every kind rotated at once, each with a keyshift-client
//!   fleet that signs and verifies, seals and opens, or presents and accepts.
//! * [`postgres`]: a real PostgreSQL 15 in a temporary directory, with TLS from a CA of
//!   its own and every statement logged, for the PostgreSQL target's tests and the demo.

pub mod calls;
pub mod kinds;
pub mod local;
pub mod moto;
pub mod pgdemo;
pub mod pgfleet;
pub mod postgres;
pub mod proxy;
pub mod watch;
