//! The secret's value: AWS's database-secret JSON, the user pair it alternates between,
//! and the checks every field passes before anything reaches a database.
//!
//! ```json
//! {"engine": "postgres", "host": "db.example.internal", "port": 5432, "dbname": "app",
//!  "username": "app", "password": "…", "masterarn": "arn:aws:secretsmanager:…"}
//! ```
//!
//! No field is ever echoed into an error when it is a password; user names, hosts and
//! field names are (they are not secret, and the operator needs them).

use std::fmt;

use keyshift::ports::TargetError;
use serde_json::{Map, Value};

/// The suffix that names the second user of a pair.
pub const CLONE_SUFFIX: &str = "_clone";
/// PostgreSQL's longest identifier, in bytes (NAMEDATALEN - 1).
pub const MAX_IDENTIFIER: usize = 63;
/// The longest base user name: its clone must still fit [`MAX_IDENTIFIER`].
pub const MAX_BASE: usize = MAX_IDENTIFIER - CLONE_SUFFIX.len();
/// The port when the secret names none.
pub const DEFAULT_PORT: u16 = 5432;
/// The database when the secret names none.
pub const DEFAULT_DBNAME: &str = "postgres";
/// Length of a generated password (letters and digits: about 190 bits).
pub const PASSWORD_LENGTH: usize = 32;
/// The `engine` this target serves.
pub const ENGINE: &str = "postgres";

/// Names PostgreSQL reserves for roles (`CREATE ROLE` refuses them).
const RESERVED: &[&str] = &["public", "none", "current_user", "session_user", "current_role"];

/// A user name keyshift may put in SQL: `[a-z_][a-z0-9_]*`, at most 63 bytes, not
/// reserved, not `pg_*`, and the base of its pair (the name without `_clone`) at most 57
/// bytes and itself no clone. Anything else is refused before any connection.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserName(String);

impl UserName {
    /// Checks `name`; the error says what is wrong with the named `field` (the name is
    /// shown escaped and cut to 40 characters: it may be hostile, but it is not secret).
    pub fn parse(name: &str, field: &str) -> Result<UserName, TargetError> {
        let bad = |why: &str| {
            TargetError::configuration(format!(
                "field {field}: {why}, got {}: a user name must be [a-z_][a-z0-9_]* (lower case, unquoted), at most {MAX_BASE} bytes before an optional {CLONE_SUFFIX}",
                shown(name)
            ))
        };
        if name.is_empty() {
            return Err(bad("is empty"));
        }
        if name.len() > MAX_IDENTIFIER {
            return Err(bad("is longer than 63 bytes"));
        }
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(bad("has a character outside [a-z0-9_] or starts with a digit"));
        }
        let base = name.strip_suffix(CLONE_SUFFIX).unwrap_or(name);
        if base.is_empty() || base.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(bad("has no base name before _clone"));
        }
        if base.len() > MAX_BASE {
            return Err(bad("is too long to have a _clone"));
        }
        if base.ends_with(CLONE_SUFFIX) {
            return Err(bad("is the clone of a clone"));
        }
        if base.starts_with("pg_") || RESERVED.contains(&base) || RESERVED.contains(&name) {
            return Err(bad("is reserved by PostgreSQL"));
        }
        Ok(UserName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the `_clone` of its pair.
    pub fn is_clone(&self) -> bool {
        self.0.ends_with(CLONE_SUFFIX)
    }

    /// The base user of the pair (the owning role): this name without `_clone`.
    pub fn base(&self) -> UserName {
        UserName(self.0.strip_suffix(CLONE_SUFFIX).unwrap_or(&self.0).to_owned())
    }

    /// The clone of the pair: the base name with `_clone`.
    pub fn clone_user(&self) -> UserName {
        UserName(format!("{}{CLONE_SUFFIX}", self.base().0))
    }

    /// The other user of the pair: `u` → `u_clone`, `u_clone` → `u`.
    pub fn other(&self) -> UserName {
        if self.is_clone() {
            self.base()
        } else {
            self.clone_user()
        }
    }

    /// Whether `other` is one of the two users of this name's pair.
    pub fn same_pair(&self, other: &UserName) -> bool {
        self.base() == other.base()
    }

    /// The name as a quoted SQL identifier (`"` doubled; the checks above leave none).
    pub fn ident(&self) -> String {
        quote_ident(&self.0)
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// `name` as a quoted SQL identifier: in double quotes, each `"` doubled. For names
/// read back from the catalog (any string PostgreSQL accepted).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as a standard SQL string literal: in single quotes, each `'` doubled
/// (`standard_conforming_strings` is on by default since PostgreSQL 9.1).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A user-supplied string as an error shows it: escaped, at most 40 characters.
pub(crate) fn shown(value: &str) -> String {
    let mut short: String = value.chars().take(40).collect();
    if short.len() < value.len() {
        short.push('…');
    }
    format!("{short:?}")
}

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address (also the name the server's certificate must carry).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The database to log in to.
    pub dbname: String,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.host, self.port, self.dbname)
    }
}

