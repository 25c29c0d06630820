//! The one event type for every invocation the rotation function receives.
//!
//! Secrets Manager sends `{"Step","SecretId","ClientRequestToken","RotationToken"}` with
//! the four camelCase engine steps; keyshift's own follow-ups (`swapPending`,
//! `removePending`) use the same shape plus fields of their own. Parsing is by hand from
//! a `serde_json::Value` rather than `#[derive(Deserialize)]` so that every error names
//! the field and never echoes a value: serde's messages quote the offending input, and
//! the input may be a RotationToken.
//!
//! Unknown fields are ignored, not rejected: AWS added `RotationToken` to this event in
//! 2025 and may add more; a function that refused them would break every rotation.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::ports::schedule_matches;
use crate::secret::{SecretId, VersionId};
use crate::time::Timestamp;

/// Largest payload accepted. Real events are a few hundred bytes.
pub const MAX_EVENT_BYTES: usize = 16 * 1024;

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Engine step 1: store the new value under the token with AWSPENDING.
    CreateSecret,
    /// Engine step 2: register the pending value with the target (no label change).
    SetSecret,
    /// Engine step 3: test the pending value (no side effect at all).
    TestSecret,
    /// Engine step 4: start the first gap (swap inline when it fits, else schedule it).
    FinishSecret,
    /// Follow-up: move AWSCURRENT to the token's version once `due` has passed.
    SwapPending {
        /// The earliest time the swap may happen, as computed when it was scheduled.
        due: Timestamp,
    },
    /// Follow-up: take ROTATING off `release` once `due` has passed.
    RemovePending {
        /// The earliest time the old version may stop being accepted.
        due: Timestamp,
        /// The old version that carries ROTATING.
        release: VersionId,
    },
    /// Operator: the token's version (AWSCURRENT when asked) is compromised. A new value
    /// ([`VersionId::emergency`] of the token) becomes AWSCURRENT now, after `gap` as
    /// AWSPENDING; any rotation in flight stands down; the compromised version stops
    /// being accepted and is revoked, at once or after `keep_accepting`. Built from an
    /// [`OperatorRequest`], never parsed from a payload directly.
    EmergencyRotate {
        /// How long the new value is accepted (AWSPENDING) before it is used.
        gap: Duration,
        /// How long the compromised version stays accepted (ROTATING) after the cut.
        keep_accepting: Option<Duration>,
    },
    /// Operator: end the rotation of the token before its swap. Built from an
    /// [`OperatorRequest`].
    Cancel,
}

impl Step {
    /// The wire name (`Step` field).
    pub fn name(&self) -> &'static str {
        match self {
            Step::CreateSecret => "createSecret",
            Step::SetSecret => "setSecret",
            Step::TestSecret => "testSecret",
            Step::FinishSecret => "finishSecret",
            Step::SwapPending { .. } => "swapPending",
            Step::RemovePending { .. } => "removePending",
            Step::EmergencyRotate { .. } => "emergencyRotate",
            Step::Cancel => "cancel",
        }
    }

    /// Whether an operator asked for this step (by hand, or through the `keyshift` CLI).
    pub fn is_operator_step(&self) -> bool {
        matches!(self, Step::EmergencyRotate { .. } | Step::Cancel)
    }

    /// Whether the Secrets Manager rotation engine sends this step (as opposed to a
    /// keyshift follow-up).
    pub fn is_engine_step(&self) -> bool {
        matches!(
            self,
            Step::CreateSecret | Step::SetSecret | Step::TestSecret | Step::FinishSecret
        )
    }
}

/// The steps the `Step` field may name.
pub const STEP_NAMES: [&str; 6] = [
    "createSecret",
    "setSecret",
    "testSecret",
    "finishSecret",
    "swapPending",
    "removePending",
];

/// The RotationToken Secrets Manager may send. Sensitive (AWS keeps it out of CloudTrail):
/// `Debug` shows nothing of it, and only [`RotationToken::expose`] hands it to the store.
#[derive(Clone, PartialEq, Eq)]
pub struct RotationToken(String);

impl RotationToken {
    /// The token, for PutSecretValue only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RotationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RotationToken(<redacted>)")
    }
}

