//! The commands: each prints its result on stdout and returns how to exit, or a
//! [`CliError`] for stderr.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Instant;

use aws_config::SdkConfig;
use keyshift::ports::{Clock, Detail, SecretStore, StoreErrorKind};
use keyshift::status::{Phase, Status, status};
use keyshift::{Policy, SecretId, SecretState, VersionId};
use keyshift_lambda::clock::SystemClock;
use keyshift_lambda::secrets::{CreatedDates, SdkSecretStore, classify};
use serde_json::{Value, json};

use crate::aws;
use crate::cli::{
    CancelArgs, Cli, Command, EmergencyArgs, Output, RedriveArgs, RotateArgs, StatusArgs, WatchArgs,
};
use crate::exit::{CliError, Exit, sdk_error};
use crate::invoke::{Answer, cancel_payload, emergency_payload, invoke, redrive_payload};
use crate::policy::{GapSource, policy_for};
use crate::render;
use crate::schedule;

/// How long one ReceiveMessage waits for a message (SQS long polling): bounded, so an
/// empty queue ends the redrive within seconds.
pub const RECEIVE_WAIT_SECONDS: i32 = 2;

/// How long a received message stays invisible to other readers while the function runs
/// with it: the function's 15 minutes and one more. Messages whose invocation did not
/// succeed are made visible again when the redrive ends.
pub const VISIBILITY_SECONDS: i32 = 16 * 60;

/// How many messages `redrive --from-dead-letter` takes at most, unless `--max-messages`.
pub const DEFAULT_MAX_MESSAGES: u32 = 1000;

/// How many failed reads in a row `watch` tolerates before it gives up (exit 4).
pub const WATCH_FAILURES: u32 = 5;

/// Writes `text` to stdout; a closed pipe (`keyshift status s | head -1`) is not an error.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn emit_json(value: &Value) {
    emit(&format!(
        "{}\n",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    ));
}

/// Runs the parsed command line.
pub async fn execute(cli: Cli) -> Result<Exit, CliError> {
    if let Command::Redrive(a) = &cli.command {
        if a.from_dead_letter.is_none() && a.max_messages.is_some() {
            return Err(CliError::new(
                Exit::Usage,
                "--max-messages applies to --from-dead-letter only",
            ));
        }
    }
    let sdk = aws::load(&cli.aws).await?;
    let lambda_endpoint = cli.aws.lambda_endpoint_url.as_deref();
    match cli.command {
        Command::Status(a) => status_command(&sdk, a).await,
        Command::Rotate(a) => rotate_command(&sdk, a).await,
        Command::Emergency(a) => emergency_command(&sdk, lambda_endpoint, a).await,
        Command::Cancel(a) => cancel_command(&sdk, lambda_endpoint, a).await,
        Command::Redrive(a) => match a.from_dead_letter.clone() {
            Some(queue) => dead_letter_command(&sdk, lambda_endpoint, &queue, a).await,
            None => redrive_command(&sdk, lambda_endpoint, a).await,
        },
        Command::Watch(a) => watch_command(&sdk, a).await,
    }
}

/// The Secrets Manager adapter the function uses, as the reports read with it (dates from
/// ListSecretVersionIds; replica Regions read in their own Region).
pub fn store(sdk: &SdkConfig) -> SdkSecretStore {
    SdkSecretStore::new(aws::secrets(sdk), CreatedDates::ListVersions).with_replica_reads(sdk.clone())
}

/// The note a report made without GetSecretValue carries.
pub const DATES_AS_LISTED: &str = "read without secretsmanager:GetSecretValue: the date of the engine's pending version is the one ListSecretVersionIds gives (the function reads the value to tell a placeholder's date from the value's)";

