//! [`PostgresTarget`]: the [`Target`] that alternates a PostgreSQL user pair.

use std::collections::BTreeSet;
use std::fmt;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use keyshift::aws_errors::{AwsErrorClass, class_of};
use keyshift::ports::{Target, TargetContext, TargetError, TargetErrorKind, short_error};
use keyshift::secret::{AWSCURRENT, ROTATING, SecretValue, VersionId};
use tokio_postgres::GenericClient;
use tracing::{info, warn};

use crate::conn::{self, As, LOCK_TIMEOUT, STATEMENT_TIMEOUT, TlsConfig};
use crate::options::{PgOptions, SecretSettings, TlsMode, settings};
use crate::secret::{DbSecret, Endpoint, MasterSecret, UserName, new_password, quote_ident, quote_literal};

/// The PostgreSQL target: two users per secret (`u` and `u_clone`) that take turns.
///
/// | step | what it does at the database |
/// |---|---|
/// | createSecret (`generate`) | nothing: the pending value names the other user of the pair, with a new password |
/// | setSecret (`set`) | as the master user, in one transaction: create the other user or re-enable it with the new password (sent as a SCRAM-SHA-256 verifier, never in plain text), make the clone act as the base role |
/// | testSecret (`test`) | logs in as the pending user and checks `session_user` and `current_user` |
/// | release (`revoke`), T after the swap | locks the old user (`NOLOGIN PASSWORD NULL`), waits the session grace, ends its sessions |
///
/// See the crate's documentation for the ownership scheme, the grants the master user
/// needs and the guards.
pub struct PostgresTarget {
    secrets: Client,
    options: PgOptions,
    tls: TlsConfig,
}

impl fmt::Debug for PostgresTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresTarget")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// One version read through the SDK.
struct Read {
    value: String,
}

impl PostgresTarget {
    /// A target that reads the master secret and the guards' versions with `secrets`.
    pub fn new(secrets: aws_sdk_secretsmanager::Client, options: PgOptions) -> Self {
        PostgresTarget {
            secrets,
            options,
            tls: TlsConfig::default(),
        }
    }

    /// The settings it runs with.
    pub fn options(&self) -> &PgOptions {
        &self.options
    }

    /// The value of `secret_id` at `stage`; `Ok(None)` if no version carries it (or the
    /// secret does not exist); `what` names the secret in errors.
    async fn read(&self, secret_id: &str, stage: &str, what: &str) -> Result<Option<Read>, TargetError> {
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(secret_id)
            .version_stage(stage)
            .send()
            .await;
        match out {
            Ok(out) => match out.secret_string() {
                Some(s) => Ok(Some(Read { value: s.to_owned() })),
                None => Err(TargetError::configuration(format!(
                    "{what} ({stage}) holds binary data, not the database-secret JSON"
                ))),
            },
            Err(e) => {
                let code = e.code().unwrap_or_default().to_owned();
                let text = format!("reading {what} ({stage}): {}", short_error(&e));
                Err(match class_of(&code) {
                    Some(AwsErrorClass::NotFound) => return Ok(None),
                    Some(
                        AwsErrorClass::AccessDenied
                        | AwsErrorClass::Crypto
                        | AwsErrorClass::InvalidState
                        | AwsErrorClass::InvalidParameter,
                    ) => TargetError::configuration(text),
                    _ => TargetError::retryable(text),
                })
            }
        }
    }

    /// The rotated secret's AWSCURRENT value, parsed.
    async fn current(&self, ctx: &TargetContext<'_>) -> Result<DbSecret, TargetError> {
        let what = "the secret";
        let read = self
            .read(ctx.secret.as_str(), AWSCURRENT, what)
            .await?
            .ok_or_else(|| TargetError::configuration("the secret has no AWSCURRENT version"))?;
        DbSecret::parse(&read.value, "the AWSCURRENT value")
    }

    /// The master secret named by `secret`'s `masterarn`, checked against its host.
    async fn master(&self, secret: &DbSecret) -> Result<MasterSecret, TargetError> {
        let what = "the master secret (field masterarn)";
        let read = self
            .read(&secret.masterarn, AWSCURRENT, what)
            .await?
            .ok_or_else(|| {
                TargetError::configuration("field masterarn names no secret with an AWSCURRENT version")
            })?;
        let master = MasterSecret::parse(&read.value, "the master secret")?;
        if let Some(host) = &master.host {
            if !host.eq_ignore_ascii_case(&secret.host) {
                return Err(TargetError::configuration(format!(
                    "the master secret is for host {host}, the secret names host {}: keyshift sends the master's credentials only to the host they belong to",
                    secret.host
                )));
            }
        }
        if master.username == secret.username.as_str() || master.username == secret.username.other().as_str()
        {
            return Err(TargetError::configuration(format!(
                "the master user {} is one of the pair it would rotate",
                master.username
            )));
        }
        Ok(master)
    }

