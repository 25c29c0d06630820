//! The bench's local AWS: moto's server, the counting proxy in front of it, and the
//! operator's hands (create a secret, add a pending version) that go to moto directly
//! so they are never counted.

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::Tag;
use keyshift_local::moto::{Moto, sdk_config};
use keyshift_local::proxy::CountingProxy;

/// moto's server with a counting proxy in front.
#[derive(Debug)]
pub struct World {
    /// Kept for its drop: the server stops with the world.
    _moto: Moto,
    /// Counts what the caches under test send.
    pub proxy: CountingProxy,
    /// For the libraries under test: every request goes through the proxy.
    pub counted: SdkConfig,
    /// For setup and rotations: straight to moto, not counted.
    pub operator: Client,
}

impl World {
    /// Starts moto (127.0.0.1 only) and the proxy.
    pub async fn start() -> Result<World, String> {
        let moto = Moto::start()?;
        let proxy = CountingProxy::start(moto.port)
            .await
            .map_err(|e| format!("counting proxy: {e}"))?;
        let counted = sdk_config(&proxy.endpoint()).await;
        let operator = Client::new(&moto.sdk_config().await);
        Ok(World {
            _moto: moto,
            proxy,
            counted,
            operator,
        })
    }

    /// Creates secret `name` with `value` and returns its first version id (AWSCURRENT).
    pub async fn create_secret(&self, name: &str, value: &str) -> Result<String, String> {
        let out = self
            .operator
            .create_secret()
            .name(name)
            .secret_string(value)
            .tags(Tag::builder().key("purpose").value("keyshift-bench").build())
            .send()
            .await
            .map_err(|e| format!("CreateSecret {name}: {e:?}"))?;
        out.version_id()
            .map(str::to_owned)
            .ok_or_else(|| format!("CreateSecret {name} returned no version id"))
    }

    /// Writes `value` as a new version labelled AWSPENDING (the first step of a
    /// keyshift rotation) and returns its version id.
    pub async fn put_pending(&self, name: &str, value: &str) -> Result<String, String> {
        let out = self
            .operator
            .put_secret_value()
            .secret_id(name)
            .secret_string(value)
            .version_stages("AWSPENDING")
            .send()
            .await
            .map_err(|e| format!("PutSecretValue {name}: {e:?}"))?;
        out.version_id()
            .map(str::to_owned)
            .ok_or_else(|| format!("PutSecretValue {name} returned no version id"))
    }
}