/// The name of the schedule (or rule) that delivered a follow-up, so the function can
/// clean it up. EventBridge names: 1 to 64 of `[0-9a-zA-Z-_.]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScheduleName(String);

impl ScheduleName {
    /// Validates a schedule name.
    pub fn parse(name: &str) -> Result<Self, &'static str> {
        if name.is_empty() || name.len() > 64 {
            return Err("must be 1 to 64 characters");
        }
        if !name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        {
            return Err("may contain only letters, digits, '-', '_' and '.'");
        }
        Ok(ScheduleName(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ScheduleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One invocation of the rotation function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// What to do.
    pub step: Step,
    /// The secret (`SecretId`).
    pub secret_id: SecretId,
    /// The rotation's new version id (`ClientRequestToken`).
    pub token: VersionId,
    /// Passed to PutSecretValue when present (`RotationToken`).
    pub rotation_token: Option<RotationToken>,
    /// The schedule that delivered this follow-up, if any (`Schedule`).
    pub schedule: Option<ScheduleName>,
}

/// Why an event was refused. Names the field; never contains a field's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The payload is not JSON.
    #[error("invalid event: the payload is not valid JSON")]
    NotJson,
    /// The payload is JSON but not an object.
    #[error("invalid event: the payload must be a JSON object")]
    NotObject,
    /// The payload is larger than [`MAX_EVENT_BYTES`].
    #[error("invalid event: the payload is {size} bytes, more than the {limit} allowed")]
    TooLarge {
        /// The payload's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A required field is absent (or null).
    #[error("invalid event: missing field `{field}`")]
    Missing {
        /// The field's name.
        field: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("invalid event: field `{field}` must be {expected}")]
    WrongType {
        /// The field's name.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A field has the right type but a value that is not allowed.
    #[error("invalid event: field `{field}` {reason}")]
    Invalid {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `Step` names no step keyshift knows.
    #[error(
        "invalid event: field `Step` must be one of createSecret, setSecret, testSecret, finishSecret, swapPending, removePending"
    )]
    UnknownStep,
}

impl Invocation {
    /// Parses raw bytes (size-checked before any JSON work).
    pub fn from_slice(payload: &[u8]) -> Result<Self, EventError> {
        if payload.len() > MAX_EVENT_BYTES {
            return Err(EventError::TooLarge {
                size: payload.len(),
                limit: MAX_EVENT_BYTES,
            });
        }
        let value: Value = serde_json::from_slice(payload).map_err(|_| EventError::NotJson)?;
        Self::from_value(&value)
    }

    /// Parses an already-decoded JSON payload (what the Lambda runtime hands over).
    pub fn from_value(value: &Value) -> Result<Self, EventError> {
        let size = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > MAX_EVENT_BYTES {
            return Err(EventError::TooLarge {
                size,
                limit: MAX_EVENT_BYTES,
            });
        }
        let obj = value.as_object().ok_or(EventError::NotObject)?;
        let step_name = required_str(obj, "Step")?;
        let secret_id = parse_secret_id(required_str(obj, "SecretId")?)?;
        let token = parse_version_id("ClientRequestToken", required_str(obj, "ClientRequestToken")?)?;
        let rotation_token = optional_str(obj, "RotationToken")?
            .map(parse_rotation_token)
            .transpose()?;
        let schedule = optional_str(obj, "Schedule")?
            .map(|s| {
                ScheduleName::parse(s).map_err(|reason| EventError::Invalid {
                    field: "Schedule",
                    reason,
                })
            })
            .transpose()?;
        let step = match step_name {
            "createSecret" => Step::CreateSecret,
            "setSecret" => Step::SetSecret,
            "testSecret" => Step::TestSecret,
            "finishSecret" => Step::FinishSecret,
            "swapPending" => Step::SwapPending {
                due: parse_time("DueAt", required_str(obj, "DueAt")?)?,
            },
            "removePending" => Step::RemovePending {
                due: parse_time("DueAt", required_str(obj, "DueAt")?)?,
                release: parse_version_id("ReleaseVersionId", required_str(obj, "ReleaseVersionId")?)?,
            },
            _ => return Err(EventError::UnknownStep),
        };
        if let Some(name) = &schedule {
            // The function deletes the schedule (or rule) that delivered a follow-up: a
            // name it did not give this very follow-up must never reach that delete.
            let named = match &step {
                Step::SwapPending { .. } => Some((&["swap", crate::ports::WATCHDOG_KIND][..], &token)),
                Step::RemovePending { release, .. } => Some((&["release"][..], release)),
                _ => None,
            };
            if !named.is_some_and(|(kinds, version)| schedule_matches(name, &secret_id, kinds, version)) {
                return Err(EventError::Invalid {
                    field: "Schedule",
                    reason: "is not the name keyshift gives this follow-up's schedule",
                });
            }
        }
        if !step.is_engine_step() && rotation_token.is_some() {
            // Follow-ups are built by keyshift and never carry the engine's token; one that
            // does was hand-made from an engine event, and the token would end up stored in
            // a schedule's payload.
            return Err(EventError::Invalid {
                field: "RotationToken",
                reason: "is only accepted on the four engine steps",
            });
        }
        Ok(Invocation {
            step,
            secret_id,
            token,
            rotation_token,
            schedule,
        })
    }

    /// The JSON payload of this invocation, as a schedule delivers it. A RotationToken is
    /// never written out: only the engine's own synchronous call may carry it.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("Step".into(), self.step.name().into());
        m.insert("SecretId".into(), self.secret_id.as_str().into());
        m.insert("ClientRequestToken".into(), self.token.as_str().into());
        match &self.step {
            Step::SwapPending { due } => {
                m.insert("DueAt".into(), due.to_rfc3339().into());
            }
            Step::RemovePending { due, release } => {
                m.insert("DueAt".into(), due.to_rfc3339().into());
                m.insert("ReleaseVersionId".into(), release.as_str().into());
            }
            Step::EmergencyRotate { gap, keep_accepting } => {
                m.insert("GapSeconds".into(), gap.as_secs().into());
                if let Some(keep) = keep_accepting {
                    m.insert("KeepAcceptingSeconds".into(), keep.as_secs().into());
                }
            }
            Step::CreateSecret | Step::SetSecret | Step::TestSecret | Step::FinishSecret | Step::Cancel => {}
        }
        if let Some(s) = &self.schedule {
            m.insert("Schedule".into(), s.as_str().into());
        }
        Value::Object(m)
    }
}

/// An operator's `{"Step": "status", "SecretId": "..."}`: `Ok(Some(secret))` when the
/// payload asks for a status report, `Ok(None)` for any other step (parse it with
/// [`Invocation::from_value`]), and an error for a status request that is malformed
/// (not an object, too large, no or a bad `SecretId`, or any other field: a report
/// changes nothing and takes nothing else).
pub fn status_request(value: &Value) -> Result<Option<SecretId>, EventError> {
    let Some(obj) = value.as_object() else {
        return Ok(None);
    };
    if obj.get("Step").and_then(Value::as_str) != Some("status") {
        return Ok(None);
    }
    let size = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge {
            size,
            limit: MAX_EVENT_BYTES,
        });
    }
    if obj.keys().any(|k| k != "Step" && k != "SecretId") {
        return Err(EventError::Invalid {
            field: "Step",
            reason: "status takes only `SecretId`",
        });
    }
    parse_secret_id(required_str(obj, "SecretId")?).map(Some)
}