/// One value of the rotated secret, checked. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DbSecret {
    /// `host`.
    pub host: String,
    /// `port`, if the value names one.
    pub port: Option<u16>,
    /// `dbname`, if the value names one.
    pub dbname: Option<String>,
    /// `username`.
    pub username: UserName,
    /// `password`.
    pub password: String,
    /// `masterarn`: the secret holding the user that manages roles.
    pub masterarn: String,
    /// Every field as read, for `generate` to carry over.
    fields: Map<String, Value>,
}

impl fmt::Debug for DbSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbSecret")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("masterarn", &self.masterarn)
            .finish_non_exhaustive()
    }
}

/// The JSON object in `text`; `what` names the value in errors ("the AWSCURRENT value").
fn object(text: &str, what: &str) -> Result<Map<String, Value>, TargetError> {
    match serde_json::from_str::<Value>(text) {
        // The parser's message says where, never what it read.
        Err(e) => Err(TargetError::configuration(format!(
            "{what} is not JSON (line {}, column {}): a PostgreSQL secret is AWS's database-secret JSON with engine, host, username, password and masterarn",
            e.line(),
            e.column()
        ))),
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(TargetError::configuration(format!(
            "{what} is not a JSON object: a PostgreSQL secret is AWS's database-secret JSON with engine, host, username, password and masterarn"
        ))),
    }
}

fn missing(what: &str, field: &str) -> TargetError {
    TargetError::configuration(format!("{what}: field {field} is missing"))
}

/// A required string field.
fn string<'a>(map: &'a Map<String, Value>, what: &str, field: &str) -> Result<&'a str, TargetError> {
    match map.get(field) {
        None | Some(Value::Null) => Err(missing(what, field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(TargetError::configuration(format!(
            "{what}: field {field} must be a string"
        ))),
    }
}

/// An optional string field.
fn optional_string<'a>(
    map: &'a Map<String, Value>,
    what: &str,
    field: &str,
) -> Result<Option<&'a str>, TargetError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => string(map, what, field).map(Some),
    }
}

/// A host: a DNS name or an IP address. No path (tokio-postgres would take one as a Unix
/// socket), no spaces, no separators a connection string could split on.
fn host(map: &Map<String, Value>, what: &str, field: &str) -> Result<Option<String>, TargetError> {
    let Some(h) = optional_string(map, what, field)? else {
        return Ok(None);
    };
    let ok = !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
    if !ok {
        return Err(TargetError::configuration(format!(
            "{what}: field {field} must be a host name or IP address, got {}",
            shown(h)
        )));
    }
    Ok(Some(h.to_owned()))
}

/// `port`: a number or a string of digits (both appear in the wild), 1 to 65535.
fn port(map: &Map<String, Value>, what: &str) -> Result<Option<u16>, TargetError> {
    let parsed = match map.get("port") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Some(Value::String(s)) => s.trim().parse::<u16>().ok(),
        Some(_) => None,
    };
    match parsed {
        Some(p) if p > 0 => Ok(Some(p)),
        _ => Err(TargetError::configuration(format!(
            "{what}: field port must be a number from 1 to 65535"
        ))),
    }
}

/// `dbname`: at most 63 bytes, no control character.
fn dbname(map: &Map<String, Value>, what: &str) -> Result<Option<String>, TargetError> {
    let Some(d) = optional_string(map, what, "dbname")? else {
        return Ok(None);
    };
    if d.is_empty() || d.len() > MAX_IDENTIFIER || d.chars().any(char::is_control) {
        return Err(TargetError::configuration(format!(
            "{what}: field dbname must be 1 to 63 bytes without control characters, got {}",
            shown(d)
        )));
    }
    Ok(Some(d.to_owned()))
}

