//! Hexadecimal text, the one codec of the workspace: schedule names, UUIDs' neighbours
//! (hashes and key ids in logs), KMS encryption contexts, key fingerprints.

/// The digits [`encode`] writes.
const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lower-case hex, two digits a byte.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The bytes of `text`, two hex digits (either case) a byte, or `None` if `text` has an
/// odd length or anything but hex digits.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if t.len() % 2 != 0 {
        return None;
    }
    t.chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_lower_case_two_digits_a_byte() {
        assert_eq!(encode(&[]), "");
        assert_eq!(encode(&[0x00, 0x0f, 0xa0, 0xff, 0x12]), "000fa0ff12");
        let all: Vec<u8> = (0..=255).collect();
        let text = encode(&all);
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(text, expected);
        assert_eq!(decode(&text), Some(all));
    }

    #[test]
    fn decodes_either_case_and_refuses_anything_else() {
        assert_eq!(decode(""), Some(vec![]));
        assert_eq!(decode("00Ff7a"), Some(vec![0x00, 0xff, 0x7a]));
        for bad in ["0", "abc", "0g", "zz", " 0", "0x00", "+1", "\u{e9}0", "-1"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
