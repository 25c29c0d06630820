//! Whole rotations through keyshift's real [`Executor`]: the in-memory Secrets Manager, a
//! scheduler that keeps the follow-ups for the test to deliver, a clock the test moves,
//! and [`ApiKeyTarget`] talking HTTP to service B on 127.0.0.1.
//!
//! Every engine step is invoked twice and every follow-up delivered twice (the engine
//! and the scheduler both deliver at least once): the second run must change neither the
//! secret nor service B. Which keys work is checked on the wire, at `/whoami`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keyshift::event::ScheduleName;
use keyshift::memory::MemorySecretsManager;
use keyshift::ports::{
    Clock, Job, Scheduled, Scheduler, SchedulerError, Target, TargetContext, TargetErrorKind,
};
use keyshift::secret::{AWSCURRENT, AWSPENDING, ROTATING};
use keyshift::{
    ExecError, Executor, Invocation, Policy, SecretId, SecretState, SecretValue, Step, Timestamp, VersionId,
};
use keyshift_example_target::ApiKeyTarget;
use keyshift_example_target::config::{ADMIN_TOKEN_VAR, ALLOWED_HOSTS_VAR, SERVICE_URL_TAG, SERVICE_URL_VAR};
use keyshift_example_target::key::ApiKey;
use keyshift_example_target::service_b::ServiceB;

const ADMIN: &str = "service-b-admin-token-0123456789";
const GAP: Duration = Duration::from_secs(300);

// ---------------------------------------------------------------------------------------
// Doubles
// ---------------------------------------------------------------------------------------

/// Milliseconds since the epoch; `sleep_until` jumps to the wake time.
#[derive(Debug, Clone)]
struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    fn advance_to(&self, t: Timestamp) {
        self.0.fetch_max(t.as_millis(), Ordering::SeqCst);
    }

    fn reader(&self) -> impl Fn() -> Timestamp + Send + Sync + 'static {
        let now = Arc::clone(&self.0);
        move || Timestamp::from_millis(now.load(Ordering::SeqCst))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }

    fn sleep_until(&self, until: Timestamp) -> impl Future<Output = ()> + Send {
        self.advance_to(until);
        std::future::ready(())
    }
}

/// Keeps the follow-ups; the test delivers them.
#[derive(Debug, Clone, Default)]
struct Jobs(Arc<Mutex<Vec<Job>>>);

impl Jobs {
    fn take_first(&self) -> Option<Job> {
        let mut jobs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let first = (0..jobs.len()).min_by_key(|&i| jobs[i].fire_at)?;
        Some(jobs.remove(first))
    }

    fn names(&self) -> Vec<ScheduleName> {
        let jobs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<_> = jobs.iter().map(|j| j.name.clone()).collect();
        names.sort();
        names
    }
}

impl Scheduler for Jobs {
    async fn schedule(&self, job: &Job) -> Result<Scheduled, SchedulerError> {
        let mut jobs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if jobs.iter().any(|j| j.name == job.name) {
            return Ok(Scheduled::AlreadyScheduled);
        }
        jobs.push(job.clone());
        Ok(Scheduled::Created)
    }

    async fn complete(&self, _name: &ScheduleName) -> Result<(), SchedulerError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------------

/// Service B on 127.0.0.1, served until the test ends.
async fn start_service_b() -> (ServiceB, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let b = ServiceB::new(ADMIN);
    let served = b.clone();
    tokio::spawn(async move { served.serve(listener).await });
    (b, url)
}

/// A port nothing listens on (bound, then released).
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    drop(listener);
    url
}

fn version_id(n: u64) -> VersionId {
    VersionId::new(format!("00000000-0000-4000-8000-{n:012}"))
}

/// The function's target as `from_env` builds it, from these variables.
fn target(vars: &[(&str, &str)]) -> ApiKeyTarget {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ApiKeyTarget::from_lookup(|name| vars.get(name).cloned()).expect("valid settings")
}

/// The variables of a function allowed to reach `url`'s host, with `admin` as the token.
fn vars_for<'a>(url: &'a str, admin: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        (ADMIN_TOKEN_VAR, admin),
        (ALLOWED_HOSTS_VAR, url.trim_start_matches("http://")),
    ]
}

type Exec = Executor<Arc<MemorySecretsManager>, Jobs, ManualClock, ApiKeyTarget>;

