use serde_json::json;

use super::*;

const TOKEN: &str = "5b2f3f8e-9d1a-4c55-8a41-0f6a5c6a9b11";
const ROT: &str = "7a3c9d2e-1b4f-4e8a-9c6d-2f1e0a9b8c7d-rot";
const ARN: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:demo-AbCdEf";

fn engine(step: &str) -> Value {
    json!({"Step": step, "SecretId": ARN, "ClientRequestToken": TOKEN})
}

#[test]
fn parses_the_four_engine_steps() {
    for (name, step) in [
        ("createSecret", Step::CreateSecret),
        ("setSecret", Step::SetSecret),
        ("testSecret", Step::TestSecret),
        ("finishSecret", Step::FinishSecret),
    ] {
        let inv = Invocation::from_value(&engine(name)).unwrap();
        assert_eq!(inv.step, step);
        assert_eq!(inv.secret_id.as_str(), ARN);
        assert_eq!(inv.token.as_str(), TOKEN);
        assert!(inv.rotation_token.is_none());
        assert!(inv.step.is_engine_step());
    }
}

#[test]
fn rotation_token_is_kept_but_never_shown() {
    let mut v = engine("createSecret");
    v["RotationToken"] = json!(ROT);
    let inv = Invocation::from_value(&v).unwrap();
    assert_eq!(inv.rotation_token.as_ref().unwrap().expose(), ROT);
    let shown = format!("{inv:?} {:#?}", inv);
    assert!(!shown.contains(ROT) && !shown.contains("rot\""), "{shown}");
    assert!(!inv.to_value().to_string().contains(ROT));
}

#[test]
fn follow_ups_round_trip() {
    let due = Timestamp::parse_rfc3339("2026-11-24T10:05:00Z").unwrap();
    let release = VersionId::new("0".repeat(32));
    let secret = SecretId::new(ARN);
    let token = VersionId::new(TOKEN);
    for (step, schedule) in [
        (
            Step::SwapPending { due },
            crate::ports::schedule_name(&secret, "swap", &token, due),
        ),
        (
            Step::SwapPending { due },
            crate::ports::schedule_name(&secret, "watch", &token, due),
        ),
        (
            Step::RemovePending {
                due,
                release: release.clone(),
            },
            crate::ports::schedule_name(&secret, "release", &release, due),
        ),
    ] {
        let inv = Invocation {
            step,
            secret_id: secret.clone(),
            token: token.clone(),
            rotation_token: None,
            schedule: Some(schedule),
        };
        let back = Invocation::from_value(&inv.to_value()).unwrap();
        assert_eq!(back, inv);
        assert!(!back.step.is_engine_step());
    }
}

#[test]
fn a_schedule_name_keyshift_did_not_give_this_follow_up_is_refused() {
    // The function deletes the schedule (or rule) named in `Schedule`: a hand-made
    // payload must not get it to delete another secret's, another version's, or another
    // kind's follow-up.
    let due = Timestamp::parse_rfc3339("2026-11-24T10:05:00Z").unwrap();
    let secret = SecretId::new(ARN);
    let token = VersionId::new(TOKEN);
    let other_secret = SecretId::new("arn:aws:secretsmanager:us-east-1:123456789012:secret:other-AbCdEf");
    let other_version = VersionId::new("1".repeat(32));
    let release = VersionId::new("0".repeat(32));
    let swap = |schedule: &str| {
        json!({"Step": "swapPending", "SecretId": ARN, "ClientRequestToken": TOKEN,
               "DueAt": "2026-11-24T10:05:00Z", "Schedule": schedule})
    };
    let remove = |schedule: &str| {
        json!({"Step": "removePending", "SecretId": ARN, "ClientRequestToken": TOKEN,
               "DueAt": "2026-11-24T10:05:00Z", "ReleaseVersionId": release.as_str(), "Schedule": schedule})
    };
    let name =
        |s: &SecretId, kind: &str, v: &VersionId| crate::ports::schedule_name(s, kind, v, due).to_string();
    let refused = |v: Value| {
        assert_eq!(
            err(v),
            EventError::Invalid {
                field: "Schedule",
                reason: "is not the name keyshift gives this follow-up's schedule"
            }
        );
    };
    refused(swap(&name(&other_secret, "swap", &token)));
    refused(swap(&name(&secret, "swap", &other_version)));
    refused(swap(&name(&secret, "release", &token)));
    refused(swap("ks-anything"));
    refused(swap(&format!("{}-x", name(&secret, "swap", &token))));
    refused(remove(&name(&secret, "release", &token)));
    refused(remove(&name(&secret, "swap", &release)));
    let mut engine_with_schedule = engine("createSecret");
    engine_with_schedule["Schedule"] = name(&secret, "swap", &token).into();
    refused(engine_with_schedule);
    // Its own names pass, at any fire time.
    assert!(Invocation::from_value(&swap(&name(&secret, "swap", &token))).is_ok());
    assert!(Invocation::from_value(&swap(&name(&secret, "watch", &token))).is_ok());
    assert!(Invocation::from_value(&remove(&name(&secret, "release", &release))).is_ok());
}

