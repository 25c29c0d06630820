//! What goes wrong, against a real PostgreSQL 15: hostile values, a master without
//! rights, a database that is down, TLS that does not verify or is not offered. Each
//! fails with a clear typed error, shows no password, and leaves no role behind.

mod common;

use std::time::Duration;

use common::*;
use keyshift::SecretValue;
use keyshift::Step;
use keyshift::ports::{Target, TargetContext, TargetError, TargetErrorKind};
use keyshift_local::postgres::{PgConfig, random_password};
use keyshift_postgres::{PgOptions, PostgresTarget};

/// The names of the roles whose name starts with `app`, and whether they log in.
fn app_roles(world: &World) -> Vec<(String, bool)> {
    world
        .pg
        .roles()
        .expect("roles")
        .into_iter()
        .filter(|(n, _)| n.starts_with("app"))
        .collect()
}

fn only_app(world: &World) {
    assert_eq!(app_roles(world), [(APP.to_owned(), true)], "no role left behind");
}

fn no_secret_in(e: &TargetError, secrets: &[&str]) {
    for s in secrets {
        assert!(!e.message.contains(s), "the error shows a secret: {e}");
    }
}

/// `set` of `value` with the world's tags, straight to the target.
async fn set(world: &World, target: &PostgresTarget, value: &SecretValue) -> Result<(), TargetError> {
    let (id, tags) = world.ctx_parts().await;
    let ctx = TargetContext {
        secret: &id,
        tags: &tags,
    };
    target.set(&ctx, &version_id(1), value).await
}

async fn test(world: &World, target: &PostgresTarget, value: &SecretValue) -> Result<(), TargetError> {
    let (id, tags) = world.ctx_parts().await;
    let ctx = TargetContext {
        secret: &id,
        tags: &tags,
    };
    target.test(&ctx, &version_id(1), value).await
}

