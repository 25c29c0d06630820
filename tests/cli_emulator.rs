//! The `keyshift` binary as an operator runs it, as a process, against moto's server
//! (Secrets Manager, EventBridge Scheduler, SQS) and the rotation function's release
//! binary under `cargo lambda watch` (the Lambda Invoke API).
//!
//! The binary is built once per run by `support::cli_binary` (`cargo build -p
//! keyshift-cli --bin keyshift`), as the function is built by `cargo lambda watch`: the
//! suite checks what only a process shows (exit codes, stdout apart from stderr, a clean
//! environment, `watch` ended by SIGINT), which calling the library in this process could
//! not.
//!
//! moto serves every AWS API but Lambda on one port; `cargo lambda watch` serves the
//! Invoke API on another, so the CLI gets `--endpoint-url` for moto and
//! `--lambda-endpoint-url` for the function.
//!
//! Every test checks that no output of the CLI (stdout or stderr) holds a value the
//! secret ever had or a RotationToken the engine driver sent.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::types::{RotationRulesType, Tag};
use keyshift::secret::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, ROTATING, swap_marker};
use keyshift::{Timestamp, VersionId};
use serde_json::{Value, json};
use support::{
    FUNCTION, FUNCTION_ARN, GROUP, Moto, SCHEDULER_ROLE_ARN, Watch, emulator_env, secret_values, uuid_v4,
};

/// T for every secret here (its `keyshift:gap-seconds` tag and the function's default).
const GAP: u64 = 3;
/// The function's inline budget: both gaps are waited inside one follow-up.
const BUDGET: u64 = 60;

/// One emulator at a time: each test starts moto (and most the function's runtime), and
/// the gaps are measured on the wall clock of a small machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// moto's server, and the function under `cargo lambda watch` when a test needs it.
struct Rig {
    moto: Moto,
    watch: Option<Watch>,
    sm: aws_sdk_secretsmanager::Client,
    sched: aws_sdk_scheduler::Client,
    sqs: aws_sdk_sqs::Client,
    /// Every value a secret had and every RotationToken sent: no CLI output may show one.
    needles: Vec<String>,
    /// What the CLI printed, for the leak check at the end.
    printed: Vec<String>,
    log: PathBuf,
}

/// What one run of the CLI did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

impl Rig {
    async fn start(name: &str, function: bool) -> Rig {
        let moto = support::moto();
        let sdk = moto.sdk_config().await;
        let sched = aws_sdk_scheduler::Client::new(&sdk);
        sched
            .create_schedule_group()
            .name(GROUP)
            .send()
            .await
            .expect("CreateScheduleGroup");
        let log = std::env::temp_dir().join(format!("keyshift-cli-{name}-{}.log", std::process::id()));
        let watch = function.then(|| {
            let mut env = emulator_env(&moto.endpoint());
            env.extend([
                ("KEYSHIFT_GAP_SECONDS", GAP.to_string()),
                ("KEYSHIFT_INLINE_BUDGET_SECONDS", BUDGET.to_string()),
                ("KEYSHIFT_SCHEDULE_GROUP", GROUP.to_owned()),
                ("KEYSHIFT_SCHEDULER_ROLE_ARN", SCHEDULER_ROLE_ARN.to_owned()),
                ("KEYSHIFT_FUNCTION_ARN", FUNCTION_ARN.to_owned()),
                ("RUST_LOG", "info".to_owned()),
            ]);
            Watch::start(&env, &log).unwrap_or_else(|e| panic!("{e}"))
        });
        Rig {
            sm: aws_sdk_secretsmanager::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sched,
            moto,
            watch,
            needles: Vec::new(),
            printed: Vec::new(),
            log,
        }
    }

    /// The CLI with a clean AWS environment: dummy credentials, no profile or shared
    /// files, the emulator's endpoints as flags.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(support::cli_binary());
        cmd.env_clear()
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // The function's budget, so that the CLI expects the schedules it does.
            .env("KEYSHIFT_INLINE_BUDGET_SECONDS", BUDGET.to_string())
            .args(["--region", "us-east-1", "--endpoint-url", &self.moto.endpoint()]);
        if let Some(w) = &self.watch {
            cmd.args(["--lambda-endpoint-url", &w.endpoint()])
                .env("KEYSHIFT_FUNCTION", FUNCTION);
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn finish(&mut self, out: std::process::Output) -> Run {
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        // Shown when a test fails (or with --nocapture).
        println!("exit {}\n{}{}", run.code, run.stdout, run.stderr);
        self.printed.push(run.stdout.clone());
        self.printed.push(run.stderr.clone());
        run
    }

    /// Runs the CLI to its end (two minutes at most).
    async fn run(&mut self, args: &[&str]) -> Run {
        println!("$ keyshift {}", args.join(" "));
        let child = self.command(args).spawn().expect("spawn keyshift");
        let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("keyshift {args:?} did not end within 2 minutes"))
            .expect("keyshift's output");
        self.finish(out).await
    }

    /// A secret with `value`, T = [`GAP`] by its tag.
    async fn secret(&mut self, name: &str, value: &str) -> String {
        self.needles.push(value.to_owned());
        let out = self
            .sm
            .create_secret()
            .name(name)
            .secret_string(value)
            .tags(
                Tag::builder()
                    .key("keyshift:gap-seconds")
                    .value(GAP.to_string())
                    .build(),
            )
            .send()
            .await
            .expect("CreateSecret");
        out.arn().expect("an ARN").to_owned()
    }

