//! keyshift-client: read a rotated AWS Secrets Manager secret the way keyshift's
//! rotation needs (docs/protocol.md, section 1, the consumer contract).
//!
//! * **Use** (sign, encrypt new data, present as a credential) the version labelled
//!   `AWSCURRENT`: [`WindowCache::current`].
//! * **Accept** (verify, authenticate, decrypt short-lived data) every version labelled
//!   `AWSCURRENT`, `AWSPENDING` or `ROTATING`: [`WindowCache::accepted`],
//!   [`WindowCache::accepted_version`], and for signing key pairs the JWKS of those
//!   versions with `kid` = version id: [`WindowCache::jwks`].
//! * **Decrypt stored data** by the exact version id it carries, never "current, then
//!   previous": [`WindowCache::version`], backed by a bounded cache of past versions and
//!   fetched on a miss ([`Client::fetch_version`]).
//! * **Refresh in less than T**: the refresh interval is jittered, and [`Config`] refuses
//!   any setting where the longest interval plus the read-lag allowance reaches the
//!   rotation's propagation gap T.
//!
//! # Quick start
//!
//! ```no_run
//! use std::time::Duration;
//! use keyshift_client::{Client, Config, SdkSource};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let source = SdkSource::new(aws_sdk_secretsmanager::Client::new(&aws), "prod/token-signing");
//! // T: the propagation gap the rotation function was deployed with.
//! let config = Config::new(Duration::from_secs(600))?;
//! let client = Client::start(source, config).await?; // first refresh, then a background task
//!
//! // Sign with the current key (a stock key pair): the token's `kid` is its version id,
//! // never a stored one; the PKCS#8 PEM goes to jsonwebtoken's `EncodingKey`.
//! let key = client.current()?.signing_key()?;
//! let (kid, alg, pem) = (key.kid(), key.alg(), key.private_key_pem());
//! # let _ = (kid, alg, pem);
//!
//! // Publish (or verify against) the accepted public keys.
//! let jwks = client.jwks()?;
//! println!("{}", jwks.as_str());
//!
//! // Verify a token by its kid: an unknown kid refreshes once (rate limited), so an
//! // emergency rotation heals in one round trip.
//! let key = client.fetch_accepted("a1b2c3d4-0000-4000-8000-000000000001").await?;
//! # let _ = key;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! * [`config`]: [`Config`], validated against T.
//! * [`source`]: the [`Source`] trait (`describe` → [`LabelMap`], `value(version id)`),
//!   the only way the cache reaches AWS; [`SdkSource`] (feature `sdk`, default) is the
//!   production one.
//! * `core` (private): the sans-I/O state machine. Every decision takes `now` as an
//!   argument; it never reads a clock or calls anything.
//! * [`cache`]: [`WindowCache`], the published [`View`] (read through `arc-swap`: **no
//!   lock and no call on the read path**, ever) and the driver that refreshes it
//!   through a source at a time the caller gives.
//! * [`view`]: [`View`] and [`Version`]; [`jwks`]: the JWKS of the accepted signing keys;
//!   [`keys`]: a signer's key (PEM, `alg`, `kid`) and a symmetric key's bytes; [`error`]:
//!   [`LookupError`].
//! * `runtime` (feature `runtime`, in `sdk`): [`Client`], a cache plus a tokio task
//!   that refreshes it, reading the system clock at the edge ([`SystemClock`]).
//!
//! Without default features the crate has no runtime and no SDK: the simulation drives
//! [`WindowCache`] with a virtual clock and a synchronous source.
//!
//! Secret values are [`SecretValue`]s: their `Debug` is redacted, and no error or log
//! line of this crate carries one.

pub mod cache;
pub mod config;
mod core;
pub mod error;
pub mod jwks;
pub mod keys;
mod rng;
#[cfg(feature = "runtime")]
mod runtime;
#[cfg(feature = "sdk")]
mod sdk;
pub mod source;
pub mod view;

#[cfg(test)]
mod tests;

pub use cache::{Accepted, Stats, ViewRef, WindowCache};
pub use config::{Config, ConfigBuilder, ConfigError};
pub use error::LookupError;
pub use jwks::{JwkProblem, Jwks};
pub use keys::{KeyProblem, SigningKey, SymmetricKey};
pub use keyshift::secret::{ACCEPTED_STAGES, AWSCURRENT, AWSPENDING, AWSPREVIOUS, ROTATING};
pub use keyshift::{SecretValue, Timestamp, VersionId};
pub use rng::random_seed;
#[cfg(feature = "runtime")]
pub use runtime::{Client, SystemClock};
#[cfg(feature = "sdk")]
pub use sdk::SdkSource;
pub use source::{LabelMap, Source, SourceError, SourceErrorKind};
pub use view::{Health, Version, View};

/// The SDK this crate's [`SdkSource`] is built on, re-exported so callers build the
/// client with the same version.
#[cfg(feature = "sdk")]
pub use aws_sdk_secretsmanager;