/// Reads the secret for a report as the function does ([`Detail::Full`]: the labels,
/// every version's date). That read asks GetSecretValue about the engine's pending
/// version (only a read of the value tells a placeholder's date from the value's); an
/// operator who may not read values gets a value-free read instead: the labels, and the
/// dates as ListSecretVersionIds lists them, with a note saying so (the second value).
pub async fn read_state(
    store: &SdkSecretStore,
    sm: &aws_sdk_secretsmanager::Client,
    secret: &SecretId,
) -> Result<(SecretState, Option<&'static str>), CliError> {
    match store.describe(secret, Detail::Full).await {
        Ok(state) => Ok((state, None)),
        Err(e) if e.kind == StoreErrorKind::AccessDenied => {
            let state = read_without_values(store, sm, secret).await?;
            Ok((state, Some(DATES_AS_LISTED)))
        }
        Err(e) => Err(e.into()),
    }
}

/// The value-free read: DescribeSecret's labels (and tags, replicas, flags), each
/// version's date as ListSecretVersionIds lists it. Never calls GetSecretValue.
pub async fn read_without_values(
    store: &SdkSecretStore,
    sm: &aws_sdk_secretsmanager::Client,
    secret: &SecretId,
) -> Result<SecretState, CliError> {
    let mut state = store.describe(secret, Detail::Labels).await?;
    let mut next: Option<String> = None;
    loop {
        let page = sm
            .list_secret_version_ids()
            .secret_id(secret.as_str())
            .include_deprecated(true)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| CliError::from(classify(e, "ListSecretVersionIds")))?;
        for v in page.versions() {
            let (Some(id), Some(date)) = (v.version_id(), v.created_date()) else {
                continue;
            };
            if let Some(info) = state.versions.get_mut(&VersionId::new(id)) {
                info.created = Some(keyshift_lambda::secrets::timestamp(date));
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_owned()),
            _ => return Ok(state),
        }
    }
}

/// Reads the secret (labels and every version's date) and reports on it at now, with
/// the policy the report applied and where its T came from.
pub async fn read_status(
    store: &SdkSecretStore,
    sm: &aws_sdk_secretsmanager::Client,
    secret: &SecretId,
    gap_flag: Option<u64>,
) -> Result<(Status, Policy, GapSource), CliError> {
    let (state, note) = read_state(store, sm, secret).await?;
    let (policy, source) = policy_for(&state.tags, gap_flag, |k| std::env::var(k).ok())?;
    let mut report = status(&state, &policy, SystemClock.now());
    report.notes.extend(note.map(str::to_owned));
    Ok((report, policy, source))
}

async fn status_command(sdk: &SdkConfig, a: StatusArgs) -> Result<Exit, CliError> {
    let secret = SecretId::new(a.secret);
    let backend = schedule::backend(sdk, |k| std::env::var(k).ok())?;
    let (report, policy, source) =
        read_status(&store(sdk), &aws::secrets(sdk), &secret, a.gap_seconds).await?;
    let found = schedule::lookup(&backend, &report, &secret, policy.precision).await;
    if a.output.json {
        let mut json = render::status_json(&report, &secret);
        found.add_to(&mut json);
        emit_json(&json);
    } else {
        emit(&render::status_text(&report, &secret, source, &found));
    }
    Ok(if report.stuck.is_some() {
        Exit::Stuck
    } else {
        Exit::Success
    })
}

async fn rotate_command(sdk: &SdkConfig, a: RotateArgs) -> Result<Exit, CliError> {
    let out = aws::secrets(sdk)
        .rotate_secret()
        .secret_id(&a.secret)
        .rotate_immediately(true)
        .send()
        .await
        .map_err(|e| CliError::from(classify(e, "RotateSecret")))?;
    let version = out
        .version_id()
        .ok_or_else(|| CliError::new(Exit::Failed, "RotateSecret answered without a VersionId"))?;
    if a.output.json {
        emit_json(&json!({
            "secret": a.secret,
            "arn": out.arn(),
            "name": out.name(),
            "versionId": version,
        }));
    } else {
        emit(&format!("{version}\n"));
    }
    Ok(Exit::Success)
}

