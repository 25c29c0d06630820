//! The axum service in process, on a keyshift-client window cache fed by an in-memory
//! source: issue and verify for every stock signing algorithm, the accept window (a
//! token of the pending key verifies before that key is current), every refusal, the
//! JWKS document and its caching, and the health endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jsonwebtoken::jwk::JwkSet;
use keyshift_client::{
    Config, LabelMap, SecretValue, Source, SourceError, SourceErrorKind, VersionId, WindowCache,
};
use keyshift_examples::jwks_service::{self, router};
use keyshift_examples::jwt::{self, Expect};
use keyshift_examples::token_service::{TokenPolicy, TokenService};
use keyshift_examples::window::{DrivenWindow, KeyWindow};
use keyshift_keys::KeyKind;
use serde_json::{Value, json};
use tower::ServiceExt;

const ISS: &str = "https://auth.example";
const AUD: &str = "orders-api";
const V1: &str = "11111111-1111-4111-8111-111111111111";
const V2: &str = "22222222-2222-4222-8222-222222222222";

/// One secret in memory: labels and values, and a switch that fails `describe`.
#[derive(Default)]
struct Memory {
    labels: Mutex<LabelMap>,
    values: Mutex<HashMap<VersionId, String>>,
    failing: Mutex<bool>,
}

impl Memory {
    fn put(&self, id: &str, value: &str, stages: &[&str]) {
        self.values
            .lock()
            .expect("values")
            .insert(VersionId::new(id), value.to_owned());
        self.relabel(id, stages);
    }

    fn relabel(&self, id: &str, stages: &[&str]) {
        self.labels
            .lock()
            .expect("labels")
            .insert(VersionId::new(id), stages.iter().copied());
    }

    fn stored(&self, id: &str) -> String {
        self.values
            .lock()
            .expect("values")
            .get(&VersionId::new(id))
            .cloned()
            .expect("a stored version")
    }

    fn fail(&self, failing: bool) {
        *self.failing.lock().expect("failing") = failing;
    }
}

impl Source for Memory {
    async fn describe(&self) -> Result<LabelMap, SourceError> {
        if *self.failing.lock().expect("failing") {
            return Err(SourceError::new(
                SourceErrorKind::Transient,
                "DescribeSecret: 503",
            ));
        }
        Ok(self.labels.lock().expect("labels").clone())
    }

    async fn value(&self, version: &VersionId) -> Result<Option<SecretValue>, SourceError> {
        Ok(self
            .values
            .lock()
            .expect("values")
            .get(version)
            .map(SecretValue::new))
    }
}

/// T = 60 s, refreshes every 20 to 40 s, and a 1 ms miss interval so a lookup right
/// after a refresh may refresh again.
fn config() -> Config {
    Config::builder(Duration::from_secs(60))
        .refresh(Duration::from_secs(20), Duration::from_secs(40))
        .miss_interval(Duration::from_millis(1))
        .build()
        .expect("config")
}

struct App {
    memory: Arc<Memory>,
    tokens: Arc<TokenService<DrivenWindow<Arc<Memory>>>>,
    router: Router,
}

impl App {
    /// A service whose secret holds `versions` (id, value, stages); not refreshed yet.
    fn new(config: Config) -> App {
        let memory = Arc::new(Memory::default());
        let window = DrivenWindow::new(WindowCache::new(config, 7), Arc::clone(&memory));
        let tokens = Arc::new(TokenService::new(window, TokenPolicy::new(ISS, AUD)));
        let router = router(Arc::clone(&tokens));
        App {
            memory,
            tokens,
            router,
        }
    }

    async fn refresh(&self) {
        self.tokens.keys().refresh().await.expect("refresh");
    }

    /// A ready service whose AWSCURRENT (`V1`) is a fresh key of `kind`.
    async fn ready(kind: KeyKind) -> App {
        let app = App::new(config());
        app.memory.put(V1, &key(kind), &["AWSCURRENT"]);
        app.refresh().await;
        app
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, header::HeaderMap, Value) {
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("body");
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (parts.status, parts.headers, json)
    }

    async fn get(&self, path: &str) -> (StatusCode, header::HeaderMap, Value) {
        self.call(Request::get(path).body(Body::empty()).expect("request"))
            .await
    }