    async fn labels(&self, secret: &str) -> BTreeMap<String, BTreeSet<String>> {
        let d = self
            .sm
            .describe_secret()
            .secret_id(secret)
            .send()
            .await
            .expect("DescribeSecret");
        d.version_ids_to_stages()
            .into_iter()
            .flatten()
            .filter(|(_, s)| !s.is_empty())
            .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
            .collect()
    }

    async fn holder(&self, secret: &str, stage: &str) -> Option<String> {
        self.labels(secret)
            .await
            .into_iter()
            .find(|(_, s)| s.contains(stage))
            .map(|(v, _)| v)
    }

    /// Invokes the function directly (the engine's and the scheduler's part).
    async fn invoke(&self, payload: &Value) -> Value {
        let watch = self.watch.as_ref().expect("the function runs");
        watch
            .invoke(payload)
            .await
            .unwrap_or_else(|e| panic!("{} failed: {e}", payload["Step"]))
    }

    /// Plays the rotation engine: RotateSecret leaves the value-less AWSPENDING
    /// placeholder (moto cannot run the Lambda, so the call itself fails, as in
    /// keyshift-local), then the four engine steps. Returns the token and finishSecret's
    /// answer (which schedules the `swapPending` follow-up).
    async fn engine_rotation(&mut self, arn: &str) -> (String, Value) {
        // moto keeps creation dates to the second: a rotation begun in the second the
        // secret was created would look older than its current version (superseded).
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let token = uuid_v4();
        let rotation_token = format!("{}-{}", uuid_v4(), uuid_v4());
        self.needles.push(rotation_token.clone());
        let _expected_error = self
            .sm
            .rotate_secret()
            .secret_id(arn)
            .client_request_token(&token)
            .rotation_lambda_arn(FUNCTION_ARN)
            .rotation_rules(RotationRulesType::builder().automatically_after_days(30).build())
            .send()
            .await;
        assert_eq!(
            self.holder(arn, AWSPENDING).await.as_deref(),
            Some(token.as_str()),
            "RotateSecret left the placeholder"
        );
        let mut last = Value::Null;
        for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
            last = self
                .invoke(&json!({"Step": step, "SecretId": arn, "ClientRequestToken": token, "RotationToken": rotation_token}))
                .await;
        }
        self.collect_values(arn).await;
        (token, last)
    }

    /// Adds every value the secret has now to the needles.
    async fn collect_values(&mut self, arn: &str) {
        let values = secret_values(&self.sm, arn).await.expect("ListSecretVersionIds");
        self.needles.extend(values);
    }

    /// No CLI output showed a value or a RotationToken.
    fn assert_no_leaks(&self) {
        assert!(!self.needles.is_empty());
        for text in &self.printed {
            for n in self.needles.iter().filter(|n| !n.is_empty()) {
                assert!(
                    !text.contains(n.as_str()),
                    "the CLI printed a secret value or RotationToken:\n{text}"
                );
            }
        }
    }

    /// Waits until `done` holds of the labels (two minutes at most).
    async fn wait_labels(
        &self,
        secret: &str,
        what: &str,
        done: impl Fn(&BTreeMap<String, BTreeSet<String>>) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let l = self.labels(secret).await;
            if done(&l) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: never happened: {l:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

fn released(l: &BTreeMap<String, BTreeSet<String>>, old: &str) -> bool {
    let holder = |stage: &str| l.iter().find(|(_, s)| s.contains(stage)).map(|(v, _)| v.as_str());
    holder(AWSCURRENT).is_some_and(|c| c != old)
        && holder(ROTATING).is_none()
        && holder(AWSPENDING).is_none_or(|p| Some(p) == holder(AWSCURRENT))
}

/// A swapPending follow-up as the dead-letter queue would hold it: the event itself.
fn swap_pending(arn: &str, token: &str, schedule: Option<&str>) -> Value {
    let mut event = json!({
        "Step": "swapPending",
        "SecretId": arn,
        "ClientRequestToken": token,
        "DueAt": now().to_rfc3339(),
    });
    if let Some(s) = schedule {
        event["Schedule"] = s.into();
    }
    event
}

/// The keys of a JSON object, recursively for `next` and the versions.
fn shape(v: &Value) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    if let Some(o) = v.as_object() {
        for (k, x) in o {
            keys.insert(k.clone());
            if let Some(inner) = x.as_object() {
                keys.extend(inner.keys().map(|i| format!("{k}.{i}")));
            }
            if let Some(first) = x.as_array().and_then(|a| a.first()).and_then(Value::as_object) {
                keys.extend(first.keys().map(|i| format!("{k}[].{i}")));
            }
        }
    }
    keys
}

/// `status` at idle and mid-rotation (human and `--json`), `rotate`, and hostile
/// arguments: moto only, no function.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_rotate_and_hostile_arguments() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut rig = Rig::start("status", false).await;
    let arn = rig
        .secret("keyshift/cli-status", "initial-value-0d5e9c1b7a")
        .await;
    let v1 = rig.holder(&arn, AWSCURRENT).await.expect("a current version");

    // Idle, human.
    let r = rig.run(&["status", &arn]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("phase:    idle"), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("secret:   {arn}")), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("T = 3s (from the secret's keyshift:gap-seconds tag)"),
        "{}",
        r.stdout
    );
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains(&v1))
        .expect("the version is listed");
    assert!(
        line.contains("AWSCURRENT") && line.contains("created 20"),
        "{line}"
    );
    assert!(r.stdout.contains("next:     nothing"), "{}", r.stdout);
    assert!(r.stdout.contains("stuck:    no"), "{}", r.stdout);
    assert!(r.stderr.is_empty(), "{}", r.stderr);

    // Idle, JSON: the function's status shape.
    let r = rig.run(&["status", &arn, "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(j["phase"], "idle");
    assert_eq!(j["secret"], json!(arn));
    assert!(j["expected_schedule"].is_null());
    assert!(j["next"].is_null());
    assert!(j["stuck"].is_null());
    assert_eq!(j["gap_seconds"], GAP);
    assert_eq!(j["in_use"], json!(v1));
    assert_eq!(j["versions"][0]["labels"], json!([AWSCURRENT]));
    for key in [
        "phase",
        "meaning",
        "now",
        "gap_seconds",
        "rotation_enabled",
        "deleted",
        "versions",
        "accepted",
        "in_use",
        "next",
        "stuck",
        "notes",
        "secret",
        "expected_schedule",
    ] {
        assert!(j.get(key).is_some(), "--json has {key}: {j}");
    }

    // Mid-rotation: the engine's version carries AWSPENDING (keyshift's copy not written),
    // written a second later than the current one (moto keeps dates to the second).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let token = uuid_v4();
    rig.needles.push("pending-value-7f3a2b9c4d".into());
    rig.sm
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("pending-value-7f3a2b9c4d")
        .client_request_token(&token)
        .version_stages(AWSPENDING)
        .send()
        .await
        .expect("PutSecretValue");
    let r = rig.run(&["status", &arn]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("phase:    pending"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!(
            "next:     copy: swapPending writes keyshift's copy of the engine's version {token}"
        )),
        "{}",
        r.stdout
    );
    // An operator who may not read values gets the same report: the value-free read
    // (labels, dates as listed) agrees with the function's read here.
    let sdk = rig.moto.sdk_config().await;
    let store = keyshift_cli::commands::store(&sdk);
    let id = keyshift::SecretId::new(arn.as_str());
    let full = keyshift::ports::SecretStore::describe(&store, &id, keyshift::ports::Detail::Full)
        .await
        .expect("a full read");
    let bare = keyshift_cli::commands::read_without_values(&store, &rig.sm, &id)
        .await
        .expect("a value-free read");
    assert_eq!(full.versions, bare.versions);
    assert_eq!(full.tags, bare.tags);
    // The timeline lists the current version first (it was written first).
    let (at_v1, at_token) = (
        r.stdout.find(&v1).expect("v1"),
        r.stdout.find(&token).expect("token"),
    );
    assert!(at_v1 < at_token, "oldest first:\n{}", r.stdout);

    // keyshift's copy of it carries AWSPENDING now: the first gap, with the swap due T
    // after the copy's creation.
    let copy = VersionId::new(token.as_str()).copy(1).to_string();
    rig.needles.push("pending-value-copy-5e6f".into());
    rig.sm
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("pending-value-copy-5e6f")
        .client_request_token(&copy)
        .version_stages(AWSPENDING)
        .send()
        .await
        .expect("PutSecretValue of the copy");
    let r = rig.run(&["status", &arn]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("phase:    first-gap"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!(
            "swap: {copy} becomes AWSCURRENT; {v1} keeps being accepted"
        )),
        "{}",
        r.stdout
    );
    let due = r
        .stdout
        .lines()
        .find(|l| l.contains("due 20"))
        .expect("a due time");
    assert!(
        due.contains("(in ") || due.contains("(now)") || due.contains("(overdue by "),
        "{due}"
    );
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains(&copy))
        .expect("the copy is listed");
    assert!(line.contains("[keyshift copy]"), "{line}");
    let j = rig.run(&["status", &arn, "--json"]).await.json();
    assert_eq!(j["phase"], "first-gap");
    assert_eq!(j["next"]["move"], "swap");
    assert_eq!(j["next"]["version"], json!(copy));
    assert!(j["next"]["due"].is_string(), "{j}");
    assert_eq!(j["accepted"].as_array().map(Vec::len), Some(2), "{j}");

    // rotate: RotateSecret now; prints the new version id. (moto, with no function to
    // run, makes that version AWSCURRENT at once; AWS would leave it AWSPENDING for the
    // rotation function.)
    let other = rig.secret("keyshift/cli-rotate", "rotate-me-value-93c1").await;
    let r = rig.run(&["rotate", &other]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let version = r.stdout.trim();
    assert!(VersionId::new(version).as_str().len() >= 32, "{r:?}");
    assert!(
        rig.labels(&other).await.contains_key(version),
        "the new version exists: {r:?}"
    );
    let r = rig.run(&["rotate", &other, "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert!(j["versionId"].is_string() && j["arn"] == json!(other), "{j}");

    // Hostile: an unknown secret is refused (3), one clear line on stderr.
    let nope = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyshift/nope-AbCdEf";
    for args in [
        vec!["status", nope],
        vec!["status", nope, "--json"],
        vec!["rotate", nope],
        vec!["watch", nope, "--interval", "1"],
        // emergency reads the secret first: refused before any function is needed.
        vec![
            "emergency",
            nope,
            "--reason",
            "test",
            "--function",
            "keyshift-rotation",
        ],
    ] {
        let r = rig.run(&args).await;
        assert_eq!(r.code, 3, "{args:?}: {r:?}");
        assert_eq!(r.stderr.lines().count(), 1, "one line: {r:?}");
        assert!(r.stderr.starts_with("keyshift: "), "{r:?}");
        assert!(
            r.stderr.contains("does not exist") || r.stderr.contains("ResourceNotFound"),
            "{r:?}"
        );
    }
    // A bad flag, a missing argument, a bad value: usage errors (2).
    for args in [
        vec!["status", &arn, "--no-such-flag"],
        vec!["status"],
        vec!["status", &arn, "--gap-seconds", "zero"],
        vec!["frobnicate", &arn],
        vec!["cancel", &arn],
        vec!["emergency", &arn, "--function", "f"],
        vec!["emergency", &arn, "--reason", "", "--function", "f"],
        vec!["watch", &arn, "--interval", "0"],
        vec!["redrive", &arn, "--max-messages", "3", "--function", "f"],
    ] {
        let r = rig.run(&args).await;
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stdout.is_empty(), "{args:?}: {r:?}");
        assert!(!r.stderr.is_empty(), "{args:?}: {r:?}");
    }
    // No Region at all: a usage error too.
    let mut bare = tokio::process::Command::new(support::cli_binary());
    bare.env_clear()
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["status", &arn, "--endpoint-url", &rig.moto.endpoint()]);
    let out = bare.output().await.expect("run");
    let r = rig.finish(out).await;
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no AWS Region"), "{r:?}");
    // Help: every command says what it does and its exit codes.
    for sub in ["status", "rotate", "emergency", "cancel", "redrive", "watch"] {
        let r = rig.run(&[sub, "--help"]).await;
        assert_eq!(r.code, 0, "{r:?}");
        assert!(r.stdout.contains("Exit codes: 0"), "{sub}: {}", r.stdout);
    }

    // watch gives up at --timeout (6): the secret is mid-rotation and nothing moves it.
    let r = rig
        .run(&["watch", &arn, "--interval", "1", "--timeout", "2"])
        .await;
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stdout.contains("first-gap"), "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert!(
        r.stderr
            .contains("--timeout of 2 s passed before the rotation ended (phase first-gap)"),
        "{r:?}"
    );
    // Ctrl-C ends it with 130.
    let child = rig
        .command(&["watch", &arn, "--interval", "1"])
        .spawn()
        .expect("spawn watch");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("watch ends on SIGINT")
        .expect("output");
    let r = rig.finish(out).await;
    assert_eq!(r.code, 130, "{r:?}");
    assert!(r.stderr.contains("interrupted"), "{r:?}");

    // A stuck rotation: the old version kept ROTATING with a swap marker from long ago,
    // so its release is long overdue. status and watch exit 5 with the advice.
    let stuck = rig.secret("keyshift/cli-stuck", "stuck-old-value-1c2d").await;
    let old = rig.holder(&stuck, AWSCURRENT).await.expect("current");
    rig.needles.push("stuck-new-value-3e4f".into());
    rig.sm
        .put_secret_value()
        .secret_id(&stuck)
        .secret_string("stuck-new-value-3e4f")
        .client_request_token(uuid_v4())
        .version_stages(AWSCURRENT)
        .send()
        .await
        .expect("PutSecretValue");
    let marker = swap_marker(Timestamp::from_secs(1_700_000_000));
    for stage in [ROTATING, marker.as_str()] {
        rig.sm
            .update_secret_version_stage()
            .secret_id(&stuck)
            .version_stage(stage)
            .move_to_version_id(&old)
            .send()
            .await
            .expect("UpdateSecretVersionStage");
    }
    let r = rig.run(&["status", &stuck]).await;
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stdout.contains("phase:    second-gap"), "{}", r.stdout);
    assert!(r.stdout.contains("(overdue by "), "{}", r.stdout);
    let advice = r
        .stdout
        .lines()
        .find(|l| l.starts_with("stuck:"))
        .expect("advice");
    assert!(
        advice.contains("YES. the release is overdue by") && advice.contains(&old),
        "{advice}"
    );
    assert!(
        r.stdout.contains(&format!("Or: keyshift redrive {stuck}")),
        "{}",
        r.stdout
    );
    assert!(r.stderr.is_empty(), "{r:?}");
    let r = rig.run(&["status", &stuck, "--json"]).await;
    assert_eq!(r.code, 5, "{r:?}");
    assert!(
        r.json()["stuck"]
            .as_str()
            .is_some_and(|a| a.contains("removePending")),
        "{}",
        r.stdout
    );
    let r = rig
        .run(&["watch", &stuck, "--interval", "1", "--timeout", "30"])
        .await;
    assert_eq!(r.code, 5, "{r:?}");
    assert!(
        r.stdout.contains("| STUCK") && r.stdout.contains("stuck: the release is overdue"),
        "{r:?}"
    );

    rig.collect_values(&arn).await;
    rig.collect_values(&other).await;
    rig.assert_no_leaks();
}