/// Invokes the function with `payload` and prints its answer: the human summary, or the
/// JSON (`--json`). A function error is printed as JSON too with `--json`, and becomes
/// the one-line error with its exit code.
async fn call_function(
    sdk: &SdkConfig,
    lambda_endpoint: Option<&str>,
    function: &str,
    payload: &Value,
    output: Output,
) -> Result<Exit, CliError> {
    let client = aws::lambda(sdk, lambda_endpoint);
    let bytes = serde_json::to_vec(payload).unwrap_or_default();
    match invoke(&client, function, bytes).await? {
        Answer::Done(v) => {
            if output.json {
                emit_json(&v);
            } else {
                emit(&render::answer_text(&v));
            }
            Ok(Exit::Success)
        }
        Answer::Error(e) => {
            if output.json {
                emit_json(&e.to_json());
            }
            Err(CliError::new(e.exit(), e.line()))
        }
    }
}

async fn emergency_command(
    sdk: &SdkConfig,
    lambda_endpoint: Option<&str>,
    a: EmergencyArgs,
) -> Result<Exit, CliError> {
    let (version, pinned) = match a.version_id {
        Some(v) => (v, false),
        None => {
            let state = store(sdk)
                .describe(&SecretId::new(a.secret.as_str()), Detail::Labels)
                .await?;
            let current = state.current().ok_or_else(|| {
                CliError::new(
                    Exit::Refused,
                    "no version of the secret carries AWSCURRENT: name the compromised one with --version-id",
                )
            })?;
            (current.as_str().to_owned(), true)
        }
    };
    if pinned && !a.output.json {
        emit(&format!(
            "compromised version: {version} (AWSCURRENT when read; pass --version-id {version} to repeat exactly this request)\n"
        ));
    }
    let payload = emergency_payload(
        &a.secret,
        &a.reason,
        &version,
        a.gap_seconds,
        a.keep_accepting_seconds,
    );
    call_function(sdk, lambda_endpoint, &a.function.function, &payload, a.output).await
}

async fn cancel_command(
    sdk: &SdkConfig,
    lambda_endpoint: Option<&str>,
    a: CancelArgs,
) -> Result<Exit, CliError> {
    let payload = cancel_payload(&a.secret, a.token.as_deref());
    call_function(sdk, lambda_endpoint, &a.function.function, &payload, a.output).await
}

async fn redrive_command(
    sdk: &SdkConfig,
    lambda_endpoint: Option<&str>,
    a: RedriveArgs,
) -> Result<Exit, CliError> {
    let secret = a.secret.unwrap_or_default();
    let payload = redrive_payload(&secret);
    call_function(sdk, lambda_endpoint, &a.function.function, &payload, a.output).await
}

/// The step and secret a dead-letter message body names, for the report (never the body
/// itself). Whoever may send to the queue writes the body: control characters in either
/// field are shown escaped, so a body cannot move the cursor or recolour the terminal.
pub fn describe_body(body: &str) -> String {
    let v: Option<Value> = serde_json::from_str(body).ok();
    let field = |k: &str| {
        v.as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .map(crate::render::escape_controls)
    };
    match (field("Step"), field("SecretId")) {
        (Some(step), Some(secret)) => format!("{step} of {secret}"),
        (Some(step), None) => format!("{step} (no SecretId)"),
        _ => "not a follow-up event".into(),
    }
}

