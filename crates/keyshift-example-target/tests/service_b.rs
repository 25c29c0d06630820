//! Service B's API, request by request (through its router, no socket).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use keyshift_example_target::key::ApiKey;
use keyshift_example_target::service_b::{ServiceB, WhoAmI};
use tower::ServiceExt;

const ADMIN: &str = "service-b-admin-token-0123456789";

async fn call(
    b: &ServiceB,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<String>,
) -> (StatusCode, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(Body::from(body.unwrap_or_default()))
        .expect("a request");
    let response = b.router().oneshot(request).await.expect("the router answers");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes()
        .to_vec();
    (status, bytes)
}

fn registration(key: &ApiKey) -> String {
    format!(r#"{{"sha256":"{}"}}"#, key.sha256_hex())
}

async fn put(b: &ServiceB, id: &str, token: Option<&str>, body: String) -> StatusCode {
    call(b, "PUT", &format!("/admin/keys/{id}"), token, Some(body))
        .await
        .0
}

#[tokio::test]
async fn register_whoami_and_remove() {
    let b = ServiceB::new(ADMIN);
    let key = ApiKey::generate().expect("random");
    let id = key.id();

    assert_eq!(
        call(&b, "GET", "/whoami", Some(key.expose()), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        put(&b, id.as_str(), Some(ADMIN), registration(&key)).await,
        StatusCode::CREATED
    );
    // The same registration again: no change.
    assert_eq!(
        put(&b, id.as_str(), Some(ADMIN), registration(&key)).await,
        StatusCode::OK
    );
    assert_eq!(b.changes(), 1);
    assert_eq!(b.key_ids(), vec![id.as_str().to_owned()]);

    let (status, body) = call(&b, "GET", "/whoami", Some(key.expose()), None).await;
    assert_eq!(status, StatusCode::OK);
    let who: WhoAmI = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(who.key_id, id.as_str());

    let path = format!("/admin/keys/{id}");
    assert_eq!(
        call(&b, "DELETE", &path, Some(ADMIN), None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&b, "DELETE", &path, Some(ADMIN), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&b, "GET", "/whoami", Some(key.expose()), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(b.changes(), 2);
    assert!(b.key_ids().is_empty());
}

#[tokio::test]
async fn the_admin_api_wants_the_admin_token() {
    let b = ServiceB::new(ADMIN);
    let key = ApiKey::generate().expect("random");
    let id = key.id();
    let almost = &ADMIN[..ADMIN.len() - 1];
    for token in [None, Some("wrong"), Some(almost), Some(key.expose())] {
        assert_eq!(
            put(&b, id.as_str(), token, registration(&key)).await,
            StatusCode::UNAUTHORIZED,
            "{token:?}"
        );
        let (status, _) = call(&b, "DELETE", &format!("/admin/keys/{id}"), token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
    }
    // Another scheme, or the token with a trailing space, is not the token either.
    let request = Request::builder()
        .method("PUT")
        .uri(format!("/admin/keys/{id}"))
        .header("authorization", format!("Basic {ADMIN}"))
        .header("content-type", "application/json")
        .body(Body::from(registration(&key)))
        .expect("a request");
    assert_eq!(
        b.router().oneshot(request).await.expect("answers").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        put(&b, id.as_str(), Some(&format!("{ADMIN} ")), registration(&key)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(b.changes(), 0);
    // The scheme is case-insensitive (RFC 9110).
    let request = Request::builder()
        .method("PUT")
        .uri(format!("/admin/keys/{id}"))
        .header("authorization", format!("bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(Body::from(registration(&key)))
        .expect("a request");
    assert_eq!(
        b.router().oneshot(request).await.expect("answers").status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn conflicting_and_malformed_registrations_are_refused() {
    let b = ServiceB::new(ADMIN);
    let one = ApiKey::generate().expect("random");
    let two = ApiKey::generate().expect("random");
    assert_eq!(
        put(&b, "first", Some(ADMIN), registration(&one)).await,
        StatusCode::CREATED
    );
    // The id with another key, the key under another id.
    assert_eq!(
        put(&b, "first", Some(ADMIN), registration(&two)).await,
        StatusCode::CONFLICT
    );
    assert_eq!(
        put(&b, "second", Some(ADMIN), registration(&one)).await,
        StatusCode::CONFLICT
    );
    for body in [
        String::new(),
        "{}".to_owned(),
        r#"{"sha256":"abc"}"#.to_owned(),
        format!(r#"{{"sha256":"{}"}}"#, two.sha256_hex().to_uppercase()),
        format!(r#"{{"key":"{}"}}"#, two.expose()),
    ] {
        assert_eq!(
            put(&b, "third", Some(ADMIN), body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
    }
    let long = "x".repeat(65);
    assert_eq!(
        put(&b, &long, Some(ADMIN), registration(&two)).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        put(&b, "a.b", Some(ADMIN), registration(&two)).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(b.key_ids(), vec!["first".to_owned()]);
    assert_eq!(b.changes(), 1);
}

#[tokio::test]
async fn whoami_accepts_every_registered_key_and_nothing_else() {
    let b = ServiceB::new(ADMIN);
    let one = ApiKey::generate().expect("random");
    let two = ApiKey::generate().expect("random");
    for key in [&one, &two] {
        assert_eq!(
            put(&b, key.id().as_str(), Some(ADMIN), registration(key)).await,
            StatusCode::CREATED
        );
    }
    for key in [&one, &two] {
        assert_eq!(
            call(&b, "GET", "/whoami", Some(key.expose()), None).await.0,
            StatusCode::OK
        );
        assert!(b.accepts(key.expose()));
    }
    // Not the hash, not the admin token, not nothing.
    for token in [Some(one.sha256_hex().as_str()), Some(ADMIN), None] {
        assert_eq!(
            call(&b, "GET", "/whoami", token, None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
}
