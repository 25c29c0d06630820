//! Service B's API as the target calls it: hyper 1 with hyper-util's pooled client, TLS
//! by rustls on aws-lc-rs (no ring), every request bounded by a timeout, and every answer
//! classified into a [`TargetError`] kind by [`classify`].
//!
//! Nothing here puts a key or the admin token in an error: errors carry the call, the
//! host, the HTTP status or the transport error's own text, never a header or a body.
//! Both bearer headers are marked sensitive, so that hyper never prints them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keyshift::ports::TargetError;

use crate::config::{ADMIN_TOKEN_VAR, AdminToken, ServiceUrl};
use crate::key::{ApiKey, KeyId};

/// The most of a response body read (and thrown away, to keep the connection reusable).
const MAX_BODY: usize = 16 * 1024;

/// Which of service B's endpoints a call went to; errors and [`classify`] depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `PUT /admin/keys/{id}`: register a key (setSecret).
    Register,
    /// `GET /whoami` with the key: does it work (testSecret).
    Check,
    /// `DELETE /admin/keys/{id}`: revoke a key (the release).
    Revoke,
}

impl Call {
    fn describe(self) -> &'static str {
        match self {
            Call::Register => "registering the new key at service B (PUT /admin/keys/{id})",
            Call::Check => "logging in to service B with the new key (GET /whoami)",
            Call::Revoke => "revoking the old key at service B (DELETE /admin/keys/{id})",
        }
    }
}

/// What an answer of service B means for the call, by status:
///
/// | status | Register | Check | Revoke |
/// |---|---|---|---|
/// | 2xx | done | the key works | done |
/// | 404 | refused | refused | done (already gone: revoking is idempotent) |
/// | 401, 403 | configuration (the admin token) | retryable (the key is not accepted yet) | configuration (the admin token) |
/// | 408, 429, 5xx | retryable | retryable | retryable |
/// | 3xx | configuration (the URL is wrong; redirects are not followed) | the same | the same |
/// | other 4xx (400, 409, 422, ...) | refused | refused | refused |
///
/// A 401 from `/whoami` is retryable rather than a configuration error: the admin token
/// is not involved, and a service that spreads registrations over several nodes may accept
/// a new key a moment after it registered it. A failed test keeps the key from ever
/// becoming AWSCURRENT, so retrying it is safe.
pub fn classify(call: Call, status: StatusCode) -> Result<(), TargetError> {
    let code = status.as_u16();
    let what = call.describe();
    if status.is_success() {
        return Ok(());
    }
    if call == Call::Revoke && status == StatusCode::NOT_FOUND {
        return Ok(());
    }
    if status.is_redirection() {
        return Err(TargetError::configuration(format!(
            "{what}: service B answered HTTP {code}, a redirect (not followed): check the service URL \
             (https, the path prefix)"
        )));
    }
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(match call {
            Call::Check => TargetError::retryable(format!(
                "{what}: service B answered HTTP {code}: it does not accept the new key (yet)"
            )),
            Call::Register | Call::Revoke => TargetError::configuration(format!(
                "{what}: service B answered HTTP {code}: it refused the admin token; check {ADMIN_TOKEN_VAR}"
            )),
        });
    }
    if status.is_server_error()
        || matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT
        )
    {
        return Err(TargetError::retryable(format!(
            "{what}: service B answered HTTP {code}"
        )));
    }
    Err(TargetError::refused(format!(
        "{what}: service B answered HTTP {code}"
    )))
}

/// A transport failure (no connection, TLS, a reset, a timeout): the call may or may not
/// have reached service B, and a retry may succeed.
fn transport(call: Call, url: &ServiceUrl, problem: &str) -> TargetError {
    TargetError::retryable(format!(
        "{}: service B at {} could not be reached: {problem}",
        call.describe(),
        url.authority()
    ))
}

