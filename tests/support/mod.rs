//! What the end-to-end suites share (each includes it with `mod support;`): the one
//! emulator (moto's server, keyshift-local's launcher, with the SDK clients and the KMS
//! key set-up), the one function launcher (the release binary under `cargo lambda
//! watch`, invoked with aws-sdk-lambda, retries disabled), the one consumer fleet
//! (keyshift-local's, the demo's own), and the operator CLI's binary. Wrappers and
//! re-exports only: the launchers live in `crates/keyshift-local`, which `make demo` and
//! the benchmarks run too.
//!
//! Everything here starts its servers on free loopback ports, waits for them to accept
//! connections, stops them on drop, and fails (never skips) when it cannot start them.

// Each suite is its own test binary and uses only part of this module.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

// The emulator: moto's server on a free port, stopped on drop; the environment of a
// process that talks to it; a KMS key behind an alias and its rotation.
pub use keyshift_local::moto::{
    Moto, emulator_env, kms_encrypt, kms_key, kms_key_with_alias, kms_move_alias, secret_values,
};
// The function launcher: `cargo lambda watch` on a free port, stopped on drop, and the
// Invoke call (the CLI's, sent once).
pub use keyshift_local::watch::{FUNCTION, Watch, invoke};
// The consumer fleet and the whole rotations it watches, with the label timeline and the
// log-leak check: keyshift-local's (`make demo`, `make demo-postgres`).
pub use keyshift_local::calls::Origin;
pub use keyshift_local::kinds::{ALL_KINDS, KindsOptions, run_kinds, short_gaps};
pub use keyshift_local::local::{
    FUNCTION_ARN, GROUP, Options, SCHEDULER_ROLE_ARN, Summary, Timeline, leaks, run, uuid_v4,
};
pub use keyshift_local::pgdemo::{PgRunOptions, run_postgres};

/// moto's server, started for this test; the test fails when it cannot start.
pub fn moto() -> Moto {
    Moto::start().unwrap_or_else(|e| panic!("moto is unavailable, so this suite cannot run: {e}"))
}

/// A Secrets Manager client for `moto`.
pub async fn secrets_manager(moto: &Moto) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await)
}

/// A KMS client for `moto`.
pub async fn kms(moto: &Moto) -> aws_sdk_kms::Client {
    moto.kms().await
}

/// The `keyshift` operator CLI's binary, built once per test binary (`cargo build -p
/// keyshift-cli --bin keyshift`, the profile and target directory of the tests, as
/// [`Watch::start`] builds the function), for the suites that run it as an operator
/// does: as a process, with its exit code, stdout and stderr, and its signals.
pub fn cli_binary() -> &'static Path {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BUILT.get_or_init(|| build_binary("keyshift-cli", "keyshift")) {
        Ok(path) => path,
        Err(e) => panic!("{e}"),
    }
}

/// Builds `bin` of `package` in the tests' profile and returns the executable's path,
/// as cargo reports it.
fn build_binary(package: &str, bin: &str) -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "-p", package, "--bin", bin])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo build -p {package}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build -p {package} --bin {bin} failed: {}",
            out.status
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("cargo build -p {package} reported no executable {bin}"))
}

/// A swapPending follow-up for `secret`'s rotation `token`, due and fired at `fire_at`,
/// named as the executor names it: what the scheduler suites create, find and delete.
pub fn swap_job(
    secret: &keyshift::SecretId,
    token: keyshift::VersionId,
    fire_at: keyshift::Timestamp,
) -> keyshift::ports::Job {
    let name = keyshift::ports::schedule_name(secret, "swap", &token, fire_at);
    keyshift::ports::Job {
        name: name.clone(),
        fire_at,
        invocation: keyshift::event::Invocation {
            step: keyshift::event::Step::SwapPending { due: fire_at },
            secret_id: secret.clone(),
            token,
            rotation_token: None,
            schedule: Some(name),
        },
    }
}