    async fn issue(&self, claims: Value) -> (StatusCode, Value) {
        let request = Request::post("/token")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(claims.to_string()))
            .expect("request");
        let (status, _, body) = self.call(request).await;
        (status, body)
    }

    async fn whoami(&self, token: &str) -> (StatusCode, header::HeaderMap, Value) {
        let request = Request::get("/whoami")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request");
        self.call(request).await
    }

    /// The signing key of stored version `id`, as a verifier-independent signer would
    /// hold it.
    fn signing_key(&self, id: &str) -> keyshift_client::SigningKey {
        keyshift_client::Version::new(
            VersionId::new(id),
            ["AWSPENDING"],
            SecretValue::new(self.memory.stored(id)),
        )
        .signing_key()
        .expect("a signing key pair")
    }
}

fn key(kind: KeyKind) -> String {
    keyshift_keys::generate(kind).expect("generated")
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Claims that pass every check, for tokens the tests sign themselves.
fn good_claims() -> Value {
    json!({"iss": ISS, "aud": AUD, "exp": now() + 600, "sub": "mallory-or-not"})
}

fn assert_refused(status: StatusCode, headers: &header::HeaderMap, body: &Value, description: &str) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        headers
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok()),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_eq!(body["error"], "invalid_token", "{body}");
    assert_eq!(body["error_description"], description, "{body}");
}

const KINDS: [(KeyKind, &str); 4] = [
    (KeyKind::Ed25519, "EdDSA"),
    (KeyKind::EcdsaP256, "ES256"),
    (KeyKind::EcdsaP384, "ES384"),
    (KeyKind::Rsa2048, "RS256"),
];

#[tokio::test]
async fn issue_and_verify_round_trip_for_every_algorithm() {
    for (kind, alg) in KINDS {
        let app = App::ready(kind).await;
        let (status, issued) = app.issue(json!({"sub": "alice", "scope": "orders:read"})).await;
        assert_eq!(status, StatusCode::OK, "{alg}: {issued}");
        assert_eq!(
            (issued["kid"].as_str(), issued["alg"].as_str()),
            (Some(V1), Some(alg))
        );
        let token = issued["token"].as_str().expect("a token");

        let header = jsonwebtoken::decode_header(token).expect("a JWS header");
        assert_eq!(header.kid.as_deref(), Some(V1), "kid = the AWSCURRENT version id");
        assert_eq!(format!("{:?}", header.alg), alg);

        let (status, _, me) = app.whoami(token).await;
        assert_eq!(status, StatusCode::OK, "{alg}: {me}");
        assert_eq!(me["kid"], V1);
        assert_eq!(me["claims"]["sub"], "alice");
        assert_eq!(me["claims"]["scope"], "orders:read");
        assert_eq!(
            (me["claims"]["iss"].as_str(), me["claims"]["aud"].as_str()),
            (Some(ISS), Some(AUD))
        );
        let (iat, exp) = (me["claims"]["iat"].as_u64(), me["claims"]["exp"].as_u64());
        assert_eq!(exp.zip(iat).map(|(e, i)| e - i), Some(15 * 60), "{me}");

        // A remote verifier with only the published JWKS verifies it too.
        let (status, _, jwks) = app.get("/.well-known/jwks.json").await;
        assert_eq!(status, StatusCode::OK);
        let set: JwkSet = serde_json::from_value(jwks).expect("a JWK set");
        let expect = Expect {
            issuer: ISS.into(),
            audience: AUD.into(),
            leeway: Duration::ZERO,
        };
        let verified = jwt::verify(token, &set, &expect).expect("verifies against the served JWKS");
        assert_eq!(
            (verified.kid.as_str(), verified.claims["sub"].as_str()),
            (V1, Some("alice"))
        );
    }
}

