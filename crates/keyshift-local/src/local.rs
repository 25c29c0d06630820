//! A whole rotation on the emulator, through the real runtime path: moto's server as
//! Secrets Manager and EventBridge Scheduler, the release binary under `cargo lambda
//! watch` ([`crate::rig`]), a driver that plays the rotation engine and the scheduler,
//! and a fleet of keyshift-client instances on the real Rust SDK ([`crate::fleet`]).
//!
//! The function reaches moto through a counting proxy, and the driver makes one
//! invocation at a time, so every AWS call the function makes is counted against the
//! invocation that made it ([`crate::calls`]). The driver itself (RotateSecret, the
//! schedule list, the fleet, the label monitor) talks to moto directly and is not
//! counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyshift::secret::{AWSCURRENT, AWSPENDING, ROTATING};
use keyshift_client::Config;
use rand::Rng;
use serde_json::json;

use crate::calls::{CallTable, Origin};
use crate::fleet::Fleet;
use crate::rig::{Invoker, Rig, SchedulerDriver, await_convergence, begin_rotation, engine_steps};

/// The schedule group the function schedules into (created on the emulator).
pub const GROUP: &str = "keyshift";
/// The function's ARN as the follow-ups name it.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:keyshift-rotation";
/// The role the scheduler would assume.
pub const SCHEDULER_ROLE_ARN: &str = "arn:aws:iam::123456789012:role/keyshift-scheduler";

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// T, in seconds.
    pub gap_secs: u64,
    /// The inline budget, in seconds.
    pub budget_secs: u64,
    /// How often each consumer refreshes (R < T).
    pub refresh: Duration,
    /// Consumer instances (each also produces).
    pub consumers: usize,
    /// Rotations, one after the other.
    pub rotations: usize,
    /// Where the function's output goes.
    pub log: std::path::PathBuf,
    /// The function's `RUST_LOG` (`info` as deployed; `trace` to check that even the
    /// most verbose log carries no value or RotationToken).
    pub rust_log: String,
}

/// A measured gap, bounded by the label samples around its two ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap {
    /// 1 (pending → current) or 2 (current → released).
    pub which: u8,
    /// The gap is at least this long.
    pub at_least: Duration,
    /// ...and at most this long.
    pub at_most: Duration,
}

/// What a run showed.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Rotations that reached the clean end state.
    pub converged: usize,
    /// Consumer operations (a producer's value checked by a consumer).
    pub operations: u64,
    /// Of which failed.
    pub failed: u64,
    /// Every gap measured.
    pub gaps: Vec<Gap>,
    /// Follow-ups the driver fired from the schedule list.
    pub fired: u64,
    /// Every value the secret had (to check that no log line shows one).
    pub values: Vec<String>,
    /// RotationTokens sent (same).
    pub rotation_tokens: Vec<String>,
    /// Malformed or wrong invocations tried, each refused with no label change.
    pub refused: Vec<String>,
    /// The AWS calls the function made, per invocation.
    pub calls: CallTable,
    /// Status reports asked of the function during rotation 0: (when, phase).
    pub statuses: Vec<(String, String)>,
}

pub(crate) type Labels = BTreeMap<String, BTreeSet<String>>;

/// Label samples of one secret, with the time each read started.
pub(crate) type Samples = Arc<Mutex<Vec<(Instant, Labels)>>>;

