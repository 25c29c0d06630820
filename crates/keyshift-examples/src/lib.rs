//! Two small services on keyshift-client, written to be read.
//!
//! | module | what |
//! |---|---|
//! | [`token_service`] | **signs** with the current key, **verifies** with the window's JWKS |
//! | [`data_service`] | **encrypts** with the current key, **decrypts** by the key id carried |
//! | [`keys`] | key material as stored in a secret: Ed25519 and AES-256 JWKs |
//! | [`token`] | compact JWS (EdDSA) with `kid` = version id, verified against a JWKS |
//! | [`sealed`] | AES-256-GCM ciphertext carrying its key id, bound into the AAD |
//! | [`rotation`] | keyshift [`Target`](keyshift::ports::Target)s that generate real keys |
//!
//! The rule both services follow (docs/protocol.md, section 1): **use** the AWSCURRENT version
//! (sign, encrypt); **accept** AWSCURRENT, AWSPENDING and ROTATING (verify); **decrypt
//! stored data** by the exact version id it carries, fetching that version on a miss,
//! never "try current, then previous".
//!
//! # Quick start
//!
//! ```no_run
//! use std::time::Duration;
//! use keyshift_client::{Client, Config, SdkSource};
//! use keyshift_examples::{data_service::DataService, token_service::TokenService};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let sm = aws_sdk_secretsmanager::Client::new(&aws);
//! // T: the propagation gap the rotation function was deployed with.
//! let config = Config::new(Duration::from_secs(900))?;
//!
//! let tokens = TokenService::new(Client::start(SdkSource::new(sm.clone(), "prod/token-signing"), config.clone()).await?);
//! let token = tokens.issue(&serde_json::json!({"sub": "alice"}))?;
//! let claims = tokens.verify(&token).await?;
//!
//! let data = DataService::new(Client::start(SdkSource::new(sm, "prod/data-key"), config).await?);
//! let sealed = data.encrypt(b"4111 1111 1111 1111")?;
//! let plain = data.decrypt(&sealed).await?;
//! # let _ = (claims, plain);
//! # Ok(())
//! # }
//! ```
//!
//! The secrets' values are private JWKs (see [`keys`]); rotate them with keyshift and
//! the [`rotation`] targets so that every new version is real key material.

pub mod data_service;
pub mod keys;
pub mod rotation;
pub mod sealed;
pub mod token;
pub mod token_service;
