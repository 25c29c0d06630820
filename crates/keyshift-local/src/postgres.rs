//! A real PostgreSQL 15 for tests and the demo: a fresh cluster in a temporary
//! directory, TLS with a certificate of its own CA, password logins only over TCP,
//! every statement logged to a file; stopped and removed on drop.
//!
//! ```text
//! initdb   --auth-host=scram-sha-256, superuser password from a file (never `trust` on TCP)
//! TLS      a CA and a server certificate for 127.0.0.1 / localhost, made with openssl
//! pg_hba   hostssl and hostnossl for 127.0.0.1/32, scram-sha-256 (plain text is
//!          allowed so that a target's `disable` mode can be tested; TLS is on)
//! logging  log_statement=all, log_connections=on, into `log_path()`
//! ```
//!
//! Needs the PostgreSQL 15 server binaries (`apt-get install -y postgresql-15`) and the
//! `openssl` command. As root, every server command runs as the `postgres` system user
//! (through `runuser`), since PostgreSQL refuses to run as root.
//!
//! Setup SQL runs through `psql` over the cluster's own Unix socket (in the temporary
//! directory, `trust` for the superuser only there) with `log_statement=none`, so that
//! the passwords the helpers set never reach the log that tests search.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::moto::free_port;

/// Where Debian's PostgreSQL 15 server binaries are.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The superuser's name.
pub const SUPERUSER: &str = "postgres";
/// The system user the server runs as when the caller is root.
pub const SYSTEM_USER: &str = "postgres";

/// How to start the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgConfig {
    /// `ssl=on` (the default). Off: the server speaks plain text only, to show that a
    /// client asking for TLS fails instead of falling back.
    pub ssl: bool,
    /// The names in the server certificate's subjectAltName, as openssl writes them.
    /// The default names the address the server listens on; another name shows that a
    /// client checks the host name, not only the CA.
    pub cert_names: &'static str,
}

/// The certificate's names by default: the address it is reached at, and localhost.
pub const DEFAULT_CERT_NAMES: &str = "IP:127.0.0.1,DNS:localhost";

impl Default for PgConfig {
    fn default() -> Self {
        PgConfig {
            ssl: true,
            cert_names: DEFAULT_CERT_NAMES,
        }
    }
}

/// A running PostgreSQL cluster; stopped (`pg_ctl -m fast stop`) and its directory
/// removed when dropped.
#[derive(Debug)]
pub struct Postgres {
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The CA that signed the server's certificate (PEM): the bundle to verify it with.
    pub ca_pem_path: PathBuf,
    /// Another CA that signed nothing here: a bundle that must not verify the server.
    pub other_ca_pem_path: PathBuf,
    /// The superuser's password (user [`SUPERUSER`]).
    pub superuser_password: String,
    dir: PathBuf,
    as_root: bool,
    running: bool,
}

static STARTED: AtomicU32 = AtomicU32::new(0);

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .is_some_and(|s| s.trim() == "0")
}

fn text(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        s.push_str(" | ");
        s.push_str(stdout.trim());
    }
    s.chars().take(2000).collect()
}

/// Runs `cmd`; its output on success, the command and its stderr on failure.
fn run(cmd: &mut Command, what: &str) -> Result<Output, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: could not run: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!("{what} failed ({}): {}", out.status, text(&out)))
    }
}

/// A random string of letters and digits (for passwords of the harness's own users).
pub fn random_password(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// `name` as a quoted SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as a SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Makes a CA (key and self-signed certificate) named `name` in `dir`.
fn make_ca(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), String> {
    let key = dir.join(format!("{name}.key"));
    let pem = dir.join(format!("{name}.pem"));
    run(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&pem)
            .args(["-days", "3", "-subj"])
            .arg(format!("/CN=keyshift test {name}"))
            .args([
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]),
        "openssl req (CA)",
    )?;
    Ok((key, pem))
}