#[tokio::test]
async fn the_jwks_publishes_the_window_public_only_with_a_max_age_well_under_t() {
    let app = App::ready(KeyKind::EcdsaP256).await;
    app.memory.put(V2, &key(KeyKind::EcdsaP256), &["AWSPENDING"]);
    app.refresh().await;

    let (status, headers, jwks) = app.get("/.well-known/jwks.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    // T = 60 s, longest refresh 40 s, read lag 2 s: (60 - 40 - 2) / 2 = 9 s.
    assert_eq!(
        headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()),
        Some("public, max-age=9")
    );
    let config = app.tokens.keys().cache().config();
    let max_age = jwks_service::jwks_max_age(&config);
    assert!(config.refresh_max() + config.read_lag() + max_age < config.gap());

    let keys = jwks["keys"].as_array().expect("keys");
    let kids: Vec<&str> = keys.iter().filter_map(|k| k["kid"].as_str()).collect();
    assert_eq!(kids, [V1, V2], "current, then pending");
    for k in keys {
        assert_eq!(
            (k["kty"].as_str(), k["alg"].as_str(), k["use"].as_str()),
            (Some("EC"), Some("ES256"), Some("sig"))
        );
        assert!(k.get("d").is_none(), "no private member: {k}");
    }
}

#[tokio::test]
async fn a_token_of_the_pending_key_verifies_before_that_key_is_current() {
    let app = App::ready(KeyKind::Ed25519).await;
    let (_, issued) = app.issue(json!({"sub": "before"})).await;
    let old = issued["token"].as_str().expect("token").to_owned();

    // createSecret: V2 is AWSPENDING. An instance that already signs with it (its
    // view is ahead of ours) is accepted: the whole point of publishing a key T early.
    app.memory.put(V2, &key(KeyKind::Ed25519), &["AWSPENDING"]);
    app.refresh().await;
    let early = jwt::sign(&app.signing_key(V2), &good_claims()).expect("signed");
    let (status, _, me) = app.whoami(&early).await;
    assert_eq!((status, me["kid"].as_str()), (StatusCode::OK, Some(V2)), "{me}");
    // This service still signs with AWSCURRENT.
    let (_, issued) = app.issue(json!({"sub": "during"})).await;
    assert_eq!(issued["kid"], V1);

    // The swap: V2 is AWSCURRENT, V1 is ROTATING and still accepted.
    app.memory.relabel(V2, &["AWSCURRENT"]);
    app.memory.relabel(V1, &["ROTATING", "AWSPREVIOUS"]);
    app.refresh().await;
    let (_, issued) = app.issue(json!({"sub": "after"})).await;
    assert_eq!(issued["kid"], V2);
    for token in [old.as_str(), &early] {
        let (status, _, me) = app.whoami(token).await;
        assert_eq!(status, StatusCode::OK, "{me}");
    }

    // The removal: V1 left the window; its tokens are refused by kid at once.
    app.memory.relabel(V1, &["AWSPREVIOUS"]);
    app.refresh().await;
    let refreshes = app.tokens.keys().cache().stats().refreshes;
    let (status, headers, body) = app.whoami(&old).await;
    assert_refused(
        status,
        &headers,
        &body,
        &format!("unknown key {V1}: no accepted version has this id"),
    );
    assert_eq!(
        app.tokens.keys().cache().stats().refreshes,
        refreshes,
        "a kid that left the window costs no refresh"
    );
}

#[tokio::test]
async fn a_key_published_since_the_last_refresh_verifies_after_one_refresh_on_miss() {
    let app = App::ready(KeyKind::EcdsaP384).await;
    // An emergency rotation: V2 becomes AWSCURRENT at once and another instance signs
    // with it before this one's next scheduled refresh.
    app.memory.put(V2, &key(KeyKind::EcdsaP384), &["AWSCURRENT"]);
    app.memory.relabel(V1, &["AWSPREVIOUS"]);
    let token = jwt::sign(&app.signing_key(V2), &good_claims()).expect("signed");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let misses = app.tokens.keys().cache().stats().miss_refreshes;
    let (status, _, me) = app.whoami(&token).await;
    assert_eq!((status, me["kid"].as_str()), (StatusCode::OK, Some(V2)), "{me}");
    assert_eq!(app.tokens.keys().cache().stats().miss_refreshes, misses + 1);
}

