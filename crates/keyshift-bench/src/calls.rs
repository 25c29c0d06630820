//! AWS requests per hour for one secret: each library's formula from its defaults, and
//! a scaled-down run against moto that counts the requests on the wire, to check the
//! formula's shape (which calls, how often, what a new version costs).
//!
//! The run has two phases of equal length. In the first, the secret has only
//! AWSCURRENT (the state a secret is in almost all of the time). At the start of the
//! second, a new version is written as AWSPENDING (the first step of a rotation).

use std::collections::BTreeMap;
use std::time::Duration;

/// Requests of one reader in one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calls {
    /// DescribeSecret requests.
    pub describe: u64,
    /// GetSecretValue requests (failed ones included).
    pub get_value: u64,
    /// Anything else.
    pub other: u64,
}

impl Calls {
    /// The requests between two snapshots of the proxy's counts for one secret.
    pub fn between(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Calls {
        let calls = keyshift_local::proxy::delta(before, after);
        let of = |op: &str| calls.get(op).copied().unwrap_or(0);
        let total: u64 = calls.values().sum();
        let (describe, get_value) = (of("DescribeSecret"), of("GetSecretValue"));
        Calls {
            describe,
            get_value,
            other: total - describe - get_value,
        }
    }
}

/// A reader's expected requests in one phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expected {
    /// DescribeSecret requests.
    pub describe: f64,
    /// GetSecretValue requests.
    pub get_value: f64,
}

/// `n / d` for durations.
pub fn per(n: Duration, d: Duration) -> f64 {
    n.as_secs_f64() / d.as_secs_f64()
}

/// The mean of a uniform jitter range.
pub fn mean(min: Duration, max: Duration) -> Duration {
    (min + max) / 2
}

/// Formats a count with thousands separators.
pub fn thousands(n: f64) -> String {
    let whole = n.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_between_snapshots() {
        let before = BTreeMap::from([("DescribeSecret".to_owned(), 2)]);
        let after = BTreeMap::from([
            ("DescribeSecret".to_owned(), 5),
            ("GetSecretValue".to_owned(), 1),
            ("ListSecretVersionIds".to_owned(), 4),
        ]);
        assert_eq!(
            Calls::between(&before, &after),
            Calls {
                describe: 3,
                get_value: 1,
                other: 4
            }
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(thousands(7200.0), "7,200");
        assert_eq!(thousands(16.0), "16");
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(per(Duration::from_secs(3600), Duration::from_secs(300)), 12.0);
        assert_eq!(
            mean(Duration::from_secs(150), Duration::from_secs(300)),
            Duration::from_secs(225)
        );
    }
}