/// The HTTP client for service B. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct ServiceClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ServiceClient {
    /// A client that trusts the system's root certificates (those of the Lambda image),
    /// with rustls on aws-lc-rs. Fails when no root certificate can be loaded.
    pub fn native_roots(timeout: Duration) -> std::io::Result<ServiceClient> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http_connector(timeout));
        Ok(ServiceClient::with_connector(connector, timeout))
    }

    /// A client with a TLS configuration of your own (a private CA's roots, a client
    /// certificate). Build it with `rustls::ClientConfig::builder_with_provider` and
    /// `rustls::crypto::aws_lc_rs::default_provider()`.
    pub fn with_tls(config: rustls::ClientConfig, timeout: Duration) -> ServiceClient {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http_connector(timeout));
        ServiceClient::with_connector(connector, timeout)
    }

    fn with_connector(connector: HttpsConnector<HttpConnector>, timeout: Duration) -> ServiceClient {
        let http = Client::builder(TokioExecutor::new())
            // Shorter than common server keep-alives, so a pooled connection is rarely
            // closed under a request; a frozen Lambda container's connections go stale.
            .pool_idle_timeout(Duration::from_secs(20))
            .build(connector);
        ServiceClient { http, timeout }
    }

    /// `PUT /admin/keys/{id}` with `{"sha256": "<hex>"}`: registers `key` (by its hash)
    /// as valid. Idempotent: the same key again is answered 200.
    pub async fn register(
        &self,
        url: &ServiceUrl,
        admin: &AdminToken,
        key: &ApiKey,
    ) -> Result<(), TargetError> {
        let body = serde_json::json!({ "sha256": key.sha256_hex() }).to_string();
        let path = format!("/admin/keys/{}", key.id());
        self.send(
            Call::Register,
            url,
            Method::PUT,
            &path,
            admin.expose(),
            Some(body),
        )
        .await
    }

    /// `GET /whoami` with `key` as the bearer token: 200 if service B accepts it. No side
    /// effect.
    pub async fn check(&self, url: &ServiceUrl, key: &ApiKey) -> Result<(), TargetError> {
        self.send(Call::Check, url, Method::GET, "/whoami", key.expose(), None)
            .await
    }

    /// `DELETE /admin/keys/{id}`: the key with this id stops working. Idempotent: an id
    /// service B does not know (404) is success.
    pub async fn revoke(&self, url: &ServiceUrl, admin: &AdminToken, id: &KeyId) -> Result<(), TargetError> {
        let path = format!("/admin/keys/{id}");
        self.send(Call::Revoke, url, Method::DELETE, &path, admin.expose(), None)
            .await
    }

    async fn send(
        &self,
        call: Call,
        url: &ServiceUrl,
        method: Method,
        path: &str,
        bearer: &str,
        json: Option<String>,
    ) -> Result<(), TargetError> {
        let uri = url.join(path).map_err(|_| {
            TargetError::configuration(format!(
                "{}: the service URL gives no valid request URL",
                call.describe()
            ))
        })?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {bearer}"))
            // Keys and tokens are checked ASCII; nothing to show of it.
            .map_err(|_| {
                TargetError::refused(format!(
                    "{}: the credential is not a valid header value",
                    call.describe()
                ))
            })?;
        auth.set_sensitive(true);
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(AUTHORIZATION, auth);
        if json.is_some() {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let request = request
            .body(Full::new(Bytes::from(json.unwrap_or_default())))
            .map_err(|_| TargetError::refused(format!("{}: could not build the request", call.describe())))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| transport(call, url, &keyshift::ports::short_error(&e)))?;
            let status = response.status();
            // Read (a bounded amount) so that the connection goes back to the pool; what
            // service B wrote is not reported: it is not ours to put in a log.
            let _ignored = Limited::new(response.into_body(), MAX_BODY).collect().await;
            Ok::<StatusCode, TargetError>(status)
        };
        let status = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| transport(call, url, &format!("no answer within {:?}", self.timeout)))??;
        let result = classify(call, status);
        match &result {
            Ok(()) => {
                tracing::debug!(call = ?call, host = url.authority(), status = status.as_u16(), "service B")
            }
            Err(e) => {
                tracing::warn!(call = ?call, host = url.authority(), status = status.as_u16(), error = %e, "service B")
            }
        }
        result
    }
}

fn http_connector(timeout: Duration) -> HttpConnector {
    let mut http = HttpConnector::new();
    // https_or_http() decides the scheme; the inner connector must let https through.
    http.enforce_http(false);
    http.set_connect_timeout(Some(timeout));
    http.set_nodelay(true);
    http
}

#[cfg(test)]
mod tests {
    use keyshift::ports::TargetErrorKind::{self, Configuration, Refused, Retryable};

    use super::*;

    fn kind(call: Call, code: u16) -> Option<TargetErrorKind> {
        let status = StatusCode::from_u16(code).expect("a status");
        classify(call, status).err().map(|e| e.kind)
    }

    #[test]
    fn success_is_success_everywhere() {
        for call in [Call::Register, Call::Check, Call::Revoke] {
            for code in [200, 201, 204] {
                assert_eq!(kind(call, code), None, "{call:?} {code}");
            }
        }
    }

    #[test]
    fn a_revoke_of_an_unknown_key_is_done() {
        assert_eq!(kind(Call::Revoke, 404), None);
        assert_eq!(kind(Call::Register, 404), Some(Refused));
        assert_eq!(kind(Call::Check, 404), Some(Refused));
    }

    #[test]
    fn a_refused_admin_token_is_configuration() {
        for code in [401, 403] {
            assert_eq!(kind(Call::Register, code), Some(Configuration));
            assert_eq!(kind(Call::Revoke, code), Some(Configuration));
            let e =
                classify(Call::Register, StatusCode::from_u16(code).expect("a status")).expect_err("fails");
            assert!(e.message.contains(ADMIN_TOKEN_VAR), "{e}");
        }
    }

    #[test]
    fn a_key_not_accepted_yet_is_retryable() {
        assert_eq!(kind(Call::Check, 401), Some(Retryable));
        assert_eq!(kind(Call::Check, 403), Some(Retryable));
    }

    #[test]
    fn throttling_timeouts_and_server_errors_are_retryable() {
        for call in [Call::Register, Call::Check, Call::Revoke] {
            for code in [408, 429, 500, 502, 503, 504, 599] {
                assert_eq!(kind(call, code), Some(Retryable), "{call:?} {code}");
            }
        }
    }

    #[test]
    fn other_client_errors_are_refused() {
        for call in [Call::Register, Call::Check, Call::Revoke] {
            for code in [400, 405, 409, 413, 415, 422] {
                assert_eq!(kind(call, code), Some(Refused), "{call:?} {code}");
            }
        }
    }

    #[test]
    fn redirects_are_a_wrong_url() {
        for call in [Call::Register, Call::Check, Call::Revoke] {
            for code in [301, 302, 307, 308] {
                assert_eq!(kind(call, code), Some(Configuration), "{call:?} {code}");
            }
        }
    }

    #[test]
    fn messages_name_the_call_and_the_status() {
        let e = classify(Call::Register, StatusCode::CONFLICT).expect_err("fails");
        assert_eq!(
            e.message,
            "registering the new key at service B (PUT /admin/keys/{id}): service B answered HTTP 409"
        );
        let e = transport(
            Call::Check,
            &ServiceUrl::parse("https://b.example.com:8443/api").expect("valid"),
            "connection refused",
        );
        assert_eq!(e.kind, Retryable);
        assert_eq!(
            e.message,
            "logging in to service B with the new key (GET /whoami): service B at b.example.com:8443 could not \
             be reached: connection refused"
        );
    }
}