/// `password`: present, not empty, no NUL (PostgreSQL cannot take one). Never shown.
fn password(map: &Map<String, Value>, what: &str) -> Result<String, TargetError> {
    let p = string(map, what, "password")?;
    if p.is_empty() || p.len() > 1024 || p.contains('\0') {
        return Err(TargetError::configuration(format!(
            "{what}: field password must be 1 to 1024 bytes without NUL"
        )));
    }
    Ok(p.to_owned())
}

impl DbSecret {
    /// Parses and checks one value of the rotated secret; `what` names it in errors.
    pub fn parse(text: &str, what: &str) -> Result<DbSecret, TargetError> {
        let fields = object(text, what)?;
        let engine = string(&fields, what, "engine")?;
        if engine != ENGINE {
            return Err(TargetError::configuration(format!(
                "{what}: field engine must be \"{ENGINE}\" for this target, got {}",
                shown(engine)
            )));
        }
        let host = host(&fields, what, "host")?.ok_or_else(|| missing(what, "host"))?;
        let port = port(&fields, what)?;
        let dbname = dbname(&fields, what)?;
        let username = UserName::parse(string(&fields, what, "username")?, "username")
            .map_err(|e| TargetError::configuration(format!("{what}: {}", e.message)))?;
        let password = password(&fields, what)?;
        let masterarn = string(&fields, what, "masterarn")?;
        if masterarn.is_empty() || masterarn.len() > 2048 || masterarn.chars().any(char::is_control) {
            return Err(TargetError::configuration(format!(
                "{what}: field masterarn must name a secret (its ARN)"
            )));
        }
        Ok(DbSecret {
            host,
            port,
            dbname,
            username,
            password,
            masterarn: masterarn.to_owned(),
            fields,
        })
    }

    /// The pending value for this (current) one: the other user of the pair with
    /// `new_password`, every other field carried over unchanged.
    pub fn next(&self, new_password: &str) -> String {
        let mut fields = self.fields.clone();
        fields.insert(
            "username".into(),
            Value::String(self.username.other().as_str().to_owned()),
        );
        fields.insert("password".into(), Value::String(new_password.to_owned()));
        Value::Object(fields).to_string()
    }

    /// Where to connect: this value's host, its port and database, else the master
    /// secret's, else 5432 and `postgres`.
    pub fn endpoint(&self, master: Option<&MasterSecret>) -> Endpoint {
        Endpoint {
            host: self.host.clone(),
            port: self
                .port
                .or_else(|| master.and_then(|m| m.port))
                .unwrap_or(DEFAULT_PORT),
            dbname: self
                .dbname
                .clone()
                .or_else(|| master.and_then(|m| m.dbname.clone()))
                .unwrap_or_else(|| DEFAULT_DBNAME.to_owned()),
        }
    }

    /// Whether connecting needs the master secret's port or database.
    pub fn needs_master_for_endpoint(&self) -> bool {
        self.port.is_none() || self.dbname.is_none()
    }

    /// Whether `other` names the same database: host, port, database and master secret.
    pub fn same_database(&self, other: &DbSecret) -> bool {
        self.host == other.host
            && self.port == other.port
            && self.dbname == other.dbname
            && self.masterarn == other.masterarn
    }
}

/// The master secret: a user that may manage roles. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterSecret {
    /// `username` (only sent at login, never put in SQL).
    pub username: String,
    /// `password`.
    pub password: String,
    /// `host`, if it names one (then it must be the rotated secret's host).
    pub host: Option<String>,
    /// `port`, if it names one.
    pub port: Option<u16>,
    /// `dbname`, if it names one.
    pub dbname: Option<String>,
}

impl fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterSecret")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .finish()
    }
}

impl MasterSecret {
    /// Parses the master secret's value; `what` names it in errors.
    pub fn parse(text: &str, what: &str) -> Result<MasterSecret, TargetError> {
        let fields = object(text, what)?;
        let username = string(&fields, what, "username")?;
        if username.is_empty() || username.len() > MAX_IDENTIFIER || username.chars().any(char::is_control) {
            return Err(TargetError::configuration(format!(
                "{what}: field username must be 1 to 63 bytes without control characters"
            )));
        }
        if let Some(engine) = optional_string(&fields, what, "engine")? {
            if engine != ENGINE {
                return Err(TargetError::configuration(format!(
                    "{what}: field engine must be \"{ENGINE}\", got {}",
                    shown(engine)
                )));
            }
        }
        Ok(MasterSecret {
            username: username.to_owned(),
            password: password(&fields, what)?,
            host: host(&fields, what, "host")?,
            port: port(&fields, what)?,
            dbname: dbname(&fields, what)?,
        })
    }
}

