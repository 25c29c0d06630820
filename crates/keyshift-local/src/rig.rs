//! The rig every emulator run stands on: moto's server as Secrets Manager and
//! EventBridge Scheduler, the rotation function's release binary under `cargo lambda
//! watch` reaching moto through a counting proxy, an invoker that makes one invocation
//! at a time (so every call the function makes is counted against the invocation that
//! made it), the scheduler driver that fires the follow-ups, and one rotation played as
//! the rotation engine plays it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::types::RotationRulesType;
use keyshift::secret::{AWSCURRENT, AWSPENDING, ROTATING};
use serde_json::{Value, json};

use crate::calls::{Origin, Row};
use crate::local::{FUNCTION_ARN, GROUP, SCHEDULER_ROLE_ARN, Timeline, holder, labels, short, show, uuid_v4};
use crate::moto::{Moto, emulator_env};
use crate::proxy::{CountingProxy, delta};
use crate::watch::{FUNCTION, InvokeError, Watch};

/// The emulator, the function and the clients the driver uses (to moto directly: the
/// driver's calls are not counted).
pub(crate) struct Rig {
    /// Secrets Manager, for the driver.
    pub(crate) sm: aws_sdk_secretsmanager::Client,
    /// EventBridge Scheduler, for the driver.
    pub(crate) sched: aws_sdk_scheduler::Client,
    /// The function.
    pub(crate) invoker: Arc<Invoker>,
    // Held for its Drop (it stops the server), and last: dropped after the function.
    _moto: Moto,
}

impl Rig {
    /// Starts moto's server and the schedule group, the counting proxy, and the function
    /// under `cargo lambda watch` with T `gap_secs`, the inline budget `budget_secs`,
    /// `RUST_LOG` `rust_log` and `extra_env`, its output in `log`.
    pub(crate) async fn start(
        gap_secs: u64,
        budget_secs: u64,
        rust_log: &str,
        extra_env: Vec<(&'static str, String)>,
        log: &Path,
        timeline: &Timeline,
    ) -> Result<Rig, String> {
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
            ("KEYSHIFT_GAP_SECONDS", gap_secs.to_string()),
            ("KEYSHIFT_INLINE_BUDGET_SECONDS", budget_secs.to_string()),
            ("KEYSHIFT_SCHEDULE_GROUP", GROUP.to_owned()),
            ("KEYSHIFT_SCHEDULER_ROLE_ARN", SCHEDULER_ROLE_ARN.to_owned()),
            ("KEYSHIFT_FUNCTION_ARN", FUNCTION_ARN.to_owned()),
            ("RUST_LOG", rust_log.to_owned()),
        ]);
        env.extend(extra_env);
        timeline.say("building the release binary and starting `cargo lambda watch`");
        let watch = Watch::start(&env, log)?;
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
        Ok(Rig {
            sm,
            sched,
            invoker,
            _moto: moto,
        })
    }

    /// Every value secret `arn` ever had (every version, deprecated ones included).
    pub(crate) async fn values(&self, arn: &str) -> Result<Vec<String>, String> {
        crate::moto::secret_values(&self.sm, arn).await
    }
}

/// One rotation as the engine runs it, started by [`begin_rotation`].
#[derive(Debug, Clone)]
pub(crate) struct Started {
    /// The engine's token (the new version's id).
    pub(crate) token: String,
    /// The RotationToken the engine sends with each step.
    pub(crate) rotation_token: String,
    /// The version that was AWSCURRENT before.
    old: String,
}

