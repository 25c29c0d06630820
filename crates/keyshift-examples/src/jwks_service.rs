//! A small axum service on keyshift-client: it publishes the JWKS of the accepted keys,
//! issues tokens signed with the current key, verifies bearer tokens, and reports how
//! fresh its view of the secret is.
//!
//! | route | what |
//! |---|---|
//! | `GET /.well-known/jwks.json` | [`WindowCache::jwks`](keyshift_client::WindowCache::jwks): AWSCURRENT, AWSPENDING, ROTATING, `kid` = version id; `Cache-Control: max-age` from [`jwks_max_age`] |
//! | `POST /token` | a JSON object of claims in; a token signed with AWSCURRENT out, `iss`, `aud`, `iat`, `exp` set by the service ([`TokenService::issue`]) |
//! | `GET /whoami` | the claims of the `Authorization: Bearer` token ([`Bearer`], [`TokenService::verify`]) |
//! | `GET /health` | the view's age and health; 200 while it is served, 503 when the cache is not ready or expired ([`health`]) |
//!
//! `POST /token` issues to anyone who can reach it: put it behind your callers'
//! authentication. No response, error or log line carries a token or key material.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use keyshift_client::{Config, Health, LookupError};
use serde_json::{Map, Value, json};

use crate::jwt::{Verified, VerifyError};
use crate::token_service::{TokenError, TokenService};
use crate::window::KeyWindow;

/// The routes above, over `tokens`.
pub fn router<K: KeyWindow>(tokens: Arc<TokenService<K>>) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks::<K>))
        .route("/token", post(issue::<K>))
        .route("/whoami", get(whoami))
        .route("/health", get(health_route::<K>))
        .with_state(tokens)
}

/// How long a verifier may cache the JWKS over HTTP: half of what T leaves once this
/// service's own view is as old as it can be, `(T - longest refresh - read lag) / 2`,
/// in whole seconds.
///
/// A verifier that caches the document sees keys as old as this service's view plus its
/// cache's age; keeping the sum under T keeps the rotation's guarantee for it too: a new
/// key is published (AWSPENDING) T before anything signs with it. A verifier should
/// still refetch once on an unknown `kid`.
pub fn jwks_max_age(config: &Config) -> Duration {
    let left = config
        .gap()
        .saturating_sub(config.refresh_max())
        .saturating_sub(config.read_lag());
    Duration::from_secs((left / 2).as_secs())
}

fn cache_control(max_age: Duration) -> HeaderValue {
    match max_age.as_secs() {
        0 => HeaderValue::from_static("no-cache"),
        s => HeaderValue::from_str(&format!("public, max-age={s}"))
            .unwrap_or(HeaderValue::from_static("no-cache")),
    }
}

async fn jwks<K: KeyWindow>(State(tokens): State<Arc<TokenService<K>>>) -> Response {
    let cache = tokens.keys().cache();
    match cache.jwks() {
        Ok(jwks) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (
                    header::CACHE_CONTROL,
                    cache_control(jwks_max_age(&cache.config())),
                ),
            ],
            jwks.as_str().to_owned(),
        )
            .into_response(),
        Err(e) => error_response(&TokenError::Keys(e)),
    }
}

async fn issue<K: KeyWindow>(
    State(tokens): State<Arc<TokenService<K>>>,
    Json(claims): Json<Map<String, Value>>,
) -> Response {
    match tokens.issue(claims) {
        Ok(issued) => {
            tracing::info!(kid = %issued.kid, alg = %issued.alg, "issued a token");
            Json(issued).into_response()
        }
        Err(e) => error_response(&e),
    }
}

async fn whoami(Bearer(verified): Bearer) -> Json<Value> {
    Json(json!({"kid": verified.kid, "claims": verified.claims}))
}

async fn health_route<K: KeyWindow>(State(tokens): State<Arc<TokenService<K>>>) -> Response {
    let (status, body) = health(tokens.keys());
    (status, Json(body)).into_response()
}

