//! keyshift-client with jsonwebtoken and axum: the JWKS, a signer and a verifier.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keyshift_client::{Client, Config, SdkSource};
use serde_json::{Map, Value, json};

type Keys = Arc<Client<SdkSource>>;
const ISSUER: &str = "https://auth.example";
const AUDIENCE: &str = "orders-api";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let source = SdkSource::new(aws_sdk_secretsmanager::Client::new(&aws), "prod/token-signing");
    // T: the propagation gap the rotation function was deployed with.
    let client = Client::start(source, Config::new(Duration::from_secs(600))?).await?;
    let app = Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/token", post(token))
        .route("/whoami", get(whoami))
        .with_state(Arc::new(client));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// The accepted public keys (AWSCURRENT, AWSPENDING, ROTATING), `kid` = version id.
async fn jwks(State(keys): State<Keys>) -> Result<([(header::HeaderName, String); 2], String), StatusCode> {
    let jwks = keys.jwks().map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    // A verifier's HTTP cache adds to this view's age: keep the sum under T.
    let c = keys.config();
    let max_age = c.gap().saturating_sub(c.refresh_max() + c.read_lag()).as_secs() / 2;
    let headers = [
        (header::CONTENT_TYPE, "application/json".to_owned()),
        (header::CACHE_CONTROL, format!("public, max-age={max_age}")),
    ];
    Ok((headers, jwks.as_str().to_owned()))
}

/// Signs with AWSCURRENT: `kid` = its version id, `alg` = the key's. (Authenticate the
/// caller before this in a real service.)
async fn token(State(keys): State<Keys>) -> Result<String, StatusCode> {
    let key = keys.current().ok().and_then(|v| v.signing_key().ok());
    let key = key.ok_or(StatusCode::SERVICE_UNAVAILABLE)?;
    let alg: Algorithm = key.alg().parse().map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let pem = key.private_key_pem().as_bytes();
    let encoding = match alg {
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
        _ => EncodingKey::from_rsa_pem(pem),
    };
    let encoding = encoding.map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let mut header = Header::new(alg);
    header.kid = Some(key.kid().to_string());
    let exp = jsonwebtoken::get_current_timestamp() + 900;
    let claims = json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": exp});
    jsonwebtoken::encode(&header, &claims, &encoding).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
}

async fn whoami(
    State(keys): State<Keys>,
    headers: HeaderMap,
) -> Result<Json<Map<String, Value>>, StatusCode> {
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let token = bearer
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    verify(&keys, token)
        .await
        .map(Json)
        .ok_or(StatusCode::UNAUTHORIZED)
}

async fn verify(keys: &Client<SdkSource>, token: &str) -> Option<Map<String, Value>> {
    let kid = jsonwebtoken::decode_header(token).ok()?.kid?;
    // A kid the cache has never seen: one refresh (rate limited), then refuse.
    keys.fetch_accepted(&kid).await.ok()?;
    let set: JwkSet = serde_json::from_value(keys.jwks().ok()?.as_json().clone()).ok()?;
    let jwk = set.find(&kid)?;
    // The algorithm is the key's: a header naming another one is refused.
    let alg = Algorithm::try_from(jwk.common.key_algorithm?).ok()?;
    let mut validation = Validation::new(alg);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(
        jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .ok()?
            .claims,
    )
}
