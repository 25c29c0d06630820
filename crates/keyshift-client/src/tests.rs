//! The cache driven by hand: a fake source that answers at once and counts its calls,
//! and a clock that is a number.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use keyshift::secret::{AWSCURRENT, AWSPENDING, AWSPREVIOUS, ROTATING};
use keyshift::{SecretValue, Timestamp, VersionId};

use crate::source::{LabelMap, Source, SourceError, SourceErrorKind};
use crate::{Config, Health, LookupError, WindowCache};

/// Polls a future that must complete at once (the fake source never waits).
fn block<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the fake source never waits"),
    }
}

fn vid(n: u32) -> VersionId {
    VersionId::new(format!("{n:08x}-0000-4000-8000-000000000000"))
}

fn at(secs: f64) -> Timestamp {
    Timestamp::from_millis(1_800_000_000_000 + (secs * 1000.0) as i64)
}

const SECRET: &str = "super-secret-material";

fn value_of(n: u32) -> String {
    format!("{SECRET}-{n}")
}

#[derive(Default)]
struct State {
    labels: LabelMap,
    values: HashMap<VersionId, String>,
    fail_describes: u32,
    fail_values: bool,
    describes: u32,
    value_calls: HashMap<VersionId, u32>,
}

/// A secret in memory. `put(n, stages)` adds or relabels version `n`.
#[derive(Default)]
struct Fake(Mutex<State>);

impl Fake {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }

    fn put(&self, n: u32, stages: &[&str]) {
        let mut s = self.state();
        s.labels.insert(vid(n), stages.iter().copied());
        s.values.insert(vid(n), value_of(n));
    }

    /// The engine's placeholder: labelled, no value.
    fn placeholder(&self, n: u32, stages: &[&str]) {
        self.state().labels.insert(vid(n), stages.iter().copied());
    }

    fn relabel(&self, n: u32, stages: &[&str]) {
        self.state().labels.insert(vid(n), stages.iter().copied());
    }

    fn unlabel(&self, n: u32) {
        let mut s = self.state();
        let labels: LabelMap = s
            .labels
            .iter()
            .filter(|(id, _)| **id != vid(n))
            .map(|(id, st)| (id.clone(), st.iter().cloned()))
            .collect();
        s.labels = labels;
    }

    fn fetches(&self, n: u32) -> u32 {
        self.state().value_calls.get(&vid(n)).copied().unwrap_or(0)
    }

    fn describes(&self) -> u32 {
        self.state().describes
    }
}

impl Source for Fake {
    async fn describe(&self) -> Result<LabelMap, SourceError> {
        let mut s = self.state();
        s.describes += 1;
        if s.fail_describes > 0 {
            s.fail_describes -= 1;
            return Err(SourceError::new(
                SourceErrorKind::Transient,
                "DescribeSecret: 503",
            ));
        }
        Ok(s.labels.clone())
    }

    async fn value(&self, version: &VersionId) -> Result<Option<SecretValue>, SourceError> {
        let mut s = self.state();
        *s.value_calls.entry(version.clone()).or_default() += 1;
        if s.fail_values {
            return Err(SourceError::new(
                SourceErrorKind::Throttled,
                "GetSecretValue: throttled",
            ));
        }
        Ok(s.values.get(version).map(SecretValue::new))
    }
}

fn config() -> Config {
    Config::builder(Duration::from_secs(60))
        .refresh(Duration::from_secs(20), Duration::from_secs(40))
        .max_staleness(Duration::from_secs(300))
        .build()
        .unwrap()
}

fn ids(cache: &WindowCache) -> Vec<VersionId> {
    cache.accepted().unwrap().iter().map(|v| v.id().clone()).collect()
}

