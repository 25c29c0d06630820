//! Wall-clock time as plain data.
//!
//! The rotation core never reads a clock: every decision takes `now` as an argument
//! (quinn-proto style). [`Timestamp`] is UTC milliseconds since the Unix epoch, which is
//! what Secrets Manager's `CreatedDate` and EventBridge's `at()` expressions speak. The
//! RFC 3339 codec is here so that follow-up events and logs carry readable times without
//! pulling a date crate into the pure core.

use std::fmt;
use std::time::{Duration, SystemTime};

/// A UTC instant, in milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A system time as a timestamp, truncated to the millisecond. Converts the time it is
/// given and reads no clock (the callers do: the function's and the client's clocks).
///
/// Saturating: a time before the epoch is [`Timestamp::EPOCH`] (keyshift has nothing to
/// say about one, and every year before 1970 is out of range), one past `i64::MAX`
/// milliseconds is the largest timestamp.
impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        let ms = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Timestamp(ms)
    }
}

/// Why a text is not an RFC 3339 UTC timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 UTC timestamp (expected YYYY-MM-DDThh:mm:ss[.fff]Z)")]
pub struct TimestampParseError;

const MILLIS_PER_DAY: i64 = 86_400_000;
/// Years outside this range are rejected: nothing keyshift schedules is older than the
/// Unix epoch or further out than EventBridge's cron allows (2199).
const MIN_YEAR: i64 = 1970;
const MAX_YEAR: i64 = 2199;

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From milliseconds since the epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// From whole seconds since the epoch.
    pub const fn from_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded towards negative infinity).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// `self + d`, saturating.
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(duration_millis(d)))
    }

    /// `self - d`, saturating.
    pub fn minus(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_sub(duration_millis(d)))
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// Signed milliseconds from `earlier` to `self`.
    pub fn millis_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The latest multiple of `step` at or before `self` (e.g. the start of the minute).
    pub fn floor_to(self, step: Duration) -> Self {
        let s = duration_millis(step).max(1);
        Timestamp(self.0.div_euclid(s) * s)
    }

    /// The earliest multiple of `step` at or after `self`.
    pub fn ceil_to(self, step: Duration) -> Self {
        let floor = self.floor_to(step);
        if floor == self { self } else { floor.plus(step) }
    }

    /// RFC 3339 with millisecond precision, e.g. `2026-11-24T10:00:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        let (y, mo, d, h, mi, s, ms) = self.civil();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
    }

    /// `yyyy-mm-ddThh:mm:ss`, the form EventBridge Scheduler's `at()` expects (UTC, no zone).
    pub fn to_at_expression_time(self) -> String {
        let (y, mo, d, h, mi, s, _) = self.civil();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
    }

    /// Parses `YYYY-MM-DDThh:mm:ss[.f+]Z` (UTC only; fractions beyond milliseconds are cut).
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimestampParseError> {
        let b = text.as_bytes();
        if b.len() < 20 || b.len() > 40 || *b.last().ok_or(TimestampParseError)? != b'Z' {
            return Err(TimestampParseError);
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, TimestampParseError> {
            let part = &b[r];
            if part.iter().all(u8::is_ascii_digit) {
                Ok(part.iter().fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0')))
            } else {
                Err(TimestampParseError)
            }
        };
        let sep = |i: usize, c: u8| {
            if b[i] == c {
                Ok(())
            } else {
                Err(TimestampParseError)
            }
        };
        sep(4, b'-')?;
        sep(7, b'-')?;
        if b[10] != b'T' && b[10] != b't' {
            return Err(TimestampParseError);
        }
        sep(13, b':')?;
        sep(16, b':')?;
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let mut ms = 0;
        let rest = &b[19..b.len() - 1];
        if !rest.is_empty() {
            if rest[0] != b'.' || rest.len() < 2 || !rest[1..].iter().all(u8::is_ascii_digit) {
                return Err(TimestampParseError);
            }
            let digits = &rest[1..];
            for i in 0..3 {
                ms = ms * 10 + digits.get(i).map_or(0, |c| i64::from(c - b'0'));
            }
        }
        if !(MIN_YEAR..=MAX_YEAR).contains(&y)
            || !(1..=12).contains(&mo)
            || d < 1
            || d > days_in_month(y, mo)
            || h > 23
            || mi > 59
            || s > 59
        {
            return Err(TimestampParseError);
        }
        let days = days_from_civil(y, mo, d);
        Ok(Timestamp(
            days * MILLIS_PER_DAY + ((h * 60 + mi) * 60 + s) * 1000 + ms,
        ))
    }

    fn civil(self) -> (i64, i64, i64, i64, i64, i64, i64) {
        let days = self.0.div_euclid(MILLIS_PER_DAY);
        let rem = self.0.rem_euclid(MILLIS_PER_DAY);
        let (y, mo, d) = civil_from_days(days);
        let secs = rem / 1000;
        (y, mo, d, secs / 3600, (secs / 60) % 60, secs % 60, rem % 1000)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days (public domain algorithms).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_times_convert_to_the_millisecond_and_saturate() {
        let at = |d: Duration| SystemTime::UNIX_EPOCH + d;
        assert_eq!(Timestamp::from(SystemTime::UNIX_EPOCH), Timestamp::EPOCH);
        assert_eq!(
            Timestamp::from(at(Duration::new(1_700_000_000, 123_999_999))),
            Timestamp::from_millis(1_700_000_000_123)
        );
        assert_eq!(
            Timestamp::from(at(Duration::from_millis(1_764_508_672_001))).to_rfc3339(),
            "2025-11-30T13:17:52.001Z"
        );
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(Timestamp::from(before), Timestamp::EPOCH);
        if let Some(far) = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(u64::MAX / 4)) {
            assert_eq!(Timestamp::from(far), Timestamp::from_millis(i64::MAX));
        }
    }

    #[test]
    fn known_instants_round_trip() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_795_513_199_123, "2026-11-24T09:39:59.123Z"),
            (7_258_118_399_999, "2199-12-31T23:59:59.999Z"),
        ];
        for (ms, text) in cases {
            assert_eq!(Timestamp::from_millis(ms).to_rfc3339(), text);
            assert_eq!(Timestamp::parse_rfc3339(text), Ok(Timestamp::from_millis(ms)));
        }
    }

    #[test]
    fn parses_fractions_and_whole_seconds() {
        let t = Timestamp::parse_rfc3339("2026-11-24T10:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-24T10:00:00.000Z");
        let t = Timestamp::parse_rfc3339("2026-11-24T10:00:00.5Z").unwrap();
        assert_eq!(t.as_millis() % 1000, 500);
        let t = Timestamp::parse_rfc3339("2026-11-24T10:00:00.123456789Z").unwrap();
        assert_eq!(t.as_millis() % 1000, 123);
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "2026-11-24",
            "2026-11-24T10:00:00",
            "2026-11-24T10:00:00+01:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T10:00:00.Z",
            "1969-12-31T23:59:59Z",
            "2026-11-24T10:0a:00Z",
            "२०२६-11-24T10:00:00Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), Err(TimestampParseError), "{bad}");
        }
    }

    #[test]
    fn minute_rounding() {
        let minute = Duration::from_secs(60);
        let t = Timestamp::parse_rfc3339("2026-11-24T10:00:30.250Z").unwrap();
        assert_eq!(t.floor_to(minute).to_rfc3339(), "2026-11-24T10:00:00.000Z");
        assert_eq!(t.ceil_to(minute).to_rfc3339(), "2026-11-24T10:01:00.000Z");
        let whole = t.floor_to(minute);
        assert_eq!(whole.ceil_to(minute), whole);
        assert_eq!(whole.to_at_expression_time(), "2026-11-24T10:00:00");
    }

    #[test]
    fn arithmetic_saturates_and_orders() {
        let t = Timestamp::from_secs(100);
        assert_eq!(t.plus(Duration::from_secs(5)).as_secs(), 105);
        assert_eq!(t.minus(Duration::from_secs(5)).as_secs(), 95);
        assert_eq!(t.since(Timestamp::from_secs(40)), Duration::from_secs(60));
        assert_eq!(Timestamp::from_secs(40).since(t), Duration::ZERO);
        assert_eq!(
            Timestamp::from_millis(i64::MAX).plus(Duration::MAX).as_millis(),
            i64::MAX
        );
    }
}
