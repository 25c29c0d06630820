//! The ciphertext and wrapped-DEK parsers on arbitrary bytes: never a panic, and what
//! parses re-encodes to the same bytes.
#![no_main]

use keyshift_envelope::WrappedDek;
use keyshift_envelope::format::{parse_ciphertext, parse_wrapped_dek};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ct) = parse_ciphertext(data) {
        // Re-encoding the parts gives the input back.
        let mut again = b"KSE\x01".to_vec();
        again.extend_from_slice(ct.record_bytes);
        again.extend_from_slice(&ct.nonce);
        again.extend_from_slice(ct.sealed);
        assert_eq!(again, data);
        let w = WrappedDek::of_ciphertext(data).expect("a parsed ciphertext's record is a wrapped DEK");
        assert_eq!(w.kek_id(), ct.record.kek_id());
        let _ = format!("{w:?} {}", w.kek_id());
    }
    if let Ok((rec, bytes)) = parse_wrapped_dek(data) {
        assert_eq!(data.get(4..), Some(bytes));
        let _ = rec.kek_id();
        assert!(WrappedDek::from_bytes(data).is_ok());
    }
    // The same bytes behind a valid header reach the record parser.
    let mut ct = b"KSE\x01".to_vec();
    ct.extend_from_slice(data);
    let _ = parse_ciphertext(&ct);
});
