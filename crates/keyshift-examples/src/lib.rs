//! Services on keyshift-client, written to be read, on real libraries with one crypto
//! provider (aws-lc-rs, the one the SDK's TLS already uses).
//!
//! | module | what |
//! |---|---|
//! | [`token_service`] | **signs** JWTs with the current key, **verifies** them with the window's JWKS (refresh-on-miss for an unknown `kid`) |
//! | [`jwt`] | `jsonwebtoken`: sign with a stock key pair (`kid` = version id), verify against a [`JwkSet`](jsonwebtoken::jwk::JwkSet) with the algorithm pinned to the key's and `exp`, `iss`, `aud` required |
//! | [`jwks_service`] | an axum [`Router`](axum::Router): `GET /.well-known/jwks.json`, `POST /token`, `GET /whoami` (a [`Bearer`](jwks_service::Bearer) extractor), `GET /health` |
//! | [`data_service`] | **encrypts** with the current key, **decrypts** by the key id carried |
//! | [`sealed`] | AES-256-GCM (`aws_lc_rs::aead`) ciphertext carrying its key id, bound into the AAD |
//! | [`window`] | [`KeyWindow`](window::KeyWindow): what the services need from a [`Client`](keyshift_client::Client) (or a cache the caller drives) |
//!
//! The rule every service follows (docs/protocol.md, section 1): **use** the AWSCURRENT
//! version (sign, encrypt); **accept** AWSCURRENT, AWSPENDING and ROTATING (verify);
//! **decrypt stored data** by the exact version id it carries, fetching that version on
//! a miss, never "try current, then previous". **The key id is always the version id**
//! of the version that holds the key: keyshift stores no kid (it promotes its own copy
//! of a pending value under a new version id, so a stored kid would lie).
//!
//! The secrets hold what keyshift's stock rotation function generates (tag the secret
//! `keyshift:kind`): a signing key pair (`ed25519`, `ecdsa-p256`, `ecdsa-p384`,
//! `rsa-2048`/`3072`/`4096`) for tokens, `symmetric` for data.
//!
//! # Quick start
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use keyshift_client::{Client, Config, SdkSource};
//! use keyshift_examples::data_service::DataService;
//! use keyshift_examples::token_service::{TokenPolicy, TokenService};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let sm = aws_sdk_secretsmanager::Client::new(&aws);
//! // T: the propagation gap the rotation function was deployed with.
//! let config = Config::new(Duration::from_secs(900))?;
//!
//! let signing = Client::start(SdkSource::new(sm.clone(), "prod/token-signing"), config.clone()).await?;
//! let tokens = TokenService::new(signing, TokenPolicy::new("https://auth.example", "api"));
//! let issued = tokens.issue(serde_json::Map::from_iter([("sub".into(), "alice".into())]))?;
//! let verified = tokens.verify(&issued.token).await?;
//! assert_eq!(verified.kid, issued.kid); // the AWSCURRENT version id
//!
//! // Serve it: JWKS, token, whoami, health.
//! let app = keyshift_examples::jwks_service::router(Arc::new(tokens));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! # let _ = (app, listener);
//! // axum::serve(listener, app).await?;
//!
//! let data = DataService::new(Client::start(SdkSource::new(sm, "prod/data-key"), config).await?);
//! let sealed = data.encrypt(b"4111 1111 1111 1111")?;
//! let plain = data.decrypt(&sealed).await?;
//! # let _ = plain;
//! # Ok(())
//! # }
//! ```
//!
//! A runnable service: `cargo run -p keyshift-examples --example jwks_service`.

pub mod data_service;
pub mod jwks_service;
pub mod jwt;
pub mod sealed;
pub mod token_service;
pub mod window;
