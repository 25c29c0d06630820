//! Whole rotations through keyshift's real Executor against a real PostgreSQL 15, with
//! the secrets in moto's server read through the real SDK client. Every engine step runs
//! twice and every follow-up is delivered twice: the second run must change neither the
//! labels nor the roles (password verifiers included).

mod common;

use std::time::{Duration, Instant};

use common::*;
use keyshift::Step;
use keyshift::ports::{Target, TargetContext, TargetErrorKind};
use keyshift::secret::{AWSCURRENT, AWSPENDING, ROTATING};

/// Waits up to five seconds for `client`'s connection to be gone.
async fn closed_soon(client: &keyshift_postgres::tokio_postgres::Client) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if client.is_closed() || client.simple_query("SELECT 1").await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rotations_alternate_the_users_and_lock_the_old_one_after_the_release() {
    let world = World::new().await;
    let app_pw = world.app_password.clone();
    assert_eq!(
        world
            .whoami(APP, &app_pw)
            .await
            .expect("app logs in over verified TLS"),
        (APP.to_owned(), APP.to_owned())
    );
    // A session the old user keeps open through the rotation (a pooled connection).
    let held = world.login(APP, &app_pw).await.expect("app logs in");

    // ---- rotation 1: app -> app_clone -------------------------------------------------
    let t1 = version_id(1);
    world.begin(&t1).await;
    let roles_before = world.roles();
    world.engine_twice(Step::CreateSecret, &t1).await;
    let pending = world.value_at(AWSPENDING).await.expect("a pending value");
    assert_eq!(
        pending.username.as_str(),
        CLONE,
        "the pending value names the other user"
    );
    assert_ne!(pending.password, app_pw);
    assert_eq!(world.roles(), roles_before, "createSecret touches no database");
    let clone_pw = pending.password.clone();
    assert!(world.login(CLONE, &clone_pw).await.is_err(), "not registered yet");

    world.engine_twice(Step::SetSecret, &t1).await;
    assert_eq!(
        world
            .whoami(CLONE, &clone_pw)
            .await
            .expect("the clone logs in over verified TLS"),
        (CLONE.to_owned(), APP.to_owned()),
        "the clone's sessions act as the base role"
    );
    assert_eq!(
        world.whoami(APP, &app_pw).await.expect("app still logs in").0,
        APP
    );
    let roles = world.roles();
    assert!(
        roles.contains("app_clone|t|SCRAM-SHA-256$") && roles.contains("|role=app|app"),
        "{roles}"
    );

    // Objects made by the clone belong to the base role: both users use them.
    let clone = world.login(CLONE, &clone_pw).await.expect("clone");
    clone
        .batch_execute(
            "CREATE TABLE made_by_clone (id int); INSERT INTO made_by_clone VALUES (1); \
             INSERT INTO items VALUES (2, 'written by the clone'); RESET ROLE; \
             CREATE TABLE after_reset (id int)",
        )
        .await
        .expect("the clone creates and writes");
    let owners = world
        .pg
        .psql(
            DB,
            "SELECT tablename || ':' || tableowner FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        .expect("psql");
    assert_eq!(
        owners.lines().collect::<Vec<_>>(),
        ["after_reset:app", "items:app", "made_by_clone:app"],
        "RESET ROLE returns to the login-time role: the base one"
    );
    let app = world.login(APP, &app_pw).await.expect("app");
    app.batch_execute("INSERT INTO made_by_clone VALUES (2); ALTER TABLE made_by_clone ADD COLUMN note text")
        .await
        .expect("the base user writes and alters the clone's table");
    drop((clone, app));

    world.engine_twice(Step::TestSecret, &t1).await;
    world.engine_twice(Step::FinishSecret, &t1).await;
    world.until_swapped(&t1).await;
    let current = world.value_at(AWSCURRENT).await.expect("current");
    assert_eq!(current.username.as_str(), CLONE);
    assert_eq!(
        world
            .value_at(ROTATING)
            .await
            .expect("rotating")
            .username
            .as_str(),
        APP
    );
    assert!(
        world.login(APP, &app_pw).await.is_ok(),
        "between the swap and the release app works"
    );
    assert!(
        held.simple_query("SELECT 1").await.is_ok(),
        "and so does its open session"
    );

    let start = Instant::now();
    world.release().await;
    let e = world
        .login(APP, &app_pw)
        .await
        .expect_err("after the release app is locked");
    assert!(
        e.message.contains("password authentication failed") || e.message.contains("not permitted to log in"),
        "{e}"
    );
    assert!(closed_soon(&held).await, "the old user's open session was ended");
    assert!(start.elapsed() >= GRACE, "the sessions were left the grace first");
    assert_eq!(
        world.whoami(CLONE, &clone_pw).await.expect("the clone works").0,
        CLONE
    );
    assert!(
        world.roles().contains("app|f|-|"),
        "app: NOLOGIN and no password: {}",
        world.roles()
    );

    // ---- rotation 2: app_clone -> app, re-enabled --------------------------------------
    let held_clone = world.login(CLONE, &clone_pw).await.expect("the clone logs in");
    let t2 = version_id(2);
    world.begin(&t2).await;
    world.engine_twice(Step::CreateSecret, &t2).await;
    let pending = world.value_at(AWSPENDING).await.expect("pending");
    assert_eq!(pending.username.as_str(), APP, "back to the base user");
    assert_eq!(
        pending.masterarn, world.master_arn,
        "every other field carried over"
    );
    let app_pw2 = pending.password.clone();
    world.engine_twice(Step::SetSecret, &t2).await;
    assert_eq!(world.whoami(APP, &app_pw2).await.expect("app re-enabled").0, APP);
    assert!(
        world.login(APP, &app_pw).await.is_err(),
        "app's first password stays dead"
    );
    world.engine_twice(Step::TestSecret, &t2).await;
    world.engine_twice(Step::FinishSecret, &t2).await;
    world.until_swapped(&t2).await;
    assert!(
        world.login(CLONE, &clone_pw).await.is_ok(),
        "the clone works until the release"
    );
    world.release().await;
    assert!(world.login(CLONE, &clone_pw).await.is_err(), "then it is locked");
    assert!(closed_soon(&held_clone).await, "and its session ended");
    let app = world.login(APP, &app_pw2).await.expect("app");
    app.batch_execute("INSERT INTO made_by_clone VALUES (3); DROP TABLE after_reset")
        .await
        .expect("the base user owns what the clone made");
    let current = world.value_at(AWSCURRENT).await.expect("current");
    assert_eq!(current.username.as_str(), APP);
    assert_eq!(world.holder(AWSPENDING).await, None);

    // A revoke delivered again, long after (a replay): nothing changes, nothing waits.
    let before = world.fingerprint().await;
    let (id, tags) = world.ctx_parts().await;
    let ctx = TargetContext {
        secret: &id,
        tags: &tags,
    };
    let old = pending_value(&world, CLONE, &clone_pw);
    world
        .exec
        .target
        .revoke(&ctx, &version_id(9), &old)
        .await
        .expect("a replayed revoke is done");
    assert_eq!(before, world.fingerprint().await);

    // Nothing the server logged holds a password (every statement is logged).
    let passwords = world.all_passwords().await;
    assert!(passwords.len() >= 4, "{}", passwords.len());
    world.assert_log_clean(&passwords);
    let log = world.pg.log();
    assert!(
        log.contains("SCRAM-SHA-256$"),
        "the server saw verifiers, not passwords"
    );
    for user in [CLONE, APP, MASTER] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("connection authorized: user={user} "))
                    && l.contains("SSL enabled")),
            "{user} logged in over TLS"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_started_before_the_release_waits_for_it() {
    // After the swap of rotation 1, a second RotateSecret would register app again:
    // app is still accepted through ROTATING, so its password must not change yet.
    let world = World::new().await;
    let app_pw = world.app_password.clone();
    let t1 = version_id(1);
    world.begin(&t1).await;
    for step in [
        Step::CreateSecret,
        Step::SetSecret,
        Step::TestSecret,
        Step::FinishSecret,
    ] {
        world.engine_twice(step, &t1).await;
    }
    world.until_swapped(&t1).await;

    let t2 = version_id(2);
    world.begin(&t2).await;
    world.step(Step::CreateSecret, &t2).await.expect("createSecret");
    assert_eq!(
        world
            .value_of(&t2)
            .await
            .map(|v| v.contains("\"username\":\"app\"")),
        Some(true)
    );
    let before = world.roles();
    let e = target_error(world.step(Step::SetSecret, &t2).await);
    assert_eq!(e.kind, TargetErrorKind::Retryable, "{e}");
    assert!(e.message.contains("ROTATING"), "{e}");
    assert_eq!(world.roles(), before, "nothing changed at the database");
    assert!(world.login(APP, &app_pw).await.is_ok(), "app keeps its password");

    // Once rotation 1's release ran (app locked), rotation 2 registers app again.
    world.release().await;
    assert!(world.login(APP, &app_pw).await.is_err());
    world
        .step(Step::SetSecret, &t2)
        .await
        .expect("setSecret after the release");
    let pending = world.value_at(AWSPENDING).await.expect("pending");
    assert_eq!(world.whoami(APP, &pending.password).await.expect("app").0, APP);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_abandoned_before_its_swap_locks_only_the_unused_user() {
    let world = World::new().await;
    let app_pw = world.app_password.clone();
    let t1 = version_id(1);
    world.begin(&t1).await;
    for step in [
        Step::CreateSecret,
        Step::SetSecret,
        Step::TestSecret,
        Step::FinishSecret,
    ] {
        world.engine_twice(step, &t1).await;
    }
    let clone_pw = world.value_at(AWSPENDING).await.expect("pending").password;
    assert!(world.login(CLONE, &clone_pw).await.is_ok());
    world
        .sm
        .cancel_rotate_secret()
        .secret_id(&world.secret)
        .send()
        .await
        .expect("rotation off");
    while !world.jobs.names().is_empty() {
        world.deliver_next_twice().await;
    }
    assert_eq!(
        world
            .value_at(AWSCURRENT)
            .await
            .expect("current")
            .username
            .as_str(),
        APP,
        "AWSCURRENT never moved"
    );
    assert!(
        world.login(CLONE, &clone_pw).await.is_err(),
        "the never-used clone is locked"
    );
    assert!(
        world.login(APP, &app_pw).await.is_ok(),
        "the current user keeps working"
    );
}