/// What an operator asks for by hand (or through the `keyshift` CLI), beyond a status
/// report. Each is resolved against the secret as it is ([`crate::operate::resolve`])
/// into an [`Invocation`] the core decides like any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRequest {
    /// The secret (`SecretId`).
    pub secret_id: SecretId,
    /// What to do.
    pub operation: Operation,
}

/// The operations an operator may ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `{"Step": "emergencyRotate", "SecretId", "Reason", "VersionId"?, "GapSeconds"?,
    /// "KeepAcceptingSeconds"?}`: the current value is compromised; cut over now.
    EmergencyRotate {
        /// Why (required; logged, returned, never a secret).
        reason: String,
        /// The compromised version (`VersionId`); AWSCURRENT when absent. Pass it to make
        /// a rerun of the same emergency a no-op (the CLI does).
        compromised: Option<VersionId>,
        /// `GapSeconds`: accept the new value this long before using it (default 0).
        gap: Duration,
        /// `KeepAcceptingSeconds`: keep accepting the compromised version this long after
        /// the cut (a suspected, not a known, compromise). At most T.
        keep_accepting: Option<Duration>,
    },
    /// `{"Step": "cancel", "SecretId", "ClientRequestToken"?}`: end the rotation in flight
    /// (the one with that token, when given) before its swap.
    Cancel {
        /// The rotation's token, if the operator names it.
        token: Option<VersionId>,
    },
    /// `{"Step": "redrive", "SecretId"}`: run the due follow-up of the rotation in flight
    /// now, with every check it makes when its schedule delivers it.
    Redrive,
}