async fn dead_letter_command(
    sdk: &SdkConfig,
    lambda_endpoint: Option<&str>,
    queue: &str,
    a: RedriveArgs,
) -> Result<Exit, CliError> {
    let sqs = aws::sqs(sdk);
    let lambda = aws::lambda(sdk, lambda_endpoint);
    let function = a.function.function.as_str();
    let mut seen = HashSet::new();
    let mut kept = Vec::new();
    let mut reports = Vec::new();
    let (mut redriven, mut exit) = (0u32, Exit::Success);
    let max = a.max_messages.unwrap_or(DEFAULT_MAX_MESSAGES) as usize;
    'queue: while reports.len() < max {
        let received = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(1)
            .wait_time_seconds(RECEIVE_WAIT_SECONDS)
            .visibility_timeout(VISIBILITY_SECONDS)
            .send()
            .await
            .map_err(|e| sdk_error(e, "ReceiveMessage"))?;
        let messages = received.messages();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let id = m.message_id().unwrap_or_default().to_owned();
            let receipt = m.receipt_handle().unwrap_or_default().to_owned();
            if !seen.insert(id.clone()) {
                // Seen in this run already: it came back, so the queue holds nothing new.
                kept.push(receipt);
                break 'queue;
            }
            let n = reports.len() + 1;
            let body = m.body().unwrap_or_default();
            let what = describe_body(body);
            let mut report = json!({"messageId": id, "event": what});
            let outcome = if body.is_empty() {
                Err(CliError::new(Exit::Refused, "the message has no body"))
            } else {
                invoke(&lambda, function, body.as_bytes().to_vec()).await
            };
            let line = match outcome {
                Ok(Answer::Done(answer)) => {
                    let deleted = sqs
                        .delete_message()
                        .queue_url(queue)
                        .receipt_handle(&receipt)
                        .send()
                        .await
                        .map_err(|e| sdk_error(e, "DeleteMessage"));
                    report["answer"] = answer.clone();
                    let final_ = answer["final"].as_str().unwrap_or("done").to_owned();
                    match deleted {
                        Ok(_) => {
                            redriven += 1;
                            report["result"] = "redriven".into();
                            report["deleted"] = true.into();
                            format!("redriven: {final_}; deleted from the queue")
                        }
                        Err(e) => {
                            exit = exit.worst(Exit::Failed);
                            report["result"] = "redriven".into();
                            report["deleted"] = false.into();
                            report["error"] = json!({"errorMessage": e.message});
                            format!("redriven: {final_}; NOT deleted: {e}")
                        }
                    }
                }
                Ok(Answer::Error(e)) => {
                    exit = exit.worst(e.exit());
                    kept.push(receipt);
                    report["result"] = if e.exit() == Exit::Refused {
                        "refused".into()
                    } else {
                        "failed".into()
                    };
                    report["deleted"] = false.into();
                    report["error"] = e.to_json();
                    format!("{}; kept in the queue", e.line())
                }
                Err(e) => {
                    exit = exit.worst(e.exit);
                    kept.push(receipt);
                    report["result"] = "failed".into();
                    report["deleted"] = false.into();
                    report["error"] = json!({"errorMessage": e.message});
                    format!("{e}; kept in the queue")
                }
            };
            if !a.output.json {
                emit(&format!("message {n} ({id}): {what}: {line}\n"));
            }
            reports.push(report);
        }
    }
    // What did not succeed is visible again at once, for the next redrive.
    for receipt in kept.iter().filter(|r| !r.is_empty()) {
        if let Err(e) = sqs
            .change_message_visibility()
            .queue_url(queue)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
        {
            let e = sdk_error(e, "ChangeMessageVisibility");
            eprintln!("keyshift: a kept message stays invisible for up to {VISIBILITY_SECONDS} s: {e}");
        }
    }
    let total = u32::try_from(reports.len()).unwrap_or(u32::MAX);
    if a.output.json {
        emit_json(&json!({
            "queue": queue,
            "messages": reports,
            "redriven": redriven,
            "kept": total - redriven,
        }));
    } else if total == 0 {
        emit("the dead-letter queue is empty: nothing to redrive\n");
    } else {
        emit(&format!(
            "{total} message(s): {redriven} redriven and deleted, {} kept in the queue\n",
            total - redriven
        ));
    }
    if exit != Exit::Success {
        return Err(CliError::new(
            exit,
            format!(
                "{} of {total} dead-letter message(s) were not redriven",
                total - redriven
            ),
        ));
    }
    Ok(Exit::Success)
}

