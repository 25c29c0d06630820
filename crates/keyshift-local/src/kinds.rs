//! One secret of every kind, rotated at once through the real runtime path (moto's
//! server, the release binary under `cargo lambda watch`), each with a fleet of
//! keyshift-client instances that really use what it holds between refreshes (what each
//! kind's producers and consumers do is in [`crate::fleet`]). The `json` secret's other
//! fields must carry over unchanged, and generated passwords must follow the tags.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_secretsmanager::types::{RotationRulesType, Tag};
use keyshift_client::Config;
use keyshift_keys::KeyKind;
use rand::Rng;
use serde_json::{Value, json};

use crate::calls::Origin;
use crate::fleet::{Fleet, presented};
use crate::local::{FUNCTION_ARN, Gap, Samples, Timeline, gaps, labels, monitor_labels, uuid_v4};
use crate::rig::{Invoker, Rig, SchedulerDriver, await_convergence, begin_rotation, engine_steps};

/// Every kind the stock function makes, as its tag spells it.
pub const ALL_KINDS: [&str; 9] = [
    "password",
    "symmetric",
    "ed25519",
    "ecdsa-p256",
    "ecdsa-p384",
    "rsa-2048",
    "rsa-3072",
    "rsa-4096",
    "json",
];

/// The fields of the `json` secret that carry over (AWS's database secret shape).
const CARRIED: [&str; 5] = ["engine", "host", "port", "username", "dbname"];

/// What to run.
#[derive(Debug, Clone)]
pub struct KindsOptions {
    /// The kinds, one secret each.
    pub kinds: Vec<String>,
    /// T, in seconds.
    pub gap_secs: u64,
    /// The inline budget, in seconds.
    pub budget_secs: u64,
    /// keyshift-client instances per secret.
    pub consumers: usize,
    /// Rotations of each secret, one after the other.
    pub rotations: usize,
    /// Where the function's output goes.
    pub log: std::path::PathBuf,
}

/// What one secret's rotations showed.
#[derive(Debug, Clone, Default)]
pub struct KindResult {
    /// The kind.
    pub kind: String,
    /// The secret's name.
    pub secret: String,
    /// Rotations that reached the clean end state.
    pub converged: usize,
    /// Real operations (sign + verify, seal + open, present + accept).
    pub operations: u64,
    /// Of which failed.
    pub failed: u64,
    /// The gaps measured on the label samples.
    pub gaps: Vec<Gap>,
    /// Distinct key ids (version ids) producers used.
    pub kids_used: usize,
    /// `json` only: whether every carried field kept its value in every version.
    pub carried_over: Option<bool>,
    /// `password`/`json`: whether the generated value obeys the secret's password tags.
    pub password_options_held: Option<bool>,
}

/// What a run showed.
#[derive(Debug, Clone, Default)]
pub struct KindsSummary {
    /// Per kind, in the order asked.
    pub kinds: Vec<KindResult>,
    /// Secrets whose tags are hostile or wrong, each refused by createSecret: (the tag
    /// set, the function's error), with nothing written.
    pub refused: Vec<(String, String)>,
    /// Strings from every value any secret had that must never reach a log line (private
    /// key members, PEM lines, symmetric keys, passwords).
    pub secrets: Vec<String>,
}

/// The value a secret of `kind` starts with, and its tags.
fn initial(kind: &str) -> Result<(String, Vec<(String, String)>), String> {
    let mut tags = vec![("keyshift:kind".to_owned(), kind.to_owned())];
    let random: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    let value = match kind {
        "password" => {
            tags.push(("keyshift:password-length".into(), "40".into()));
            tags.push(("keyshift:exclude-characters".into(), "0O1lI".into()));
            random
        }
        "json" => {
            tags.push(("keyshift:fields".into(), "password=password".into()));
            tags.push(("keyshift:password-length".into(), "32".into()));
            json!({
                "engine": "postgres", "host": "db.internal.example", "port": 5432,
                "username": "app", "dbname": "orders", "password": random,
            })
            .to_string()
        }
        other => {
            let key = KeyKind::parse(other).ok_or_else(|| format!("unknown kind {other}"))?;
            keyshift_keys::generate(key).map_err(|e| e.to_string())?
        }
    };
    Ok((value, tags))
}

