//! Service B: a small, real HTTP API that accepts API keys, so that the example and its
//! tests run locally (`cargo run -p keyshift-example-target --bin service-b`).
//!
//! | request | auth | answer |
//! |---|---|---|
//! | `PUT /admin/keys/{id}` with `{"sha256": "<64 hex>"}` | admin token | 201 registered, 200 already registered with that hash, 409 the id or the hash is registered otherwise, 422 a bad body |
//! | `DELETE /admin/keys/{id}` | admin token | 204 removed, 404 unknown id |
//! | `GET /whoami` | `Authorization: Bearer <key>` | 200 `{"key_id": "<id>"}` for any registered key, else 401 |
//!
//! Keys are held hashed (SHA-256) in memory: service B never sees a key except in a
//! `/whoami` request, and never stores one. The admin token is compared in constant time
//! (the SHA-256 of each side, compared with aws-lc-rs's `verify_slices_are_equal`, so that
//! neither its content nor its length leaks through timing). A wrong or missing admin
//! token is 401.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest::{SHA256, digest};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::{Deserialize, Serialize};

use crate::key::sha256_hex;

/// The longest key id accepted.
pub const MAX_ID_LEN: usize = 64;

/// Service B's state: the admin token's hash and the registered keys' hashes by id.
/// Cloning shares it (the router holds one clone, a test or an operator another).
#[derive(Clone)]
pub struct ServiceB {
    inner: Arc<Inner>,
}

struct Inner {
    admin_token_sha256: [u8; 32],
    keys: RwLock<Keys>,
}

#[derive(Default)]
struct Keys {
    /// Key id -> SHA-256 of the key, hex.
    by_id: BTreeMap<String, String>,
    /// SHA-256 of the key, hex -> key id.
    by_hash: BTreeMap<String, String>,
    /// Changes made (registrations and removals), for tests and the operator.
    changes: u64,
}

impl std::fmt::Debug for ServiceB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceB")
            .field("keys", &self.key_ids())
            .finish_non_exhaustive()
    }
}

/// `PUT /admin/keys/{id}`'s body.
#[derive(Debug, Deserialize, Serialize)]
pub struct Registration {
    /// The key's SHA-256, 64 lowercase hex digits.
    pub sha256: String,
}

/// `GET /whoami`'s answer.
#[derive(Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct WhoAmI {
    /// The id the key is registered under.
    pub key_id: String,
}

impl ServiceB {
    /// A service with no keys, administered with `admin_token`.
    pub fn new(admin_token: &str) -> ServiceB {
        ServiceB {
            inner: Arc::new(Inner {
                admin_token_sha256: sha256(admin_token.as_bytes()),
                keys: RwLock::new(Keys::default()),
            }),
        }
    }

    /// The HTTP API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/admin/keys/{id}", put(register).delete(remove))
            .route("/whoami", get(whoami))
            .with_state(self.clone())
    }

    /// Serves the API on `listener` until the task is dropped or the listener fails.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// The registered key ids, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        self.read().by_id.keys().cloned().collect()
    }

    /// How many registrations and removals took effect (a repeated PUT or a DELETE of an
    /// unknown id is not one).
    pub fn changes(&self) -> u64 {
        self.read().changes
    }

    /// Whether `key` would be accepted at `/whoami`.
    pub fn accepts(&self, key: &str) -> bool {
        self.read().by_hash.contains_key(&sha256_hex(key.as_bytes()))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.inner.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Keys> {
        self.inner.keys.write().unwrap_or_else(|e| e.into_inner())
    }

    fn is_admin(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = bearer(headers) else {
            return false;
        };
        // Compare the hashes: always 32 bytes, so the comparison's time says nothing about
        // the token's content or length.
        let presented = sha256(presented.as_bytes());
        aws_lc_rs::constant_time::verify_slices_are_equal(&presented, &self.inner.admin_token_sha256).is_ok()
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// The bearer token of an `Authorization` header, if there is exactly one well-formed.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
}

fn valid_hash(hash: &str) -> bool {
    // Lower case only: the hash is a map key, compared as text.
    hash.len() == 64 && !hash.bytes().any(|c| c.is_ascii_uppercase()) && keyshift::hex::decode(hash).is_some()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(WWW_AUTHENTICATE, "Bearer")],
        "unauthorized\n",
    )
        .into_response()
}

async fn register(
    State(b): State<ServiceB>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Registration>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if !b.is_admin(&headers) {
        return unauthorized();
    }
    if !valid_id(&id) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the key id must be 1 to 64 of [A-Za-z0-9_-]\n",
        )
            .into_response();
    }
    let Ok(Json(registration)) = body else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body must be {\"sha256\": \"<64 hex>\"}\n",
        )
            .into_response();
    };
    if !valid_hash(&registration.sha256) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "sha256 must be 64 lowercase hex digits\n",
        )
            .into_response();
    }
    let mut keys = b.write();
    match (keys.by_id.get(&id), keys.by_hash.get(&registration.sha256)) {
        (Some(hash), _) if *hash == registration.sha256 => {
            (StatusCode::OK, "already registered\n").into_response()
        }
        (Some(_), _) => (StatusCode::CONFLICT, "the id is registered with another key\n").into_response(),
        (None, Some(_)) => (StatusCode::CONFLICT, "the key is registered under another id\n").into_response(),
        (None, None) => {
            keys.by_id.insert(id.clone(), registration.sha256.clone());
            keys.by_hash.insert(registration.sha256, id);
            keys.changes += 1;
            (StatusCode::CREATED, "registered\n").into_response()
        }
    }
}

async fn remove(State(b): State<ServiceB>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if !b.is_admin(&headers) {
        return unauthorized();
    }
    let mut keys = b.write();
    match keys.by_id.remove(&id) {
        Some(hash) => {
            keys.by_hash.remove(&hash);
            keys.changes += 1;
            StatusCode::NO_CONTENT.into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such key\n").into_response(),
    }
}

async fn whoami(State(b): State<ServiceB>, headers: HeaderMap) -> Response {
    let Some(key) = bearer(&headers) else {
        return unauthorized();
    };
    // A lookup by the hash of a 256-bit key: its timing tells nothing about other keys.
    let found = b.read().by_hash.get(&sha256_hex(key.as_bytes())).cloned();
    match found {
        Some(key_id) => Json(WhoAmI { key_id }).into_response(),
        None => unauthorized(),
    }
}