async fn watch_command(sdk: &SdkConfig, a: WatchArgs) -> Result<Exit, CliError> {
    let secret = SecretId::new(a.secret.as_str());
    let store = store(sdk);
    let sm = aws::secrets(sdk);
    let started = Instant::now();
    let deadline = a.timeout.map(|t| started + t);
    let tty = std::io::stdout().is_terminal();
    // Listening from the start: a Ctrl-C during a read is not lost (the permit waits).
    let interrupted = Arc::new(tokio::sync::Notify::new());
    {
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.notify_one();
            }
        });
    }
    let mut last_key: Option<String> = None;
    let mut last: Option<Status> = None;
    let mut failures = 0;
    let clear = |tty: bool| {
        if tty {
            emit("\r\x1b[2K");
        }
    };
    loop {
        match read_status(&store, &sm, &secret, a.gap_seconds).await {
            Ok((report, _, _)) => {
                failures = 0;
                let key = render::watch_key(&report);
                if last_key.as_ref() != Some(&key) {
                    clear(tty);
                    emit(&format!("{}\n", render::watch_line(&report)));
                    last_key = Some(key);
                }
                if let Some(advice) = &report.stuck {
                    clear(tty);
                    emit(&format!("stuck: {advice}\n"));
                    return Ok(Exit::Stuck);
                }
                if matches!(report.phase, Phase::Idle | Phase::Released) {
                    clear(tty);
                    let current = report
                        .in_use
                        .as_ref()
                        .map_or("no version", keyshift::VersionId::as_str);
                    emit(&format!(
                        "no rotation in progress: {current} is AWSCURRENT ({})\n",
                        report.phase
                    ));
                    return Ok(Exit::Success);
                }
                last = Some(report);
            }
            Err(e) if e.exit == Exit::Refused || e.exit == Exit::Usage => return Err(e),
            Err(e) => {
                failures += 1;
                if failures >= WATCH_FAILURES {
                    return Err(e);
                }
                clear(tty);
                eprintln!("keyshift: {e} (read {failures} of {WATCH_FAILURES} failed; retrying)");
            }
        }
        // Wait for the next read, redrawing the countdown every second on a terminal.
        let next_read = Instant::now() + a.interval;
        loop {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                clear(tty);
                let phase = last.as_ref().map_or("unknown", |r| r.phase.as_str());
                return Err(CliError::new(
                    Exit::TimedOut,
                    format!(
                        "--timeout of {} s passed before the rotation ended (phase {phase})",
                        a.timeout.map_or(0, |t| t.as_secs())
                    ),
                ));
            }
            if now >= next_read {
                break;
            }
            let mut step = next_read - now;
            if tty {
                step = step.min(std::time::Duration::from_secs(1));
            }
            if let Some(d) = deadline {
                step = step.min(d.saturating_duration_since(now));
            }
            tokio::select! {
                () = tokio::time::sleep(step) => {}
                () = interrupted.notified() => {
                    clear(tty);
                    return Err(CliError::new(Exit::Interrupted, "interrupted"));
                }
            }
            if tty {
                if let Some(c) = last
                    .as_ref()
                    .and_then(|r| render::countdown(r, SystemClock.now()))
                {
                    emit(&format!("\r\x1b[2K{c}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_body_is_described_by_its_step_and_secret() {
        let body = r#"{"Step":"swapPending","SecretId":"app/db","ClientRequestToken":"x"}"#;
        assert_eq!(describe_body(body), "swapPending of app/db");
        assert_eq!(describe_body(r#"{"Step":"cancel"}"#), "cancel (no SecretId)");
        assert_eq!(describe_body("not json"), "not a follow-up event");
    }

    #[test]
    fn a_dead_letter_body_cannot_write_control_characters_to_the_terminal() {
        let body = r#"{"Step":"swapPending\u001b[2J","SecretId":"app\r\u001b[31mdb\n"}"#;
        let shown = describe_body(body);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert_eq!(shown, r"swapPending\u{1b}[2J of app\r\u{1b}[31mdb\n");
    }
}
