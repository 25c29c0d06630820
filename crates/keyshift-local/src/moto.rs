//! moto's server as a local AWS: started on a free loopback port, waited for, stopped
//! on drop. The one emulator launcher of the repository: every test, example and
//! benchmark that needs moto starts it here.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kms::error::DisplayErrorContext;

/// The environment variable naming the virtualenv that has `moto_server` and
/// `cargo-lambda` (the Makefile sets it; default `.venv` at the workspace root).
pub const VENV: &str = "KEYSHIFT_VENV";

/// The virtualenv: `$KEYSHIFT_VENV`, else `.venv` at the workspace root.
pub fn venv() -> PathBuf {
    std::env::var_os(VENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"))
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something accepts connections on `port`, or `timeout` passes.
pub fn wait_for_port(port: u16, timeout: Duration, child: &mut Child, what: &str) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited before it listened on {port}: {status}"));
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "{what} did not listen on 127.0.0.1:{port} within {timeout:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running moto server; killed when dropped.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Moto {
    /// Starts moto's server from the virtualenv on a free port and waits for it, through
    /// `emulator/moto_server.py`: moto with its ListSecretVersionIds reporting each
    /// version's own CreatedDate, as AWS does (that file says why).
    pub fn start() -> Result<Moto, String> {
        let python = venv().join("bin").join("python");
        if !venv().join("bin").join("moto_server").exists() {
            return Err(format!(
                "{} not found: run `make venv` (or set {VENV} to a virtualenv with moto[server])",
                venv().join("bin").join("moto_server").display()
            ));
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("emulator")
            .join("moto_server.py");
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", script.display()))?;
        if let Err(e) = wait_for_port(port, Duration::from_secs(30), &mut child, "moto_server") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        Ok(Moto { child, port })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An SDK configuration for this server: its endpoint, a fixed region and dummy
    /// credentials (moto accepts any).
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config(&self.endpoint()).await
    }

    /// A KMS client for this server.
    pub async fn kms(&self) -> aws_sdk_kms::Client {
        kms(&self.endpoint()).await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The region every local component uses.
pub const REGION: &str = "us-east-1";

/// The environment a process talking to the emulator needs (the function under
/// `cargo lambda watch`, for one).
pub fn emulator_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_DEFAULT_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
    ]
}

/// An SDK configuration for an emulator at `endpoint`.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    let creds =
        aws_sdk_secretsmanager::config::Credentials::new("testing", "testing", None, None, "keyshift-local");
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .load()
        .await
}

/// A KMS client for the emulator at `endpoint`.
pub async fn kms(endpoint: &str) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&sdk_config(endpoint).await)
}

/// A new symmetric KMS key with `alias` pointing at it (CreateKey, CreateAlias): the
/// KEK of the envelope and migration tests. Returns the key's metadata (its id and ARN).
pub async fn kms_key_with_alias(
    kms: &aws_sdk_kms::Client,
    alias: &str,
) -> Result<aws_sdk_kms::types::KeyMetadata, String> {
    let key = kms_key(kms).await?;
    kms.create_alias()
        .alias_name(alias)
        .target_key_id(key.key_id())
        .send()
        .await
        .map_err(|e| format!("CreateAlias {alias}: {}", DisplayErrorContext(e)))?;
    Ok(key)
}

/// A KEK rotation as a platform does it in KMS: a new key, and `alias` moved to it
/// (CreateKey, UpdateAlias). Returns the new key's metadata.
pub async fn kms_move_alias(
    kms: &aws_sdk_kms::Client,
    alias: &str,
) -> Result<aws_sdk_kms::types::KeyMetadata, String> {
    let key = kms_key(kms).await?;
    kms.update_alias()
        .alias_name(alias)
        .target_key_id(key.key_id())
        .send()
        .await
        .map_err(|e| format!("UpdateAlias {alias}: {}", DisplayErrorContext(e)))?;
    Ok(key)
}

/// `plaintext` as a platform encrypted values before envelope encryption: one KMS
/// Encrypt with `key_id` (a key id, ARN or alias), the ciphertext blob as stored.
pub async fn kms_encrypt(
    kms: &aws_sdk_kms::Client,
    key_id: &str,
    plaintext: Vec<u8>,
) -> Result<Vec<u8>, String> {
    kms.encrypt()
        .key_id(key_id)
        .plaintext(aws_sdk_kms::primitives::Blob::new(plaintext))
        .send()
        .await
        .map_err(|e| format!("Encrypt: {}", DisplayErrorContext(e)))?
        .ciphertext_blob
        .map(|b| b.into_inner())
        .ok_or_else(|| "Encrypt answered no ciphertext".to_owned())
}

/// Every value secret `arn` ever had that Secrets Manager still returns: each version
/// ListSecretVersionIds lists (deprecated ones included) read with GetSecretValue; a
/// version that cannot be read, or holds no string, is left out. What a leak check
/// looks for in logs and output.
pub async fn secret_values(sm: &aws_sdk_secretsmanager::Client, arn: &str) -> Result<Vec<String>, String> {
    let listed = sm
        .list_secret_version_ids()
        .secret_id(arn)
        .include_deprecated(true)
        .send()
        .await
        .map_err(|e| format!("ListSecretVersionIds: {e}"))?;
    let mut values = Vec::new();
    for v in listed.versions() {
        let Some(id) = v.version_id() else { continue };
        if let Ok(out) = sm.get_secret_value().secret_id(arn).version_id(id).send().await {
            if let Some(s) = out.secret_string() {
                values.push(s.to_owned());
            }
        }
    }
    Ok(values)
}

/// A new symmetric KMS key (CreateKey), without an alias.
pub async fn kms_key(kms: &aws_sdk_kms::Client) -> Result<aws_sdk_kms::types::KeyMetadata, String> {
    kms.create_key()
        .send()
        .await
        .map_err(|e| format!("CreateKey: {}", DisplayErrorContext(e)))?
        .key_metadata
        .ok_or_else(|| "CreateKey answered no key metadata".to_owned())
}