/// A real rotation on the emulator: `status --json` against the function's own status
/// payload; `redrive --from-dead-letter` with a queue holding the rotation's swapPending
/// (and a malformed follow-up, which is refused and kept); `watch` from pending until
/// released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_redrive_and_watch_until_released() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut rig = Rig::start("dlq", true).await;
    let arn = rig.secret("keyshift/cli-dlq", "dlq-initial-value-4b1f").await;
    let old = rig.holder(&arn, AWSCURRENT).await.expect("current");
    let (token, finish) = rig.engine_rotation(&arn).await;
    let scheduled = finish["scheduled"].as_array().cloned().unwrap_or_default();
    let job = scheduled
        .iter()
        .find(|j| j["step"] == "swapPending")
        .unwrap_or_else(|| panic!("finishSecret scheduled swapPending: {finish}"));

    // The CLI's status --json is the function's status payload, read directly.
    let r = rig.run(&["status", &arn, "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let mine = r.json();
    let theirs = rig.invoke(&json!({"Step": "status", "SecretId": arn})).await;
    assert_eq!(shape(&mine), shape(&theirs), "{mine}\n{theirs}");
    for key in [
        "phase",
        "versions",
        "accepted",
        "in_use",
        "gap_seconds",
        "secret",
        "expected_schedule",
        "stuck",
    ] {
        assert_eq!(mine[key], theirs[key], "{key}: {mine}\n{theirs}");
    }
    assert_eq!(mine["phase"], "pending", "{mine}");
    assert_eq!(mine["next"]["move"], theirs["next"]["move"]);

    // The dead-letter queue: the follow-up that was never delivered, and a malformed one.
    let queue = rig
        .sqs
        .create_queue()
        .queue_name("keyshift-dlq")
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("a queue URL")
        .to_owned();
    let good = swap_pending(&arn, &token, job["name"].as_str());
    let bad = json!({"Step": "swapPending", "SecretId": arn});
    for body in [&good, &bad] {
        rig.sqs
            .send_message()
            .queue_url(&queue)
            .message_body(body.to_string())
            .send()
            .await
            .expect("SendMessage");
    }

    // watch follows the rotation from here until it is released.
    let watcher = rig
        .command(&["watch", &arn, "--interval", "1", "--timeout", "120"])
        .spawn()
        .expect("spawn watch");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let r = rig.run(&["redrive", "--from-dead-letter", &queue]).await;
    assert_eq!(r.code, 3, "one message refused, none failed: {r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("swapPending of {arn}: redriven:"))
                && l.contains("deleted from the queue")),
        "{}",
        r.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("keyshift.InvalidEvent") && l.contains("kept in the queue")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("2 message(s): 1 redriven and deleted, 1 kept in the queue"),
        "{}",
        r.stdout
    );
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert!(
        r.stderr
            .contains("1 of 2 dead-letter message(s) were not redriven"),
        "{r:?}"
    );

    let out = tokio::time::timeout(Duration::from_secs(120), watcher.wait_with_output())
        .await
        .expect("watch ends")
        .expect("watch's output");
    let w = rig.finish(out).await;
    assert_eq!(w.code, 0, "{w:?}");
    let phases: Vec<&str> = w
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(phases.first(), Some(&"pending"), "{}", w.stdout);
    assert!(phases.contains(&"first-gap"), "{}", w.stdout);
    assert!(phases.contains(&"second-gap"), "{}", w.stdout);
    assert!(
        w.stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("no rotation in progress")),
        "{}",
        w.stdout
    );
    assert!(
        w.stdout.contains("| next: swap"),
        "a countdown to the swap: {}",
        w.stdout
    );
    assert!(released(&rig.labels(&arn).await, &old));

    // The refused message is back in the queue at once; redriving again refuses it again,
    // and --json reports it.
    let r = rig
        .run(&["redrive", "--from-dead-letter", &queue, "--json"])
        .await;
    assert_eq!(r.code, 3, "{r:?}");
    let j = r.json();
    assert_eq!(j["redriven"], 0, "{j}");
    assert_eq!(j["kept"], 1, "{j}");
    assert_eq!(j["messages"][0]["result"], "refused", "{j}");
    assert_eq!(
        j["messages"][0]["error"]["errorType"], "keyshift.InvalidEvent",
        "{j}"
    );
    assert_eq!(j["messages"][0]["deleted"], false, "{j}");
    // Removed by hand: the queue is empty, and a redrive says so.
    rig.sqs
        .purge_queue()
        .queue_url(&queue)
        .send()
        .await
        .expect("PurgeQueue");
    let r = rig.run(&["redrive", "--from-dead-letter", &queue]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("the dead-letter queue is empty"), "{r:?}");
    // A queue that does not exist is refused.
    let r = rig
        .run(&[
            "redrive",
            "--from-dead-letter",
            &format!("{}/123456789012/no-such-queue", rig.moto.endpoint()),
        ])
        .await;
    assert_eq!(r.code, 3, "{r:?}");

    // After: released, nothing stuck.
    let r = rig.run(&["status", &arn]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("phase:    released"), "{}", r.stdout);
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains(&old))
        .expect("the old version");
    assert!(line.contains(AWSPREVIOUS) && !line.contains(ROTATING), "{line}");
    // A function error through the Invoke API: the function refuses an unknown secret.
    let r = rig.run(&["redrive", "keyshift/no-such-secret"]).await;
    assert!(r.code == 3, "{r:?}");
    assert!(
        r.stderr
            .starts_with("keyshift: the function refused the request: keyshift."),
        "{r:?}"
    );

    rig.collect_values(&arn).await;
    rig.assert_no_leaks();
}

