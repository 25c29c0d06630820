//! What keyshift reads back from labels and follow-up payloads as text: RFC 3339 times
//! (`DueAt`), the swap, accepted and cancel marker labels, the shape of keyshift's copy
//! and emergency version ids, and schedule names. Never a panic; whatever parses prints
//! back to text that parses to the same value.
#![no_main]

use keyshift::Timestamp;
use keyshift::VersionId;
use keyshift::event::ScheduleName;
use keyshift::secret::{
    accepted_marker, cancel_marker, parse_accepted_marker, parse_cancel_marker, parse_swap_marker,
    swap_marker,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Any instant prints (saturated sums reach the ends of i64).
    if let Some(bytes) = data.get(..8) {
        let t = Timestamp::from_millis(i64::from_le_bytes(bytes.try_into().expect("8 bytes")));
        let _ = (t.to_rfc3339(), t.to_at_expression_time());
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = Timestamp::parse_rfc3339(text) {
        let printed = t.to_rfc3339();
        assert_eq!(Timestamp::parse_rfc3339(&printed), Ok(t));
        assert!(t >= Timestamp::EPOCH);
        // A time that parses is one a marker can carry.
        assert_eq!(parse_swap_marker(&swap_marker(t)), Some(t));
        assert_eq!(parse_accepted_marker(&accepted_marker(t)), Some(t));
        assert_eq!(parse_cancel_marker(&cancel_marker(t)), Some(t));
        let _ = t.to_at_expression_time();
    }
    for (parse, print) in [
        (
            parse_swap_marker as fn(&str) -> Option<Timestamp>,
            swap_marker as fn(Timestamp) -> String,
        ),
        (parse_accepted_marker, accepted_marker),
        (parse_cancel_marker, cancel_marker),
    ] {
        if let Some(t) = parse(text) {
            // Markers name the millisecond exactly: the label is the canonical one.
            assert_eq!(print(t), text);
        }
    }
    let id = VersionId::new(text);
    if id.is_keyshift_copy() {
        assert!(!id.is_keyshift_emergency());
    }
    // The copies and the emergency version of any token are recognised as such.
    let copy = id.copy(7);
    assert_eq!(copy.copy_generation_of(&id), Some(7));
    assert!(copy.is_keyshift_copy());
    assert!(id.emergency().is_keyshift_emergency());
    let _ = id.copy_generation_of(&copy);
    if let Ok(name) = ScheduleName::parse(text) {
        assert_eq!(name.as_str(), text);
    }
});