#[test]
fn new_versions_are_fetched_once_and_known_ones_never_again() {
    let src = Fake::default();
    src.put(1, &[AWSCURRENT]);
    let cache = WindowCache::new(config(), 1);
    assert_eq!(cache.current().unwrap_err(), LookupError::NotReady);
    assert!(cache.refresh_due(at(0.0)));
    block(cache.refresh(&src, at(0.0))).unwrap();
    assert_eq!(cache.current().unwrap().value().expose(), value_of(1));

    // A whole rotation, one refresh per phase: each version's value is read once.
    block(cache.refresh(&src, at(30.0))).unwrap();
    src.placeholder(2, &[AWSPENDING]);
    block(cache.refresh(&src, at(60.0))).unwrap();
    assert_eq!(ids(&cache), vec![vid(1)], "a placeholder is not accepted");
    src.put(2, &[AWSPENDING]);
    block(cache.refresh(&src, at(90.0))).unwrap();
    assert_eq!(ids(&cache), vec![vid(1), vid(2)]);
    assert_eq!(
        cache.current().unwrap().id(),
        &vid(1),
        "pending is accepted, not used"
    );
    src.relabel(1, &[AWSPREVIOUS, ROTATING]);
    src.relabel(2, &[AWSCURRENT]);
    block(cache.refresh(&src, at(120.0))).unwrap();
    assert_eq!(ids(&cache), vec![vid(2), vid(1)], "current first");
    assert_eq!(cache.current().unwrap().value().expose(), value_of(2));
    src.relabel(1, &[AWSPREVIOUS]);
    block(cache.refresh(&src, at(150.0))).unwrap();
    assert_eq!(ids(&cache), vec![vid(2)]);
    for t in [180.0, 210.0, 240.0] {
        block(cache.refresh(&src, at(t))).unwrap();
    }

    assert_eq!(src.fetches(1), 1, "K1 read once");
    assert_eq!(
        src.fetches(2),
        2,
        "K2: once as a placeholder (no value), once with its value"
    );
    let stats = cache.stats();
    assert_eq!(stats.describe_calls, 9);
    assert_eq!(stats.value_calls, 3);
    assert_eq!(stats.refreshes, 9);
    // K1 left the window: still readable by id, not accepted, and not fetched again.
    assert_eq!(
        cache.version(vid(1).as_str()).unwrap().value().expose(),
        value_of(1)
    );
    assert_eq!(
        cache.accepted_version(vid(1).as_str()).unwrap_err(),
        LookupError::NotAccepted(vid(1))
    );
    assert_eq!(src.fetches(1), 1);
}

#[test]
fn a_version_coming_back_into_the_window_is_not_fetched_again() {
    let src = Fake::default();
    src.put(1, &[AWSCURRENT]);
    src.put(2, &[AWSPENDING]);
    let cache = WindowCache::new(config(), 1);
    block(cache.refresh(&src, at(0.0))).unwrap();
    src.unlabel(2);
    block(cache.refresh(&src, at(30.0))).unwrap();
    assert_eq!(ids(&cache), vec![vid(1)]);
    src.relabel(2, &[AWSPENDING]);
    block(cache.refresh(&src, at(60.0))).unwrap();
    assert_eq!(ids(&cache), vec![vid(1), vid(2)]);
    assert_eq!(src.fetches(2), 1);
    assert_eq!(
        cache.view().unwrap().past_len(),
        0,
        "a window version is not also a past one"
    );
}

#[test]
fn every_refresh_interval_is_inside_the_jitter_range_and_below_t() {
    let config = config();
    assert!(config.refresh_max() + config.read_lag() < config.gap());
    let src = Fake::default();
    src.put(1, &[AWSCURRENT]);
    let mut schedules = Vec::new();
    for seed in [1, 2] {
        let cache = WindowCache::new(config.clone(), seed);
        let mut now = at(0.0);
        let mut intervals = Vec::new();
        for _ in 0..500 {
            assert!(cache.refresh_due(now));
            block(cache.refresh(&src, now)).unwrap();
            let next = cache.next_wake();
            let interval = next.since(now);
            assert!(
                (config.refresh_min()..=config.refresh_max()).contains(&interval),
                "{interval:?} outside [{:?}, {:?}]",
                config.refresh_min(),
                config.refresh_max()
            );
            assert!(!cache.refresh_due(next.minus(Duration::from_millis(1))));
            intervals.push(interval);
            now = next;
        }
        let spread =
            intervals.iter().max().unwrap().as_secs_f64() - intervals.iter().min().unwrap().as_secs_f64();
        assert!(spread > 15.0, "jitter covers the range: spread {spread}");
        schedules.push(intervals);
    }
    assert_ne!(schedules[0], schedules[1], "seeds spread a fleet out");
    let again = WindowCache::new(config, 1);
    block(again.refresh(&src, at(0.0))).unwrap();
    assert_eq!(
        again.next_wake().since(at(0.0)),
        schedules[0][0],
        "a seed replays"
    );
}

