//! The rotation function under `cargo lambda watch`, cargo-lambda's local Lambda
//! runtime, invoked through the Lambda Invoke API with aws-sdk-lambda: the operator
//! CLI's client and call (`keyshift_cli::aws::lambda`, `keyshift_cli::invoke::invoke`),
//! retries disabled, so that a step is sent exactly once (the SDK's standard retries
//! would send a failed step again: the local runtime answers a function error with a
//! bare HTTP 500).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_lambda::config::{Credentials, SharedCredentialsProvider};
use keyshift_cli::invoke::Answer;
use serde_json::Value;

use crate::moto::{REGION, free_port, venv, wait_for_port, workspace_root};

/// The function's name under the local runtime: the binary's name.
pub const FUNCTION: &str = "keyshift-rotation";

/// A running `cargo lambda watch`; its process group is killed when dropped.
#[derive(Debug)]
pub struct Watch {
    child: Child,
    /// The Invoke API's port on 127.0.0.1.
    pub port: u16,
    /// Where the runtime's and the function's output goes.
    pub log: PathBuf,
    lambda: aws_sdk_lambda::Client,
}

/// An invocation that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeError {
    /// The function's error type (`keyshift.Rejected`, ..., or the runtime's own), or
    /// `None` when the call itself failed and no answer of the function came back.
    pub error_type: Option<String>,
    /// The function's error as the Invoke API carries it (`{"errorType",
    /// "errorMessage"}`), or why the call failed.
    pub body: String,
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.error_type {
            Some(_) => f.write_str(&self.body),
            None => write!(f, "the Invoke call failed: {}", self.body),
        }
    }
}

/// A Lambda client for the Invoke API at `endpoint` (a local runtime): the CLI's, with
/// retries disabled, the emulator's region and dummy credentials.
pub fn lambda_client(endpoint: &str) -> aws_sdk_lambda::Client {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "keyshift-local",
        )))
        .build();
    keyshift_cli::aws::lambda(&sdk, Some(endpoint))
}

/// Invokes the rotation function synchronously (RequestResponse) with `payload`, once,
/// through `lambda` (a [`lambda_client`], or [`Watch::lambda`]).
pub async fn invoke(lambda: &aws_sdk_lambda::Client, payload: &Value) -> Result<Value, InvokeError> {
    let body = serde_json::to_vec(payload).unwrap_or_default();
    match keyshift_cli::invoke::invoke(lambda, FUNCTION, body).await {
        Ok(Answer::Done(v)) => Ok(v),
        Ok(Answer::Error(e)) => Err(InvokeError {
            body: e.to_json().to_string(),
            error_type: Some(e.error_type),
        }),
        Err(e) => Err(InvokeError {
            error_type: None,
            body: e.to_string(),
        }),
    }
}

impl Watch {
    /// Builds the release binary, then serves it with `cargo lambda watch --release` on a
    /// free port, with `env` as the function's environment and all output in `log`.
    pub fn start(env: &[(&str, String)], log: &Path) -> Result<Watch, String> {
        let cargo_lambda = venv().join("bin").join("cargo-lambda");
        if !cargo_lambda.exists() {
            return Err(format!(
                "{} not found: run `make venv` (a virtualenv with cargo-lambda)",
                cargo_lambda.display()
            ));
        }
        let root = workspace_root();
        let built = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "-p", "keyshift-lambda", "--bin", FUNCTION])
            .current_dir(&root)
            .status()
            .map_err(|e| format!("cargo build: {e}"))?;
        if !built.success() {
            return Err(format!("cargo build of {FUNCTION} failed: {built}"));
        }
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let out = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&cargo_lambda);
        cmd.args(["lambda", "watch", "--release", "--ignore-changes", "--quiet"])
            .args([
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
            ])
            .args(["--concurrency", "8", "--timeout", "900"])
            .args(["--package", "keyshift-lambda", "--bin", FUNCTION]);
        for (k, v) in env {
            cmd.arg("--env-var").arg(format!("{k}={v}"));
            // cargo-lambda reads RUST_LOG for its own log too: that one is the function's.
            if *k != "RUST_LOG" {
                cmd.env(k, v);
            }
        }
        cmd.env_remove("RUST_LOG");
        // Its own process group, so that drop stops cargo, the runtime and the function.
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        let mut child = cmd
            .current_dir(&root)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("could not start cargo lambda watch: {e}"))?;
        if let Err(e) = wait_for_port(port, Duration::from_secs(120), &mut child, "cargo lambda watch") {
            kill_group(&mut child);
            return Err(format!("{e} (see {})", log.display()));
        }
        Ok(Watch {
            child,
            port,
            log: log.to_path_buf(),
            lambda: lambda_client(&format!("http://127.0.0.1:{port}")),
        })
    }

    /// `http://127.0.0.1:<port>`: the Invoke API (the CLI's `--lambda-endpoint-url`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The Lambda client of this runtime (a cheap clone), for invocations that outlive
    /// a borrow of the `Watch` (a background follow-up).
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        self.lambda.clone()
    }

    /// Invokes the function synchronously (RequestResponse) with `payload`, once.
    pub async fn invoke(&self, payload: &Value) -> Result<Value, InvokeError> {
        invoke(&self.lambda, payload).await
    }
}

fn kill_group(child: &mut Child) {
    let pid = child.id().to_string();
    // The whole group: cargo-lambda starts the function as a child of its own.
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{pid}")])
        .status();
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Watch {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}