fn err(v: Value) -> EventError {
    Invocation::from_value(&v).unwrap_err()
}

#[test]
fn missing_and_mistyped_fields_are_named() {
    for field in ["Step", "SecretId", "ClientRequestToken"] {
        let mut v = engine("createSecret");
        v.as_object_mut().unwrap().remove(field);
        let e = err(v);
        assert_eq!(
            e,
            EventError::Missing {
                field: match field {
                    "Step" => "Step",
                    "SecretId" => "SecretId",
                    _ => "ClientRequestToken",
                }
            }
        );
        assert!(e.to_string().contains(field), "{e}");
    }
    let mut v = engine("createSecret");
    v["SecretId"] = json!(42);
    assert_eq!(
        err(v),
        EventError::WrongType {
            field: "SecretId",
            expected: "a string"
        }
    );
    let mut v = engine("createSecret");
    v["ClientRequestToken"] = Value::Null;
    assert_eq!(
        err(v),
        EventError::Missing {
            field: "ClientRequestToken"
        }
    );
    assert_eq!(err(json!([1, 2])), EventError::NotObject);
    assert_eq!(Invocation::from_slice(b"{not json"), Err(EventError::NotJson));
}

#[test]
fn follow_ups_need_their_own_fields() {
    let mut v = engine("swapPending");
    assert_eq!(err(v.clone()), EventError::Missing { field: "DueAt" });
    v["DueAt"] = json!("tomorrow");
    assert!(matches!(err(v), EventError::Invalid { field: "DueAt", .. }));
    let mut v = engine("removePending");
    v["DueAt"] = json!("2026-11-24T10:05:00Z");
    assert_eq!(
        err(v.clone()),
        EventError::Missing {
            field: "ReleaseVersionId"
        }
    );
    v["ReleaseVersionId"] = json!("short");
    assert!(matches!(
        err(v),
        EventError::Invalid {
            field: "ReleaseVersionId",
            ..
        }
    ));
}

#[test]
fn rejects_unknown_steps_and_bad_values_without_echoing_them() {
    let secretish = "AKIA-very-secret-material-0123456789-abcdef";
    let mut v = engine(secretish);
    assert_eq!(err(v.clone()), EventError::UnknownStep);
    v["Step"] = json!("createSecret");
    v["ClientRequestToken"] = json!(format!("{secretish}<script>"));
    let e = err(v);
    assert!(matches!(
        e,
        EventError::Invalid {
            field: "ClientRequestToken",
            ..
        }
    ));
    assert!(!e.to_string().contains(secretish));

    let mut v = engine("createSecret");
    v["RotationToken"] = json!(format!("{secretish}!!"));
    let e = err(v);
    assert!(matches!(
        e,
        EventError::Invalid {
            field: "RotationToken",
            ..
        }
    ));
    assert!(!e.to_string().contains(secretish) && !format!("{e:?}").contains(secretish));

    let mut v = engine("createSecret");
    v["RotationToken"] = json!(12345);
    assert_eq!(
        err(v),
        EventError::WrongType {
            field: "RotationToken",
            expected: "a string"
        }
    );
}

#[test]
fn rejects_oversized_values_and_payloads() {
    let mut v = engine("createSecret");
    v["SecretId"] = json!("a".repeat(2049));
    assert!(matches!(
        err(v),
        EventError::Invalid {
            field: "SecretId",
            ..
        }
    ));
    let mut v = engine("createSecret");
    v["ClientRequestToken"] = json!("a".repeat(65));
    assert!(matches!(
        err(v),
        EventError::Invalid {
            field: "ClientRequestToken",
            ..
        }
    ));
    let mut v = engine("createSecret");
    v["Padding"] = json!("x".repeat(MAX_EVENT_BYTES));
    assert!(matches!(err(v.clone()), EventError::TooLarge { .. }));
    let bytes = serde_json::to_vec(&v).unwrap();
    assert!(matches!(
        Invocation::from_slice(&bytes),
        Err(EventError::TooLarge { .. })
    ));
    let mut v = engine("createSecret");
    v["SecretId"] = json!("name with space");
    assert!(matches!(
        err(v),
        EventError::Invalid {
            field: "SecretId",
            ..
        }
    ));
}

#[test]
fn unknown_fields_are_ignored() {
    let mut v = engine("setSecret");
    v["SomethingAwsAddsLater"] = json!({"nested": true});
    assert_eq!(Invocation::from_value(&v).unwrap().step, Step::SetSecret);
}