// ---------------------------------------------------------------------------------------
// Operator steps: the function's emergencyRotate, cancel and redrive.
// ---------------------------------------------------------------------------------------

/// Plays EventBridge Scheduler: invokes the function with every schedule of the group
/// whose time has come (deleting it first, as ActionAfterCompletion DELETE would), in the
/// background, as Scheduler invokes asynchronously. Returns how many it fired.
async fn deliver_due(rig: &Rig) -> usize {
    let Some(watch) = &rig.watch else { return 0 };
    let Ok(list) = rig.sched.list_schedules().group_name(GROUP).send().await else {
        return 0;
    };
    let mut fired = 0;
    for s in list.schedules() {
        let Some(name) = s.name() else { continue };
        let Ok(got) = rig.sched.get_schedule().group_name(GROUP).name(name).send().await else {
            continue;
        };
        let at = got
            .schedule_expression()
            .and_then(|e| e.strip_prefix("at(")?.strip_suffix(')').map(str::to_owned))
            .and_then(|t| Timestamp::parse_rfc3339(&format!("{t}Z")).ok());
        if at.is_none_or(|at| at > now()) {
            continue;
        }
        let input = got
            .target()
            .and_then(|t| t.input())
            .unwrap_or_default()
            .to_owned();
        let _ = rig
            .sched
            .delete_schedule()
            .group_name(GROUP)
            .name(name)
            .send()
            .await;
        let lambda = watch.lambda();
        tokio::spawn(async move {
            // The target's input is the event as JSON text (the function wrote it);
            // anything else goes as a JSON string, for the function to refuse.
            let payload = serde_json::from_str(&input).unwrap_or(Value::String(input));
            let _ = support::invoke(&lambda, &payload).await;
        });
        fired += 1;
    }
    fired
}

