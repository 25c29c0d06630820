//! keyshift-local's PostgreSQL harness is what the other tests trust: password logins
//! only over TCP (never `trust`), TLS verifiable with its CA, a private server key, every
//! statement in a log the tests can read, and nothing left once dropped.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use keyshift::ports::TargetErrorKind;
use keyshift_local::postgres::{Postgres, SUPERUSER};
use keyshift_postgres::conn::{self, As, TlsConfig};
use keyshift_postgres::secret::Endpoint;
use keyshift_postgres::{PgOptions, TlsMode};

fn options(pg: &Postgres) -> PgOptions {
    PgOptions {
        ca_bundle: Some(pg.ca_pem_path.clone()),
        session_grace: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(5),
    }
}

fn endpoint(port: u16) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port,
        dbname: "postgres".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_serves_tls_and_passwords_only_and_cleans_up() {
    let pg = Postgres::start().expect("PostgreSQL 15 starts");
    let tls = TlsConfig::default();
    let o = options(&pg);
    let ep = endpoint(pg.port);
    for mode in [TlsMode::VerifyFull, TlsMode::Disable] {
        let c = conn::connect(&ep, SUPERUSER, &pg.superuser_password, mode, &tls, &o, As::Master)
            .await
            .unwrap_or_else(|e| panic!("superuser over TCP ({mode:?}): {e}"));
        let ssl: bool = c
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .expect("pg_stat_ssl")
            .get(0);
        assert_eq!(ssl, mode == TlsMode::VerifyFull);
    }
    // No trust on TCP: a wrong password is refused, over TLS or not.
    for mode in [TlsMode::VerifyFull, TlsMode::Disable] {
        let e = conn::connect(&ep, SUPERUSER, "not-the-password", mode, &tls, &o, As::Master)
            .await
            .expect_err("a wrong password");
        assert_eq!(e.kind, TargetErrorKind::Configuration, "{e}");
        assert!(e.message.contains("28P01"), "{e}");
    }
    let hba = std::fs::read_to_string(pg.data_dir().join("pg_hba.conf")).expect("pg_hba.conf");
    let tcp: Vec<&str> = hba.lines().filter(|l| l.starts_with("host")).collect();
    assert_eq!(
        tcp,
        [
            "hostssl all all 127.0.0.1/32 scram-sha-256",
            "hostnossl all all 127.0.0.1/32 scram-sha-256"
        ]
    );
    // The server's key: private to the server's user.
    let key = std::fs::metadata(pg.data_dir().join("server.key")).expect("the key");
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    if key.uid() != std::fs::metadata("/proc/self").expect("self").uid() {
        assert_eq!(key.uid(), pg.data_dir().metadata().expect("data dir").uid());
    }
    // Every statement is logged, the harness's own setup SQL excepted.
    pg.psql("postgres", "SELECT 'harness setup, not logged'")
        .expect("psql");
    let c = conn::connect(
        &ep,
        SUPERUSER,
        &pg.superuser_password,
        TlsMode::VerifyFull,
        &tls,
        &o,
        As::Master,
    )
    .await
    .expect("superuser");
    c.simple_query("SELECT 'a logged statement'")
        .await
        .expect("a query");
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = pg.log();
    assert!(log.contains("statement: SELECT 'a logged statement'"), "{log}");
    assert!(!log.contains("harness setup, not logged"));
    assert!(!log.contains(&pg.superuser_password));

    // Stopped and restarted on the same port; dropped: stopped and removed.
    let (port, dir) = (pg.port, pg.dir().to_path_buf());
    let mut pg = pg;
    pg.stop().expect("stop");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    pg.restart().expect("restart");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    drop(pg);
    assert!(!dir.exists(), "the directory is removed");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server is stopped"
    );
}