impl Operation {
    /// The wire name (`Step` field).
    pub fn name(&self) -> &'static str {
        match self {
            Operation::EmergencyRotate { .. } => "emergencyRotate",
            Operation::Cancel { .. } => "cancel",
            Operation::Redrive => "redrive",
        }
    }
}

/// Longest `Reason` an emergency takes.
pub const MAX_REASON_CHARS: usize = 256;
/// Longest emergency `GapSeconds` (the function waits it out inline).
pub const MAX_EMERGENCY_GAP_SECS: u64 = 600;
/// Longest `KeepAcceptingSeconds` the parser takes (the core also caps it at T).
pub const MAX_KEEP_ACCEPTING_SECS: u64 = 7 * 24 * 3600;

/// An operator's request: `Ok(Some(..))` when `Step` is `emergencyRotate`, `cancel` or
/// `redrive`, `Ok(None)` for any other step, and an error for a malformed one (every
/// field is checked; a field the operation does not take is refused, because a typo in
/// an emergency must not be silently ignored).
pub fn operator_request(value: &Value) -> Result<Option<OperatorRequest>, EventError> {
    let Some(obj) = value.as_object() else {
        return Ok(None);
    };
    let step = obj.get("Step").and_then(Value::as_str);
    let allowed: &[&str] = match step {
        Some("emergencyRotate") => &[
            "Step",
            "SecretId",
            "Reason",
            "VersionId",
            "GapSeconds",
            "KeepAcceptingSeconds",
        ],
        Some("cancel") => &["Step", "SecretId", "ClientRequestToken"],
        Some("redrive") => &["Step", "SecretId"],
        _ => return Ok(None),
    };
    let size = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge {
            size,
            limit: MAX_EVENT_BYTES,
        });
    }
    if obj.keys().any(|k| !allowed.contains(&k.as_str())) {
        return Err(EventError::Invalid {
            field: "Step",
            reason: match step {
                Some("emergencyRotate") => {
                    "emergencyRotate takes only `SecretId`, `Reason`, `VersionId`, `GapSeconds` and `KeepAcceptingSeconds`"
                }
                Some("cancel") => "cancel takes only `SecretId` and `ClientRequestToken`",
                _ => "redrive takes only `SecretId`",
            },
        });
    }
    let secret_id = parse_secret_id(required_str(obj, "SecretId")?)?;
    let operation = match step {
        Some("emergencyRotate") => {
            let reason = required_str(obj, "Reason")?.trim();
            if reason.is_empty() {
                return Err(EventError::Invalid {
                    field: "Reason",
                    reason: "must say why (it is logged and returned)",
                });
            }
            if reason.chars().count() > MAX_REASON_CHARS {
                return Err(EventError::Invalid {
                    field: "Reason",
                    reason: "must be at most 256 characters",
                });
            }
            if reason.chars().any(char::is_control) {
                return Err(EventError::Invalid {
                    field: "Reason",
                    reason: "must not contain control characters",
                });
            }
            let compromised = optional_str(obj, "VersionId")?
                .map(|v| parse_version_id("VersionId", v))
                .transpose()?;
            let gap = optional_secs(obj, "GapSeconds", 0, MAX_EMERGENCY_GAP_SECS)?.unwrap_or(0);
            let keep = optional_secs(obj, "KeepAcceptingSeconds", 1, MAX_KEEP_ACCEPTING_SECS)?;
            Operation::EmergencyRotate {
                reason: reason.to_owned(),
                compromised,
                gap: Duration::from_secs(gap),
                keep_accepting: keep.map(Duration::from_secs),
            }
        }
        Some("cancel") => Operation::Cancel {
            token: optional_str(obj, "ClientRequestToken")?
                .map(|v| parse_version_id("ClientRequestToken", v))
                .transpose()?,
        },
        _ => Operation::Redrive,
    };
    Ok(Some(OperatorRequest { secret_id, operation }))
}