struct World {
    clock: ManualClock,
    sm: Arc<MemorySecretsManager>,
    jobs: Jobs,
    exec: Exec,
    secret: SecretId,
    b: ServiceB,
    url: String,
    /// The last follow-up delivered, to deliver again later.
    last_job: Option<Job>,
}

impl World {
    /// A secret whose AWSCURRENT value is `initial`, tagged with `tag_url`, rotated by
    /// `target` with T = [`GAP`] and no inline budget (every wait is a follow-up the test
    /// delivers, so it can look between the swap and the release).
    fn new(b: ServiceB, url: &str, tag_url: Option<&str>, target: ApiKeyTarget, initial: &str) -> World {
        let clock = ManualClock(Arc::new(AtomicI64::new(
            Timestamp::from_secs(1_700_000_000).as_millis(),
        )));
        let sm = Arc::new(MemorySecretsManager::new(clock.reader()));
        let secret = SecretId::new("example/service-b-key");
        sm.create_secret(&secret, &version_id(0), SecretValue::new(initial))
            .expect("create the secret");
        if let Some(tag_url) = tag_url {
            sm.tag(&secret, SERVICE_URL_TAG, tag_url).expect("tag");
        }
        sm.set_rotation_enabled(&secret, true).expect("enable rotation");
        let jobs = Jobs::default();
        let policy = Policy::with_precision(GAP, Duration::ZERO, Duration::from_secs(1)).expect("a policy");
        let exec = Executor::new(Arc::clone(&sm), jobs.clone(), clock.clone(), target, policy);
        World {
            clock,
            sm,
            jobs,
            exec,
            secret,
            b,
            url: url.to_owned(),
            last_job: None,
        }
    }

    fn state(&self) -> SecretState {
        self.sm.snapshot(&self.secret).expect("the secret exists")
    }

    fn value(&self, version: &VersionId) -> Option<String> {
        self.sm
            .value(&self.secret, version)
            .expect("the version exists")
            .map(|v| v.expose().to_owned())
    }

    /// Everything a repeated invocation must leave as it was: labels, versions, values'
    /// creation times, tags, the live follow-ups, and service B's keys and change count.
    fn fingerprint(&self) -> (SecretState, Vec<ScheduleName>, Vec<String>, u64) {
        (
            self.state(),
            self.jobs.names(),
            self.b.key_ids(),
            self.b.changes(),
        )
    }

    fn begin(&self, token: &VersionId) {
        self.sm
            .begin_rotation(&self.secret, token)
            .expect("the engine starts a rotation");
    }

    fn invocation(&self, step: Step, token: &VersionId) -> Invocation {
        Invocation {
            step,
            secret_id: self.secret.clone(),
            token: token.clone(),
            rotation_token: None,
            schedule: None,
        }
    }

    /// An engine step, twice in a row: the first must succeed, the second must succeed
    /// and change nothing.
    async fn engine_twice(&self, step: Step, token: &VersionId) {
        let inv = self.invocation(step, token);
        let name = inv.step.name();
        self.exec
            .handle(&inv)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let after_first = self.fingerprint();
        self.exec
            .handle(&inv)
            .await
            .unwrap_or_else(|e| panic!("{name} again: {e}"));
        assert_eq!(
            after_first,
            self.fingerprint(),
            "a second {name} changed something"
        );
    }

    /// Delivers the follow-up due first at its time, then again at once (a duplicate
    /// delivery): the second must succeed and change nothing.
    async fn deliver_next_twice(&mut self) {
        let job = self
            .jobs
            .take_first()
            .expect("the rotation stalled with nothing scheduled");
        self.clock.advance_to(job.fire_at);
        let name = job.invocation.step.name();
        self.exec
            .handle(&job.invocation)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let after_first = self.fingerprint();
        self.exec
            .handle(&job.invocation)
            .await
            .unwrap_or_else(|e| panic!("{name} delivered again: {e}"));
        assert_eq!(
            after_first,
            self.fingerprint(),
            "a second {name} changed something"
        );
        self.last_job = Some(job);
    }

