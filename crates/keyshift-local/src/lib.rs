//! keyshift on a machine with no AWS account.
//!
//! * [`moto`]: moto's server as Secrets Manager and EventBridge Scheduler, started on a
//!   free loopback port and stopped on drop.
//! * [`watch`]: the rotation function's release binary under `cargo lambda watch`,
//!   invoked through the Lambda Invoke API.
//! * [`local`]: a whole rotation: a driver that plays the rotation engine and the
//!   scheduler, a consumer fleet on the real SDK, a label timeline and the gaps measured.

pub mod http;
pub mod local;
pub mod moto;
pub mod watch;
