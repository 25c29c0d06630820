//! The rotation core on what the store reports: labels (anyone who may call
//! UpdateSecretVersionStage can add one, marker-shaped or not), version dates, tags
//! (T from `keyshift:gap-seconds`, read as the function reads it), replicas, and every
//! kind of invocation and operator request. `decide`, `operate::resolve` and
//! `status::status` never panic, whatever the state (each label on at most one version,
//! as Secrets Manager keeps them).
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use keyshift::decide::{Input, decide, detail, needs_full};
use keyshift::event::{Operation, OperatorRequest, ScheduleName};
use keyshift::operate::{Resolved, resolve};
use keyshift::secret::{
    AWSCURRENT, AWSPENDING, AWSPREVIOUS, ROTATING, Replica, ReplicaStatus, VersionInfo, accepted_marker,
    cancel_marker, swap_marker,
};
use keyshift::status::status;
use keyshift::{Invocation, Policy, SecretId, SecretState, Step, Timestamp, VersionId};
use keyshift_lambda::config::GAP_TAG;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// 2026-11-24T10:00:00Z: every time in a case is near it.
const BASE: i64 = 1_795_514_400_000;

fn time(u: &mut Unstructured<'_>) -> Result<Timestamp> {
    // Mostly within a few days of BASE, sometimes anywhere a marker can say.
    Ok(if u.ratio(1, 8)? {
        Timestamp::from_millis(u.int_in_range(0..=7_258_118_399_999)?)
    } else {
        Timestamp::from_millis(BASE + u.int_in_range(-400_000_000..=400_000_000)?)
    })
}

fn duration(u: &mut Unstructured<'_>) -> Result<Duration> {
    Ok(match u.int_in_range(0..=3)? {
        0 => Duration::from_secs(u.int_in_range(0..=120)?),
        1 => Duration::from_secs(u.int_in_range(0..=100_000)?),
        2 => Duration::from_millis(u.arbitrary()?),
        _ => Duration::from_secs(u.arbitrary()?),
    })
}