/// Makes a server key and a certificate for 127.0.0.1 and localhost, signed by the CA.
fn make_server_cert(
    dir: &Path,
    ca_key: &Path,
    ca_pem: &Path,
    names: &str,
) -> Result<(PathBuf, PathBuf), String> {
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let crt = dir.join("server.crt");
    let ext = dir.join("server.ext");
    fs::write(
        &ext,
        format!(
            "subjectAltName={names}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .map_err(|e| format!("write {}: {e}", ext.display()))?;
    run(
        Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .args(["-subj", "/CN=localhost"]),
        "openssl req (server)",
    )?;
    run(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "3", "-sha256"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(ca_pem)
            .arg("-CAkey")
            .arg(ca_key)
            .arg("-CAcreateserial")
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&crt),
        "openssl x509 (sign the server certificate)",
    )?;
    Ok((key, crt))
}

impl Postgres {
    /// A cluster with TLS on: see the module's documentation.
    pub fn start() -> Result<Postgres, String> {
        Self::start_with(PgConfig::default())
    }

    /// A cluster started with `config`.
    pub fn start_with(config: PgConfig) -> Result<Postgres, String> {
        let initdb = Path::new(PG_BIN).join("initdb");
        if !initdb.exists() {
            return Err(format!(
                "{} not found: PostgreSQL 15's server is not installed (Debian/Ubuntu: `apt-get install -y postgresql-15`)",
                initdb.display()
            ));
        }
        let as_root = is_root();
        let n = STARTED.fetch_add(1, Ordering::SeqCst);
        // As root, under /tmp itself: the server's user must be able to enter every
        // parent, which a private $TMPDIR may not allow.
        let parent = if as_root {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = parent.join(format!(
            "keyshift-pg-{}-{n}-{}",
            std::process::id(),
            random_password(6).to_lowercase()
        ));
        fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut pg = Postgres {
            port: 0,
            ca_pem_path: dir.join("ca.pem"),
            other_ca_pem_path: dir.join("other-ca.pem"),
            superuser_password: random_password(24),
            dir,
            as_root,
            running: false,
        };
        // From here on, a failure drops `pg`, which removes the directory.
        pg.init(config)?;
        let mut last = String::new();
        for _ in 0..3 {
            pg.port = free_port().map_err(|e| format!("no free port: {e}"))?;
            match pg.pg_ctl_start() {
                Ok(()) => {
                    pg.running = true;
                    pg.wait_ready(Duration::from_secs(30))?;
                    return Ok(pg);
                }
                // The port may have been taken between the probe and the start.
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The cluster's data directory (owned by the server's user).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The temporary directory that holds everything (removed on drop).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log (every statement, every connection).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// The log's contents so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A command that runs as the server's system user when we are root.
    fn as_postgres(&self, program: &str) -> Command {
        let path = Path::new(PG_BIN).join(program);
        let mut cmd = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", SYSTEM_USER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        // A directory the server's user may enter (the caller's may be private).
        cmd.current_dir(&self.dir);
        cmd
    }

    fn init(&mut self, config: PgConfig) -> Result<(), String> {
        let dir = self.dir.clone();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
        let (ca_key, ca_pem) = make_ca(&dir, "ca")?;
        let (other_key, _) = make_ca(&dir, "other-ca")?;
        let _ = fs::remove_file(other_key);
        let (server_key, server_crt) = make_server_cert(&dir, &ca_key, &ca_pem, config.cert_names)?;
        let _ = fs::remove_file(ca_key);
        let pwfile = dir.join("pwfile");
        fs::write(&pwfile, format!("{}\n", self.superuser_password))
            .map_err(|e| format!("write {}: {e}", pwfile.display()))?;
        self.chown_to_postgres(&dir)?;
        let data = self.data_dir();
        let init = run(
            self.as_postgres("initdb")
                .arg("-D")
                .arg(&data)
                .args([
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-U",
                    SUPERUSER,
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ])
                .arg(format!("--pwfile={}", pwfile.display())),
            "initdb",
        );
        let _ = fs::remove_file(&pwfile);
        init?;
        // The key inside the data directory, owned by the server's user, mode 0600.
        let key = data.join("server.key");
        let crt = data.join("server.crt");
        fs::copy(&server_key, &key).map_err(|e| format!("copy the server key: {e}"))?;
        fs::copy(&server_crt, &crt).map_err(|e| format!("copy the server certificate: {e}"))?;
        let _ = fs::remove_file(server_key);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("chmod the server key: {e}"))?;
        let mut hba = String::from(
            "# keyshift-local: the superuser over the cluster's own socket; passwords on TCP.\n\
             local all postgres trust\n",
        );
        if config.ssl {
            hba.push_str("hostssl all all 127.0.0.1/32 scram-sha-256\n");
        }
        hba.push_str("hostnossl all all 127.0.0.1/32 scram-sha-256\n");
        fs::write(data.join("pg_hba.conf"), hba).map_err(|e| format!("write pg_hba.conf: {e}"))?;
        let conf = format!(
            "\n# keyshift-local\nssl = {}\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
             log_statement = 'all'\nlog_connections = on\nlog_disconnections = on\n\
             log_line_prefix = '%m [%p] %u@%d '\npassword_encryption = 'scram-sha-256'\n\
             max_connections = 50\nshared_buffers = '16MB'\n",
            if config.ssl { "on" } else { "off" }
        );
        let mut existing = fs::read_to_string(data.join("postgresql.conf"))
            .map_err(|e| format!("read postgresql.conf: {e}"))?;
        existing.push_str(&conf);
        fs::write(data.join("postgresql.conf"), existing)
            .map_err(|e| format!("write postgresql.conf: {e}"))?;
        self.chown_to_postgres(&dir)?;
        Ok(())
    }

    fn chown_to_postgres(&self, path: &Path) -> Result<(), String> {
        if !self.as_root {
            return Ok(());
        }
        run(
            Command::new("chown")
                .arg("-R")
                .arg(format!("{SYSTEM_USER}:{SYSTEM_USER}"))
                .arg(path),
            "chown",
        )
        .map(|_| ())
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        run(
            self.as_postgres("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.log_path())
                .arg("-o")
                .arg(opts)
                .args(["-w", "-t", "30", "start"])
                .stdout(Stdio::null()),
            "pg_ctl start",
        )
        .map(|_| ())
        .map_err(|e| format!("{e}\n--- server log ---\n{}", tail(&self.log(), 40)))
    }

    fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if self.psql("postgres", "SELECT 1").is_ok() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "PostgreSQL on port {} not ready within {timeout:?}\n{}",
                    self.port,
                    tail(&self.log(), 40)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (`pg_ctl -m fast stop`): connections fail from now on.
    pub fn stop(&mut self) -> Result<(), String> {
        if !self.running {
            return Ok(());
        }
        run(
            self.as_postgres("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "fast", "-w", "-t", "30", "stop"])
                .stdout(Stdio::null()),
            "pg_ctl stop",
        )?;
        self.running = false;
        Ok(())
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&mut self) -> Result<(), String> {
        if self.running {
            return Ok(());
        }
        self.pg_ctl_start()?;
        self.running = true;
        self.wait_ready(Duration::from_secs(30))
    }

    /// `postgresql://postgres:<password>@127.0.0.1:<port>/postgres`.
    pub fn superuser_url(&self) -> String {
        format!(
            "postgresql://{SUPERUSER}:{}@127.0.0.1:{}/postgres",
            self.superuser_password, self.port
        )
    }

    /// Runs `sql` in `db` as the superuser over the Unix socket, with statement logging
    /// off for the session; the rows as `psql -A -t` prints them (`|` between columns).
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = run(
            self.as_postgres("psql")
                .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
                .arg("-h")
                .arg(&self.dir)
                .arg("-p")
                .arg(self.port.to_string())
                .args(["-U", SUPERUSER, "-d", db, "-c", sql])
                .env("PGOPTIONS", "-c log_statement=none"),
            "psql",
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// A database `db` owned by a new login user `user` with `password`, with a table
    /// `items` that `user` owns and one row in it.
    pub fn create_app(&self, db: &str, user: &str, password: &str) -> Result<(), String> {
        self.psql(
            "postgres",
            &format!("CREATE ROLE {} LOGIN PASSWORD {}", ident(user), literal(password)),
        )?;
        self.psql(
            "postgres",
            &format!("CREATE DATABASE {} OWNER {}", ident(db), ident(user)),
        )?;
        self.psql(
            db,
            &format!(
                "SET ROLE {}; CREATE TABLE items (id int PRIMARY KEY, note text); INSERT INTO items VALUES (1, 'made by the app user')",
                ident(user)
            ),
        )?;
        Ok(())
    }

    /// A user that may manage roles as keyshift needs: `CREATEROLE` and membership of
    /// `pg_signal_backend` (with `createrole` false: neither, a master without rights).
    pub fn create_master(&self, user: &str, password: &str, createrole: bool) -> Result<(), String> {
        let attrs = if createrole { "CREATEROLE" } else { "NOCREATEROLE" };
        self.psql(
            "postgres",
            &format!(
                "CREATE ROLE {} LOGIN {attrs} PASSWORD {}",
                ident(user),
                literal(password)
            ),
        )?;
        if createrole {
            self.psql("postgres", &format!("GRANT pg_signal_backend TO {}", ident(user)))?;
        }
        Ok(())
    }

    /// Every role's name and whether it may log in, sorted by name (the predefined
    /// `pg_*` roles left out).
    pub fn roles(&self) -> Result<Vec<(String, bool)>, String> {
        let out = self.psql(
            "postgres",
            "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%' ORDER BY rolname",
        )?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(n, l)| (n.to_owned(), l == "t"))
            .collect())
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let _ = self.stop();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
