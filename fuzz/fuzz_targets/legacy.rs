//! keyshift-migrate's legacy form (a value encrypted directly by a KEK version), read
//! from every row the migration walks: `legacy::version_of` never panics, never accepts
//! what starts like an envelope ciphertext (`KSE`), and what it accepts is long enough
//! for the nonce and tag `decrypt` slices; a value `encrypt` writes names its version.
#![no_main]

use keyshift_envelope::format::parse_ciphertext;
use keyshift_migrate::legacy::{MAX_VERSION, encrypt, version_of};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(version) = version_of(data) {
        assert!(!version.is_empty() && version.len() <= MAX_VERSION);
        assert!(data.len() >= 1 + version.len() + 12 + 16);
        assert_eq!(&data[1..=version.len()], version.as_bytes());
        assert!(
            parse_ciphertext(data).is_err(),
            "a value reads as legacy and as an envelope"
        );
    }
    // Whatever version text the input holds, a value written under it names it.
    let split = data.first().map_or(0, |&b| usize::from(b) % 80).min(data.len());
    if let Ok(version) = std::str::from_utf8(&data[..split]) {
        let key = [7u8; 32];
        if let Ok(sealed) = encrypt(version, &key, &data[split..], b"aad") {
            assert_eq!(version_of(&sealed), Ok(version));
        }
    }
});