/// RotateSecret with a new token, numbered `number` in the call table. moto cannot run
/// the Lambda: RotateSecret fails on the function's ARN but leaves the engine's
/// value-less AWSPENDING placeholder, as AWS does before createSecret.
pub(crate) async fn begin_rotation(
    sm: &aws_sdk_secretsmanager::Client,
    invoker: &Invoker,
    timeline: &Timeline,
    label: &str,
    arn: &str,
    number: usize,
) -> Result<Started, String> {
    let before = labels(sm, arn).await?;
    let old = holder(&before, AWSCURRENT).cloned().unwrap_or_default();
    let token = uuid_v4();
    invoker
        .rotations
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone(), number);
    let rotation_token = format!("{}-{}", uuid_v4(), uuid_v4());
    timeline.say(format!("{label} RotateSecret with token {}", short(&token)));
    let _expected_error = sm
        .rotate_secret()
        .secret_id(arn)
        .client_request_token(&token)
        .rotation_lambda_arn(FUNCTION_ARN)
        .rotation_rules(RotationRulesType::builder().automatically_after_days(30).build())
        .send()
        .await;
    let l = labels(sm, arn).await?;
    if holder(&l, AWSPENDING) != Some(&token) {
        return Err(format!(
            "{label} RotateSecret left no placeholder for {token}: {}",
            show(&l)
        ));
    }
    Ok(Started {
        token,
        rotation_token,
        old,
    })
}

/// The engine's four steps, one after the other, each through the function.
pub(crate) async fn engine_steps(
    invoker: &Invoker,
    timeline: &Timeline,
    label: &str,
    arn: &str,
    started: &Started,
) -> Result<(), String> {
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        let event = json!({"Step": step, "SecretId": arn, "ClientRequestToken": started.token, "RotationToken": started.rotation_token});
        match invoker.invoke(Origin::Engine, &event).await {
            Ok(r) => timeline.say(format!(
                "{label} engine: {step} ok: {}{}",
                r["outcome"].as_str().unwrap_or("?"),
                continued(&r)
            )),
            Err(e) => return Err(format!("{label} {step} failed: {e}")),
        }
    }
    Ok(())
}

/// Waits up to `within` for the clean end state: AWSCURRENT moved off the old version,
/// no ROTATING, and AWSPENDING on the current version or on none (both are AWS's
/// documented end states). Whether it came.
pub(crate) async fn await_convergence(
    sm: &aws_sdk_secretsmanager::Client,
    timeline: &Timeline,
    label: &str,
    arn: &str,
    started: &Started,
    within: Duration,
) -> Result<bool, String> {
    let deadline = Instant::now() + within;
    loop {
        let l = labels(sm, arn).await?;
        let current = holder(&l, AWSCURRENT);
        if current.is_some_and(|c| *c != started.old)
            && holder(&l, AWSPENDING).is_none_or(|p| Some(p) == current)
            && holder(&l, ROTATING).is_none()
        {
            timeline.say(format!("{label} converged: {}", show(&l)));
            return Ok(true);
        }
        if Instant::now() > deadline {
            timeline.say(format!("{label} did NOT converge: {}", show(&l)));
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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

impl SchedulerDriver {
    /// The end of a run: fires every schedule still listed (a follow-up left for later:
    /// early, which keyshift tolerates), stops the driver and `tasks` with `stop`, and
    /// waits for every delivery in flight until `deadline` (one still waiting inline
    /// after it is cut short). Returns how many follow-ups were fired.
    pub(crate) async fn finish(
        self,
        stop: &AtomicBool,
        tasks: Vec<tokio::task::JoinHandle<()>>,
        settle: Duration,
        deadline: Duration,
    ) -> u64 {
        self.drain.store(true, Ordering::SeqCst);
        tokio::time::sleep(settle).await;
        stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        for t in tasks {
            let _ = t.await;
        }
        let deadline = tokio::time::Instant::now() + deadline;
        let pending: Vec<_> = std::mem::take(&mut *self.deliveries.lock().unwrap_or_else(|e| e.into_inner()));
        for mut delivery in pending {
            if tokio::time::timeout_at(deadline, &mut delivery).await.is_err() {
                delivery.abort();
                let _ = delivery.await;
            }
        }
        self.fired.load(Ordering::SeqCst)
    }
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
