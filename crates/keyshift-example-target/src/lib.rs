//! A complete keyshift target to copy: the rotation of an API key of your own HTTP
//! service ("service B") with zero downtime.
//!
//! Service B accepts any of its registered keys; keyshift registers the new key as a
//! second valid one (setSecret), logs in with it (testSecret), waits until every consumer
//! uses it (T after it became AWSCURRENT), and only then revokes the old one:
//!
//! ```text
//! createSecret   generate: ks_<256 random bits>          B: old
//! setSecret      set:  PUT    /admin/keys/{id}            B: old, new
//! testSecret     test: GET    /whoami (Bearer new)        B: old, new
//! ...T...        AWSCURRENT moves to the new key          B: old, new
//! ...T...        release, revoke: DELETE /admin/keys/{id} B: new
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`target`] | [`ApiKeyTarget`], the [`keyshift::ports::Target`] |
//! | [`key`] | the key: generation (aws-lc-rs), format, id and hash |
//! | [`config`] | environment variables, the service URL tag and its rules |
//! | [`client`] | service B's API over hyper + rustls (aws-lc-rs), and how each answer maps to a [`keyshift::ports::TargetErrorKind`] |
//! | `service_b` | service B itself, for local runs and tests (feature `service-b`) |
//!
//! The Lambda binary (`src/main.rs`) is three lines around
//! [`keyshift_lambda::run()`]; the crate's README says how to copy, build and deploy it.

pub mod client;
pub mod config;
pub mod key;
#[cfg(feature = "service-b")]
pub mod service_b;
pub mod target;

pub use client::ServiceClient;
pub use config::{ConfigError, Settings};
pub use key::{ApiKey, KeyId};
pub use target::ApiKeyTarget;