    /// createSecret, setSecret, testSecret, finishSecret, each twice, then the
    /// follow-ups until AWSCURRENT is on keyshift's copy of `token`, checking which keys
    /// service B accepts at each point: the new one from setSecret on, and the old one
    /// exactly as before (200 for a registered key, 401 for a placeholder B never knew)
    /// until the release. Returns the new key.
    async fn rotate_to_swap(&mut self, token: &VersionId, old_key: &str) -> String {
        let old = self.whoami(old_key).await;
        self.begin(token);
        self.engine_twice(Step::CreateSecret, token).await;
        let new_key = self.value(token).expect("createSecret stored a value");
        ApiKey::parse(&new_key).expect("the pending value is one of the target's keys");
        assert_ne!(new_key, old_key);
        assert_eq!(self.whoami(&new_key).await, 401, "createSecret registers nothing");
        assert_eq!(self.whoami(old_key).await, old);

        let changes = self.b.changes();
        self.engine_twice(Step::SetSecret, token).await;
        assert_eq!(
            self.b.changes(),
            changes + 1,
            "one registration, however often setSecret runs"
        );
        assert_eq!(
            self.whoami(old_key).await,
            old,
            "after setSecret the old key still works"
        );
        assert_eq!(
            self.whoami(&new_key).await,
            200,
            "after setSecret the new key works"
        );

        self.engine_twice(Step::TestSecret, token).await;
        self.engine_twice(Step::FinishSecret, token).await;
        assert_eq!(
            self.b.changes(),
            changes + 1,
            "testSecret and finishSecret change nothing at B"
        );

        while self
            .state()
            .current()
            .is_none_or(|c| c.copy_generation_of(token).is_none())
        {
            self.deliver_next_twice().await;
        }
        let state = self.state();
        assert!(
            state.holder(ROTATING).is_some(),
            "the old version stays accepted: {state:?}"
        );
        assert_eq!(
            self.whoami(old_key).await,
            old,
            "between the swap and the release the old key works"
        );
        assert_eq!(self.whoami(&new_key).await, 200);
        new_key
    }

    /// The follow-ups until ROTATING is off the old version (T after the swap).
    async fn release(&mut self) {
        while self.state().holder(ROTATING).is_some() {
            self.deliver_next_twice().await;
        }
        assert!(
            self.jobs.names().is_empty(),
            "follow-ups left: {:?}",
            self.jobs.names()
        );
    }

    /// `GET /whoami` with `key` as the bearer token: the status.
    async fn whoami(&self, key: &str) -> u16 {
        let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let request = http::Request::get(format!("{}/whoami", self.url))
            .header("authorization", format!("Bearer {key}"))
            .body(Empty::new())
            .expect("a request");
        let status = client
            .request(request)
            .await
            .expect("service B answers")
            .status()
            .as_u16();
        assert_eq!(
            status == 200,
            self.b.accepts(key),
            "the wire and service B's state agree"
        );
        status
    }
}

/// Service B with `initial` registered, as an operator would have done before the first
/// rotation (through the target itself: `set` is what registering means).
async fn register_initial(world: &World, key: &ApiKey) {
    let tags = world.state().tags;
    let ctx = TargetContext {
        secret: &world.secret,
        tags: &tags,
    };
    world
        .exec
        .target
        .set(&ctx, &version_id(0), &SecretValue::new(key.expose()))
        .await
        .expect("register the initial key");
}