/// An optional whole number of seconds in `min..=max`.
fn optional_secs(
    obj: &Map<String, Value>,
    field: &'static str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, EventError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
            _ => Err(EventError::Invalid {
                field,
                reason: if field == "GapSeconds" {
                    "must be a whole number of seconds from 0 to 600"
                } else {
                    "must be a whole number of seconds from 1 to 604800"
                },
            }),
        },
        Some(_) => Err(EventError::WrongType {
            field,
            expected: "a whole number of seconds",
        }),
    }
}

fn required_str<'a>(obj: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, EventError> {
    optional_str(obj, field)?.ok_or(EventError::Missing { field })
}

fn optional_str<'a>(obj: &'a Map<String, Value>, field: &'static str) -> Result<Option<&'a str>, EventError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(EventError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

fn parse_secret_id(s: &str) -> Result<SecretId, EventError> {
    let field = "SecretId";
    if s.is_empty() {
        return Err(EventError::Invalid {
            field,
            reason: "is empty",
        });
    }
    if s.chars().count() > SecretId::MAX_LEN {
        return Err(EventError::Invalid {
            field,
            reason: "is longer than 2048 characters",
        });
    }
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(EventError::Invalid {
            field,
            reason: "contains whitespace or control characters",
        });
    }
    Ok(SecretId::new(s))
}

/// Version ids and ClientRequestTokens: 32 to 64 characters. AWS's own tokens are UUIDs;
/// we accept letters, digits, '-' and '_' so an id can never smuggle markup into a log.
pub fn parse_version_id(field: &'static str, s: &str) -> Result<VersionId, EventError> {
    if s.len() < VersionId::MIN_LEN || s.len() > VersionId::MAX_LEN {
        return Err(EventError::Invalid {
            field,
            reason: "must be 32 to 64 characters",
        });
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    {
        return Err(EventError::Invalid {
            field,
            reason: "may contain only letters, digits, '-' and '_'",
        });
    }
    Ok(VersionId::new(s))
}

fn parse_rotation_token(s: &str) -> Result<RotationToken, EventError> {
    // RotationTokenType: 36 to 256 characters of [a-zA-Z0-9-] (Secrets Manager API model).
    let field = "RotationToken";
    if s.len() < 36 || s.len() > 256 {
        return Err(EventError::Invalid {
            field,
            reason: "must be 36 to 256 characters",
        });
    }
    if !s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
        return Err(EventError::Invalid {
            field,
            reason: "may contain only letters, digits and '-'",
        });
    }
    Ok(RotationToken(s.to_owned()))
}

fn parse_time(field: &'static str, s: &str) -> Result<Timestamp, EventError> {
    Timestamp::parse_rfc3339(s).map_err(|_| EventError::Invalid {
        field,
        reason: "must be an RFC 3339 UTC time such as 2026-11-24T10:00:00Z",
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod status_request_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_status_request_names_a_secret_and_nothing_else() {
        let ok = json!({"Step": "status", "SecretId": "prod/signing"});
        assert_eq!(status_request(&ok), Ok(Some(SecretId::new("prod/signing"))));
        assert_eq!(
            status_request(&json!({"Step": "createSecret", "SecretId": "s"})),
            Ok(None)
        );
        assert_eq!(status_request(&json!([1, 2])), Ok(None));
        for bad in [
            json!({"Step": "status"}),
            json!({"Step": "status", "SecretId": 7}),
            json!({"Step": "status", "SecretId": ""}),
            json!({"Step": "status", "SecretId": "s", "ClientRequestToken": "t"}),
            json!({"Step": "status", "SecretId": "x".repeat(3000)}),
        ] {
            let e = status_request(&bad).expect_err("refused");
            assert!(e.to_string().starts_with("invalid event"), "{e}");
        }
    }
}