#[tokio::test]
async fn expired_foreign_tampered_and_unknown_tokens_are_refused() {
    let app = App::ready(KeyKind::Ed25519).await;
    let key = app.signing_key(V1);
    let signed = |claims: Value| jwt::sign(&key, &claims).expect("signed");
    let with = |k: &str, v: Value| {
        let mut c = good_claims();
        c[k] = v;
        signed(c)
    };
    let without = |k: &str| {
        let mut c = good_claims();
        c.as_object_mut().expect("object").remove(k);
        signed(c)
    };

    let cases = [
        (with("exp", json!(now() - 3600)), "the token expired".to_owned()),
        (
            with("aud", json!("billing-api")),
            "the token is for another audience".to_owned(),
        ),
        (
            with("iss", json!("https://evil.example")),
            "the token is from another issuer".to_owned(),
        ),
        (without("exp"), "the token has no exp claim".to_owned()),
        (without("aud"), "the token has no aud claim".to_owned()),
        (without("iss"), "the token has no iss claim".to_owned()),
        // A non-numeric exp does not count as one (jsonwebtoken reads it as absent).
        (
            with("exp", json!("tomorrow")),
            "the token has no exp claim".to_owned(),
        ),
        (
            with("nbf", json!(now() + 3600)),
            "the token is not valid yet".to_owned(),
        ),
    ];
    for (token, description) in &cases {
        let (status, headers, body) = app.whoami(token).await;
        assert_refused(status, &headers, &body, description);
        // The error never echoes the token.
        assert!(!body.to_string().contains(token.as_str()));
    }

    // Tampering: another payload under the same signature, and a flipped signature byte.
    let good = signed(good_claims());
    let parts: Vec<&str> = good.split('.').collect();
    let forged_payload = {
        use base64::Engine;
        let mut claims = good_claims();
        claims["sub"] = json!("root");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string())
    };
    let bad_signature = format!(
        "{} for key {V1}: the token was altered or not signed by this key",
        "bad signature"
    );
    let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
    let (status, headers, body) = app.whoami(&forged).await;
    assert_refused(status, &headers, &body, &bad_signature);
    let mut flipped = good.clone().into_bytes();
    let i = flipped.len() - 5;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ascii");
    let (status, headers, body) = app.whoami(&flipped).await;
    assert_refused(status, &headers, &body, &bad_signature);
    // The untouched token still verifies: the refusals above are the changes'.
    assert_eq!(app.whoami(&good).await.0, StatusCode::OK);

    // A key the secret never had: one refresh-on-miss, then refused.
    let stranger = keyshift_client::Version::new(
        VersionId::new(V2),
        ["AWSCURRENT"],
        SecretValue::new(keyshift_keys::generate(KeyKind::Ed25519).expect("key")),
    )
    .signing_key()
    .expect("key");
    let unknown = jwt::sign(&stranger, &good_claims()).expect("signed");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let misses = app.tokens.keys().cache().stats().miss_refreshes;
    let (status, headers, body) = app.whoami(&unknown).await;
    assert_refused(
        status,
        &headers,
        &body,
        &format!("unknown key {V2}: no accepted version has this id"),
    );
    assert_eq!(
        app.tokens.keys().cache().stats().miss_refreshes,
        misses + 1,
        "refreshed once"
    );
}

#[tokio::test]
async fn the_algorithm_is_the_keys_never_the_headers() {
    let app = App::ready(KeyKind::EcdsaP256).await;
    let good = jwt::sign(&app.signing_key(V1), &good_claims()).expect("signed");
    let (_, payload_and_signature) = good.split_once('.').expect("a JWS");
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());

    // The same token relabelled ES384, and HS256 (the public key as an HMAC secret).
    for (alg, got) in [("ES384", "ES384"), ("HS256", "HS256")] {
        let relabelled = format!(
            "{}.{payload_and_signature}",
            b64(json!({"alg": alg, "kid": V1, "typ": "JWT"}))
        );
        let (status, headers, body) = app.whoami(&relabelled).await;
        assert_refused(
            status,
            &headers,
            &body,
            &format!("key {V1} is for ES256, the token says {got}"),
        );
    }
    // `none` is not an algorithm at all.
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "kid": V1})),
        b64(good_claims())
    );
    let (status, headers, body) = app.whoami(&none).await;
    assert_refused(status, &headers, &body, "malformed token");
    // No kid, a kid that is no version id.
    let (_, rest) = good.split_once('.').expect("a JWS");
    let no_kid = format!("{}.{rest}", b64(json!({"alg": "ES256"})));
    let (status, headers, body) = app.whoami(&no_kid).await;
    assert_refused(status, &headers, &body, "the token has no kid");
    let bad_kid = format!(
        "{}.{rest}",
        b64(json!({"alg": "ES256", "kid": "../../etc/passwd x"}))
    );
    let (status, headers, body) = app.whoami(&bad_kid).await;
    assert_refused(status, &headers, &body, "the token's kid is not a version id");
}