/// The health of `window` as (status, JSON body): 200 while the cache serves its view
/// (`"status": "fresh"`, or `"stale"` while refreshes fail and the view is younger than
/// the maximum staleness), 503 when it has nothing to serve (`"not_ready"`: no refresh
/// has succeeded yet; `"expired"`). The body gives the view's age, T, whether the age is
/// under T, and the cache's refresh counters.
pub fn health<K: KeyWindow>(window: &K) -> (StatusCode, Value) {
    let cache = window.cache();
    let config = cache.config();
    let stats = cache.stats();
    let mut body = json!({
        "gap_ms": config.gap().as_millis() as u64,
        "max_staleness_ms": config.max_staleness().as_millis() as u64,
        "refreshes": stats.refreshes,
        "failed_refreshes": stats.failed_refreshes,
    });
    let status = match cache.view() {
        Ok(view) => {
            let age = window.now().since(view.read_at());
            body["age_ms"] = json!(age.as_millis() as u64);
            body["within_gap"] = json!(age < config.gap());
            body["generation"] = json!(view.generation());
            match view.health() {
                // Not driven (its refresher stopped): as expired as if it had noticed.
                _ if age >= config.max_staleness() => "expired",
                Health::Fresh => "fresh",
                Health::Stale { failures, .. } => {
                    body["failures"] = json!(failures);
                    "stale"
                }
                // A state a later keyshift-client adds: not known to be serving.
                _ => "unknown",
            }
        }
        Err(LookupError::NotReady) => "not_ready",
        Err(_) => "expired",
    };
    body["status"] = json!(status);
    let code = match status {
        "fresh" | "stale" => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, body)
}

/// An extractor: the request's `Authorization: Bearer` token, verified by the
/// [`TokenService`] in the router's state. A missing, malformed or refused token is
/// answered 401 with `WWW-Authenticate: Bearer`; keys the cache cannot serve, 503.
#[derive(Debug, Clone)]
pub struct Bearer(pub Verified);

impl<K: KeyWindow> FromRequestParts<Arc<TokenService<K>>> for Bearer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, tokens: &Arc<TokenService<K>>) -> Result<Self, Response> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(unauthorized(None));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            // The scheme is case-insensitive (RFC 9110, section 11.1).
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized(Some(&VerifyError::Malformed)))?;
        match tokens.verify(token).await {
            Ok(verified) => Ok(Bearer(verified)),
            Err(e) => Err(error_response(&e)),
        }
    }
}

fn unauthorized(error: Option<&VerifyError>) -> Response {
    let (challenge, body) = match error {
        None => (
            HeaderValue::from_static("Bearer"),
            json!({"error": "invalid_request", "error_description": "no bearer token"}),
        ),
        Some(e) => (
            HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            json!({"error": "invalid_token", "error_description": e.to_string()}),
        ),
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        Json(body),
    )
        .into_response()
}

/// The response for an error: 401 for a refused token, 400 for a reserved claim, 503
/// when the keys cannot be served, 500 otherwise (details in the log, by kid only).
fn error_response(e: &TokenError) -> Response {
    match e {
        TokenError::Verify(v) => {
            tracing::info!(error = %v, "refused a token");
            unauthorized(Some(v))
        }
        TokenError::ReservedClaim(_) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": e.to_string()})),
        )
            .into_response(),
        TokenError::Keys(LookupError::NotReady | LookupError::Expired { .. }) => {
            tracing::warn!(error = %e, "signing keys unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
                Json(json!({"error": "temporarily_unavailable", "error_description": "signing keys are not available yet"})),
            )
                .into_response()
        }
        TokenError::Keys(_) | TokenError::Key { .. } | TokenError::Sign(_) => {
            tracing::error!(error = %e, "the signing secret is unusable");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": "server_error"})),
            )
                .into_response()
        }
    }
}
