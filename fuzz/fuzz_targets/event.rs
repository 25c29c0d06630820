//! The rotation function's event (`Invocation::from_slice`), the operator's requests
//! (`operator_request`, `status_request`) and the version-id validation, on arbitrary
//! bytes: never a panic; a parsed invocation re-serialises (as a schedule delivers it)
//! and re-parses to itself less its RotationToken; an operator request rebuilt the way
//! the `keyshift` CLI builds it parses to the same request; and no error ever quotes the
//! RotationToken it was handed.
#![no_main]

use std::time::Duration;

use keyshift::event::{
    EventError, Invocation, MAX_EVENT_BYTES, Operation, STEP_NAMES, operator_request, parse_version_id,
    status_request,
};
use keyshift_cli::invoke::{cancel_payload, emergency_payload, redrive_payload};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The RotationToken the payload carries, long enough that no static error text holds it.
fn rotation_token(value: &Value) -> Option<&str> {
    value
        .get("RotationToken")
        .and_then(Value::as_str)
        .filter(|t| t.len() >= 36 && !t.contains(' '))
}

fn no_token_in(error: &EventError, value: Option<&Value>) {
    let text = format!("{error} {error:?}");
    if let Some(token) = value.and_then(rotation_token) {
        assert!(!text.contains(token), "an error quotes the RotationToken");
    }
}

fuzz_target!(|data: &[u8]| {
    let value: Option<Value> = serde_json::from_slice(data).ok();
    match Invocation::from_slice(data) {
        Ok(inv) => {
            assert!(STEP_NAMES.contains(&inv.step.name()));
            assert!(data.len() <= MAX_EVENT_BYTES);
            let out = inv.to_value();
            assert!(
                out.get("RotationToken").is_none(),
                "a RotationToken is never written out"
            );
            let bytes = serde_json::to_vec(&out).expect("a Value serialises");
            let again = Invocation::from_slice(&bytes).expect("what keyshift writes, it reads back");
            let mut expected = inv.clone();
            expected.rotation_token = None;
            assert_eq!(again, expected);
            assert_eq!(again.to_value(), out);
            assert!(parse_version_id("ClientRequestToken", inv.token.as_str()).is_ok());
        }
        Err(e) => no_token_in(&e, value.as_ref()),
    }

    let Some(value) = value else { return };
    match operator_request(&value) {
        Ok(Some(req)) => {
            // The CLI's payload for the same request parses back to it.
            let secret = req.secret_id.as_str();
            let rebuilt = match &req.operation {
                Operation::EmergencyRotate {
                    reason,
                    compromised,
                    gap,
                    keep_accepting,
                } => {
                    let mut v = emergency_payload(
                        secret,
                        reason,
                        compromised.as_ref().map_or("", |c| c.as_str()),
                        Some(gap.as_secs()),
                        keep_accepting.map(|k| k.as_secs()),
                    );
                    if compromised.is_none() {
                        v.as_object_mut().expect("an object").remove("VersionId");
                    }
                    assert!(*gap <= Duration::from_secs(600));
                    v
                }
                Operation::Cancel { token } => cancel_payload(secret, token.as_ref().map(|t| t.as_str())),
                Operation::Redrive => redrive_payload(secret),
            };
            assert_eq!(operator_request(&rebuilt), Ok(Some(req)));
        }
        Ok(None) => {}
        Err(e) => no_token_in(&e, Some(&value)),
    }
    match status_request(&value) {
        Ok(Some(secret)) => {
            let again = status_request(&serde_json::json!({"Step": "status", "SecretId": secret.as_str()}));
            assert_eq!(again, Ok(Some(secret)));
        }
        Ok(None) => {}
        Err(e) => no_token_in(&e, Some(&value)),
    }
    if let Some(text) = value.as_str() {
        if let Ok(id) = parse_version_id("VersionId", text) {
            assert_eq!(id.as_str(), text);
        }
    }
});
