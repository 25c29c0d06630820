//! The rotation function through the Lambda Invoke API (RequestResponse), and the
//! payloads of its operator steps.

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::{Map, Value, json};

use crate::exit::{CliError, Exit, exit_for_error_type, sdk_error};

/// What the function answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// It succeeded: its JSON answer (an object with at least `step`, `outcome`,
    /// `continued`, `scheduled` and `final`).
    Done(Value),
    /// It failed: Lambda's `FunctionError` with the function's `errorType` and
    /// `errorMessage`.
    Error(FunctionError),
}

/// A function error, as the function reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    /// `keyshift.InvalidEvent`, `keyshift.Rejected`, `keyshift.Configuration`,
    /// `keyshift.Retryable`, `keyshift.Failed`, or the runtime's own (`Sandbox.Timedout`...).
    pub error_type: String,
    /// The function's message (never a secret value or a RotationToken).
    pub message: String,
}

impl FunctionError {
    /// The exit code its type maps to ([`exit_for_error_type`]).
    pub fn exit(&self) -> Exit {
        exit_for_error_type(&self.error_type)
    }

    /// `{"errorType", "errorMessage"}`, as the Invoke API carries it.
    pub fn to_json(&self) -> Value {
        json!({"errorType": self.error_type, "errorMessage": self.message})
    }

    /// Reads a function error's payload; anything else is reported as `Unhandled` with a
    /// short, printable prefix of what came back.
    pub fn from_payload(bytes: &[u8]) -> FunctionError {
        let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        match parsed {
            Some(v) if text(&v, "errorType").is_some() || text(&v, "errorMessage").is_some() => {
                FunctionError {
                    error_type: text(&v, "errorType").unwrap_or_else(|| "Unhandled".into()),
                    message: text(&v, "errorMessage").unwrap_or_default(),
                }
            }
            _ => FunctionError {
                error_type: "Unhandled".into(),
                message: printable_prefix(bytes, 200),
            },
        }
    }

    /// One line for stderr: `keyshift.Rejected: ...`.
    pub fn line(&self) -> String {
        let verb = if self.exit() == Exit::Refused {
            "the function refused the request"
        } else {
            "the function failed"
        };
        format!("{verb}: {}: {}", self.error_type, self.message)
    }
}

fn printable_prefix(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect()
}

/// Invokes `function` synchronously with `payload` (sent as it is), once.
///
/// A function error comes back from AWS as HTTP 200 with `X-Amz-Function-Error` and the
/// error as payload; a local runtime (`cargo lambda watch`) answers it with an HTTP error
/// status and the same `{"errorType", "errorMessage"}` body instead: both are
/// [`Answer::Error`]. Any other failure of the call is a [`CliError`].
pub async fn invoke(
    client: &aws_sdk_lambda::Client,
    function: &str,
    payload: Vec<u8>,
) -> Result<Answer, CliError> {
    let sent = client
        .invoke()
        .function_name(function)
        .invocation_type(InvocationType::RequestResponse)
        .payload(Blob::new(payload))
        .send()
        .await;
    let out = match sent {
        Ok(out) => out,
        Err(e) => {
            // A local runtime's function error: an HTTP error with the error as its body.
            if let Some(raw) = e.raw_response() {
                if let Some(body) = raw.body().bytes() {
                    let err = FunctionError::from_payload(body);
                    if err.error_type != "Unhandled" && e.code().is_none() {
                        return Ok(Answer::Error(err));
                    }
                }
            }
            return Err(sdk_error(e, "Invoke"));
        }
    };
    let body = out.payload().map(Blob::as_ref).unwrap_or_default();
    if out.function_error().is_some() {
        return Ok(Answer::Error(FunctionError::from_payload(body)));
    }
    match serde_json::from_slice::<Value>(body) {
        // A runtime that reports errors in a 200 without the header.
        Ok(v) if v.get("errorType").is_some() && v.get("step").is_none() => {
            Ok(Answer::Error(FunctionError::from_payload(body)))
        }
        Ok(v) => Ok(Answer::Done(v)),
        Err(_) => Err(CliError::new(
            Exit::Failed,
            format!("the function's answer is not JSON ({} bytes)", body.len()),
        )),
    }
}

/// `{"Step":"emergencyRotate",...}`: only the options given.
pub fn emergency_payload(
    secret: &str,
    reason: &str,
    version_id: &str,
    gap_seconds: Option<u64>,
    keep_accepting_seconds: Option<u64>,
) -> Value {
    let mut m = Map::new();
    m.insert("Step".into(), "emergencyRotate".into());
    m.insert("SecretId".into(), secret.into());
    m.insert("Reason".into(), reason.into());
    m.insert("VersionId".into(), version_id.into());
    if let Some(n) = gap_seconds {
        m.insert("GapSeconds".into(), n.into());
    }
    if let Some(n) = keep_accepting_seconds {
        m.insert("KeepAcceptingSeconds".into(), n.into());
    }
    Value::Object(m)
}

/// `{"Step":"cancel",...}`.
pub fn cancel_payload(secret: &str, token: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("Step".into(), "cancel".into());
    m.insert("SecretId".into(), secret.into());
    if let Some(t) = token {
        m.insert("ClientRequestToken".into(), t.into());
    }
    Value::Object(m)
}

/// `{"Step":"redrive",...}`.
pub fn redrive_payload(secret: &str) -> Value {
    json!({"Step": "redrive", "SecretId": secret})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payloads_follow_the_contract() {
        let v = "0b6b0e4e-5d49-4bd5-9c4f-6a1f5c8e2d31";
        assert_eq!(
            emergency_payload("s", "leaked", v, None, None),
            json!({"Step":"emergencyRotate","SecretId":"s","Reason":"leaked","VersionId":v})
        );
        assert_eq!(
            emergency_payload("s", "leaked", v, Some(0), Some(300)),
            json!({"Step":"emergencyRotate","SecretId":"s","Reason":"leaked","VersionId":v,"GapSeconds":0,"KeepAcceptingSeconds":300})
        );
        assert_eq!(cancel_payload("s", None), json!({"Step":"cancel","SecretId":"s"}));
        assert_eq!(
            cancel_payload("s", Some(v)),
            json!({"Step":"cancel","SecretId":"s","ClientRequestToken":v})
        );
        assert_eq!(redrive_payload("s"), json!({"Step":"redrive","SecretId":"s"}));
    }

    #[test]
    fn a_function_error_payload_is_read() {
        let e = FunctionError::from_payload(
            br#"{"errorType":"keyshift.Rejected","errorMessage":"the secret does not exist"}"#,
        );
        assert_eq!(e.error_type, "keyshift.Rejected");
        assert_eq!(e.exit(), Exit::Refused);
        assert_eq!(
            e.line(),
            "the function refused the request: keyshift.Rejected: the secret does not exist"
        );
        let e =
            FunctionError::from_payload(br#"{"errorType":"keyshift.Retryable","errorMessage":"throttled"}"#);
        assert_eq!(e.exit(), Exit::Failed);
        assert!(e.line().starts_with("the function failed: keyshift.Retryable"));
        let e = FunctionError::from_payload(b"Task timed out\n after 900.00 seconds");
        assert_eq!(e.error_type, "Unhandled");
        assert_eq!(e.message, "Task timed out after 900.00 seconds");
        assert_eq!(e.exit(), Exit::Failed);
        assert_eq!(
            e.to_json(),
            json!({"errorType":"Unhandled","errorMessage":"Task timed out after 900.00 seconds"})
        );
    }
}