/// Strings of `value` that are secret (for the log check).
fn secret_parts(value: &str) -> Vec<String> {
    let Ok(parsed) = serde_json::from_str::<Value>(value) else {
        return vec![value.to_owned()];
    };
    let mut out = Vec::new();
    for m in ["d", "p", "q", "dp", "dq", "qi"] {
        if let Some(s) = parsed["private_jwk"][m].as_str() {
            out.push(s.to_owned());
        }
    }
    if let Some(pem) = parsed["private_key_pem"].as_str() {
        out.extend(pem.lines().filter(|l| !l.starts_with("-----")).map(str::to_owned));
    }
    for m in ["k", "password"] {
        if let Some(s) = parsed[m].as_str() {
            out.push(s.to_owned());
        }
    }
    out.retain(|s| s.len() >= 16);
    out
}

/// Rotates one secret of each kind at once, through `cargo lambda watch`, with a fleet
/// per secret.
pub async fn run_kinds(opts: &KindsOptions, timeline: &Timeline) -> Result<KindsSummary, String> {
    let rig = Rig::start(
        opts.gap_secs,
        opts.budget_secs,
        "info",
        Vec::new(),
        &opts.log,
        timeline,
    )
    .await?;
    let (sm, sched, invoker) = (rig.sm.clone(), rig.sched.clone(), rig.invoker.clone());
    let mut summary = KindsSummary::default();
    let mut secrets: Vec<(String, String, String)> = Vec::new(); // (kind, arn, name)
    let mut initials: Vec<String> = Vec::new();
    for kind in &opts.kinds {
        let (value, tags) = tokio::task::spawn_blocking({
            let kind = kind.clone();
            move || initial(&kind)
        })
        .await
        .map_err(|e| e.to_string())??;
        summary.secrets.extend(secret_parts(&value));
        initials.push(value.clone());
        let name = format!("keyshift-demo/{kind}");
        let mut create = sm.create_secret().name(&name).secret_string(&value);
        for (k, v) in &tags {
            create = create.tags(Tag::builder().key(k).value(v).build());
        }
        let created = create.send().await.map_err(|e| format!("CreateSecret: {e}"))?;
        let tag_text: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        timeline.say(format!("created {name} ({})", tag_text.join(", ")));
        secrets.push((kind.clone(), created.arn().unwrap_or_default().to_owned(), name));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let gap = Duration::from_secs(opts.gap_secs);
    // Refresh well under T: T/4 to T/2 with a read lag of T/8 (moto is consistent).
    let config = Config::builder(gap)
        .read_lag(gap / 8)
        .refresh(gap / 4, gap / 2)
        .build()
        .map_err(|e| e.to_string())?;
    let mut operating = Vec::new();
    let mut samples: Vec<Samples> = Vec::new();
    for (kind, arn, _) in &secrets {
        let fleet = Fleet::start(&sm, arn, kind, opts.consumers, &config).await?;
        tasks.push(fleet.operate_until(Duration::from_millis(25), &stop, timeline));
        operating.push(fleet);
        // The label monitor: samples every 50 ms.
        let (seen, monitor) = monitor_labels(&sm, arn, format!("{kind:<10} "), &stop, timeline);
        samples.push(seen);
        tasks.push(monitor);
    }
    let scheduler = SchedulerDriver::start(&sched, &invoker, &stop, timeline);
    summary.refused = bad_tags(&sm, &invoker, timeline).await?;
    tokio::time::sleep(gap).await;

    // Every secret rotates at once; the function serves one invocation at a time.
    let mut rotations = Vec::new();
    for (i, (kind, arn, _)) in secrets.iter().enumerate() {
        let (sm, invoker, tl, kind, arn) = (
            sm.clone(),
            invoker.clone(),
            timeline.clone(),
            kind.clone(),
            arn.clone(),
        );
        let (n_rotations, gap_secs) = (opts.rotations, opts.gap_secs);
        rotations.push(tokio::spawn(async move {
            let mut converged = 0;
            for n in 0..n_rotations {
                if rotate(&sm, &invoker, &tl, &kind, &arn, i * 100 + n, gap_secs).await? {
                    converged += 1;
                }
            }
            Ok::<usize, String>(converged)
        }));
    }
    let mut converged = Vec::new();
    for r in rotations {
        converged.push(r.await.map_err(|e| e.to_string())??);
    }
    tokio::time::sleep(gap).await;
    scheduler.drain.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let _ = scheduler.task.await;
    for t in tasks {
        let _ = t.await;
    }
    let pending: Vec<_> =
        std::mem::take(&mut *scheduler.deliveries.lock().unwrap_or_else(|e| e.into_inner()));
    for delivery in pending {
        let _ = delivery.await;
    }

    for (i, (kind, arn, name)) in secrets.iter().enumerate() {
        let op = &operating[i];
        let mut result = KindResult {
            kind: kind.clone(),
            secret: name.clone(),
            converged: converged[i],
            operations: op.operations(),
            failed: op.failed(),
            gaps: gaps(&samples[i].lock().unwrap_or_else(|e| e.into_inner())),
            kids_used: op.kids_used(),
            ..Default::default()
        };
        // Every version's value: for the log check, and the json and password checks.
        let values = rig.values(arn).await?;
        for v in &values {
            summary.secrets.extend(secret_parts(v));
        }
        if kind == "json" {
            let parsed: Vec<Value> = values
                .iter()
                .filter_map(|v| serde_json::from_str(v).ok())
                .collect();
            let first = parsed.first().cloned().unwrap_or_default();
            result.carried_over = Some(
                parsed.len() == values.len()
                    && parsed
                        .iter()
                        .all(|p| CARRIED.iter().all(|f| p[f] == first[f] && !p[f].is_null())),
            );
        }
        if kind == "password" || kind == "json" {
            let (length, excluded) = if kind == "json" { (32, "") } else { (40, "0O1lI") };
            let generated: Vec<String> = values
                .iter()
                .filter(|v| **v != initials[i])
                .filter_map(|v| presented(kind, v))
                .collect();
            result.password_options_held = Some(
                !generated.is_empty()
                    && generated
                        .iter()
                        .all(|p| p.chars().count() == length && !p.chars().any(|c| excluded.contains(c))),
            );
        }
        summary.kinds.push(result);
    }
    drop(operating);
    drop(invoker);
    drop(rig);
    Ok(summary)
}

/// Secrets tagged wrongly: createSecret must fail with `keyshift.Configuration`, naming
/// the tag, and store nothing.
async fn bad_tags(
    sm: &aws_sdk_secretsmanager::Client,
    invoker: &Invoker,
    timeline: &Timeline,
) -> Result<Vec<(String, String)>, String> {
    let cases: [&[(&str, &str)]; 5] = [
        &[("keyshift:kind", "rsa-1024")],
        &[("keyshift:kind", "json")],
        &[
            ("keyshift:kind", "json"),
            ("keyshift:fields", "password=password password=rsa-2048"),
        ],
        &[
            ("keyshift:kind", "password"),
            ("keyshift:password-length", "99999999999999999999"),
        ],
        &[("keyshift:kind", "ed25519"), ("keyshift:fields", "a=b=c")],
    ];
    let mut refused = Vec::new();
    for (n, tags) in cases.iter().enumerate() {
        let name = format!("keyshift-demo/badly-tagged-{n}");
        let mut create = sm.create_secret().name(&name).secret_string("initial value");
        for (k, v) in *tags {
            create = create.tags(Tag::builder().key(*k).value(*v).build());
        }
        let arn = create
            .send()
            .await
            .map_err(|e| format!("CreateSecret: {e}"))?
            .arn()
            .unwrap_or_default()
            .to_owned();
        let token = uuid_v4();
        let _expected_error = sm
            .rotate_secret()
            .secret_id(&arn)
            .client_request_token(&token)
            .rotation_lambda_arn(FUNCTION_ARN)
            .rotation_rules(RotationRulesType::builder().automatically_after_days(30).build())
            .send()
            .await;
        let before = labels(sm, &arn).await?;
        let event = json!({"Step": "createSecret", "SecretId": arn, "ClientRequestToken": token});
        let shown: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let shown = shown.join(" ");
        match invoker.invoke(Origin::Refused, &event).await {
            Ok(r) => return Err(format!("createSecret with tags {shown} was accepted: {r}")),
            Err(e) => {
                let stored = sm
                    .get_secret_value()
                    .secret_id(&arn)
                    .version_id(&token)
                    .send()
                    .await;
                if stored.is_ok() || labels(sm, &arn).await? != before {
                    return Err(format!(
                        "createSecret with tags {shown} failed but wrote something"
                    ));
                }
                timeline.say(format!("refused, nothing written: {}", e.body));
                refused.push((shown, e.body));
            }
        }
    }
    Ok(refused)
}

/// One rotation of one secret: RotateSecret (moto leaves the placeholder), the engine's
/// four steps through the function, then waiting for the clean end state.
pub(crate) async fn rotate(
    sm: &aws_sdk_secretsmanager::Client,
    invoker: &Invoker,
    timeline: &Timeline,
    kind: &str,
    arn: &str,
    number: usize,
    gap_secs: u64,
) -> Result<bool, String> {
    let label = format!("{kind:<10}");
    let started = begin_rotation(sm, invoker, timeline, &label, arn, number).await?;
    engine_steps(invoker, timeline, &label, arn, &started).await?;
    let within = Duration::from_secs(gap_secs * 3 + 240);
    await_convergence(sm, timeline, &label, arn, &started, within).await
}

/// The gaps of `result` that are shorter than T (none, in a correct run).
pub fn short_gaps(result: &KindResult, gap_secs: u64) -> Vec<Gap> {
    result
        .gaps
        .iter()
        .filter(|g| g.at_most < Duration::from_secs(gap_secs))
        .copied()
        .collect()
}

/// The per-kind summary table.
pub fn render(summary: &KindsSummary, gap_secs: u64) -> String {
    let mut out = String::from(
        "  kind        converged  operations  failed  key ids  gaps (s, each between at least..at most; T = ",
    );
    out.push_str(&format!("{gap_secs})\n"));
    for r in &summary.kinds {
        let gaps: Vec<String> = r
            .gaps
            .iter()
            .map(|g| {
                format!(
                    "{}:{:.1}..{:.1}",
                    g.which,
                    g.at_least.as_secs_f64(),
                    g.at_most.as_secs_f64()
                )
            })
            .collect();
        let mut extra = String::new();
        if let Some(c) = r.carried_over {
            extra.push_str(if c {
                "  other fields carried over"
            } else {
                "  FIELDS NOT CARRIED OVER"
            });
        }
        if let Some(p) = r.password_options_held {
            extra.push_str(if p {
                "  password tags obeyed"
            } else {
                "  PASSWORD TAGS IGNORED"
            });
        }
        out.push_str(&format!(
            "  {:<11} {:>9}  {:>10}  {:>6}  {:>7}  {}{}\n",
            r.kind,
            r.converged,
            r.operations,
            r.failed,
            r.kids_used,
            gaps.join(" "),
            extra
        ));
    }
    out
}

/// Parses a comma-separated list of kinds (`all` for every kind).
pub fn parse_kinds(text: &str) -> Result<Vec<String>, String> {
    if text.trim() == "all" {
        return Ok(ALL_KINDS.iter().map(|k| (*k).to_owned()).collect());
    }
    let kinds: Vec<String> = text
        .split(',')
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect();
    match kinds.iter().find(|k| !ALL_KINDS.contains(&k.as_str())) {
        Some(bad) => Err(format!("unknown kind {bad:?}; kinds: {}", ALL_KINDS.join(", "))),
        None if kinds.is_empty() => Err("no kind named".into()),
        None => Ok(kinds),
    }
}
