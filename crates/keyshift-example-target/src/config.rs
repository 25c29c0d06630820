//! Configuration: the function's environment (read once, at cold start) and the secret's
//! tag naming service B's URL (read with every call, validated like any input: whoever may
//! tag a secret chooses it).
//!
//! | variable | required | meaning |
//! |---|---|---|
//! | `KEYSHIFT_EXAMPLE_ADMIN_TOKEN` | yes | service B's admin token, sent as `Authorization: Bearer` to its admin API |
//! | `KEYSHIFT_EXAMPLE_SERVICE_URL` | no | service B's URL for secrets without the tag |
//! | `KEYSHIFT_EXAMPLE_ALLOWED_HOSTS` | no | comma-separated `host` or `host:port` entries a tag's URL may name |
//! | `KEYSHIFT_EXAMPLE_TIMEOUT_SECONDS` | no | per request to service B, 1 to 60 (default 10) |
//!
//! A tag's URL must name the host of `KEYSHIFT_EXAMPLE_SERVICE_URL` or one of
//! `KEYSHIFT_EXAMPLE_ALLOWED_HOSTS`: the admin token goes wherever the URL points, and
//! tagging a secret must not be enough to send it to a host of one's choosing.
//!
//! URLs are `https://host[:port][/path]`; plain `http://` only to a loopback host
//! (`127.0.0.1`, `[::1]`, `localhost`: a local service B, a sidecar). No user info, query
//! or fragment. A bad URL is a configuration error that names the tag or the variable and
//! the rule; it does not echo the value.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use http::Uri;

/// The secret tag naming service B's URL for that secret.
pub const SERVICE_URL_TAG: &str = "keyshift-example:service-url";

/// The admin token.
pub const ADMIN_TOKEN_VAR: &str = "KEYSHIFT_EXAMPLE_ADMIN_TOKEN";
/// The URL for secrets without the tag.
pub const SERVICE_URL_VAR: &str = "KEYSHIFT_EXAMPLE_SERVICE_URL";
/// The hosts a tag may name.
pub const ALLOWED_HOSTS_VAR: &str = "KEYSHIFT_EXAMPLE_ALLOWED_HOSTS";
/// The per-request timeout.
pub const TIMEOUT_VAR: &str = "KEYSHIFT_EXAMPLE_TIMEOUT_SECONDS";

/// The default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The shortest admin token accepted (a guessable one would be no protection).
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;
/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A configuration problem: names where it is (a variable or a tag) and what is wrong.
/// Never contains a token or a key, nor the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {problem}")]
pub struct ConfigError {
    /// The variable or tag, spelled out (`environment variable X`, `secret tag Y`).
    pub source_name: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    fn var(name: &str, problem: impl Into<String>) -> Self {
        ConfigError {
            source_name: format!("environment variable {name}"),
            problem: problem.into(),
        }
    }

    fn tag(problem: impl Into<String>) -> Self {
        ConfigError {
            source_name: format!("secret tag {SERVICE_URL_TAG}"),
            problem: problem.into(),
        }
    }
}

/// The admin token. `Debug` and `Display` show nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// Checks a token: at least [`MIN_ADMIN_TOKEN_LEN`] visible ASCII characters (it goes
    /// into an HTTP header).
    pub fn new(token: impl Into<String>) -> Result<AdminToken, &'static str> {
        let token = token.into();
        if token.len() < MIN_ADMIN_TOKEN_LEN {
            return Err("must be at least 16 characters");
        }
        if !token.bytes().all(|c| c.is_ascii_graphic()) {
            return Err("may contain only visible ASCII characters (no spaces)");
        }
        Ok(AdminToken(token))
    }

    /// The token, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Service B's base URL, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUrl {
    https: bool,
    /// `host[:port]`, lowercase, as it goes into the request.
    authority: String,
    /// The host alone, lowercase (brackets kept for IPv6).
    host: String,
    /// The path prefix, empty or starting with `/`, without a trailing `/`.
    base_path: String,
}