#[test]
fn a_failing_refresh_serves_the_last_view_until_max_staleness_then_fails_loudly() {
    let src = Fake::default();
    src.put(1, &[AWSCURRENT]);
    let config = config();
    let max = config.max_staleness();
    let cache = WindowCache::new(config, 3);
    block(cache.refresh(&src, at(0.0))).unwrap();
    src.state().fail_describes = u32::MAX;

    // Drive it as a refresher would: wake, expire, refresh if due.
    let mut now = cache.next_wake();
    let mut retries = Vec::new();
    while now < at(0.0).plus(max) {
        cache.handle_timeout(now);
        assert_eq!(
            cache.current().unwrap().value().expose(),
            value_of(1),
            "stale but served at {now}"
        );
        if cache.refresh_due(now) {
            let e = block(cache.refresh(&src, now)).unwrap_err();
            assert_eq!(e.kind(), SourceErrorKind::Transient);
            retries.push(cache.next_wake().since(now));
        }
        now = cache.next_wake();
    }
    let view = cache.view().unwrap();
    assert!(matches!(
        view.health(),
        Health::Stale {
            error: SourceErrorKind::Transient,
            ..
        }
    ));
    assert_eq!(view.valid_until(), at(0.0).plus(max));
    drop(view);
    // Retries back off from 1 s, doubling, jittered to [d/2, d], capped at the shortest interval.
    assert!(retries[0] <= Duration::from_secs(1), "{retries:?}");
    assert!(
        retries.iter().all(|r| *r <= Duration::from_secs(20)),
        "{retries:?}"
    );
    assert!(retries.len() > 5, "{retries:?}");

    // The limit: the next wake-up is exactly the expiry.
    assert_eq!(now, at(0.0).plus(max));
    cache.handle_timeout(now.minus(Duration::from_millis(1)));
    assert!(cache.current().is_ok(), "served up to the limit");
    cache.handle_timeout(now);
    for err in [
        cache.current().unwrap_err(),
        cache.accepted().unwrap_err(),
        cache.version(vid(1).as_str()).unwrap_err(),
        cache.jwks().unwrap_err(),
    ] {
        match err {
            LookupError::Expired {
                read_at,
                failing_since,
                error,
                max_staleness,
            } => {
                assert_eq!(read_at, at(0.0));
                assert!(failing_since.is_some());
                assert_eq!(error, Some(SourceErrorKind::Transient));
                assert_eq!(max_staleness, max);
            }
            other => panic!("expected Expired, got {other:?}"),
        }
    }
    assert!(!cache.current().unwrap_err().to_string().contains(SECRET));

    // Recovery: one good refresh and it serves fresh data again.
    src.state().fail_describes = 0;
    src.put(2, &[AWSCURRENT]);
    src.relabel(1, &[AWSPREVIOUS]);
    block(cache.refresh(&src, now)).unwrap();
    assert_eq!(cache.current().unwrap().id(), &vid(2));
    assert_eq!(cache.view().unwrap().health(), Health::Fresh);
}

#[test]
fn a_cache_nobody_drives_expires_too() {
    let src = Fake::default();
    src.put(1, &[AWSCURRENT]);
    let cache = WindowCache::new(config(), 3);
    block(cache.refresh(&src, at(0.0))).unwrap();
    cache.handle_timeout(at(0.0).plus(config().max_staleness()));
    assert!(matches!(
        cache.current(),
        Err(LookupError::Expired {
            failing_since: None,
            ..
        })
    ));
}

#[test]
fn a_failing_value_fetch_or_a_current_without_value_keeps_the_last_view() {
    let src = Fake::default();
    src.put(1, &[AWSCURRENT]);
    let cache = WindowCache::new(config(), 3);
    block(cache.refresh(&src, at(0.0))).unwrap();
    src.put(2, &[AWSPENDING]);
    src.state().fail_values = true;
    assert!(block(cache.refresh(&src, at(30.0))).is_err());
    assert_eq!(ids(&cache), vec![vid(1)]);
    src.state().fail_values = false;
    src.placeholder(3, &[AWSCURRENT]);
    src.relabel(1, &[AWSPREVIOUS]);
    let e = block(cache.refresh(&src, at(31.0))).unwrap_err();
    assert_eq!(e.kind(), SourceErrorKind::Inconsistent);
    assert_eq!(
        cache.current().unwrap().id(),
        &vid(1),
        "never a current without a value"
    );
}

