//! keyshift on a machine with no AWS account.
//!
//! * [`moto`]: moto's server as Secrets Manager, EventBridge Scheduler, SQS and KMS,
//!   started on a free loopback port and stopped on drop; a KMS key behind an alias.
//! * [`proxy`]: a counting proxy in front of moto's server: requests by (secret,
//!   operation), counted on the wire.
//! * [`watch`]: the rotation function's release binary under `cargo lambda watch`,
//!   invoked through the Lambda Invoke API with aws-sdk-lambda, retries disabled (the
//!   call the operator CLI makes).
//! * [`rig`]: moto, the counting proxy and the function under `cargo lambda watch`
//!   started together, the invoker, the scheduler driver, and one engine rotation.
//! * [`calls`]: the AWS calls the function made, per invocation, as a table.
//! * [`fleet`]: a consumer fleet of keyshift-client instances on the real SDK, whose
//!   producers use each kind of value and whose consumers check it.
//! * [`local`]: a whole rotation: a driver that plays the rotation engine and the
//!   scheduler, a consumer fleet on the real SDK, a label timeline and the gaps measured.
//! * [`kinds`]: one secret of every kind rotated at once, each with a keyshift-client
//!   fleet that signs and verifies, seals and opens, or presents and accepts.
//! * [`postgres`]: a real PostgreSQL 15 in a temporary directory, with TLS from a CA of
//!   its own and every statement logged, for the PostgreSQL target's tests and the demo.

pub mod calls;
pub mod fleet;
pub mod kinds;
pub mod local;
pub mod moto;
pub mod pgdemo;
pub mod pgfleet;
pub mod postgres;
pub mod proxy;
pub mod rig;
pub mod watch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_are_hyphenated_v4_uuids_and_distinct() {
        let a = local::uuid_v4();
        let b = local::uuid_v4();
        assert_ne!(a, b);
        for t in [a, b] {
            let u = uuid::Uuid::parse_str(&t).expect("a UUID");
            assert_eq!(u.get_version(), Some(uuid::Version::Random), "{t}");
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{t}");
            assert_eq!(t, u.hyphenated().to_string(), "lower-case 8-4-4-4-12");
            assert!(t.len() >= keyshift::secret::VersionId::MIN_LEN);
        }
    }
}
