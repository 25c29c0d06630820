//! What the `keyshift` CLI reads from outside: a dead-letter message body
//! (`commands::describe_body`, the body is whatever was sent to the queue), the
//! function's error payload (`FunctionError::from_payload`) and its answer
//! (`render::answer_text`). Never a panic; what the CLI prints of a body or an
//! unhandled payload holds no control character (no terminal escape gets through).
#![no_main]

use keyshift_cli::commands::describe_body;
use keyshift_cli::invoke::FunctionError;
use keyshift_cli::render::{answer_text, relative};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = std::str::from_utf8(data) {
        let shown = describe_body(body);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
    }
    let e = FunctionError::from_payload(data);
    if e.error_type == "Unhandled" && serde_json::from_slice::<Value>(data).is_err() {
        assert!(!e.message.chars().any(char::is_control));
        assert!(e.message.chars().count() <= 200);
    }
    let _ = (e.exit(), e.line(), e.to_json());
    if let Ok(answer) = serde_json::from_slice::<Value>(data) {
        let _ = answer_text(&answer);
        if let Some(ms) = answer.as_i64() {
            let _ = relative(ms);
        }
    }
});