/// A new password: [`PASSWORD_LENGTH`] letters and digits from aws-lc-rs's random
/// generator (rejection sampling: every character equally likely).
pub fn new_password() -> Result<String, TargetError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // 248 = 4 * 62: bytes at or above it would bias the draw.
    const LIMIT: u8 = 248;
    let mut out = String::with_capacity(PASSWORD_LENGTH);
    let mut buf = [0u8; 64];
    while out.len() < PASSWORD_LENGTH {
        aws_lc_rs::rand::fill(&mut buf).map_err(|_| TargetError::retryable("the random generator failed"))?;
        for b in buf {
            if b < LIMIT && out.len() < PASSWORD_LENGTH {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf";

    fn value(username: &str) -> String {
        serde_json::json!({
            "engine": "postgres", "host": "db.example.internal", "port": 5432,
            "dbname": "app", "username": username, "password": "pw-0123456789",
            "masterarn": ARN, "extra": {"kept": [1, 2, 3]}, "proxy": "p.example"
        })
        .to_string()
    }

    #[test]
    fn the_pair_alternates_between_the_base_and_its_clone() {
        let base = UserName::parse("app", "username").expect("valid");
        assert_eq!(base.other().as_str(), "app_clone");
        assert_eq!(base.other().other(), base);
        assert!(base.other().is_clone() && !base.is_clone());
        assert_eq!(base.other().base(), base);
        assert!(base.same_pair(&base.other()));
        assert!(!base.same_pair(&UserName::parse("apps", "username").expect("valid")));
        let longest = "a".repeat(MAX_BASE);
        let u = UserName::parse(&longest, "username").expect("57 bytes");
        assert_eq!(u.other().as_str().len(), MAX_IDENTIFIER);
        UserName::parse(u.other().as_str(), "username").expect("its clone is valid too");
        assert_eq!(base.ident(), "\"app\"");
    }

    #[test]
    fn hostile_and_odd_names_are_refused_naming_the_field() {
        for name in [
            "",
            "App",
            "app\"; DROP ROLE postgres; --",
            "app'",
            "app;",
            "a pp",
            "1app",
            "app-x",
            "_clone",
            "app_clone_clone",
            "pg_app",
            "public",
            "none",
            "current_user",
            "appé",
            "app\0",
            &"a".repeat(MAX_BASE + 1),
            &format!("{}_clone", "a".repeat(MAX_BASE + 1)),
            &"a".repeat(64),
        ] {
            let e = UserName::parse(name, "username").expect_err(name);
            assert_eq!(e.kind, keyshift::ports::TargetErrorKind::Configuration);
            assert!(e.message.contains("field username"), "{e}");
        }
    }

    #[test]
    fn generate_swaps_the_user_and_password_and_keeps_every_other_field() {
        let current = DbSecret::parse(&value("app"), "v").expect("valid");
        let next = current.next("NEWPASSWORD");
        let parsed: Value = serde_json::from_str(&next).expect("json");
        let old: Value = serde_json::from_str(&value("app")).expect("json");
        assert_eq!(parsed["username"], "app_clone");
        assert_eq!(parsed["password"], "NEWPASSWORD");
        for field in ["engine", "host", "port", "dbname", "masterarn", "extra", "proxy"] {
            assert_eq!(parsed[field], old[field], "{field}");
        }
        let back = DbSecret::parse(&next, "v").expect("valid").next("X");
        assert_eq!(
            serde_json::from_str::<Value>(&back).expect("json")["username"],
            "app"
        );
    }

    #[test]
    fn missing_and_wrong_fields_are_named_and_passwords_never_shown() {
        let full: Value = serde_json::from_str(&value("app")).expect("json");
        for field in ["engine", "host", "username", "password", "masterarn"] {
            let mut v = full.clone();
            v.as_object_mut().expect("object").remove(field);
            let e = DbSecret::parse(&v.to_string(), "the AWSPENDING value").expect_err(field);
            assert_eq!(e.kind, keyshift::ports::TargetErrorKind::Configuration);
            assert!(e.message.contains(&format!("field {field} is missing")), "{e}");
        }
        let mut v = full.clone();
        v["engine"] = "mysql".into();
        assert!(DbSecret::parse(&v.to_string(), "x").is_err());
        let mut v = full.clone();
        v["port"] = 70000.into();
        assert!(
            DbSecret::parse(&v.to_string(), "x")
                .expect_err("port")
                .message
                .contains("port")
        );
        let mut v = full.clone();
        v["port"] = "6432".into();
        assert_eq!(
            DbSecret::parse(&v.to_string(), "x").expect("string port").port,
            Some(6432)
        );
        let mut v = full.clone();
        v["host"] = "/var/run/postgresql".into();
        assert!(
            DbSecret::parse(&v.to_string(), "x")
                .expect_err("path")
                .message
                .contains("host")
        );
        let mut v = full.clone();
        v["password"] = 12345.into();
        assert!(DbSecret::parse(&v.to_string(), "x").is_err());
        for text in [
            "not json pw-0123456789",
            "[\"pw-0123456789\"]",
            "\"pw-0123456789\"",
        ] {
            let e = DbSecret::parse(text, "x").expect_err(text);
            assert!(!e.message.contains("pw-0123456789"), "{e}");
        }
        // A hostile user name in an otherwise fine value.
        let mut v = full;
        v["username"] = "x\"; DROP ROLE app; --".into();
        let e = DbSecret::parse(&v.to_string(), "x").expect_err("hostile");
        assert!(
            e.message.contains("field username") && !e.message.contains("pw-0123456789"),
            "{e}"
        );
        let s = DbSecret::parse(&value("app"), "x").expect("valid");
        assert!(!format!("{s:?}").contains("pw-0123456789"));
    }

    #[test]
    fn the_endpoint_prefers_the_secret_then_the_master() {
        let mut v: Value = serde_json::from_str(&value("app")).expect("json");
        let o = v.as_object_mut().expect("object");
        o.remove("port");
        o.remove("dbname");
        let s = DbSecret::parse(&v.to_string(), "x").expect("valid");
        assert!(s.needs_master_for_endpoint());
        assert_eq!(s.endpoint(None).port, DEFAULT_PORT);
        assert_eq!(s.endpoint(None).dbname, DEFAULT_DBNAME);
        let m = MasterSecret::parse(
            r#"{"username":"admin","password":"m-pw-99999","port":6543,"dbname":"main","host":"db.example.internal"}"#,
            "m",
        )
        .expect("valid");
        assert!(!format!("{m:?}").contains("m-pw-99999"));
        let e = s.endpoint(Some(&m));
        assert_eq!(
            (e.host.as_str(), e.port, e.dbname.as_str()),
            ("db.example.internal", 6543, "main")
        );
        let full = DbSecret::parse(&value("app"), "x").expect("valid");
        assert_eq!(full.endpoint(Some(&m)).port, 5432);
    }

    #[test]
    fn passwords_are_letters_and_digits_and_differ() {
        let a = new_password().expect("random");
        let b = new_password().expect("random");
        assert_eq!(a.len(), PASSWORD_LENGTH);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    proptest! {
        #[test]
        fn any_string_is_refused_or_a_plain_identifier(name in ".{0,80}") {
            match UserName::parse(&name, "username") {
                Err(e) => {
                    prop_assert_eq!(e.kind, keyshift::ports::TargetErrorKind::Configuration);
                    prop_assert!(e.message.contains("field username"));
                }
                Ok(u) => {
                    prop_assert!(name.len() <= MAX_IDENTIFIER);
                    prop_assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
                    prop_assert!(!name.starts_with(|c: char| c.is_ascii_digit()));
                    prop_assert_eq!(u.ident(), format!("\"{name}\""));
                    prop_assert!(UserName::parse(u.other().as_str(), "username").is_ok());
                    prop_assert_eq!(u.other().other(), u);
                }
            }
        }

        #[test]
        fn identifier_like_strings_round_trip(name in "[a-z_][a-z0-9_]{0,70}") {
            if let Ok(u) = UserName::parse(&name, "username") {
                prop_assert!(u.other().as_str().len() <= MAX_IDENTIFIER);
                prop_assert_eq!(u.ident(), format!("\"{name}\""));
            }
        }
    }
}