/// The label monitor: samples `arn`'s labels every 50 ms until `stop`, printing each
/// change on the timeline after `prefix`.
pub(crate) fn monitor_labels(
    sm: &aws_sdk_secretsmanager::Client,
    arn: &str,
    prefix: String,
    stop: &Arc<AtomicBool>,
    timeline: &Timeline,
) -> (Samples, tokio::task::JoinHandle<()>) {
    let samples: Samples = Arc::default();
    let (sm, arn, stop, seen, tl) = (
        sm.clone(),
        arn.to_owned(),
        stop.clone(),
        samples.clone(),
        timeline.clone(),
    );
    let task = tokio::spawn(async move {
        let mut last: Option<Labels> = None;
        while !stop.load(Ordering::SeqCst) {
            let before = Instant::now();
            if let Ok(l) = labels(&sm, &arn).await {
                if last.as_ref() != Some(&l) {
                    tl.say(format!("{prefix}labels  {}", show(&l)));
                    last = Some(l.clone());
                }
                seen.lock().unwrap_or_else(|e| e.into_inner()).push((before, l));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (samples, task)
}

/// Prints timeline lines with the time since the start.
#[derive(Debug, Clone)]
pub struct Timeline {
    start: Instant,
    lines: Arc<Mutex<Vec<String>>>,
    echo: bool,
}

impl Timeline {
    /// A timeline that also prints each line when `echo`.
    pub fn new(echo: bool) -> Self {
        Timeline {
            start: Instant::now(),
            lines: Arc::default(),
            echo,
        }
    }

    /// Adds a line.
    pub fn say(&self, text: impl AsRef<str>) {
        let line = format!("[+{:8.3}s] {}", self.start.elapsed().as_secs_f64(), text.as_ref());
        if self.echo {
            println!("{line}");
        }
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
}

pub(crate) fn short(v: &str) -> &str {
    &v[..v.len().min(8)]
}

pub(crate) fn show(labels: &Labels) -> String {
    labels
        .iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(v, s)| format!("{}:{}", short(v), s.iter().cloned().collect::<Vec<_>>().join("+")))
        .collect::<Vec<_>>()
        .join("  ")
}

pub(crate) async fn labels(sm: &aws_sdk_secretsmanager::Client, secret: &str) -> Result<Labels, String> {
    let d = sm
        .describe_secret()
        .secret_id(secret)
        .send()
        .await
        .map_err(|e| format!("DescribeSecret: {e}"))?;
    Ok(d.version_ids_to_stages()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                .collect()
        })
        .unwrap_or_default())
}

pub(crate) fn holder<'a>(l: &'a Labels, stage: &str) -> Option<&'a String> {
    l.iter().find(|(_, s)| s.contains(stage)).map(|(v, _)| v)
}

/// Runs the whole thing: start the emulator and the runtime, rotate, stop everything.
pub async fn run(opts: &Options, timeline: &Timeline) -> Result<Summary, String> {
    let rig = Rig::start(
        opts.gap_secs,
        opts.budget_secs,
        &opts.rust_log,
        Vec::new(),
        &opts.log,
        timeline,
    )
    .await?;
    let arn = create_secret(&rig, timeline).await?;
    let mut summary = Summary::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    // The label monitor: samples every 50 ms, prints each change.
    let (samples, monitor) = monitor_labels(&rig.sm, &arn, String::new(), &stop, timeline);
    tasks.push(monitor);
    // The consumer fleet: keyshift-client instances refreshing every R/2 to R; every
    // 20 ms one instance's current value is checked against another's window.
    let fleet = Fleet::start(&rig.sm, &arn, "password", opts.consumers, &fleet_config(opts)?).await?;
    tasks.push(fleet.operate_until(Duration::from_millis(20), &stop, timeline));
    let scheduler = SchedulerDriver::start(&rig.sched, &rig.invoker, &stop, timeline);

    tokio::time::sleep(opts.refresh * 2).await;
    for n in 0..opts.rotations {
        let converged = rotation(&rig, opts, timeline, &arn, n, &mut summary).await?;
        summary.converged += usize::from(converged);
        tokio::time::sleep(opts.refresh * 2).await;
    }
    // Every delivery ends before the calls are summed up.
    let deadline = Duration::from_secs(opts.budget_secs + 60);
    summary.fired = scheduler
        .finish(&stop, tasks, Duration::from_secs(3), deadline)
        .await;
    summary.calls = CallTable {
        rows: std::mem::take(&mut *rig.invoker.rows.lock().unwrap_or_else(|e| e.into_inner())),
        counted: rig.invoker.proxy.by_operation().values().sum(),
    };
    summary.operations = fleet.operations();
    summary.failed = fleet.failed();
    summary.gaps = gaps(&samples.lock().unwrap_or_else(|e| e.into_inner()));
    // Every value the secret ever had, for the log check.
    summary.values = rig.values(&arn).await?;
    Ok(summary)
}