fn target_error(result: Result<keyshift::executor::Report, ExecError>) -> keyshift::ports::TargetError {
    match result {
        Err(ExecError::Target(e)) => e,
        other => panic!("expected a target error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_complete_rotation_keeps_a_working_key_at_every_step_and_revokes_the_old_one() {
    let (b, url) = start_service_b().await;
    let k0 = ApiKey::generate().expect("random");
    let mut world = World::new(
        b.clone(),
        &url,
        Some(&url),
        target(&vars_for(&url, ADMIN)),
        k0.expose(),
    );
    register_initial(&world, &k0).await;
    assert_eq!(world.whoami(k0.expose()).await, 200);

    let token = version_id(1);
    let k1 = world.rotate_to_swap(&token, k0.expose()).await;
    world.release().await;

    assert_eq!(
        world.whoami(k0.expose()).await,
        401,
        "after the release the old key is revoked"
    );
    assert_eq!(
        world.whoami(&k1).await,
        200,
        "after the release the new key works"
    );
    assert_eq!(
        b.key_ids(),
        vec![ApiKey::parse(&k1).expect("a key").id().as_str().to_owned()]
    );
    let state = world.state();
    assert_eq!(state.holder(AWSPENDING), None);
    assert_eq!(state.holder(ROTATING), None);
    let current = state.current().expect("a current version").clone();
    assert_eq!(world.value(&current).as_deref(), Some(k1.as_str()));

    // The release delivered again (a late duplicate, or an operator's replay): fine, and
    // nothing changes.
    let before = world.fingerprint();
    let last = world.last_job.clone().expect("a follow-up was delivered");
    assert!(
        matches!(last.invocation.step, Step::RemovePending { .. }),
        "{last:?}"
    );
    world
        .exec
        .handle(&last.invocation)
        .await
        .expect("a replayed release");
    assert_eq!(before, world.fingerprint());

    // A revoke delivered again, straight to the target: the key is gone already (404).
    let ctx_tags = world.state().tags;
    let ctx = TargetContext {
        secret: &world.secret,
        tags: &ctx_tags,
    };
    world
        .exec
        .target
        .revoke(&ctx, &version_id(0), &SecretValue::new(k0.expose()))
        .await
        .expect("revoking a revoked key is done");
    assert_eq!(before, world.fingerprint());
}

#[tokio::test]
async fn the_next_rotation_revokes_a_key_that_became_current_through_keyshifts_copy() {
    // The release revokes the old AWSCURRENT version, which is keyshift's copy of the
    // previous rotation's token: another version id than the one `set` was called with.
    // The key's id comes from the key, so the revoke finds it.
    let (b, url) = start_service_b().await;
    let k0 = ApiKey::generate().expect("random");
    let mut world = World::new(
        b.clone(),
        &url,
        Some(&url),
        target(&vars_for(&url, ADMIN)),
        k0.expose(),
    );
    register_initial(&world, &k0).await;

    let first = version_id(1);
    let k1 = world.rotate_to_swap(&first, k0.expose()).await;
    world.release().await;
    let current = world.state().current().expect("current").clone();
    assert_ne!(
        current, first,
        "AWSCURRENT is keyshift's copy, not the token setSecret saw"
    );

    let second = version_id(2);
    let k2 = world.rotate_to_swap(&second, &k1).await;
    world.release().await;
    assert_eq!(
        world.whoami(&k1).await,
        401,
        "the first rotation's key is revoked by the second"
    );
    assert_eq!(world.whoami(&k2).await, 200);
    assert_eq!(world.whoami(k0.expose()).await, 401);
    assert_eq!(b.key_ids().len(), 1);
}

#[tokio::test]
async fn a_first_value_service_b_never_knew_revokes_as_already_gone() {
    // The secret was created with a placeholder; the first rotation makes the first real
    // key and its release "revokes" the placeholder (404 at B: done).
    let (b, url) = start_service_b().await;
    let mut world = World::new(
        b.clone(),
        &url,
        Some(&url),
        target(&vars_for(&url, ADMIN)),
        "placeholder",
    );
    let k1 = world.rotate_to_swap(&version_id(1), "placeholder").await;
    world.release().await;
    assert_eq!(world.whoami(&k1).await, 200);
    assert_eq!(b.changes(), 1, "one registration, no removal");
}

#[tokio::test]
async fn the_function_wide_url_serves_secrets_without_the_tag() {
    let (b, url) = start_service_b().await;
    let k0 = ApiKey::generate().expect("random");
    let vars = [(ADMIN_TOKEN_VAR, ADMIN), (SERVICE_URL_VAR, url.as_str())];
    let mut world = World::new(b.clone(), &url, None, target(&vars), k0.expose());
    register_initial(&world, &k0).await;
    let k1 = world.rotate_to_swap(&version_id(1), k0.expose()).await;
    world.release().await;
    assert_eq!(world.whoami(k0.expose()).await, 401);
    assert_eq!(world.whoami(&k1).await, 200);
}

#[tokio::test]
async fn a_rotation_abandoned_before_its_swap_revokes_the_unused_key_only() {
    let (b, url) = start_service_b().await;
    let k0 = ApiKey::generate().expect("random");
    let mut world = World::new(
        b.clone(),
        &url,
        Some(&url),
        target(&vars_for(&url, ADMIN)),
        k0.expose(),
    );
    register_initial(&world, &k0).await;
    let token = version_id(1);
    world.begin(&token);
    for step in [
        Step::CreateSecret,
        Step::SetSecret,
        Step::TestSecret,
        Step::FinishSecret,
    ] {
        world.engine_twice(step, &token).await;
    }
    let k1 = world.value(&token).expect("a pending value");
    assert_eq!(world.whoami(&k1).await, 200);
    // Rotation switched off before the swap: the follow-up takes AWSPENDING off and
    // revokes the value no consumer ever used.
    world
        .sm
        .set_rotation_enabled(&world.secret, false)
        .expect("disable");
    while !world.jobs.names().is_empty() {
        world.deliver_next_twice().await;
    }
    let state = world.state();
    assert_eq!(
        state.current(),
        Some(&version_id(0)),
        "AWSCURRENT never moved: {state:?}"
    );
    assert_eq!(world.whoami(&k1).await, 401, "the never-used key is revoked");
    assert_eq!(
        world.whoami(k0.expose()).await,
        200,
        "the current key keeps working"
    );
}

#[tokio::test]
async fn a_wrong_admin_token_fails_set_secret_as_configuration_and_registers_nothing() {
    let (b, url) = start_service_b().await;
    let k0 = ApiKey::generate().expect("random");
    // Register the initial key with the right token, then rotate with a wrong one.
    let setup = World::new(
        b.clone(),
        &url,
        Some(&url),
        target(&vars_for(&url, ADMIN)),
        k0.expose(),
    );
    register_initial(&setup, &k0).await;
    let wrong = "not-the-admin-token-of-service-b";
    let world = World::new(
        b.clone(),
        &url,
        Some(&url),
        target(&vars_for(&url, wrong)),
        k0.expose(),
    );
    let token = version_id(1);
    world.begin(&token);
    world.engine_twice(Step::CreateSecret, &token).await;
    let k1 = world.value(&token).expect("a pending value");
    let (ids, changes) = (b.key_ids(), b.changes());

    let e = target_error(
        world
            .exec
            .handle(&world.invocation(Step::SetSecret, &token))
            .await,
    );
    assert_eq!(e.kind, TargetErrorKind::Configuration, "{e}");
    assert!(
        e.message.contains("HTTP 401") && e.message.contains(ADMIN_TOKEN_VAR),
        "{e}"
    );
    for secret in [wrong, ADMIN, k1.as_str(), k0.expose()] {
        assert!(!e.message.contains(secret), "the error shows a secret: {e}");
    }
    assert_eq!(
        (b.key_ids(), b.changes()),
        (ids, changes),
        "nothing stored at service B"
    );
    assert_eq!(world.whoami(&k1).await, 401);
    assert_eq!(world.whoami(k0.expose()).await, 200);
}

#[tokio::test]
async fn an_unreachable_service_b_is_retryable() {
    let url = closed_port_url().await;
    let (b, _) = start_service_b().await;
    let world = World::new(b, &url, Some(&url), target(&vars_for(&url, ADMIN)), "placeholder");
    let token = version_id(1);
    world.begin(&token);
    world.engine_twice(Step::CreateSecret, &token).await;
    let k1 = world.value(&token).expect("a pending value");
    let result = world
        .exec
        .handle(&world.invocation(Step::SetSecret, &token))
        .await;
    assert!(result.as_ref().is_err_and(ExecError::is_retryable), "{result:?}");
    let e = target_error(result);
    assert_eq!(e.kind, TargetErrorKind::Retryable);
    assert!(e.message.contains("could not be reached"), "{e}");
    assert!(!e.message.contains(&k1) && !e.message.contains(ADMIN), "{e}");
}

#[tokio::test]
async fn a_tag_naming_a_host_that_is_not_allowed_fails_before_any_request() {
    let (b, url) = start_service_b().await;
    let elsewhere = closed_port_url().await;
    // Allowed: service B's host:port; the tag names another port.
    let world = World::new(
        b.clone(),
        &url,
        Some(&elsewhere),
        target(&vars_for(&url, ADMIN)),
        "placeholder",
    );
    let token = version_id(1);
    world.begin(&token);
    world.engine_twice(Step::CreateSecret, &token).await;
    let e = target_error(
        world
            .exec
            .handle(&world.invocation(Step::SetSecret, &token))
            .await,
    );
    assert_eq!(e.kind, TargetErrorKind::Configuration);
    assert!(
        e.message.contains(SERVICE_URL_TAG) && e.message.contains("not allowed"),
        "{e}"
    );
    assert_eq!(b.changes(), 0);
}

#[tokio::test]
async fn a_secret_without_the_tag_and_no_default_url_is_a_configuration_error() {
    let (b, url) = start_service_b().await;
    let world = World::new(
        b.clone(),
        &url,
        None,
        target(&vars_for(&url, ADMIN)),
        "placeholder",
    );
    let token = version_id(1);
    world.begin(&token);
    world.engine_twice(Step::CreateSecret, &token).await;
    let e = target_error(
        world
            .exec
            .handle(&world.invocation(Step::SetSecret, &token))
            .await,
    );
    assert_eq!(e.kind, TargetErrorKind::Configuration);
    assert!(
        e.message.contains("example/service-b-key"),
        "names the secret: {e}"
    );
    assert!(
        e.message.contains(SERVICE_URL_TAG) && e.message.contains(SERVICE_URL_VAR),
        "{e}"
    );
    assert_eq!(b.changes(), 0);
}

#[tokio::test]
async fn test_secret_fails_for_a_key_service_b_does_not_accept() {
    // testSecret before any setSecret (the engine never does this; a hand-made event
    // may): the key does not work, the step fails and nothing moves.
    let (b, url) = start_service_b().await;
    let world = World::new(
        b.clone(),
        &url,
        Some(&url),
        target(&vars_for(&url, ADMIN)),
        "placeholder",
    );
    let token = version_id(1);
    world.begin(&token);
    world.engine_twice(Step::CreateSecret, &token).await;
    let before = world.fingerprint();
    let e = target_error(
        world
            .exec
            .handle(&world.invocation(Step::TestSecret, &token))
            .await,
    );
    assert_eq!(e.kind, TargetErrorKind::Retryable, "{e}");
    assert!(
        e.message.contains("GET /whoami") && e.message.contains("HTTP 401"),
        "{e}"
    );
    assert_eq!(before, world.fingerprint(), "testSecret has no side effect");
}

#[tokio::test]
async fn set_refuses_a_pending_value_that_is_not_one_of_its_keys() {
    // A value written by hand as AWSPENDING is not registered as a credential.
    let (b, url) = start_service_b().await;
    let world = World::new(
        b.clone(),
        &url,
        Some(&url),
        target(&vars_for(&url, ADMIN)),
        "placeholder",
    );
    let token = version_id(1);
    world.begin(&token);
    world
        .sm
        .put_secret_value(
            &world.secret,
            &token,
            SecretValue::new("hunter2-by-hand"),
            &[AWSPENDING],
        )
        .expect("an operator's write");
    let e = target_error(
        world
            .exec
            .handle(&world.invocation(Step::SetSecret, &token))
            .await,
    );
    assert_eq!(e.kind, TargetErrorKind::Refused, "{e}");
    assert!(!e.message.contains("hunter2"), "{e}");
    assert_eq!(b.changes(), 0);
    let state = world.state();
    assert!(state.has(&version_id(0), AWSCURRENT));
}

#[tokio::test]
async fn an_https_url_is_spoken_to_in_tls_only() {
    // Service B here speaks plain HTTP; an https:// URL naming it must fail the TLS
    // handshake (rustls on aws-lc-rs), never fall back to plain text with the admin token.
    let (b, url) = start_service_b().await;
    let https = url.replace("http://", "https://");
    let world = World::new(
        b.clone(),
        &url,
        Some(&https),
        target(&vars_for(&url, ADMIN)),
        "placeholder",
    );
    let key = ApiKey::generate().expect("random");
    let tags = world.state().tags;
    let ctx = TargetContext {
        secret: &world.secret,
        tags: &tags,
    };
    let e = world
        .exec
        .target
        .set(&ctx, &version_id(1), &SecretValue::new(key.expose()))
        .await
        .expect_err("no TLS at service B");
    assert_eq!(e.kind, TargetErrorKind::Retryable, "{e}");
    assert!(e.message.contains("could not be reached"), "{e}");
    assert!(
        !e.message.contains(key.expose()) && !e.message.contains(ADMIN),
        "{e}"
    );
    assert_eq!(b.changes(), 0, "nothing reached service B's admin API");
}