#[tokio::test]
async fn requests_without_a_bearer_token_are_refused_and_reserved_claims_too() {
    let app = App::ready(KeyKind::Ed25519).await;
    let (status, headers, body) = app.get("/whoami").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        headers
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    assert_eq!(body["error"], "invalid_request");
    let request = Request::get("/whoami")
        .header(header::AUTHORIZATION, "Basic YWxpY2U6aHVudGVyMg==")
        .body(Body::empty())
        .expect("request");
    let (status, headers, body) = app.call(request).await;
    assert_refused(status, &headers, &body, "malformed token");
    // The scheme is case-insensitive.
    let (_, issued) = app.issue(json!({"sub": "alice"})).await;
    let token = issued["token"].as_str().expect("a token");
    let request = Request::get("/whoami")
        .header(header::AUTHORIZATION, format!("BEARER {token}"))
        .body(Body::empty())
        .expect("request");
    assert_eq!(app.call(request).await.0, StatusCode::OK);

    for reserved in ["iss", "aud", "exp", "iat", "nbf"] {
        let (status, body) = app.issue(json!({"sub": "alice", reserved: 1})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reserved}: {body}");
        assert_eq!(
            body["error_description"],
            format!("the claim {reserved} is set by the service")
        );
    }
    let (status, _) = app.issue(json!(["not", "an", "object"])).await;
    assert!(status.is_client_error(), "{status}");
}

#[tokio::test]
async fn health_is_503_until_the_first_refresh_then_reports_the_views_age() {
    let app = App::new(config());
    app.memory.put(V1, &key(KeyKind::Ed25519), &["AWSCURRENT"]);

    let (status, _, body) = app.get("/health").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("not_ready")),
        "{body}"
    );
    assert_eq!(body["refreshes"], 0);
    // Nothing else can be served either.
    let (status, headers, _) = app.get("/.well-known/jwks.json").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.get(header::RETRY_AFTER).is_some());
    assert_eq!(
        app.issue(json!({"sub": "alice"})).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    app.refresh().await;
    let (status, _, body) = app.get("/health").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("fresh")),
        "{body}"
    );
    assert_eq!(
        (body["gap_ms"].as_u64(), body["within_gap"].as_bool()),
        (Some(60_000), Some(true))
    );
    assert!(body["age_ms"].as_u64().is_some_and(|a| a < 60_000), "{body}");
    assert_eq!(body["refreshes"], 1);

    // A failing refresh keeps the view: still served, reported stale.
    app.memory.fail(true);
    assert!(app.tokens.keys().refresh().await.is_err());
    let (status, _, body) = app.get("/health").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("stale")),
        "{body}"
    );
    assert_eq!(
        (body["failures"].as_u64(), body["failed_refreshes"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn health_is_503_once_the_view_is_older_than_the_maximum_staleness() {
    let short = Config::builder(Duration::from_secs(2))
        .read_lag(Duration::from_millis(10))
        .refresh(Duration::from_millis(50), Duration::from_millis(100))
        .max_staleness(Duration::from_millis(150))
        .build()
        .expect("config");
    let app = App::new(short);
    app.memory.put(V1, &key(KeyKind::Ed25519), &["AWSCURRENT"]);
    app.refresh().await;
    assert_eq!(app.get("/health").await.0, StatusCode::OK);

    // Nobody drives the cache: the health check notices the age by itself.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _, body) = app.get("/health").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("expired")),
        "{body}"
    );
    assert_eq!(body["within_gap"], true, "150 ms < T: {body}");

    // Once the cache expires its view, lookups fail too.
    let cache = app.tokens.keys().cache();
    cache.handle_timeout(app.tokens.keys().now());
    let (status, _, body) = app.get("/health").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("expired")),
        "{body}"
    );
    assert_eq!(
        app.get("/.well-known/jwks.json").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // A refresh heals it.
    app.refresh().await;
    assert_eq!(app.get("/health").await.0, StatusCode::OK);
}