impl ServiceUrl {
    /// Parses and checks a URL (the rules are in the [module docs](self)). The error says
    /// which rule failed, without the value.
    pub fn parse(text: &str) -> Result<ServiceUrl, &'static str> {
        let text = text.trim();
        if text.is_empty() {
            return Err("is empty");
        }
        if text.len() > MAX_URL_LEN {
            return Err("is longer than 2048 characters");
        }
        if text.contains(['?', '#']) {
            return Err("must not have a query or a fragment");
        }
        let uri: Uri = text.parse().map_err(|_| "is not a valid URL")?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            Some(_) => return Err("must be an https:// URL"),
            None => return Err("must be an absolute https:// URL"),
        };
        let authority = uri.authority().ok_or("must name a host")?;
        if authority.as_str().contains('@') {
            return Err("must not contain user information (user:password@)");
        }
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return Err("must name a host");
        }
        if authority.port().is_some_and(|p| p.as_u16() == 0) {
            return Err("must not name port 0");
        }
        if !https && !is_loopback(&host) {
            return Err("must be https:// (plain http:// only to 127.0.0.1, [::1] or localhost)");
        }
        let base_path = uri.path().trim_end_matches('/').to_owned();
        if base_path.contains("//") || base_path.split('/').any(|s| s == "." || s == "..") {
            return Err("must have a plain path (no empty, '.' or '..' segments)");
        }
        Ok(ServiceUrl {
            https,
            authority: authority.as_str().to_ascii_lowercase(),
            host,
            base_path,
        })
    }

    /// Whether requests go over TLS.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// `host[:port]`.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The URL of `path` (which starts with `/`) under this base.
    pub fn join(&self, path: &str) -> Result<Uri, http::Error> {
        let scheme = if self.https { "https" } else { "http" };
        let uri = Uri::builder()
            .scheme(scheme)
            .authority(self.authority.as_str())
            .path_and_query(format!("{}{path}", self.base_path))
            .build()?;
        Ok(uri)
    }
}

impl fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority, self.base_path)
    }
}

fn is_loopback(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// One entry of the allow-list: a host (any port) or a `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost(String);

impl AllowedHost {
    fn admits(&self, url: &ServiceUrl) -> bool {
        self.0 == url.authority || self.0 == url.host
    }
}

/// Everything the target reads from the function's environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Service B's admin token.
    pub admin_token: AdminToken,
    /// The URL for secrets without the tag.
    pub default_url: Option<ServiceUrl>,
    allowed: Vec<AllowedHost>,
    /// Per request to service B, connection included.
    pub timeout: Duration,
}

impl Settings {
    /// Settings from explicit values (tests, or a main that reads them elsewhere, such as
    /// from a secret of their own). `allowed_hosts` are `host` or `host:port` entries.
    pub fn new(
        admin_token: AdminToken,
        default_url: Option<ServiceUrl>,
        allowed_hosts: &[&str],
        timeout: Duration,
    ) -> Settings {
        Settings {
            admin_token,
            default_url,
            allowed: allowed_hosts
                .iter()
                .map(|h| AllowedHost(h.trim().to_ascii_lowercase()))
                .filter(|h| !h.0.is_empty())
                .collect(),
            timeout,
        }
    }

    /// Reads the variables through `lookup` (`|name| std::env::var(name).ok()` in the
    /// function). Every problem names its variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let admin_token = lookup(ADMIN_TOKEN_VAR)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ConfigError::var(ADMIN_TOKEN_VAR, "is required (service B's admin token)"))?;
        let admin_token = AdminToken::new(admin_token).map_err(|p| ConfigError::var(ADMIN_TOKEN_VAR, p))?;
        let default_url = match lookup(SERVICE_URL_VAR).filter(|u| !u.trim().is_empty()) {
            Some(u) => Some(ServiceUrl::parse(&u).map_err(|p| ConfigError::var(SERVICE_URL_VAR, p))?),
            None => None,
        };
        let allowed_text = lookup(ALLOWED_HOSTS_VAR).unwrap_or_default();
        let mut allowed = Vec::new();
        for entry in allowed_text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            allowed.push(parse_allowed(entry).map_err(|p| ConfigError::var(ALLOWED_HOSTS_VAR, p))?);
        }
        let timeout = match lookup(TIMEOUT_VAR).filter(|t| !t.trim().is_empty()) {
            None => DEFAULT_TIMEOUT,
            Some(t) => match t.trim().parse::<u64>() {
                Ok(secs @ 1..=60) => Duration::from_secs(secs),
                _ => {
                    return Err(ConfigError::var(
                        TIMEOUT_VAR,
                        "must be a whole number of seconds, 1 to 60",
                    ));
                }
            },
        };
        Ok(Settings {
            admin_token,
            default_url,
            allowed,
            timeout,
        })
    }

    /// Service B's URL for a secret with these tags: its [`SERVICE_URL_TAG`] if it has
    /// one (checked, and admitted only for an allowed host), else the function's default.
    pub fn service_url(&self, tags: &BTreeMap<String, String>) -> Result<ServiceUrl, ConfigError> {
        let Some(text) = tags.get(SERVICE_URL_TAG) else {
            return self.default_url.clone().ok_or_else(|| {
                ConfigError::tag(format!(
                    "is missing, and {SERVICE_URL_VAR} is not set: tag the secret with service B's URL"
                ))
            });
        };
        let url = ServiceUrl::parse(text).map_err(ConfigError::tag)?;
        let admitted = self
            .default_url
            .as_ref()
            .is_some_and(|d| d.authority == url.authority)
            || self.allowed.iter().any(|a| a.admits(&url));
        if !admitted {
            return Err(ConfigError::tag(format!(
                "names host {}, which is not allowed: add it to {ALLOWED_HOSTS_VAR}",
                url.authority
            )));
        }
        Ok(url)
    }
}