async fn revoke(world: &World, value: &SecretValue) -> Result<(), TargetError> {
    let (id, tags) = world.ctx_parts().await;
    let ctx = TargetContext {
        secret: &id,
        tags: &tags,
    };
    world.exec.target.revoke(&ctx, &version_id(7), value).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_are_refused_before_any_sql_and_leave_no_role() {
    let world = World::new().await;
    let pw = random_password(32);
    let master = &world.master_password;
    let port = world.pg.port;
    let arn = world.master_arn.clone();
    let hostile = |name: &str| SecretValue::new(app_value(port, name, &pw, &arn));
    for name in [
        "app_clone\"; DROP ROLE app; --",
        "app_clone; DROP ROLE app",
        "app clone",
        "App_Clone",
        "app'clone",
        &format!("{}_clone", "a".repeat(60)),
    ] {
        let e = set(&world, &world.exec.target, &hostile(name))
            .await
            .expect_err(name);
        assert_eq!(e.kind, TargetErrorKind::Configuration, "{name}: {e}");
        assert!(e.message.contains("field username"), "{e}");
        no_secret_in(&e, &[&pw, master]);
    }
    // Valid names, but not the other user of AWSCURRENT's pair: never touched.
    for name in [MASTER, "postgres", "app", "other_clone"] {
        let e = set(&world, &world.exec.target, &hostile(name))
            .await
            .expect_err(name);
        assert_eq!(e.kind, TargetErrorKind::Refused, "{name}: {e}");
        assert!(e.message.contains("other user"), "{e}");
    }
    // Missing fields are named.
    for field in ["host", "password", "masterarn", "username", "engine"] {
        let mut v: serde_json::Value =
            serde_json::from_str(&app_value(port, CLONE, &pw, &arn)).expect("json");
        v.as_object_mut().expect("object").remove(field);
        let e = set(&world, &world.exec.target, &SecretValue::new(v.to_string()))
            .await
            .expect_err(field);
        assert_eq!(e.kind, TargetErrorKind::Configuration);
        assert!(e.message.contains(&format!("field {field} is missing")), "{e}");
        no_secret_in(&e, &[&pw]);
    }
    // Another host than AWSCURRENT's (where the master's credentials would go).
    let mut v: serde_json::Value = serde_json::from_str(&app_value(port, CLONE, &pw, &arn)).expect("json");
    v["host"] = "evil.example".into();
    let e = set(&world, &world.exec.target, &SecretValue::new(v.to_string()))
        .await
        .expect_err("another host");
    assert_eq!(e.kind, TargetErrorKind::Refused, "{e}");
    only_app(&world);
    let log = world.pg.log();
    assert!(!log.contains("DROP ROLE"), "nothing hostile reached the server");
    let mut passwords = world.all_passwords().await;
    passwords.push(pw.clone());
    world.assert_log_clean(&passwords);

    // A hostile AWSCURRENT fails createSecret through the executor, before any write.
    let world2 = World::new().await;
    world2
        .sm
        .put_secret_value()
        .secret_id(&world2.secret)
        .secret_string(app_value(
            world2.pg.port,
            "x\"; DROP ROLE app; --",
            "pw-aaaaaaaaaaaa",
            &world2.master_arn,
        ))
        .send()
        .await
        .expect("an operator's bad write");
    let t = version_id(1);
    world2.begin(&t).await;
    let e = target_error(world2.step(Step::CreateSecret, &t).await);
    assert_eq!(e.kind, TargetErrorKind::Configuration, "{e}");
    assert!(
        e.message.contains("AWSCURRENT") && e.message.contains("field username"),
        "{e}"
    );
    assert!(!e.message.contains("pw-aaaaaaaaaaaa"));
    assert_eq!(world2.value_of(&t).await, None, "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_secrets_without_rights_or_credentials_are_configuration_errors() {
    let world = World::with(Setup {
        master_rights: false,
        ..Setup::default()
    })
    .await;
    let t = version_id(1);
    world.begin(&t).await;
    world
        .step(Step::CreateSecret, &t)
        .await
        .expect("createSecret needs no database");
    let pending = world.value_at("AWSPENDING").await.expect("pending");
    let e = target_error(world.step(Step::SetSecret, &t).await);
    assert_eq!(e.kind, TargetErrorKind::Configuration, "{e}");
    assert!(
        e.message.contains("42501") && e.message.contains("permission denied"),
        "{e}"
    );
    no_secret_in(&e, &[&pending.password, &world.master_password]);
    only_app(&world);

    // A wrong master password.
    let wrong = serde_json::json!({"engine": "postgres", "host": "127.0.0.1", "username": MASTER, "password": "wrong-master-password"});
    world
        .sm
        .put_secret_value()
        .secret_id(&world.master_arn)
        .secret_string(wrong.to_string())
        .send()
        .await
        .expect("update the master secret");
    let e = target_error(world.step(Step::SetSecret, &t).await);
    assert_eq!(e.kind, TargetErrorKind::Configuration, "{e}");
    assert!(e.message.contains("28P01") && e.message.contains("master"), "{e}");
    no_secret_in(&e, &["wrong-master-password", &pending.password]);

    // A master secret for another host: its credentials are not sent anywhere.
    let elsewhere = serde_json::json!({"engine": "postgres", "host": "10.1.2.3", "username": MASTER, "password": "x-master-password"});
    world
        .sm
        .put_secret_value()
        .secret_id(&world.master_arn)
        .secret_string(elsewhere.to_string())
        .send()
        .await
        .expect("update the master secret");
    let e = target_error(world.step(Step::SetSecret, &t).await);
    assert_eq!(e.kind, TargetErrorKind::Configuration, "{e}");
    assert!(e.message.contains("10.1.2.3"), "{e}");

    // A masterarn naming no secret.
    let value = SecretValue::new(app_value(
        world.pg.port,
        CLONE,
        &pending.password,
        "keyshift/no-such-master",
    ));
    let e = test(&world, &world.exec.target, &value)
        .await
        .expect_err("not registered");
    assert_eq!(e.kind, TargetErrorKind::Retryable, "{e}");
    let (id, tags) = world.ctx_parts().await;
    let ctx = TargetContext {
        secret: &id,
        tags: &tags,
    };
    let mut v: serde_json::Value = serde_json::from_str(value.expose()).expect("json");
    v.as_object_mut().expect("object").remove("port");
    let e = world
        .exec
        .target
        .test(&ctx, &t, &SecretValue::new(v.to_string()))
        .await
        .expect_err("no master to read the port from");
    assert_eq!(e.kind, TargetErrorKind::Configuration, "{e}");
    assert!(e.message.contains("masterarn"), "{e}");
    only_app(&world);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_is_down_is_retryable_and_comes_back() {
    let mut world = World::new().await;
    let t = version_id(1);
    world.begin(&t).await;
    world.step(Step::CreateSecret, &t).await.expect("createSecret");
    let pending = world.value_at("AWSPENDING").await.expect("pending");

    // A closed port (nothing listens).
    let closed = keyshift_local::moto::free_port().expect("a port");
    let value = SecretValue::new(app_value(closed, CLONE, &pending.password, &world.master_arn));
    let e = test(&world, &world.exec.target, &value)
        .await
        .expect_err("closed port");
    assert_eq!(e.kind, TargetErrorKind::Retryable, "{e}");
    no_secret_in(&e, &[&pending.password]);

    // The server stopped.
    world.pg.stop().expect("stop");
    let e = target_error(world.step(Step::SetSecret, &t).await);
    assert_eq!(e.kind, TargetErrorKind::Retryable, "{e}");
    assert!(e.message.contains("127.0.0.1"), "{e}");
    no_secret_in(&e, &[&pending.password, &world.master_password]);
    let e = target_error(world.step(Step::TestSecret, &t).await);
    assert_eq!(e.kind, TargetErrorKind::Retryable, "{e}");

    // Back up: the engine's retry goes through.
    world.pg.restart().expect("restart");
    world
        .step(Step::SetSecret, &t)
        .await
        .expect("setSecret once the server is back");
    world.step(Step::TestSecret, &t).await.expect("testSecret");
    assert_eq!(
        world.whoami(CLONE, &pending.password).await.expect("clone").0,
        CLONE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verifies_the_certificate_against_the_bundle_only() {
    let world = World::new().await;
    let t = version_id(1);
    world.begin(&t).await;
    world.step(Step::CreateSecret, &t).await.expect("createSecret");
    let pending = world.value_at("AWSPENDING").await.expect("pending");
    let value = keyshift::SecretValue::new(world.value_of(&t).await.expect("a value"));

    // A bundle without the server's CA: the master's credentials are never sent.
    let stranger = PostgresTarget::new(
        world.sm.clone(),
        PgOptions {
            ca_bundle: Some(world.pg.other_ca_pem_path.clone()),
            ..options_for(&world.pg)
        },
    );
    let e = set(&world, &stranger, &value)
        .await
        .expect_err("untrusted certificate");
    assert_eq!(e.kind, TargetErrorKind::Configuration, "{e}");
    assert!(
        e.message.contains("not trusted") && e.message.contains("KEYSHIFT_PG_CA_BUNDLE"),
        "{e}"
    );
    no_secret_in(&e, &[&pending.password, &world.master_password]);
    // The platform's roots do not know the test CA either.
    let platform = PostgresTarget::new(
        world.sm.clone(),
        PgOptions {
            ca_bundle: None,
            ..options_for(&world.pg)
        },
    );
    let e = set(&world, &platform, &value)
        .await
        .expect_err("untrusted certificate");
    assert_eq!(e.kind, TargetErrorKind::Configuration, "{e}");
    only_app(&world);
    assert!(
        !world
            .pg
            .log()
            .contains(&format!("connection authorized: user={MASTER}")),
        "the master never logged in"
    );

    // Plain text when tagged: it works, and the server saw no TLS.
    let (id, _) = world.ctx_parts().await;
    let mut tags = world.tags().await;
    tags.insert("keyshift:postgres-tls".into(), "disable".into());
    let ctx = TargetContext {
        secret: &id,
        tags: &tags,
    };
    world
        .exec
        .target
        .set(&ctx, &t, &value)
        .await
        .expect("set in plain text");
    world
        .exec
        .target
        .test(&ctx, &t, &value)
        .await
        .expect("test in plain text");
    let log = world.pg.log();
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("connection authorized: user={CLONE} "))
                && !l.contains("SSL enabled")),
        "the clone logged in without TLS"
    );
    world.assert_log_clean(&world.all_passwords().await);
    // A bad tag value names the tag.
    tags.insert("keyshift:postgres-tls".into(), "prefer".into());
    let ctx = TargetContext {
        secret: &id,
        tags: &tags,
    };
    let e = world
        .exec
        .target
        .test(&ctx, &t, &value)
        .await
        .expect_err("bad tag");
    assert_eq!(e.kind, TargetErrorKind::Configuration);
    assert!(e.message.contains("keyshift:postgres-tls"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_host_name_is_refused() {
    // Signed by the bundle's CA, but for db.example.internal, not 127.0.0.1.
    let world = World::with(Setup {
        pg: PgConfig {
            cert_names: "DNS:db.example.internal",
            ..PgConfig::default()
        },
        ..Setup::default()
    })
    .await;
    let t = version_id(1);
    world.begin(&t).await;
    world.step(Step::CreateSecret, &t).await.expect("createSecret");
    let e = target_error(world.step(Step::SetSecret, &t).await);
    assert_eq!(e.kind, TargetErrorKind::Configuration, "{e}");
    assert!(
        e.message.contains("not trusted") && e.message.contains("not valid for name \"127.0.0.1\""),
        "{e}"
    );
    only_app(&world);
    assert!(
        !world
            .pg
            .log()
            .contains(&format!("connection authorized: user={MASTER}")),
        "the master never logged in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_tls_is_refused_unless_the_secret_says_disable() {
    let world = World::with(Setup {
        pg: PgConfig {
            ssl: false,
            ..PgConfig::default()
        },
        ..Setup::default()
    })
    .await;
    let t = version_id(1);
    world.begin(&t).await;
    world.step(Step::CreateSecret, &t).await.expect("createSecret");
    let e = target_error(world.step(Step::SetSecret, &t).await);
    assert_eq!(e.kind, TargetErrorKind::Configuration, "{e}");
    assert!(
        e.message.contains("does not offer TLS") && e.message.contains("disable"),
        "{e}"
    );
    only_app(&world);

    let plain = World::with(Setup {
        pg: PgConfig {
            ssl: false,
            ..PgConfig::default()
        },
        tags: disable_tags(),
        ..Setup::default()
    })
    .await;
    plain.begin(&t).await;
    for step in [Step::CreateSecret, Step::SetSecret, Step::TestSecret] {
        plain.step(step, &t).await.expect("plain text, as tagged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_never_locks_the_current_user_a_stranger_or_a_newer_password() {
    let world = World::new().await;
    let app_pw = world.app_password.clone();
    // AWSCURRENT's own user: left alone.
    revoke(&world, &pending_value(&world, APP, &app_pw))
        .await
        .expect("a guarded no-op");
    assert!(
        world.login(APP, &app_pw).await.is_ok(),
        "the live credential still works"
    );
    // A user outside the pair (the master itself, a stranger): left alone.
    revoke(&world, &pending_value(&world, MASTER, &world.master_password))
        .await
        .expect("a guarded no-op");
    assert!(world.roles().contains("app|t|"));
    // The clone, registered with a newer password than the one revoked: left alone.
    let t = version_id(1);
    world.begin(&t).await;
    world.step(Step::CreateSecret, &t).await.expect("createSecret");
    world.step(Step::SetSecret, &t).await.expect("setSecret");
    let pending = world.value_at("AWSPENDING").await.expect("pending");
    let started = std::time::Instant::now();
    revoke(
        &world,
        &pending_value(&world, CLONE, "an-older-password-of-the-clone"),
    )
    .await
    .expect("a stale revoke");
    assert!(
        world.login(CLONE, &pending.password).await.is_ok(),
        "the newer password works"
    );
    // A clone that does not exist: done. Missing role, no wait.
    let fresh = World::new().await;
    revoke(&fresh, &pending_value(&fresh, CLONE, "whatever-password"))
        .await
        .expect("nothing to revoke");
    assert!(started.elapsed() < Duration::from_secs(20));
}