fn now() -> Timestamp {
    Timestamp::from_millis(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_millis(),
        )
        .expect("fits"),
    )
}

/// Waits until `done` holds of the labels, delivering due schedules meanwhile (two
/// minutes at most).
async fn settle(
    rig: &Rig,
    secret: &str,
    what: &str,
    done: impl Fn(&BTreeMap<String, BTreeSet<String>>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        deliver_due(rig).await;
        let l = rig.labels(secret).await;
        if done(&l) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: never happened: {l:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Brings a fresh secret to `phase` through the real function: `idle` (never rotated),
/// `pending` (engine steps done, the swapPending follow-up not delivered), `first-gap`
/// and `second-gap` (the follow-up delivered, caught in that gap: T is 20 s by the tag,
/// both gaps waited inline by that one invocation), `released` (a whole rotation).
/// Returns the secret's ARN and its AWSCURRENT version.
async fn secret_in_phase(rig: &mut Rig, name: &str, phase: &str) -> (String, String) {
    let arn = rig
        .secret(name, &format!("{name}-value-{}", &uuid_v4()[..8]))
        .await;
    if phase == "idle" {
        let current = rig.holder(&arn, AWSCURRENT).await.expect("current");
        return (arn, current);
    }
    let gap = if matches!(phase, "first-gap" | "second-gap") {
        20
    } else {
        GAP
    };
    rig.sm
        .tag_resource()
        .secret_id(&arn)
        .tags(
            Tag::builder()
                .key("keyshift:gap-seconds")
                .value(gap.to_string())
                .build(),
        )
        .send()
        .await
        .expect("TagResource");
    let (token, _) = rig.engine_rotation(&arn).await;
    if phase != "pending" {
        // Delivered in the background: it waits out both gaps inline.
        let payload = swap_pending(&arn, &token, None);
        let lambda = rig.watch.as_ref().expect("function").lambda();
        tokio::spawn(async move {
            let _ = support::invoke(&lambda, &payload).await;
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let j = rig.run(&["status", &arn, "--json"]).await.json();
            if j["phase"] == phase {
                break;
            }
            assert!(Instant::now() < deadline, "never reached {phase}: {j}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    rig.collect_values(&arn).await;
    let current = rig.holder(&arn, AWSCURRENT).await.expect("current");
    (arn, current)
}

/// An emergency in every phase: the CLI pins AWSCURRENT, the function cuts over to a new
/// value at once and revokes the compromised one; the same command again (as after a
/// timeout) changes nothing; a suspected compromise keeps the old version accepted for
/// a while; hostile requests are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_in_every_phase() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut rig = Rig::start("emergency", true).await;
    let reason = "INC-1: signing key pasted in a public channel";
    for phase in ["idle", "pending", "first-gap", "second-gap", "released"] {
        let (arn, compromised) =
            secret_in_phase(&mut rig, &format!("keyshift/cli-emergency-{phase}"), phase).await;
        let mut args = vec!["emergency", arn.as_str(), "--reason", reason];
        if phase == "released" {
            // Accept the new value a second before using it (waited inline).
            args.extend(["--gap-seconds", "1"]);
        }
        let r = rig.run(&args).await;
        assert_eq!(r.code, 0, "{phase}: {r:?}");
        assert!(
            r.stdout.contains(&format!(
                "compromised version: {compromised} (AWSCURRENT when read"
            )),
            "{phase}: the CLI pinned AWSCURRENT: {}",
            r.stdout
        );
        assert!(
            r.stdout.contains("step:      emergencyRotate"),
            "{phase}: {}",
            r.stdout
        );
        assert!(
            r.stdout.contains(&format!("compromisedVersion: {compromised}")),
            "{phase}: {}",
            r.stdout
        );
        assert!(
            r.stdout.contains(&format!("reason:    {reason}")),
            "{phase}: {}",
            r.stdout
        );
        let new = r
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("newVersion: "))
            .unwrap_or_else(|| panic!("{phase}: a new version: {}", r.stdout))
            .trim()
            .to_owned();
        // The compromised version is neither used nor accepted; the new one is current.
        settle(&rig, &arn, &format!("{phase}: cut over"), |l| {
            let holds = |v: &str, stage: &str| l.get(v).is_some_and(|s| s.contains(stage));
            holds(&new, AWSCURRENT)
                && !holds(&compromised, AWSCURRENT)
                && !holds(&compromised, AWSPENDING)
                && !holds(&compromised, ROTATING)
                && l.values()
                    .all(|s| !s.contains(AWSPENDING) || s.contains(AWSCURRENT))
        })
        .await;
        rig.collect_values(&arn).await;
        // The same command again, naming the same version (as after a timeout): done
        // already, nothing changes.
        let before = rig.labels(&arn).await;
        let r = rig
            .run(&[
                "emergency",
                &arn,
                "--reason",
                reason,
                "--version-id",
                &compromised,
                "--json",
            ])
            .await;
        assert_eq!(r.code, 0, "{phase}: a rerun is a no-op: {r:?}");
        assert_eq!(r.json()["step"], "emergencyRotate");
        assert_eq!(
            rig.holder(&arn, AWSCURRENT).await.as_deref(),
            Some(new.as_str()),
            "{phase}"
        );
        let after = rig.labels(&arn).await;
        assert_eq!(
            before
                .keys()
                .filter(|v| before[*v].contains(AWSCURRENT))
                .collect::<Vec<_>>(),
            after
                .keys()
                .filter(|v| after[*v].contains(AWSCURRENT))
                .collect::<Vec<_>>(),
            "{phase}"
        );
        // status knows the emergency's version.
        let r = rig.run(&["status", &arn]).await;
        assert_eq!(r.code, 0, "{phase}: {r:?}");
        assert!(
            r.stdout.contains("written by an emergency rotation"),
            "{phase}: {}",
            r.stdout
        );
    }
    // A suspected compromise: the old version stays accepted (ROTATING) for 2 s after the
    // cut, then is released.
    let (arn, compromised) = secret_in_phase(&mut rig, "keyshift/cli-emergency-keep", "idle").await;
    let r = rig
        .run(&[
            "emergency",
            &arn,
            "--reason",
            "suspected",
            "--keep-accepting-seconds",
            "2",
            "--json",
        ])
        .await;
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(j["compromisedVersion"], json!(compromised), "{j}");
    assert!(j["acceptedUntil"].is_string(), "{j}");
    settle(&rig, &arn, "kept accepting, then released", |l| {
        !l.get(&compromised)
            .is_some_and(|s| s.contains(ROTATING) || s.contains(AWSCURRENT))
    })
    .await;
    rig.collect_values(&arn).await;

    // Hostile: what the function would refuse never leaves the CLI (2); a version that is
    // not the secret's, or no longer current, is refused by the function (3).
    let (arn, current) = secret_in_phase(&mut rig, "keyshift/cli-emergency-hostile", "idle").await;
    for args in [
        vec!["emergency", &arn, "--reason", &*"x".repeat(300)],
        vec!["emergency", &arn, "--reason", " \t "],
        vec!["emergency", &arn, "--reason", "r", "--gap-seconds", "601"],
        vec![
            "emergency",
            &arn,
            "--reason",
            "r",
            "--version-id",
            "not-a-version",
        ],
    ] {
        let r = rig.run(&args).await;
        assert_eq!(r.code, 2, "{r:?}");
    }
    let r = rig
        .run(&[
            "emergency",
            &arn,
            "--reason",
            "r",
            "--version-id",
            "00000000-0000-4000-8000-000000000000",
        ])
        .await;
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr
            .starts_with("keyshift: the function refused the request: keyshift.Rejected"),
        "{r:?}"
    );
    // Keeping the old version longer than T (3 s by the tag) is refused.
    let r = rig
        .run(&[
            "emergency",
            &arn,
            "--reason",
            "r",
            "--keep-accepting-seconds",
            "60",
            "--json",
        ])
        .await;
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(r.json()["errorType"], "keyshift.Rejected", "{r:?}");
    assert_eq!(
        rig.holder(&arn, AWSCURRENT).await.as_deref(),
        Some(current.as_str()),
        "refusals changed nothing"
    );
    rig.assert_no_leaks();
}

/// cancel before the swap ends the rotation (labels back to the current version alone);
/// after the swap it is refused and the rotation finishes; a token that is not the
/// rotation's is refused; with nothing in flight there is nothing to cancel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_and_after_the_swap() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut rig = Rig::start("cancel", true).await;
    for phase in ["pending", "first-gap"] {
        let (arn, current) = secret_in_phase(&mut rig, &format!("keyshift/cli-cancel-{phase}"), phase).await;
        let r = rig.run(&["cancel", &arn, "--json"]).await;
        assert_eq!(r.code, 0, "{phase}: {r:?}");
        assert_eq!(r.json()["step"], "cancel", "{phase}: {r:?}");
        settle(&rig, &arn, &format!("{phase}: cancelled"), |l| {
            let holder = |stage: &str| l.iter().find(|(_, s)| s.contains(stage)).map(|(v, _)| v.clone());
            holder(AWSCURRENT).as_deref() == Some(current.as_str())
                && holder(AWSPENDING).is_none_or(|p| Some(p) == holder(AWSCURRENT))
        })
        .await;
        let r = rig.run(&["status", &arn]).await;
        assert_eq!(r.code, 0, "{phase}: {r:?}");
        assert!(
            r.stdout.contains("cancelled by an operator"),
            "{phase}: {}",
            r.stdout
        );
        // The first-gap's follow-up is still waiting inline: when it wakes it stands down.
        tokio::time::sleep(Duration::from_secs(if phase == "first-gap" { 22 } else { 0 })).await;
        assert_eq!(
            rig.holder(&arn, AWSCURRENT).await.as_deref(),
            Some(current.as_str()),
            "{phase}"
        );
        // Again: nothing in flight, nothing to cancel.
        let r = rig.run(&["cancel", &arn]).await;
        assert_eq!(r.code, 0, "{phase}: {r:?}");
    }
    // After the swap: refused (the new value is in use), labels unchanged; the release
    // still comes, so the rotation ends with the new version current.
    let (arn, new) = secret_in_phase(&mut rig, "keyshift/cli-cancel-after", "second-gap").await;
    let before = rig.labels(&arn).await;
    let r = rig.run(&["cancel", &arn]).await;
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr
            .starts_with("keyshift: the function refused the request: keyshift.Rejected"),
        "{r:?}"
    );
    let after = rig.labels(&arn).await;
    assert!(
        after == before || after.values().all(|s| !s.contains(ROTATING)),
        "refused: nothing moved but the release: {before:?} {after:?}"
    );
    settle(&rig, &arn, "after the swap: released", |l| {
        l.get(&new).is_some_and(|s| s.contains(AWSCURRENT)) && !l.values().any(|s| s.contains(ROTATING))
    })
    .await;
    // A token that is not the rotation's is refused.
    let (arn, current) = secret_in_phase(&mut rig, "keyshift/cli-cancel-token", "pending").await;
    let r = rig
        .run(&["cancel", &arn, "--token", "00000000-0000-4000-8000-000000000000"])
        .await;
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(
        rig.holder(&arn, AWSCURRENT).await.as_deref(),
        Some(current.as_str())
    );
    rig.collect_values(&arn).await;
    rig.assert_no_leaks();
}

/// The scheduler loses a follow-up (its schedule deleted, never delivered): status says
/// the rotation waits, `redrive` runs it now, and it finishes; a redrive with nothing in
/// flight changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_of_a_dropped_follow_up() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut rig = Rig::start("redrive", true).await;
    let (arn, old) = secret_in_phase(&mut rig, "keyshift/cli-redrive", "pending").await;
    let list = rig
        .sched
        .list_schedules()
        .group_name(GROUP)
        .send()
        .await
        .expect("ListSchedules");
    let mut dropped = 0;
    for s in list.schedules() {
        if let Some(name) = s.name() {
            rig.sched
                .delete_schedule()
                .group_name(GROUP)
                .name(name)
                .send()
                .await
                .expect("DeleteSchedule");
            dropped += 1;
        }
    }
    assert!(dropped >= 1, "finishSecret scheduled the swap");
    let r = rig.run(&["status", &arn, "--json"]).await;
    assert_eq!(r.json()["phase"], "pending", "{r:?}");
    let r = rig.run(&["redrive", &arn]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("step:      redrive"), "{}", r.stdout);
    assert!(
        r.stdout.contains("status:    released"),
        "the answer carries the status after it: {}",
        r.stdout
    );
    rig.wait_labels(&arn, "released after the redrive", |l| released(l, &old))
        .await;
    let r = rig
        .run(&["watch", &arn, "--interval", "1", "--timeout", "30"])
        .await;
    assert_eq!(r.code, 0, "{r:?}");
    // Redriving a rotation that is over changes nothing.
    let before = rig.labels(&arn).await;
    let r = rig.run(&["redrive", &arn, "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["step"], "redrive");
    assert_eq!(rig.labels(&arn).await, before);
    // An unknown secret is refused by the function.
    let r = rig.run(&["redrive", "keyshift/no-such-secret"]).await;
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("keyshift.Rejected"), "{r:?}");
    rig.collect_values(&arn).await;
    rig.assert_no_leaks();
}

/// T longer than the inline budget: the swap waits in a schedule. status finds it by
/// name (as the function's status does); once it is lost, status says so and `redrive`
/// schedules it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_finds_the_expected_schedule_and_redrive_replaces_a_lost_one() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut rig = Rig::start("schedule", true).await;
    let arn = rig
        .secret("keyshift/cli-schedule", "schedule-initial-value-8a7b")
        .await;
    rig.sm
        .tag_resource()
        .secret_id(&arn)
        .tags(Tag::builder().key("keyshift:gap-seconds").value("120").build())
        .send()
        .await
        .expect("TagResource");
    let (token, _) = rig.engine_rotation(&arn).await;
    // The follow-up copies, then schedules the swap T later (T > the budget).
    let answer = rig.invoke(&swap_pending(&arn, &token, None)).await;
    assert!(
        answer["scheduled"]
            .as_array()
            .is_some_and(|a| a.iter().any(|j| j["step"] == "swapPending")),
        "{answer}"
    );
    let r = rig.run(&["status", &arn, "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let mine = r.json();
    let theirs = rig.invoke(&json!({"Step": "status", "SecretId": arn})).await;
    assert_eq!(mine["phase"], "first-gap", "{mine}");
    assert!(mine["expected_schedule"].is_string(), "{mine}");
    assert_eq!(mine["schedule"]["state"], "ENABLED", "found by name: {mine}");
    assert_eq!(mine["schedule"], theirs["schedule"], "{mine}\n{theirs}");
    assert_eq!(shape(&mine), shape(&theirs), "{mine}\n{theirs}");
    let r = rig.run(&["status", &arn]).await;
    let name = mine["schedule"]["name"].as_str().expect("a name");
    assert!(r.stdout.contains(&format!("found: {name} at(")), "{}", r.stdout);

    // The schedule is lost.
    rig.sched
        .delete_schedule()
        .group_name(GROUP)
        .name(name)
        .send()
        .await
        .expect("DeleteSchedule");
    let r = rig.run(&["status", &arn, "--json"]).await;
    let mine = r.json();
    assert!(
        mine["schedule"].is_null() && mine.get("schedule").is_some(),
        "{mine}"
    );
    assert!(
        mine["notes"].as_array().is_some_and(|n| n
            .iter()
            .any(|x| x.as_str() == Some(keyshift_cli::schedule::MISSING_NOTE))),
        "{mine}"
    );
    let theirs = rig.invoke(&json!({"Step": "status", "SecretId": arn})).await;
    assert_eq!(mine["notes"], theirs["notes"], "{mine}\n{theirs}");
    let r = rig.run(&["status", &arn]).await;
    assert!(
        r.stdout
            .contains("NOT FOUND (delivered already, lost, or not created yet)"),
        "{}",
        r.stdout
    );
    // redrive runs the swap's follow-up now: not due yet, so it schedules it again.
    let r = rig.run(&["redrive", &arn, "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let r = rig.run(&["status", &arn, "--json"]).await;
    assert_eq!(r.json()["schedule"]["state"], "ENABLED", "{}", r.stdout);
    rig.collect_values(&arn).await;
    rig.assert_no_leaks();
}