#[test]
fn misses_within_the_interval_start_one_refresh() {
    let src = Fake::default();
    src.put(1, &[AWSCURRENT]);
    let config = config();
    let cache = WindowCache::new(config.clone(), 5);
    block(cache.refresh(&src, at(0.0))).unwrap();
    let interval = config.miss_interval();
    let t0 = at(5.0);
    assert!(!cache.refresh_due(t0));

    // Synchronous lookups only request: N misses, one refresh.
    for n in 10..20 {
        assert_eq!(
            cache.version(vid(n).as_str()).unwrap_err(),
            LookupError::UnknownVersion
        );
    }
    assert!(cache.refresh_due(t0));
    assert!(block(cache.refresh_if_due(&src, t0)).unwrap());
    assert_eq!(cache.stats().miss_refreshes, 1);
    assert_eq!(
        cache.accepted_version(vid(99).as_str()).unwrap_err(),
        LookupError::UnknownVersion
    );
    let within = t0.plus(interval).minus(Duration::from_millis(1));
    assert!(!cache.refresh_due(within), "rate limited");
    assert_eq!(
        cache.next_wake(),
        t0.plus(interval),
        "the queued miss wakes the driver"
    );
    assert!(cache.refresh_due(t0.plus(interval)));
    block(cache.refresh_if_due(&src, t0.plus(interval))).unwrap();

    // Async lookups through the source: N misses within the interval, one DescribeSecret.
    let t1 = at(10.0);
    let before = src.describes();
    for i in 0..20 {
        let now = t1.plus(interval.mul_f64(f64::from(i) / 20.0));
        let r = block(cache.fetch_accepted(&src, vid(500 + i).as_str(), now));
        assert_eq!(r.unwrap_err(), LookupError::UnknownVersion);
    }
    assert_eq!(
        src.describes() - before,
        1,
        "20 misses within the interval: one refresh"
    );

    // An emergency rotation: the new current's kid heals in one round trip.
    src.put(7, &[AWSCURRENT]);
    src.relabel(1, &[AWSPREVIOUS]);
    let t2 = at(20.0);
    let before = src.describes();
    let v = block(cache.fetch_accepted(&src, vid(7).as_str(), t2)).unwrap();
    assert_eq!(v.value().expose(), value_of(7));
    assert_eq!(src.describes() - before, 1);
    assert_eq!(cache.current().unwrap().id(), &vid(7));
    // A known id costs nothing; a malformed one never reaches the source.
    let before = (src.describes(), cache.stats());
    block(cache.fetch_accepted(&src, vid(7).as_str(), at(30.0))).unwrap();
    assert_eq!(
        block(cache.fetch_version(&src, "not a version id", at(40.0))).unwrap_err(),
        LookupError::InvalidVersionId
    );
    assert_eq!(
        cache.version(&"x".repeat(65)).unwrap_err(),
        LookupError::InvalidVersionId
    );
    assert_eq!((src.describes(), cache.stats()), before);
    assert!(!cache.refresh_due(at(30.0)));
}

#[test]
fn the_past_version_cache_stays_bounded_and_window_versions_are_always_served() {
    let bound = 3;
    let config = Config::builder(Duration::from_secs(60))
        .refresh(Duration::from_secs(20), Duration::from_secs(40))
        .past_versions(NonZeroUsize::new(bound).unwrap())
        .build()
        .unwrap();
    let src = Fake::default();
    for n in 1..=20 {
        src.put(n, &[]); // deprecated versions, still readable by id
    }
    src.put(100, &[AWSCURRENT]);
    src.put(101, &[AWSPENDING]);
    src.put(102, &[ROTATING]);
    let cache = WindowCache::new(config, 9);
    block(cache.refresh(&src, at(0.0))).unwrap();
    let mut now = at(1.0);
    for n in 1..=20 {
        let v = block(cache.fetch_version(&src, vid(n).as_str(), now)).unwrap();
        assert_eq!(v.value().expose(), value_of(n));
        assert!(
            cache.view().unwrap().past_len() <= bound,
            "bound exceeded after {n}"
        );
        // Keep version 1 in use: least recently used goes first, not oldest.
        cache.version(vid(1).as_str()).unwrap();
        for w in [100, 101, 102] {
            assert!(
                cache.version(vid(w).as_str()).is_ok(),
                "window version {w} evicted"
            );
        }
        now = now.plus(Duration::from_secs(2));
    }
    assert_eq!(cache.view().unwrap().past_len(), bound);
    assert!(
        cache.version(vid(1).as_str()).is_ok(),
        "the recently used one survived"
    );
    assert!(
        cache.version(vid(2).as_str()).is_err(),
        "an unused old one was evicted"
    );
    assert_eq!(src.fetches(1), 1);
    assert_eq!(ids(&cache), vec![vid(100), vid(101), vid(102)]);
}