fn case(u: &mut Unstructured<'_>) -> Result<()> {
    let token = VersionId::new("a0b1c2d3-e4f5-4a6b-8c7d-8e9f0a1b2c3d");
    let other = VersionId::new("0f1e2d3c-4b5a-4968-8776-655443322110");
    let mut pool = vec![
        token.clone(),
        other.clone(),
        VersionId::new("11111111-2222-4333-8444-555555555555"),
        token.emergency(),
        other.emergency(),
    ];
    for _ in 0..u.int_in_range(0..=3)? {
        pool.push(token.copy(u.arbitrary()?));
    }
    if u.ratio(1, 4)? {
        pool.push(VersionId::new(u.arbitrary::<String>()?));
    }
    let pick =
        |u: &mut Unstructured<'_>, pool: &[VersionId]| -> Result<VersionId> { Ok(u.choose(pool)?.clone()) };

    let mut state = SecretState {
        rotation_enabled: u.ratio(7, 8)?,
        deleted: u.ratio(1, 16)?,
        ..SecretState::default()
    };
    for _ in 0..u.int_in_range(0..=6)? {
        let id = pick(u, &pool)?;
        let created = if u.ratio(7, 8)? { Some(time(u)?) } else { None };
        state.versions.insert(
            id,
            VersionInfo {
                stages: BTreeSet::new(),
                created,
            },
        );
    }
    // Each label on at most one version, as Secrets Manager keeps them.
    let ids: Vec<VersionId> = state.versions.keys().cloned().collect();
    if !ids.is_empty() {
        let mut labels: Vec<String> = vec![
            AWSCURRENT.into(),
            AWSPENDING.into(),
            AWSPREVIOUS.into(),
            ROTATING.into(),
        ];
        for _ in 0..u.int_in_range(0..=4)? {
            let t = time(u)?;
            labels.push(match u.int_in_range(0..=3)? {
                0 => swap_marker(t),
                1 => accepted_marker(t),
                2 => cancel_marker(t),
                _ => u.arbitrary()?,
            });
        }
        for label in labels {
            if u.ratio(1, 2)? {
                let id = u.choose(&ids)?;
                if let Some(v) = state.versions.get_mut(id) {
                    v.stages.insert(label);
                }
            }
        }
    }
    if u.ratio(1, 4)? {
        let gap = if u.ratio(1, 2)? {
            u.arbitrary::<u64>()?.to_string()
        } else {
            u.arbitrary()?
        };
        state.tags.insert(GAP_TAG.into(), gap);
    }
    for _ in 0..u.int_in_range(0..=2)? {
        let status = *u.choose(&[
            ReplicaStatus::InSync,
            ReplicaStatus::InProgress,
            ReplicaStatus::Failed,
        ])?;
        let stages = if u.ratio(1, 2)? {
            let mut labels = state.labels();
            if u.ratio(1, 3)? {
                labels.pop_first();
            }
            Some(labels)
        } else {
            None
        };
        state.replicas.push(Replica {
            region: "eu-west-1".into(),
            status,
            stages,
        });
    }

    let now = time(u)?;
    let gap = duration(u)?;
    let budget = Duration::from_secs(u.int_in_range(0..=840)?);
    let precision = match u.int_in_range(0..=2)? {
        0 => Duration::from_secs(60),
        1 => Duration::from_secs(1),
        _ => Duration::from_secs(u.int_in_range(1..=3600)?),
    };
    let base = Policy::with_precision(gap, budget, precision);
    let Ok(mut policy) = base else { return Ok(()) };
    if u.ratio(1, 2)? {
        policy = policy.with_watchdog(Some(duration(u)?));
    }
    // T as the function reads it: the secret's own tag, when it is a number T allows.
    if let Some(tag) = state.tags.get(GAP_TAG) {
        match tag
            .trim()
            .parse::<u64>()
            .ok()
            .map(|s| policy.with_gap(Duration::from_secs(s)))
        {
            Some(Ok(p)) => policy = p,
            _ => return Ok(()),
        }
    }

    let step = match u.int_in_range(0..=7)? {
        0 => Step::CreateSecret,
        1 => Step::SetSecret,
        2 => Step::TestSecret,
        3 => Step::FinishSecret,
        4 => Step::SwapPending { due: time(u)? },
        5 => Step::RemovePending {
            due: time(u)?,
            release: pick(u, &pool)?,
        },
        6 => Step::EmergencyRotate {
            gap: duration(u)?,
            keep_accepting: if u.arbitrary()? { Some(duration(u)?) } else { None },
        },
        _ => Step::Cancel,
    };
    let secret_id = SecretId::new("arn:aws:secretsmanager:us-east-1:123456789012:secret:fuzz-AbCdEf");
    let invocation = Invocation {
        step,
        secret_id: secret_id.clone(),
        token: if u.ratio(3, 4)? {
            token.clone()
        } else {
            pick(u, &pool)?
        },
        rotation_token: None,
        schedule: ScheduleName::parse("keyshift-fuzz").ok(),
    };
    let _ = needs_full(&invocation, &state);
    let _ = detail(&invocation.step, u.arbitrary()?);
    let input = Input {
        invocation: &invocation,
        secret: &state,
        now,
        policy: &policy,
        wait_budget_left: duration(u)?,
    };
    let decision = decide(&input);
    let _ = format!("{decision:?}");

    let report = status(&state, &policy, now);
    let _ = report.to_json();
    let _ = report.schedule_name(&secret_id);

    let operation = match u.int_in_range(0..=2)? {
        0 => Operation::EmergencyRotate {
            reason: "fuzz".into(),
            compromised: if u.arbitrary()? {
                Some(pick(u, &pool)?)
            } else {
                None
            },
            gap: Duration::from_secs(u.int_in_range(0..=600)?),
            keep_accepting: if u.arbitrary()? {
                Some(Duration::from_secs(u.int_in_range(1..=604_800)?))
            } else {
                None
            },
        },
        1 => Operation::Cancel {
            token: if u.arbitrary()? {
                Some(pick(u, &pool)?)
            } else {
                None
            },
        },
        _ => Operation::Redrive,
    };
    let request = OperatorRequest { secret_id, operation };
    if let Ok(Resolved::Run { invocation, .. }) = resolve(&request, &state, now) {
        let input = Input {
            invocation: &invocation,
            ..input
        };
        let _ = decide(&input);
    }
    let _: BTreeMap<_, _> = state.labels();
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = case(&mut Unstructured::new(data));
});
