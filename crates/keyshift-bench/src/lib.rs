//! The consumer benchmark: keyshift-client's hot path side by side with the
//! AWS-maintained `aws_secretsmanager_caching` crate's cache hit, in one run on one
//! machine, and the AWS requests each sends for one secret, counted on the wire.
//!
//! | module | what |
//! |---|---|
//! | [`world`] | moto's server on 127.0.0.1, the counting proxy (`keyshift_local::proxy`) in front of it, setup calls |
//! | [`timing`] | batches of timed calls; median and spread |
//! | [`ours`] | keyshift-client: start, time `current()` and `accepted_version(id)` |
//! | `aws` | their cache (with the `aws-caching` feature) |
//! | [`calls`] | per-phase request counts, formulas, formatting |
//!
//! The binary (`src/main.rs`, needs `--features aws-caching`) wires them and prints the
//! report. Nothing here reads a figure from anywhere but this run.

#[cfg(feature = "aws-caching")]
pub mod aws;
pub mod calls;
pub mod ours;
pub mod timing;
pub mod world;
