//! A keyshift target for PostgreSQL: two users that take turns ("alternating users"),
//! so that the old password keeps working until every consumer uses the new one.
//!
//! The secret holds AWS's database-secret JSON (`engine` = `postgres`, `host`, `port`,
//! `dbname`, `username`, `password`, `masterarn`). Each rotation moves the secret to the
//! other user of the pair, `app` ↔ `app_clone`, with a new password:
//!
//! ```text
//! step            PostgresTarget                                   logs in         consumers use
//! before                                                           app             app
//! createSecret    generate: app_clone + 32 random letters/digits   app             app
//! setSecret       set: CREATE/ALTER ROLE app_clone LOGIN (SCRAM)   app, app_clone  app
//! testSecret      test: log in as app_clone, SELECT current_user   app, app_clone  app
//! T later         (keyshift moves AWSCURRENT to app_clone)         app, app_clone  app or app_clone
//! T later         revoke: ALTER ROLE app NOLOGIN PASSWORD NULL     app_clone       app_clone
//! + grace         pg_terminate_backend(app's sessions)             app_clone       app_clone
//! next rotation   app again, re-enabled with a new password        ...
//! ```
//!
//! # Who owns what
//!
//! The base user (`app`, the name without `_clone`) is the owning role. `set` makes the
//! clone a member of it (`GRANT "app" TO "app_clone"`) and sets
//! `ALTER ROLE "app_clone" SET role = 'app'`: every session of the clone runs as `app`
//! (`current_user` = `app`, `session_user` = `app_clone`), so every table, sequence or
//! function either user creates is owned by `app`, and both users can use, alter and
//! drop everything, whichever of them is current. A connection pool's `DISCARD ALL` or
//! `RESET ROLE` keeps it so: `RESET ROLE` returns to the login-time setting. The clone
//! also gets the base user's other role memberships, kept in step on each `set`.
//!
//! AWS's own alternating-users rotation function for PostgreSQL creates the clone and
//! grants it the current user's permissions, so objects that the clone creates are owned
//! by the clone: after the next rotation the base user cannot alter or drop them
//! (migrations run by whichever user is current break), and it sends the new password
//! inside the SQL statement, where `log_statement` records it. Here ownership never
//! alternates, and the server only ever sees a SCRAM-SHA-256 verifier
//! (`postgres_protocol::password::scram_sha_256`, computed client-side with a random
//! salt).
//!
//! # The master user
//!
//! `set` and `revoke` log in as the user of the secret named by `masterarn` (read
//! AWSCURRENT through the SDK client; its `host`, if present, must be the secret's host:
//! the master's credentials go to no other server). It needs:
//!
//! - `CREATEROLE` (PostgreSQL 15 and earlier: enough to create, alter and grant any
//!   non-superuser role; PostgreSQL 16 and later additionally need
//!   `GRANT app TO keyshift_master WITH ADMIN OPTION` for each base user it did not
//!   create itself, and the clone it creates is its own);
//! - membership of `pg_signal_backend` (to end the old user's sessions);
//! - `CONNECT` on the secret's database. On RDS, the master user created with the
//!   instance has all of these (`rds_superuser`).
//!
//! keyshift never touches a superuser, the master user itself, or a user outside the pair
//! of the secret's AWSCURRENT user.
//!
//! # Sessions
//!
//! The release (T after the swap) locks the old user: `ALTER ROLE … NOLOGIN PASSWORD
//! NULL` (a NULL password never logs in). Its open sessions keep working for the
//! session grace (`KEYSHIFT_PG_SESSION_GRACE_SECONDS`, 30 by default, or the tag
//! `keyshift:postgres-session-grace-seconds`), then `pg_terminate_backend` ends them:
//! pools must reconnect with the secret's current value. The function's timeout must
//! exceed the grace plus a few seconds.
//!
//! # Guards
//!
//! - `set` registers only the other user of AWSCURRENT's pair on the same host, port,
//!   database and master secret, and refuses (retryable) while that user is still
//!   accepted through ROTATING (a rotation started before the previous one's release).
//! - `revoke` never locks the user AWSCURRENT names, nor a user outside its pair, and
//!   only locks a user whose password is still the revoked one (it logs in with it
//!   first): a late or repeated revoke cannot lock out a user that a newer rotation
//!   registered again.
//! - Every change runs in one transaction under an advisory lock on the pair: a failure
//!   leaves no half-created user.
//!
//! # TLS
//!
//! `keyshift:postgres-tls` = `verify-full` (the default): TLS only, the certificate
//! checked against `KEYSHIFT_PG_CA_BUNDLE` (for RDS and Aurora, AWS's global bundle,
//! <https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem>; without the
//! variable, the platform's roots), host name included. `disable`: plain text, only when
//! the secret is tagged so; a server without TLS is never a silent fallback. rustls runs
//! on aws-lc-rs, the workspace's only crypto provider.
//!
//! | module | what |
//! |---|---|
//! | [`target`] | [`PostgresTarget`], the [`keyshift::ports::Target`] |
//! | [`secret`] | the secret's JSON, user names and the pair, passwords, quoting |
//! | [`options`] | [`PgOptions`] (environment variables) and the secret's tags |
//! | [`conn`] | connections, TLS, and how each failure maps to a `TargetErrorKind` |

pub mod conn;
pub mod options;
pub mod secret;
pub mod target;

pub use options::{PgOptions, TlsMode};
pub use secret::{DbSecret, MasterSecret, UserName};
pub use target::PostgresTarget;
/// The PostgreSQL client the target uses (for callers of [`conn::connect`]).
pub use tokio_postgres;