/// The demo's secret, with a random 40-character first value.
async fn create_secret(rig: &Rig, timeline: &Timeline) -> Result<String, String> {
    let initial: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    let created = rig
        .sm
        .create_secret()
        .name("keyshift-demo/api-key")
        .secret_string(&initial)
        .send()
        .await
        .map_err(|e| format!("CreateSecret: {e}"))?;
    let arn = created.arn().unwrap_or_default().to_owned();
    timeline.say(format!("created the secret {arn}"));
    Ok(arn)
}

/// The fleet's client configuration: T, refreshes every R/2 to R, and a read lag of T/8
/// (moto is consistent; the bound still has to fit under T).
fn fleet_config(opts: &Options) -> Result<Config, String> {
    let gap = Duration::from_secs(opts.gap_secs);
    Config::builder(gap)
        .read_lag(gap / 8)
        .refresh(opts.refresh / 2, opts.refresh)
        .build()
        .map_err(|e| format!("the fleet's configuration: {e}"))
}

/// Rotation `n`: RotateSecret, the engine's four steps, and the wait for the clean end
/// state. The first rotation also asks the function for its status report before, after
/// finishSecret and after, and tries the malformed and wrong invocations.
async fn rotation(
    rig: &Rig,
    opts: &Options,
    timeline: &Timeline,
    arn: &str,
    n: usize,
    summary: &mut Summary,
) -> Result<bool, String> {
    let label = format!("rotation {n}:");
    let invoker = &rig.invoker;
    if n == 0 {
        summary
            .statuses
            .push(("before".into(), status(invoker, arn, timeline).await?));
    }
    let started = begin_rotation(&rig.sm, invoker, timeline, &label, arn, n).await?;
    summary.rotation_tokens.push(started.rotation_token.clone());
    if n == 0 {
        summary.refused = refusals(invoker, &rig.sm, arn, &started.token, timeline).await?;
    }
    engine_steps(invoker, timeline, &label, arn, &started).await?;
    if n == 0 {
        summary
            .statuses
            .push(("after finishSecret".into(), status(invoker, arn, timeline).await?));
    }
    let within = Duration::from_secs(opts.gap_secs * 3 + 150);
    let converged = await_convergence(&rig.sm, timeline, &label, arn, &started, within).await?;
    if converged && n == 0 {
        summary
            .statuses
            .push(("after".into(), status(invoker, arn, timeline).await?));
    }
    Ok(converged)
}

/// Asks the function for the secret's status report (`{"Step":"status"}`); its phase.
async fn status(invoker: &Invoker, arn: &str, timeline: &Timeline) -> Result<String, String> {
    let r = invoker
        .invoke(Origin::Operator, &json!({"Step": "status", "SecretId": arn}))
        .await
        .map_err(|e| format!("status: {e}"))?;
    let phase = r["phase"].as_str().unwrap_or("?").to_owned();
    timeline.say(format!(
        "status: {phase}; accepted {}; next {}",
        r["accepted"],
        r["next"]["move"].as_str().unwrap_or("none")
    ));
    Ok(phase)
}