    async fn connect_master(
        &self,
        secret: &DbSecret,
        master: &MasterSecret,
        s: SecretSettings,
    ) -> Result<tokio_postgres::Client, TargetError> {
        conn::connect(
            &secret.endpoint(Some(master)),
            &master.username,
            &master.password,
            s.tls,
            &self.tls,
            &self.options,
            As::Master,
        )
        .await
    }
}

/// The advisory lock that serializes keyshift's changes to one pair (a `set` and a
/// `revoke` of the same pair, or two deliveries of one step).
fn lock_key(user: &UserName) -> String {
    format!("keyshift-postgres:{}", user.base())
}

/// Starts keyshift's transaction: bounded statements and the pair's lock.
async fn begin(
    tx: &tokio_postgres::Transaction<'_>,
    user: &UserName,
    context: &str,
) -> Result<(), TargetError> {
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = '{}s'; SET LOCAL lock_timeout = '{}s'",
        STATEMENT_TIMEOUT.as_secs(),
        LOCK_TIMEOUT.as_secs()
    ))
    .await
    .map_err(|e| conn::sql_error(&e, context, &[]))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&lock_key(user)],
    )
    .await
    .map_err(|e| conn::sql_error(&e, context, &[]))?;
    Ok(())
}

/// A role as the catalog shows it.
struct Role {
    superuser: bool,
    can_login: bool,
    config: Vec<String>,
}

async fn role(client: &impl GenericClient, name: &str, context: &str) -> Result<Option<Role>, TargetError> {
    let row = client
        .query_opt(
            "SELECT rolsuper, rolcanlogin, coalesce(rolconfig, '{}')::text[] FROM pg_catalog.pg_roles WHERE rolname = $1",
            &[&name],
        )
        .await
        .map_err(|e| conn::sql_error(&e, context, &[]))?;
    Ok(row.map(|r| Role {
        superuser: r.get(0),
        can_login: r.get(1),
        config: r.get(2),
    }))
}

/// The roles `name` is a direct member of.
async fn memberships(
    client: &impl GenericClient,
    name: &str,
    context: &str,
) -> Result<BTreeSet<String>, TargetError> {
    let rows = client
        .query(
            "SELECT r.rolname::text FROM pg_catalog.pg_auth_members m \
             JOIN pg_catalog.pg_roles r ON r.oid = m.roleid \
             WHERE m.member = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)",
            &[&name],
        )
        .await
        .map_err(|e| conn::sql_error(&e, context, &[]))?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// How to log in as a user, to learn whether its password is already the one given.
struct Login<'a> {
    endpoint: &'a Endpoint,
    password: &'a str,
    mode: TlsMode,
    tls: &'a TlsConfig,
    options: &'a PgOptions,
}

