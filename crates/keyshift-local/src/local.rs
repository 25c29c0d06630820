//! A whole rotation on the emulator, through the real runtime path: moto's server as
//! Secrets Manager and EventBridge Scheduler, the release binary under `cargo lambda
//! watch`, a driver that plays the rotation engine and the scheduler, and a fleet of
//! consumers on the real Rust SDK.
//!
//! The function reaches moto through a counting proxy, and the driver makes one
//! invocation at a time, so every AWS call the function makes is counted against the
//! invocation that made it ([`crate::calls`]). The driver itself (RotateSecret, the
//! schedule list, the fleet, the label monitor) talks to moto directly and is not
//! counted.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::types::RotationRulesType;
use keyshift::secret::{AWSCURRENT, AWSPENDING, ROTATING};
use rand::Rng;
use serde_json::{Value, json};

use crate::calls::{CallTable, Origin, Row};
use crate::moto::{Moto, emulator_env};
use crate::proxy::{CountingProxy, delta};
use crate::watch::{FUNCTION, InvokeError, Watch};

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

/// The scheduler driver: fires each schedule at its at() time and deletes it, as
/// ActionAfterCompletion DELETE does; once `drain` is set, fires what is left at once.
pub(crate) struct SchedulerDriver {
    /// Set to fire every listed schedule now.
    pub(crate) drain: Arc<AtomicBool>,
    /// Follow-ups fired.
    pub(crate) fired: Arc<AtomicU64>,
    /// Deliveries in flight.
    pub(crate) deliveries: Deliveries,
    /// The driver's loop (ends with `stop`).
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl SchedulerDriver {
    /// Starts the loop, every 200 ms until `stop`.
    pub(crate) fn start(
        sched: &aws_sdk_scheduler::Client,
        invoker: &Arc<Invoker>,
        stop: &Arc<AtomicBool>,
        timeline: &Timeline,
    ) -> SchedulerDriver {
        let (drain, fired, deliveries): (Arc<AtomicBool>, Arc<AtomicU64>, Deliveries) = Default::default();
        let (sched, invoker, stop, drain2, fired2, tl, deliveries2) = (
            sched.clone(),
            invoker.clone(),
            stop.clone(),
            drain.clone(),
            fired.clone(),
            timeline.clone(),
            deliveries.clone(),
        );
        let task = tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let all = drain2.load(Ordering::SeqCst);
                let _ = fire_due(&sched, &invoker, all, &fired2, &tl, &deliveries2).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        SchedulerDriver {
            drain,
            fired,
            deliveries,
            task,
        }
    }
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

/// The function under `cargo lambda watch`, invoked one invocation at a time, with the
/// calls the counting proxy saw while each was in flight.
#[derive(Debug)]
pub(crate) struct Invoker {
    pub(crate) watch: Watch,
    pub(crate) proxy: CountingProxy,
    pub(crate) one_at_a_time: tokio::sync::Mutex<()>,
    pub(crate) rows: Mutex<Vec<Row>>,
    /// The rotation of each engine token and of each schedule an invocation of the
    /// rotation reported (`scheduled[].name`), to place the follow-ups.
    pub(crate) rotations: Mutex<HashMap<String, usize>>,
}

impl Invoker {
    /// Invokes the function with `payload` once no other invocation is in flight, and
    /// records the calls it made.
    pub(crate) async fn invoke(&self, origin: Origin, payload: &Value) -> Result<Value, InvokeError> {
        let _one = self.one_at_a_time.lock().await;
        let before = self.proxy.by_operation();
        let result = self.watch.invoke(payload).await;
        let calls = delta(&before, &self.proxy.by_operation());
        let rotation = match origin {
            Origin::Refused | Origin::Operator => None,
            _ => {
                let mut rotations = self.rotations.lock().unwrap_or_else(|e| e.into_inner());
                let of = |key: &Value| key.as_str().and_then(|k| rotations.get(k).copied());
                let rotation = of(&payload["Schedule"]).or_else(|| of(&payload["ClientRequestToken"]));
                if let (Some(n), Ok(reply)) = (rotation, &result) {
                    for job in reply["scheduled"].as_array().into_iter().flatten() {
                        if let Some(name) = job["name"].as_str() {
                            rotations.insert(name.to_owned(), n);
                        }
                    }
                }
                rotation
            }
        };
        self.rows.lock().unwrap_or_else(|e| e.into_inner()).push(Row {
            rotation,
            step: payload["Step"].as_str().unwrap_or("?").to_owned(),
            origin,
            calls,
        });
        result
    }
}

/// One consumer's view: the value it uses and the values it accepts.
#[derive(Debug, Clone, Default)]
struct View {
    current: Option<String>,
    accepted: HashSet<String>,
}

/// Runs the whole thing: start the emulator and the runtime, rotate, stop everything.
pub async fn run(opts: &Options, timeline: &Timeline) -> Result<Summary, String> {
    let moto = Moto::start()?;
    timeline.say(format!("moto's server is up on 127.0.0.1:{}", moto.port));
    let sdk = moto.sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let sched = aws_sdk_scheduler::Client::new(&sdk);
    sched
        .create_schedule_group()
        .name(GROUP)
        .send()
        .await
        .map_err(|e| format!("CreateScheduleGroup: {e}"))?;
    let initial: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    let created = sm
        .create_secret()
        .name("keyshift-demo/api-key")
        .secret_string(&initial)
        .send()
        .await
        .map_err(|e| format!("CreateSecret: {e}"))?;
    let arn = created.arn().unwrap_or_default().to_owned();
    timeline.say(format!("created the secret {arn}"));

    // The function's calls go through the proxy; the driver's go to moto directly.
    let proxy = CountingProxy::start(moto.port)
        .await
        .map_err(|e| format!("counting proxy: {e}"))?;
    timeline.say(format!(
        "the function reaches moto through a counting proxy on 127.0.0.1:{}",
        proxy.port
    ));
    let mut env = emulator_env(&proxy.endpoint());
    env.extend([
        ("KEYSHIFT_GAP_SECONDS", opts.gap_secs.to_string()),
        ("KEYSHIFT_INLINE_BUDGET_SECONDS", opts.budget_secs.to_string()),
        ("KEYSHIFT_SCHEDULE_GROUP", GROUP.to_owned()),
        ("KEYSHIFT_SCHEDULER_ROLE_ARN", SCHEDULER_ROLE_ARN.to_owned()),
        ("KEYSHIFT_FUNCTION_ARN", FUNCTION_ARN.to_owned()),
        ("RUST_LOG", opts.rust_log.clone()),
    ]);
    timeline.say("building the release binary and starting `cargo lambda watch`");
    let watch = Watch::start(&env, &opts.log)?;
    timeline.say(format!(
        "the local Lambda runtime serves {FUNCTION} on 127.0.0.1:{}",
        watch.port
    ));
    let invoker = Arc::new(Invoker {
        watch,
        proxy,
        one_at_a_time: tokio::sync::Mutex::new(()),
        rows: Mutex::default(),
        rotations: Mutex::default(),
    });

    let mut summary = Summary {
        values: vec![initial.clone()],
        ..Default::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();

    // The label monitor: samples every 50 ms, prints each change.
    let (samples, monitor) = monitor_labels(&sm, &arn, String::new(), &stop, timeline);
    tasks.push(monitor);

    // The consumer fleet: each instance refreshes every R from a random phase.
    let views: Arc<Mutex<Vec<View>>> = Arc::new(Mutex::new(vec![View::default(); opts.consumers]));
    let values: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    for i in 0..opts.consumers {
        let (sm, arn, stop, views, values) = (
            sm.clone(),
            arn.clone(),
            stop.clone(),
            views.clone(),
            values.clone(),
        );
        let refresh = opts.refresh;
        tasks.push(tokio::spawn(async move {
            let phase = rand::rng().random_range(0..refresh.as_millis() as u64);
            tokio::time::sleep(Duration::from_millis(phase)).await;
            while !stop.load(Ordering::SeqCst) {
                if let Ok(view) = refresh_view(&sm, &arn, &values).await {
                    views.lock().unwrap_or_else(|e| e.into_inner())[i] = view;
                }
                tokio::time::sleep(refresh).await;
            }
        }));
    }
    // Producers: every 20 ms, one instance's current value is checked by another's window.
    {
        let (stop, views, ops, failed, tl) = (
            stop.clone(),
            views.clone(),
            ops.clone(),
            failed.clone(),
            timeline.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                {
                    let views = views.lock().unwrap_or_else(|e| e.into_inner());
                    let mut rng = rand::rng();
                    let (p, c) = (rng.random_range(0..views.len()), rng.random_range(0..views.len()));
                    if let Some(used) = &views[p].current {
                        if !views[c].accepted.is_empty() {
                            ops.fetch_add(1, Ordering::SeqCst);
                            if !views[c].accepted.contains(used) {
                                failed.fetch_add(1, Ordering::SeqCst);
                                tl.say(format!("FAILED consumer operation: instance {c} does not accept what instance {p} uses"));
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    let scheduler = SchedulerDriver::start(&sched, &invoker, &stop, timeline);

    tokio::time::sleep(opts.refresh * 2).await;
    for n in 0..opts.rotations {
        let before = labels(&sm, &arn).await?;
        let old = holder(&before, AWSCURRENT).cloned().unwrap_or_default();
        let token = uuid_v4();
        invoker
            .rotations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone(), n);
        let rotation_token = format!("{}-{}", uuid_v4(), uuid_v4());
        summary.rotation_tokens.push(rotation_token.clone());
        if n == 0 {
            summary
                .statuses
                .push(("before".into(), status(&invoker, &arn, timeline).await?));
        }
        timeline.say(format!("rotation {n}: RotateSecret with token {}", short(&token)));
        // moto cannot run the Lambda: RotateSecret fails on the function's ARN but leaves
        // the engine's value-less AWSPENDING placeholder, as AWS does before createSecret.
        let _expected_error = sm
            .rotate_secret()
            .secret_id(&arn)
            .client_request_token(&token)
            .rotation_lambda_arn(FUNCTION_ARN)
            .rotation_rules(RotationRulesType::builder().automatically_after_days(30).build())
            .send()
            .await;
        let l = labels(&sm, &arn).await?;
        if holder(&l, AWSPENDING) != Some(&token) {
            return Err(format!(
                "RotateSecret left no placeholder for {token}: {}",
                show(&l)
            ));
        }
        if n == 0 {
            summary.refused = refusals(&invoker, &sm, &arn, &token, timeline).await?;
        }
        for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
            let event = json!({"Step": step, "SecretId": arn, "ClientRequestToken": token, "RotationToken": rotation_token});
            timeline.say(format!("engine: invoke {step}"));
            match invoker.invoke(Origin::Engine, &event).await {
                Ok(r) => timeline.say(format!(
                    "engine: {step} ok: {}{}",
                    r["outcome"].as_str().unwrap_or("?"),
                    continued(&r)
                )),
                Err(e) => return Err(format!("{step} failed: {e}")),
            }
        }
        if n == 0 {
            summary.statuses.push((
                "after finishSecret".into(),
                status(&invoker, &arn, timeline).await?,
            ));
        }
        // Converged: AWSCURRENT moved off the old version, no ROTATING, and AWSPENDING
        // on the current version or none (both are AWS's documented end states).
        let deadline = Instant::now() + Duration::from_secs(opts.gap_secs * 3 + 150);
        loop {
            let l = labels(&sm, &arn).await?;
            let current = holder(&l, AWSCURRENT);
            if current.is_some_and(|c| *c != old)
                && holder(&l, AWSPENDING).is_none_or(|p| Some(p) == current)
                && holder(&l, ROTATING).is_none()
            {
                summary.converged += 1;
                timeline.say(format!("rotation {n} converged: {}", show(&l)));
                if n == 0 {
                    summary
                        .statuses
                        .push(("after".into(), status(&invoker, &arn, timeline).await?));
                }
                break;
            }
            if Instant::now() > deadline {
                timeline.say(format!("rotation {n} did NOT converge: {}", show(&l)));
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(opts.refresh * 2).await;
    }
    // Deliver every schedule still listed (a follow-up left for later): early, which
    // keyshift tolerates.
    scheduler.drain.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let _ = scheduler.task.await;
    for t in tasks {
        let _ = t.await;
    }
    // Every delivery ends before the calls are summed up (one still waiting inline after
    // the budget and a minute is cut short).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(opts.budget_secs + 60);
    let pending: Vec<_> =
        std::mem::take(&mut *scheduler.deliveries.lock().unwrap_or_else(|e| e.into_inner()));
    for mut delivery in pending {
        if tokio::time::timeout_at(deadline, &mut delivery).await.is_err() {
            delivery.abort();
            let _ = delivery.await;
        }
    }
    summary.calls = CallTable {
        rows: std::mem::take(&mut *invoker.rows.lock().unwrap_or_else(|e| e.into_inner())),
        counted: invoker.proxy.by_operation().values().sum(),
    };
    summary.operations = ops.load(Ordering::SeqCst);
    summary.failed = failed.load(Ordering::SeqCst);
    summary.fired = scheduler.fired.load(Ordering::SeqCst);
    summary.gaps = gaps(&samples.lock().unwrap_or_else(|e| e.into_inner()));
    // Every value the secret ever had, for the log check.
    for v in labels(&sm, &arn).await?.keys() {
        if let Ok(out) = sm.get_secret_value().secret_id(&arn).version_id(v).send().await {
            if let Some(s) = out.secret_string() {
                summary.values.push(s.to_owned());
            }
        }
    }
    drop(invoker);
    drop(moto);
    Ok(summary)
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

pub(crate) fn continued(r: &Value) -> String {
    let c: Vec<&str> = r["continued"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if c.is_empty() {
        String::new()
    } else {
        format!("; carried on inline: {}", c.join("; "))
    }
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

async fn refresh_view(
    sm: &aws_sdk_secretsmanager::Client,
    arn: &str,
    values: &Mutex<HashMap<String, String>>,
) -> Result<View, String> {
    let l = labels(sm, arn).await?;
    let mut view = View::default();
    for (version, stages) in &l {
        if !stages
            .iter()
            .any(|s| s == AWSCURRENT || s == AWSPENDING || s == ROTATING)
        {
            continue;
        }
        let cached = values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(version)
            .cloned();
        let value = match cached {
            Some(v) => v,
            None => {
                let Ok(out) = sm
                    .get_secret_value()
                    .secret_id(arn)
                    .version_id(version)
                    .send()
                    .await
                else {
                    continue; // the engine's placeholder has no value yet
                };
                let v = out.secret_string().unwrap_or_default().to_owned();
                values
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(version.clone(), v.clone());
                v
            }
        };
        if stages.contains(AWSCURRENT) {
            view.current = Some(value.clone());
        }
        view.accepted.insert(value);
    }
    Ok(view)
}

/// Follow-up deliveries in flight (the scheduler invokes asynchronously).
pub(crate) type Deliveries = Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>;

pub(crate) async fn fire_due(
    sched: &aws_sdk_scheduler::Client,
    invoker: &Arc<Invoker>,
    all: bool,
    fired: &AtomicU64,
    tl: &Timeline,
    deliveries: &Deliveries,
) -> Result<(), String> {
    let list = sched
        .list_schedules()
        .group_name(GROUP)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let now = keyshift_lambda::clock::SystemClock;
    for s in list.schedules() {
        let Some(name) = s.name() else { continue };
        let Ok(got) = sched.get_schedule().group_name(GROUP).name(name).send().await else {
            continue;
        };
        let at = got
            .schedule_expression()
            .and_then(|e| e.strip_prefix("at(")?.strip_suffix(')').map(str::to_owned))
            .and_then(|t| keyshift::Timestamp::parse_rfc3339(&format!("{t}Z")).ok());
        let due = at.is_some_and(|at| keyshift::ports::Clock::now(&now) >= at);
        if !(due || all) {
            continue;
        }
        let input = got
            .target()
            .map(|t| t.input().unwrap_or_default().to_owned())
            .unwrap_or_default();
        let _ = sched.delete_schedule().group_name(GROUP).name(name).send().await;
        let Ok(payload) = serde_json::from_str::<Value>(&input) else {
            continue;
        };
        fired.fetch_add(1, Ordering::SeqCst);
        tl.say(format!(
            "scheduler: fire {name}{}",
            if due { "" } else { " (early, draining)" }
        ));
        // Scheduler invokes asynchronously: do not wait for the function.
        let (invoker, tl) = (invoker.clone(), tl.clone());
        let name = name.to_owned();
        let delivery = tokio::spawn(async move {
            match invoker.invoke(Origin::FollowUp, &payload).await {
                Ok(v) => tl.say(format!(
                    "follow-up {name}: {}{}",
                    v["outcome"].as_str().unwrap_or("?"),
                    continued(&v)
                )),
                Err(e) => tl.say(format!("follow-up {name} failed: {e}")),
            }
        });
        deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(delivery);
    }
    Ok(())
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