/// Malformed and wrong invocations: each must be refused, and change no label.
async fn refusals(
    invoker: &Invoker,
    sm: &aws_sdk_secretsmanager::Client,
    arn: &str,
    token: &str,
    timeline: &Timeline,
) -> Result<Vec<String>, String> {
    let bad = [
        json!({"Step": "rotateEverything", "SecretId": arn, "ClientRequestToken": token}),
        json!({"Step": "createSecret", "SecretId": arn}),
        json!({"Step": "createSecret", "SecretId": arn, "ClientRequestToken": 42}),
        json!({"Step": "createSecret", "SecretId": arn, "ClientRequestToken": uuid_v4()}),
        json!({"Step": "finishSecret", "SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf", "ClientRequestToken": token}),
        json!([1, 2, 3]),
        json!({"Step": "status"}),
        json!({"Step": "status", "SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"}),
        // Operator payloads: malformed, aimed at the wrong version, or out of bounds.
        json!({"Step": "emergencyRotate", "SecretId": arn}),
        json!({"Step": "emergencyRotate", "SecretId": arn, "Reason": "test", "Force": true}),
        json!({"Step": "emergencyRotate", "SecretId": arn, "Reason": "test", "GapSeconds": "10"}),
        json!({"Step": "emergencyRotate", "SecretId": arn, "Reason": "test", "VersionId": uuid_v4()}),
        json!({"Step": "emergencyRotate", "SecretId": arn, "Reason": "test", "KeepAcceptingSeconds": 604800}),
        json!({"Step": "emergencyRotate", "SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf", "Reason": "test"}),
        json!({"Step": "cancel", "SecretId": arn, "ClientRequestToken": uuid_v4()}),
        json!({"Step": "redrive", "SecretId": arn, "ClientRequestToken": token}),
    ];
    let mut refused = Vec::new();
    for event in bad {
        let before = labels(sm, arn).await?;
        match invoker.invoke(Origin::Refused, &event).await {
            Ok(r) => return Err(format!("a bad invocation was accepted: {event} -> {r}")),
            Err(e) => {
                let after = labels(sm, arn).await?;
                if before != after {
                    return Err(format!("a refused invocation changed the labels: {event}"));
                }
                timeline.say(format!("refused as it must be, labels unchanged: {}", e.body));
                refused.push(e.body);
            }
        }
    }
    Ok(refused)
}

/// The gaps each rotation left, bounded by the samples around each end.
pub(crate) fn gaps(samples: &[(Instant, Labels)]) -> Vec<Gap> {
    let mut out = Vec::new();
    // (last sample without, first sample with) for each (version, stage) attachment,
    // and the same for each detachment.
    let mut attach: Vec<(String, &str, Instant, Instant)> = Vec::new();
    let mut detach: Vec<(String, &str, Instant, Instant)> = Vec::new();
    for w in samples.windows(2) {
        let ((t0, a), (t1, b)) = (&w[0], &w[1]);
        for stage in [AWSPENDING, AWSCURRENT, ROTATING] {
            let (ha, hb) = (holder(a, stage), holder(b, stage));
            if ha != hb {
                if let Some(v) = hb {
                    attach.push((v.clone(), stage, *t0, *t1));
                }
                if let Some(v) = ha {
                    detach.push((v.clone(), stage, *t0, *t1));
                }
            }
        }
    }
    for (v, stage, cur_without, cur_with) in attach.iter().filter(|a| a.1 == AWSCURRENT) {
        let _ = stage;
        // Gap 1: v accepted (AWSPENDING) → v current.
        if let Some((_, _, pend_without, pend_with)) = attach
            .iter()
            .rev()
            .find(|a| a.0 == *v && a.1 == AWSPENDING && a.3 <= *cur_with)
        {
            out.push(Gap {
                which: 1,
                at_least: cur_without.saturating_duration_since(*pend_with),
                at_most: cur_with.saturating_duration_since(*pend_without),
            });
        }
        // Gap 2: the old current stops being used → stops being accepted (ROTATING off).
        if let Some((_, _, rot_with, rot_without)) =
            detach.iter().find(|d| d.1 == ROTATING && d.2 >= *cur_without)
        {
            out.push(Gap {
                which: 2,
                at_least: rot_with.saturating_duration_since(*cur_with),
                at_most: rot_without.saturating_duration_since(*cur_without),
            });
        }
    }
    out
}

/// A random UUID (version 4), as the engine makes tokens.
pub fn uuid_v4() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// Reads the function's log and returns the lines that contain any of `needles`.
pub fn leaks(log: &Path, needles: &[String]) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(log).map_err(|e| format!("{}: {e}", log.display()))?;
    Ok(text
        .lines()
        .filter(|l| needles.iter().any(|n| !n.is_empty() && l.contains(n.as_str())))
        .map(str::to_owned)
        .collect())
}