impl Login<'_> {
    /// `Ok(true)` if `user` logs in with the password, `Ok(false)` if the server refuses
    /// it (a password or login error), `Err` for anything else.
    async fn works(&self, user: &UserName) -> Result<bool, TargetError> {
        match conn::connect(
            self.endpoint,
            user.as_str(),
            self.password,
            self.mode,
            self.tls,
            self.options,
            As::Probe,
        )
        .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind == TargetErrorKind::Refused => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// setSecret at the database, in one transaction (see [`PostgresTarget`]).
async fn register(
    client: &mut tokio_postgres::Client,
    user: &UserName,
    verifier: &str,
    login: &Login<'_>,
    secrets: &[&str],
) -> Result<(), TargetError> {
    let context = format!("registering user {user}");
    let err = |e: tokio_postgres::Error| conn::sql_error(&e, &context, secrets);
    let tx = client.transaction().await.map_err(err)?;
    begin(&tx, user, &context).await?;
    let base = user.base();
    let Some(base_role) = role(&tx, base.as_str(), &context).await? else {
        return Err(TargetError::configuration(format!(
            "{context}: the pair's base user {base} does not exist: create it, with the rights the application needs, before the first rotation"
        )));
    };
    let existing = role(&tx, user.as_str(), &context).await?;
    if base_role.superuser || existing.as_ref().is_some_and(|r| r.superuser) {
        return Err(TargetError::configuration(format!(
            "{context}: keyshift does not manage superusers ({base} or {user} is one)"
        )));
    }
    // The verifier is base64, digits, `$` and `:`; quoted all the same.
    if !verifier.starts_with("SCRAM-SHA-256$")
        || !verifier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-$:+/=".contains(c))
    {
        return Err(TargetError::refused(format!(
            "{context}: the SCRAM verifier has an unexpected form"
        )));
    }
    // A repeated setSecret finds the user logging in with this password already: its
    // verifier (and salt) stay as they are.
    let registered = match &existing {
        Some(r) if r.can_login => login.works(user).await?,
        _ => false,
    };
    if !registered {
        let verb = if existing.is_some() { "ALTER" } else { "CREATE" };
        tx.batch_execute(&format!(
            "{verb} ROLE {} LOGIN PASSWORD {}",
            user.ident(),
            quote_literal(verifier)
        ))
        .await
        .map_err(err)?;
    }
    if user.is_clone() {
        // The clone acts as the base role: a member of it, and `SET role` at every login.
        let mine = memberships(&tx, user.as_str(), &context).await?;
        if !mine.contains(base.as_str()) {
            tx.batch_execute(&format!("GRANT {} TO {}", base.ident(), user.ident()))
                .await
                .map_err(err)?;
        }
        let setting = format!("role={base}");
        if !existing.as_ref().is_some_and(|r| r.config.contains(&setting)) {
            tx.batch_execute(&format!(
                "ALTER ROLE {} SET role = {}",
                user.ident(),
                quote_literal(base.as_str())
            ))
            .await
            .map_err(err)?;
        }
        // The same memberships as the base user: the missing ones granted, extra ones
        // (the base user lost them) revoked.
        let theirs = memberships(&tx, base.as_str(), &context).await?;
        for r in theirs.difference(&mine) {
            tx.batch_execute(&format!("GRANT {} TO {}", quote_ident(r), user.ident()))
                .await
                .map_err(err)?;
        }
        for r in mine.difference(&theirs).filter(|r| *r != base.as_str()) {
            tx.batch_execute(&format!("REVOKE {} FROM {}", quote_ident(r), user.ident()))
                .await
                .map_err(err)?;
        }
    }
    tx.commit().await.map_err(err)?;
    Ok(())
}

impl Target for PostgresTarget {
    fn revokes(&self, _ctx: &TargetContext<'_>) -> bool {
        true
    }

    fn reads_current(&self, _ctx: &TargetContext<'_>) -> bool {
        true
    }

    async fn generate(
        &self,
        ctx: &TargetContext<'_>,
        current: Option<&SecretValue>,
    ) -> Result<SecretValue, TargetError> {
        settings(ctx.tags, &self.options)?;
        let current = current.ok_or_else(|| {
            TargetError::configuration(
                "the secret has no AWSCURRENT value: store the first user's database-secret JSON first",
            )
        })?;
        let current = DbSecret::parse(current.expose(), "the AWSCURRENT value")?;
        let password = new_password()?;
        Ok(SecretValue::new(current.next(&password)))
    }

    async fn set(
        &self,
        ctx: &TargetContext<'_>,
        _version: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        let s = settings(ctx.tags, &self.options)?;
        let pending = DbSecret::parse(value.expose(), "the AWSPENDING value")?;
        // Only the other user of AWSCURRENT's pair, on the same database: a value written
        // by hand must not reset the password of any other role.
        let current = self.current(ctx).await?;
        if pending.username != current.username.other() {
            return Err(TargetError::refused(format!(
                "the AWSPENDING value names user {}, but the other user of AWSCURRENT's {} is {}: keyshift registers only that one",
                pending.username,
                current.username,
                current.username.other()
            )));
        }
        if !pending.same_database(&current) {
            return Err(TargetError::refused(
                "the AWSPENDING value names another host, port, dbname or masterarn than AWSCURRENT",
            ));
        }
        // Never change the password of a user that consumers may still use: the previous
        // rotation's old user stays accepted (ROTATING) until its release.
        if let Some(rotating) = self.read(ctx.secret.as_str(), ROTATING, "the secret").await? {
            if let Ok(r) = DbSecret::parse(&rotating.value, "the ROTATING value") {
                if r.username == pending.username {
                    return Err(TargetError::retryable(format!(
                        "user {} is still accepted through ROTATING (the previous rotation's release is due): its password changes only after that release",
                        pending.username
                    )));
                }
            }
        }
        let master = self.master(&pending).await?;
        let verifier = postgres_protocol::password::scram_sha_256(pending.password.as_bytes());
        let endpoint = pending.endpoint(Some(&master));
        let login = Login {
            endpoint: &endpoint,
            password: &pending.password,
            mode: s.tls,
            tls: &self.tls,
            options: &self.options,
        };
        let mut client = self.connect_master(&pending, &master, s).await?;
        register(
            &mut client,
            &pending.username,
            &verifier,
            &login,
            &[&pending.password, &verifier, &master.password],
        )
        .await?;
        info!(user = %pending.username, endpoint = %pending.endpoint(Some(&master)), "postgres: user registered");
        Ok(())
    }

    async fn test(
        &self,
        ctx: &TargetContext<'_>,
        _version: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        let s = settings(ctx.tags, &self.options)?;
        let pending = DbSecret::parse(value.expose(), "the AWSPENDING value")?;
        let master = if pending.needs_master_for_endpoint() {
            Some(self.master(&pending).await?)
        } else {
            None
        };
        let endpoint = pending.endpoint(master.as_ref());
        let client = conn::connect(
            &endpoint,
            pending.username.as_str(),
            &pending.password,
            s.tls,
            &self.tls,
            &self.options,
            As::Pending,
        )
        .await?;
        let context = format!("testing user {} at {endpoint}", pending.username);
        let row = client
            .query_one("SELECT session_user::text, current_user::text", &[])
            .await
            .map_err(|e| conn::sql_error(&e, &context, &[&pending.password]))?;
        let (session, current): (String, String) = (row.get(0), row.get(1));
        if session != pending.username.as_str() {
            return Err(TargetError::refused(format!("{context}: logged in as {session}")));
        }
        let base = pending.username.base();
        if current != base.as_str() {
            return Err(TargetError::refused(format!(
                "{context}: its sessions act as {current}, not as the base role {base} (setSecret sets that up)"
            )));
        }
        Ok(())
    }

    async fn revoke(
        &self,
        ctx: &TargetContext<'_>,
        _version: &VersionId,
        value: &SecretValue,
    ) -> Result<(), TargetError> {
        let s = settings(ctx.tags, &self.options)?;
        let old = DbSecret::parse(value.expose(), "the revoked value")?;
        let user = &old.username;
        // Never lock out the live credential.
        let current = self.current(ctx).await?;
        if current.username == *user {
            warn!(user = %user, "postgres: not revoking the user AWSCURRENT names");
            return Ok(());
        }
        if !current.username.same_pair(user) {
            warn!(user = %user, current = %current.username, "postgres: not revoking a user outside AWSCURRENT's pair");
            return Ok(());
        }
        let master = self.master(&old).await?;
        let endpoint = old.endpoint(Some(&master));
        let context = format!("revoking user {user} at {endpoint}");
        let secrets = [old.password.as_str(), master.password.as_str()];
        let err = |e: tokio_postgres::Error| conn::sql_error(&e, &context, &secrets);
        let mut client = self.connect_master(&old, &master, s).await?;
        let tx = client.transaction().await.map_err(err)?;
        begin(&tx, user, &context).await?;
        let Some(role) = role(&tx, user.as_str(), &context).await? else {
            info!(user = %user, "postgres: nothing to revoke, the user does not exist");
            return Ok(());
        };
        if role.superuser {
            warn!(user = %user, "postgres: not revoking a superuser");
            return Ok(());
        }
        let mut probe_pid: i32 = 0;
        if role.can_login {
            // Is this credential (user and password) still the one the role carries? If
            // its password changed since (a newer rotation registered the user again),
            // the credential is gone already and the user belongs to that rotation.
            let probe = conn::connect(
                &endpoint,
                user.as_str(),
                &old.password,
                s.tls,
                &self.tls,
                &self.options,
                As::Probe,
            )
            .await;
            let probe = match probe {
                Ok(probe) => probe,
                Err(e) if e.kind == TargetErrorKind::Refused => {
                    info!(user = %user, "postgres: the revoked password no longer logs in; the user carries a newer one, left alone");
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            // The probe's own session is not one to wait for.
            probe_pid = probe
                .query_one("SELECT pg_catalog.pg_backend_pid()", &[])
                .await
                .map_err(err)?
                .get(0);
            drop(probe);
            tx.batch_execute(&format!("ALTER ROLE {} NOLOGIN PASSWORD NULL", user.ident()))
                .await
                .map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        info!(user = %user, "postgres: user locked (NOLOGIN, no password)");
        // Sessions opened before the lock: left for the grace, then ended.
        let sessions: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE usename = $1 AND pid <> $2",
                &[&user.as_str(), &probe_pid],
            )
            .await
            .map_err(err)?
            .get(0);
        if sessions > 0 {
            info!(user = %user, sessions, grace_secs = s.session_grace.as_secs(), "postgres: ending the old user's sessions after the grace");
            tokio::time::sleep(s.session_grace).await;
            let rows = client
                .query(
                    "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = $1 AND pid <> $2",
                    &[&user.as_str(), &probe_pid],
                )
                .await
                .map_err(err)?;
            let ended = rows.iter().filter(|r| r.get::<_, bool>(0)).count();
            info!(user = %user, ended, "postgres: sessions ended");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use keyshift::secret::SecretId;

    use super::*;
    use crate::options::TLS_TAG;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf";

    /// A target whose SDK client points nowhere: enough for everything that runs before
    /// a call.
    fn offline() -> PostgresTarget {
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        PostgresTarget::new(Client::from_conf(config), PgOptions::default())
    }

    fn value(username: &str, password: &str) -> SecretValue {
        SecretValue::new(
            serde_json::json!({
                "engine": "postgres", "host": "db.example.internal", "port": 5432, "dbname": "app",
                "username": username, "password": password, "masterarn": ARN
            })
            .to_string(),
        )
    }

    #[tokio::test]
    async fn generate_names_the_other_user_with_a_new_password() {
        let t = offline();
        let id = SecretId::new("app/db");
        let tags = BTreeMap::new();
        let ctx = TargetContext {
            secret: &id,
            tags: &tags,
        };
        assert!(t.reads_current(&ctx) && t.revokes(&ctx));
        let next = t
            .generate(&ctx, Some(&value("app", "old-password-1")))
            .await
            .expect("generate");
        let parsed = DbSecret::parse(next.expose(), "next").expect("valid");
        assert_eq!(parsed.username.as_str(), "app_clone");
        assert_ne!(parsed.password, "old-password-1");
        let back = t.generate(&ctx, Some(&next)).await.expect("generate");
        assert_eq!(
            DbSecret::parse(back.expose(), "b")
                .expect("valid")
                .username
                .as_str(),
            "app"
        );
    }

    #[tokio::test]
    async fn generate_refuses_what_set_would_refuse_before_anything_is_written() {
        let t = offline();
        let id = SecretId::new("app/db");
        let tags = BTreeMap::new();
        let ctx = TargetContext {
            secret: &id,
            tags: &tags,
        };
        let e = t.generate(&ctx, None).await.expect_err("no current value");
        assert_eq!(e.kind, TargetErrorKind::Configuration);
        let e = t
            .generate(&ctx, Some(&value("app\"; DROP ROLE x; --", "old-password-2")))
            .await
            .expect_err("hostile");
        assert_eq!(e.kind, TargetErrorKind::Configuration);
        assert!(
            e.message.contains("field username") && !e.message.contains("old-password-2"),
            "{e}"
        );
        let bad_tags: BTreeMap<String, String> = [(TLS_TAG.to_owned(), "allow".to_owned())].into();
        let ctx = TargetContext {
            secret: &id,
            tags: &bad_tags,
        };
        let e = t
            .generate(&ctx, Some(&value("app", "old-password-3")))
            .await
            .expect_err("bad tag");
        assert!(e.message.contains(TLS_TAG), "{e}");
    }

    #[tokio::test]
    async fn hostile_values_fail_before_any_call_and_never_show_the_password() {
        let t = offline();
        let id = SecretId::new("app/db");
        let tags = BTreeMap::new();
        let ctx = TargetContext {
            secret: &id,
            tags: &tags,
        };
        let v = VersionId::new("v1");
        for name in ["app_clone'; --", "APP_CLONE", "app clone", ""] {
            let hostile = value(name, "hostile-password-4");
            for e in [
                t.set(&ctx, &v, &hostile).await.expect_err("set"),
                t.test(&ctx, &v, &hostile).await.expect_err("test"),
                t.revoke(&ctx, &v, &hostile).await.expect_err("revoke"),
            ] {
                assert_eq!(e.kind, TargetErrorKind::Configuration, "{e}");
                assert!(e.message.contains("field username"), "{e}");
                assert!(!e.message.contains("hostile-password-4"), "{e}");
            }
        }
        assert!(!format!("{t:?}").contains("password"));
    }
}
