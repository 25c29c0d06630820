//! The rotation function under `cargo lambda watch`, cargo-lambda's local Lambda
//! runtime, invoked through the Lambda Invoke API.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::http::post_json;
use crate::moto::{free_port, venv, wait_for_port, workspace_root};

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
}

/// An invocation that failed: the status and the error body the runtime returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeError {
    /// The HTTP status (500 for a function error under `cargo lambda watch`).
    pub status: u16,
    /// The response body (the function's error type and message).
    pub body: String,
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.body)
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
        })
    }

    /// Invokes the function synchronously (RequestResponse) with `payload`.
    pub async fn invoke(&self, payload: &Value) -> Result<Value, InvokeError> {
        let path = format!("/2015-03-31/functions/{FUNCTION}/invocations");
        let body = serde_json::to_vec(payload).unwrap_or_default();
        let r = post_json(self.port, &path, &body, Duration::from_secs(900))
            .await
            .map_err(|e| InvokeError { status: 0, body: e })?;
        let text = String::from_utf8_lossy(&r.body).into_owned();
        let value: Option<Value> = serde_json::from_str(&text).ok();
        let is_error = value
            .as_ref()
            .is_some_and(|v| v.get("errorType").is_some() || v.get("errorMessage").is_some());
        match value {
            Some(v) if r.status == 200 && !is_error => Ok(v),
            _ => Err(InvokeError {
                status: r.status,
                body: text,
            }),
        }
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
