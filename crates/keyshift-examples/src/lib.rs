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
//! The rule both services follow (DESIGN.md section 2): **use** the AWSCURRENT version
//! (sign, encrypt); **accept** AWSCURRENT, AWSPENDING and ROTATING (verify); **decrypt
//! stored data** by the exact version id it carries, fetching that version on a miss,
//! never "try current, then previous".

pub mod data_service;
pub mod keys;
pub mod rotation;
pub mod sealed;
pub mod token;
pub mod token_service;