#[test]
fn follow_ups_refuse_a_rotation_token() {
    let mut v = engine("swapPending");
    v["DueAt"] = json!("2026-11-24T10:05:00Z");
    v["RotationToken"] = json!(ROT);
    assert!(matches!(
        err(v),
        EventError::Invalid {
            field: "RotationToken",
            ..
        }
    ));
}

#[test]
fn schedule_names_follow_eventbridge_rules() {
    assert!(ScheduleName::parse("ks-0123.abc_DEF").is_ok());
    assert!(ScheduleName::parse("").is_err());
    assert!(ScheduleName::parse(&"a".repeat(65)).is_err());
    assert!(ScheduleName::parse("has space").is_err());
    assert!(ScheduleName::parse("slash/no").is_err());
}

#[test]
fn operator_requests_parse_with_their_options() {
    let r = operator_request(&json!({
        "Step": "emergencyRotate", "SecretId": "prod/key", "Reason": "  leaked in a paste  ",
        "VersionId": "0b0e4c1e-5b7a-4c55-9d2e-6f1a2b3c4d5e", "GapSeconds": 20, "KeepAcceptingSeconds": 60
    }))
    .unwrap()
    .unwrap();
    assert_eq!(r.secret_id.as_str(), "prod/key");
    assert_eq!(
        r.operation,
        Operation::EmergencyRotate {
            reason: "leaked in a paste".into(),
            compromised: Some(VersionId::new("0b0e4c1e-5b7a-4c55-9d2e-6f1a2b3c4d5e")),
            gap: std::time::Duration::from_secs(20),
            keep_accepting: Some(std::time::Duration::from_secs(60)),
        }
    );
    let r = operator_request(&json!({"Step": "emergencyRotate", "SecretId": "k", "Reason": "x"}))
        .unwrap()
        .unwrap();
    assert!(
        matches!(r.operation, Operation::EmergencyRotate { gap, keep_accepting: None, compromised: None, .. } if gap.is_zero())
    );
    let r = operator_request(&json!({"Step": "cancel", "SecretId": "k"}))
        .unwrap()
        .unwrap();
    assert_eq!(r.operation, Operation::Cancel { token: None });
    let r = operator_request(&json!({"Step": "redrive", "SecretId": "k"}))
        .unwrap()
        .unwrap();
    assert_eq!(r.operation, Operation::Redrive);
    // Not an operator request: left to the other parsers.
    for other in [
        json!({"Step": "createSecret"}),
        json!({"Step": "status"}),
        json!([1]),
        json!("cancel"),
    ] {
        assert_eq!(operator_request(&other).unwrap(), None, "{other}");
    }
}

#[test]
fn hostile_operator_requests_get_a_clear_error_that_echoes_nothing() {
    let long = "x".repeat(257);
    let cases = [
        json!({"Step": "emergencyRotate", "SecretId": "k"}),
        json!({"Step": "emergencyRotate", "SecretId": "k", "Reason": "   "}),
        json!({"Step": "emergencyRotate", "SecretId": "k", "Reason": long}),
        json!({"Step": "emergencyRotate", "SecretId": "k", "Reason": "a\u{7}b"}),
        json!({"Step": "emergencyRotate", "SecretId": "k", "Reason": "r", "hunter2-field": "hunter2"}),
        json!({"Step": "emergencyRotate", "SecretId": "k", "Reason": "r", "GapSeconds": 601}),
        json!({"Step": "emergencyRotate", "SecretId": "k", "Reason": "r", "GapSeconds": -1}),
        json!({"Step": "emergencyRotate", "SecretId": "k", "Reason": "r", "GapSeconds": 1.5}),
        json!({"Step": "emergencyRotate", "SecretId": "k", "Reason": "r", "GapSeconds": "10"}),
        json!({"Step": "emergencyRotate", "SecretId": "k", "Reason": "r", "KeepAcceptingSeconds": 0}),
        json!({"Step": "emergencyRotate", "SecretId": "k", "Reason": "r", "VersionId": "hunter2"}),
        json!({"Step": "emergencyRotate", "Reason": "r"}),
        json!({"Step": "cancel", "SecretId": "k", "ClientRequestToken": "hunter2"}),
        json!({"Step": "cancel", "SecretId": "k", "RotationToken": "hunter2-hunter2-hunter2-hunter2-hunter2"}),
        json!({"Step": "redrive", "SecretId": "k", "DueAt": "2020-01-01T00:00:00Z"}),
        json!({"Step": "redrive", "SecretId": ""}),
    ];
    for case in cases {
        let e = operator_request(&case).expect_err(&case.to_string());
        let text = e.to_string();
        assert!(text.starts_with("invalid event:"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("xxxx"), "{text}");
    }
}