fn ed25519(n: u32) -> String {
    format!(
        r#"{{"kty":"OKP","crv":"Ed25519","d":"{SECRET}-d-{n}","x":"public-x-{n}","kid":"ignored","key_ops":["sign"]}}"#
    )
}

#[test]
fn jwks_publishes_the_accepted_public_keys_under_their_version_ids() {
    let src = Fake::default();
    let jwk = |n: u32, v: String, stages: &[&str]| {
        let mut s = src.state();
        s.labels.insert(vid(n), stages.iter().copied());
        s.values.insert(vid(n), v);
    };
    jwk(1, ed25519(1), &[AWSPREVIOUS, ROTATING]);
    jwk(2, ed25519(2), &[AWSCURRENT]);
    jwk(
        3,
        format!(
            r#"{{"kty":"RSA","n":"modulus","e":"AQAB","d":"{SECRET}","p":"{SECRET}","q":"{SECRET}","dp":"{SECRET}","dq":"{SECRET}","qi":"{SECRET}","oth":[{{"r":"{SECRET}"}}],"alg":"PS256"}}"#
        ),
        &[AWSPENDING],
    );
    jwk(4, ed25519(4), &[]); // past: never published
    let cache = WindowCache::new(config(), 1);
    block(cache.refresh(&src, at(0.0))).unwrap();
    let jwks = cache.jwks().unwrap();
    assert!(!jwks.as_str().contains(SECRET), "{}", jwks.as_str());
    let kids: Vec<&str> = jwks.kids().collect();
    assert_eq!(kids, vec![vid(2).as_str(), vid(3).as_str(), vid(1).as_str()]);
    let keys = jwks.as_json()["keys"].as_array().unwrap();
    assert_eq!(
        keys[0],
        serde_json::json!({"kty":"OKP","crv":"Ed25519","x":"public-x-2","kid":vid(2).as_str(),"use":"sig","alg":"EdDSA"})
    );
    assert_eq!(
        keys[1],
        serde_json::json!({"kty":"RSA","n":"modulus","e":"AQAB","alg":"PS256","kid":vid(3).as_str(),"use":"sig"})
    );
    // A past version the cache knows (fetched by id) is still not published.
    let past = block(cache.fetch_version(&src, vid(4).as_str(), at(10.0))).unwrap();
    assert_eq!(past.id(), &vid(4));
    let jwks = cache.jwks().unwrap();
    assert_eq!(jwks.kids().count(), 3, "{}", jwks.as_str());
    let reparsed: serde_json::Value = serde_json::from_str(jwks.as_str()).unwrap();
    assert_eq!(&reparsed, jwks.as_json());
    assert!(
        std::sync::Arc::ptr_eq(&jwks, &cache.jwks().unwrap()),
        "built once per view"
    );

    // A symmetric key has no public part: refused, without echoing it.
    src.relabel(3, &[]);
    jwk(5, format!(r#"{{"kty":"oct","k":"{SECRET}"}}"#), &[AWSPENDING]);
    block(cache.refresh(&src, at(30.0))).unwrap();
    let e = cache.jwks().unwrap_err();
    assert!(
        matches!(&e, LookupError::Jwk { version, problem: crate::JwkProblem::Symmetric } if *version == vid(5))
    );
    assert!(!e.to_string().contains(SECRET));
    jwk(5, format!("not json {SECRET}"), &[AWSPENDING]);
    let cache = WindowCache::new(config(), 1);
    block(cache.refresh(&src, at(0.0))).unwrap();
    let e = cache.jwks().unwrap_err();
    assert!(matches!(
        &e,
        LookupError::Jwk {
            problem: crate::JwkProblem::NotJsonObject,
            ..
        }
    ));
    assert!(!e.to_string().contains(SECRET));
}

#[test]
fn public_jwk_checks_key_types() {
    use crate::JwkProblem;
    use crate::jwks::public_jwk;
    let k = |s: &str| public_jwk(&vid(1), &SecretValue::new(s));
    assert_eq!(
        k(r#"{"kty":"OKP","crv":"X25519","x":"a","d":"b"}"#),
        Err(JwkProblem::NotForSigning)
    );
    assert_eq!(
        k(r#"{"kty":"OKP","crv":"Ed25519","d":"b"}"#),
        Err(JwkProblem::MissingPublicMember("x"))
    );
    assert_eq!(
        k(r#"{"kty":"EC","crv":"P-256","x":"a","d":"b"}"#),
        Err(JwkProblem::MissingPublicMember("y"))
    );
    assert_eq!(
        k(r#"{"kty":"RSA","n":"a","e":"b","use":"enc"}"#),
        Err(JwkProblem::NotForSigning)
    );
    assert_eq!(k(r#"{"kty":"foo"}"#), Err(JwkProblem::UnsupportedKeyType));
    assert_eq!(k(r#"["kty"]"#), Err(JwkProblem::NotJsonObject));
    let ec = k(r#"{"kty":"EC","crv":"P-384","x":"a","y":"b","d":"c"}"#).unwrap();
    assert_eq!(ec["alg"], "ES384");
    assert!(ec.get("d").is_none());
}

#[test]
fn reads_take_no_lock_and_make_no_call() {
    let src = Fake::default();
    src.put(1, &[AWSCURRENT]);
    src.put(2, &[AWSPENDING]);
    let cache = WindowCache::new(config(), 1);
    block(cache.refresh(&src, at(0.0))).unwrap();
    let before = (src.describes(), src.fetches(1), src.fetches(2), cache.stats());
    // Hold the core's lock on one thread and read on another: the reads must finish
    // while the lock is held.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (finished_tx, finished_rx) = std::sync::mpsc::channel();
    let finished = std::thread::scope(|s| {
        let held = cache.clone();
        s.spawn(move || {
            let _core = held.core_for_tests();
            locked_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(Duration::from_secs(30));
        });
        locked_rx.recv().unwrap();
        let reader = cache.clone();
        s.spawn(move || {
            for _ in 0..1000 {
                assert_eq!(reader.current().unwrap().id(), &vid(1));
                assert_eq!(reader.accepted().unwrap().len(), 2);
                assert!(reader.accepted_version(vid(2).as_str()).is_ok());
                assert!(reader.version(vid(1).as_str()).is_ok());
                assert!(reader.jwks().is_err(), "values are not JWKs");
                assert!(reader.view().unwrap().accepted_version(vid(2).as_str()).is_some());
            }
            finished_tx.send(()).unwrap();
        });
        let finished = finished_rx.recv_timeout(Duration::from_secs(5));
        release_tx.send(()).unwrap();
        finished
    });
    assert!(finished.is_ok(), "a read waited for the core's lock");
    assert_eq!(
        before,
        (src.describes(), src.fetches(1), src.fetches(2), cache.stats())
    );
}

#[test]
fn values_never_show_in_debug_output() {
    let src = Fake::default();
    src.put(1, &[AWSCURRENT]);
    let cache = WindowCache::new(config(), 1);
    block(cache.refresh(&src, at(0.0))).unwrap();
    let shown = format!(
        "{cache:?} {:?} {:?} {:?}",
        cache.current().unwrap(),
        cache.view().unwrap(),
        cache.accepted().unwrap()
    );
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains(vid(1).as_str()), "ids are not secret: {shown}");
}

/// A source whose `describe` waits until released, to hold a refresh in flight.
struct Gated {
    inner: Fake,
    gate: tokio::sync::Semaphore,
}

impl Source for Gated {
    async fn describe(&self) -> Result<LabelMap, SourceError> {
        let _permit = self
            .gate
            .acquire()
            .await
            .map_err(|_| SourceError::new(SourceErrorKind::Other, "closed"))?;
        self.inner.describe().await
    }

    async fn value(&self, version: &VersionId) -> Result<Option<SecretValue>, SourceError> {
        self.inner.value(version).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_join_the_refresh_in_flight() {
    let src = std::sync::Arc::new(Gated {
        inner: Fake::default(),
        gate: tokio::sync::Semaphore::new(1),
    });
    src.inner.put(1, &[AWSCURRENT]);
    let cache = WindowCache::new(config(), 1);
    cache.refresh(&*src, at(0.0)).await.unwrap();
    // Hold the next describe at the gate, then let 16 lookups of a new kid pile up.
    let held = src.gate.acquire().await.unwrap();
    src.inner.put(2, &[AWSPENDING]);
    let lookups: Vec<_> = (0..16)
        .map(|i| {
            let (cache, src) = (cache.clone(), std::sync::Arc::clone(&src));
            tokio::spawn(async move {
                let now = at(10.0).plus(Duration::from_millis(i * 10));
                cache.fetch_accepted(&*src, vid(2).as_str(), now).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        cache.stats().describe_calls,
        2,
        "one refresh started, the others wait for it"
    );
    drop(held);
    for l in lookups {
        assert_eq!(
            l.await.unwrap().unwrap().id(),
            &vid(2),
            "every waiter is served by it"
        );
    }
    assert_eq!(cache.stats().describe_calls, 2);
    assert_eq!(src.inner.describes(), 2);
    assert_eq!(src.inner.fetches(2), 1);
}

#[test]
fn a_miss_whose_refresh_read_lags_the_new_version_heals_on_the_next_miss() {
    // An emergency cut over to version 7. A verifier misses its kid and refreshes, but
    // that DescribeSecret lags the cut (it does not list 7 yet) while GetSecretValue by id
    // finds it: the version is known by id, not as accepted. The next miss, once the miss
    // interval allows, must refresh again rather than answer "not accepted" until the
    // scheduled refresh.
    let src = Fake::default();
    src.put(1, &[AWSCURRENT]);
    let config = config();
    let cache = WindowCache::new(config.clone(), 3);
    block(cache.refresh(&src, at(0.0))).unwrap();
    src.state().values.insert(vid(7), value_of(7));
    let t1 = at(10.0);
    assert!(block(cache.fetch_accepted(&src, vid(7).as_str(), t1)).is_err());
    // The read catches up.
    src.relabel(7, &[AWSCURRENT]);
    src.relabel(1, &[AWSPREVIOUS]);
    let t2 = t1.plus(config.miss_interval());
    let v = block(cache.fetch_accepted(&src, vid(7).as_str(), t2))
        .expect("the second miss refreshes and finds the new version accepted");
    assert_eq!(v.value().expose(), value_of(7));
    assert_eq!(cache.current().unwrap().id(), &vid(7));
    // The version that was current before is retired: a definite "not accepted", with
    // no call.
    let before = src.describes();
    assert_eq!(
        block(cache.fetch_accepted(&src, vid(1).as_str(), t2.plus(Duration::from_secs(5)))).unwrap_err(),
        LookupError::NotAccepted(vid(1))
    );
    assert_eq!(src.describes(), before);
}

#[test]
fn a_version_that_left_the_window_and_came_back_as_current_heals_on_a_miss() {
    // An emergency's new version 7 was accepted (AWSPENDING), lost the label (an engine
    // strip) and then became AWSCURRENT at the cut. A verifier whose view still shows it
    // out of the window must find it on a miss, not answer "not accepted" until its
    // scheduled refresh.
    let src = Fake::default();
    src.put(1, &[AWSCURRENT]);
    src.put(7, &[AWSPENDING]);
    let config = config();
    let cache = WindowCache::new(config.clone(), 4);
    block(cache.refresh(&src, at(0.0))).unwrap();
    src.unlabel(7);
    block(cache.refresh(&src, at(30.0))).unwrap();
    // Not accepted now, but not retired either (it was never current): a miss.
    assert_eq!(
        cache.accepted_version(vid(7).as_str()).unwrap_err(),
        LookupError::UnknownVersion
    );
    src.relabel(7, &[AWSCURRENT]);
    src.relabel(1, &[AWSPREVIOUS]);
    let v = block(cache.fetch_accepted(&src, vid(7).as_str(), at(31.0)))
        .expect("the miss refreshes and finds the new current version");
    assert_eq!(v.id(), &vid(7));
    assert_eq!(src.fetches(7), 1, "a known value is not fetched again");
}