fn parse_allowed(entry: &str) -> Result<AllowedHost, &'static str> {
    // The same authority rules as a URL's.
    let url = ServiceUrl::parse(&format!("https://{entry}"))
        .map_err(|_| "each entry must be a host or host:port")?;
    if !url.base_path.is_empty() {
        return Err("each entry must be a host or host:port, without a path");
    }
    Ok(AllowedHost(url.authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    const TOKEN: &str = "admin-token-0123456789";

    fn tags(url: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(SERVICE_URL_TAG.to_owned(), url.to_owned())])
    }

    #[test]
    fn urls_that_pass() {
        for (text, shown) in [
            ("https://b.example.com", "https://b.example.com"),
            ("https://B.Example.com/", "https://b.example.com"),
            (
                "https://b.example.com:8443/api/v1/",
                "https://b.example.com:8443/api/v1",
            ),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://localhost:3000/b", "http://localhost:3000/b"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("http://127.1.2.3", "http://127.1.2.3"),
            ("  https://b.example.com  ", "https://b.example.com"),
        ] {
            let url = ServiceUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(url.to_string(), shown);
        }
    }

    #[test]
    fn urls_that_fail_and_why() {
        for (text, why) in [
            ("", "is empty"),
            ("b.example.com", "must be an absolute https:// URL"),
            ("/admin", "must be an absolute https:// URL"),
            ("ftp://b.example.com", "must be an https:// URL"),
            (
                "http://b.example.com",
                "must be https:// (plain http:// only to 127.0.0.1, [::1] or localhost)",
            ),
            (
                "http://10.0.0.1:8080",
                "must be https:// (plain http:// only to 127.0.0.1, [::1] or localhost)",
            ),
            (
                "https://user:pw@b.example.com",
                "must not contain user information (user:password@)",
            ),
            (
                "https://b.example.com/?x=1",
                "must not have a query or a fragment",
            ),
            (
                "https://b.example.com/#top",
                "must not have a query or a fragment",
            ),
            (
                "https://b.example.com/a/../admin",
                "must have a plain path (no empty, '.' or '..' segments)",
            ),
            (
                "https://b.example.com//x",
                "must have a plain path (no empty, '.' or '..' segments)",
            ),
            ("https://b.example.com:0", "must not name port 0"),
            ("https://b example.com", "is not a valid URL"),
        ] {
            assert_eq!(ServiceUrl::parse(text), Err(why), "{text:?}");
        }
        let long = format!("https://b.example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(ServiceUrl::parse(&long), Err("is longer than 2048 characters"));
    }

    #[test]
    fn join_keeps_the_base_path() {
        let url = ServiceUrl::parse("https://b.example.com:8443/api/").expect("valid");
        assert_eq!(
            url.join("/admin/keys/abc").expect("uri").to_string(),
            "https://b.example.com:8443/api/admin/keys/abc"
        );
        let url = ServiceUrl::parse("http://127.0.0.1:9").expect("valid");
        assert_eq!(
            url.join("/whoami").expect("uri").to_string(),
            "http://127.0.0.1:9/whoami"
        );
    }

    #[test]
    fn settings_from_the_environment() {
        let s = Settings::from_lookup(lookup(&[
            (ADMIN_TOKEN_VAR, TOKEN),
            (SERVICE_URL_VAR, "https://b.example.com"),
            (ALLOWED_HOSTS_VAR, " b2.example.com:8443 , B3.example.com ,"),
            (TIMEOUT_VAR, "3"),
        ]))
        .expect("valid");
        assert_eq!(s.admin_token.expose(), TOKEN);
        assert_eq!(s.timeout, Duration::from_secs(3));
        assert_eq!(
            s.allowed,
            vec![
                AllowedHost("b2.example.com:8443".into()),
                AllowedHost("b3.example.com".into())
            ]
        );
        let only_token = Settings::from_lookup(lookup(&[(ADMIN_TOKEN_VAR, TOKEN)])).expect("valid");
        assert_eq!(only_token.default_url, None);
        assert_eq!(only_token.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn settings_errors_name_the_variable_and_never_echo_the_token() {
        let cases: [(&[(&str, &str)], &str); 8] = [
            (
                &[],
                "environment variable KEYSHIFT_EXAMPLE_ADMIN_TOKEN: is required",
            ),
            (
                &[(ADMIN_TOKEN_VAR, "short")],
                "KEYSHIFT_EXAMPLE_ADMIN_TOKEN: must be at least 16",
            ),
            (
                &[(ADMIN_TOKEN_VAR, "a token with spaces in it")],
                "KEYSHIFT_EXAMPLE_ADMIN_TOKEN: may contain only visible ASCII",
            ),
            (
                &[
                    (ADMIN_TOKEN_VAR, TOKEN),
                    (SERVICE_URL_VAR, "http://b.example.com"),
                ],
                "environment variable KEYSHIFT_EXAMPLE_SERVICE_URL: must be https://",
            ),
            (
                &[(ADMIN_TOKEN_VAR, TOKEN), (ALLOWED_HOSTS_VAR, "b.example.com/x")],
                "KEYSHIFT_EXAMPLE_ALLOWED_HOSTS: each entry must be a host or host:port, without a path",
            ),
            (
                &[
                    (ADMIN_TOKEN_VAR, TOKEN),
                    (ALLOWED_HOSTS_VAR, "user@b.example.com"),
                ],
                "KEYSHIFT_EXAMPLE_ALLOWED_HOSTS: each entry must be a host or host:port",
            ),
            (
                &[(ADMIN_TOKEN_VAR, TOKEN), (TIMEOUT_VAR, "0")],
                "KEYSHIFT_EXAMPLE_TIMEOUT_SECONDS: must be a whole number of seconds, 1 to 60",
            ),
            (
                &[(ADMIN_TOKEN_VAR, TOKEN), (TIMEOUT_VAR, "61")],
                "KEYSHIFT_EXAMPLE_TIMEOUT_SECONDS: must be a whole number of seconds, 1 to 60",
            ),
        ];
        for (vars, expected) in cases {
            let e = Settings::from_lookup(lookup(vars)).expect_err("invalid");
            let text = e.to_string();
            assert!(text.contains(expected), "{text:?} should contain {expected:?}");
            assert!(
                !text.contains("a token with spaces") && !text.contains("short"),
                "{text}"
            );
        }
    }

    #[test]
    fn the_admin_token_is_redacted() {
        let t = AdminToken::new(TOKEN).expect("valid");
        assert_eq!(format!("{t:?}"), "AdminToken(<redacted>)");
        let s = Settings::new(t, None, &[], DEFAULT_TIMEOUT);
        assert!(!format!("{s:?}").contains(TOKEN));
    }

    #[test]
    fn the_tag_wins_over_the_default_when_its_host_is_allowed() {
        let s = Settings::new(
            AdminToken::new(TOKEN).expect("valid"),
            ServiceUrl::parse("https://b.example.com").ok(),
            &["b2.example.com", "127.0.0.1:8080"],
            DEFAULT_TIMEOUT,
        );
        let none = BTreeMap::new();
        assert_eq!(
            s.service_url(&none).expect("default").to_string(),
            "https://b.example.com"
        );
        // The default's host, another path.
        assert_eq!(
            s.service_url(&tags("https://b.example.com/v2"))
                .expect("allowed")
                .to_string(),
            "https://b.example.com/v2"
        );
        // A host entry admits any port; a host:port entry only that port.
        assert!(s.service_url(&tags("https://b2.example.com:9443")).is_ok());
        assert!(s.service_url(&tags("http://127.0.0.1:8080")).is_ok());
        let e = s
            .service_url(&tags("http://127.0.0.1:8081"))
            .expect_err("another port");
        assert_eq!(
            e.to_string(),
            "secret tag keyshift-example:service-url: names host 127.0.0.1:8081, which is not allowed: add \
             it to KEYSHIFT_EXAMPLE_ALLOWED_HOSTS"
        );
        // The default's host admits only its own port.
        assert!(s.service_url(&tags("https://b.example.com:8443")).is_err());
        assert!(s.service_url(&tags("https://evil.example.com")).is_err());
    }

    #[test]
    fn a_bad_or_missing_tag_is_a_configuration_error_naming_the_tag() {
        let s = Settings::new(
            AdminToken::new(TOKEN).expect("valid"),
            None,
            &["b.example.com"],
            DEFAULT_TIMEOUT,
        );
        let e = s.service_url(&BTreeMap::new()).expect_err("nothing to go by");
        assert_eq!(
            e.to_string(),
            "secret tag keyshift-example:service-url: is missing, and KEYSHIFT_EXAMPLE_SERVICE_URL is not set: \
             tag the secret with service B's URL"
        );
        let e = s
            .service_url(&tags("https://user:hunter2@b.example.com"))
            .expect_err("user info");
        assert_eq!(
            e.to_string(),
            "secret tag keyshift-example:service-url: must not contain user information (user:password@)"
        );
        assert!(!e.to_string().contains("hunter2"));
        let e = s
            .service_url(&tags("http://b.example.com"))
            .expect_err("plain http");
        assert!(
            e.to_string()
                .starts_with("secret tag keyshift-example:service-url: must be https://")
        );
    }
}
