//! One secret of every kind, rotated at once through the real runtime path (moto's
//! server, the release binary under `cargo lambda watch`), each with a fleet of
//! keyshift-client instances that really use what it holds between refreshes:
//!
//! | kind | a producer... | a consumer... |
//! |---|---|---|
//! | signing key pairs | signs a JWT (jsonwebtoken) with its AWSCURRENT key, `kid` = version id | verifies it with the key under that `kid` in its own JWKS, checking `exp`, `aud` and `iss` |
//! | `symmetric` | seals with AES-256-GCM under its AWSCURRENT key, the `kid` bound into the AAD | opens it with the accepted version named by the `kid` |
//! | `password` | presents its AWSCURRENT value | accepts it if one of its accepted versions holds it |
//! | `json` | presents the generated `password` field | as `password`; and every other field must carry over unchanged |
//!
//! A consumer looks only at its own published view (no refresh on a miss), so a failure
//! counts whenever the fleet would have failed under the consumer contract.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_sdk_secretsmanager::types::{RotationRulesType, Tag};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keyshift::secret::{AWSCURRENT, AWSPENDING, ROTATING};
use keyshift_client::{Client, Config, SdkSource};
use keyshift_keys::KeyKind;
use rand::Rng;
use serde_json::{Value, json};

use crate::calls::Origin;
use crate::local::{
    FUNCTION_ARN, GROUP, Gap, Invoker, SCHEDULER_ROLE_ARN, Samples, SchedulerDriver, Timeline, continued,
    gaps, holder, labels, monitor_labels, short, show, uuid_v4,
};
use crate::moto::{Moto, emulator_env};
use crate::proxy::CountingProxy;
use crate::watch::Watch;

/// Every kind the stock function makes, as its tag spells it.
pub const ALL_KINDS: [&str; 9] = [
    "password",
    "symmetric",
    "ed25519",
    "ecdsa-p256",
    "ecdsa-p384",
    "rsa-2048",
    "rsa-3072",
    "rsa-4096",
    "json",
];

/// The fields of the `json` secret that carry over (AWS's database secret shape).
const CARRIED: [&str; 5] = ["engine", "host", "port", "username", "dbname"];

/// What to run.
#[derive(Debug, Clone)]
pub struct KindsOptions {
    /// The kinds, one secret each.
    pub kinds: Vec<String>,
    /// T, in seconds.
    pub gap_secs: u64,
    /// The inline budget, in seconds.
    pub budget_secs: u64,
    /// keyshift-client instances per secret.
    pub consumers: usize,
    /// Rotations of each secret, one after the other.
    pub rotations: usize,
    /// Where the function's output goes.
    pub log: std::path::PathBuf,
}

/// What one secret's rotations showed.
#[derive(Debug, Clone, Default)]
pub struct KindResult {
    /// The kind.
    pub kind: String,
    /// The secret's name.
    pub secret: String,
    /// Rotations that reached the clean end state.
    pub converged: usize,
    /// Real operations (sign + verify, seal + open, present + accept).
    pub operations: u64,
    /// Of which failed.
    pub failed: u64,
    /// The gaps measured on the label samples.
    pub gaps: Vec<Gap>,
    /// Distinct key ids (version ids) producers used.
    pub kids_used: usize,
    /// `json` only: whether every carried field kept its value in every version.
    pub carried_over: Option<bool>,
    /// `password`/`json`: whether the generated value obeys the secret's password tags.
    pub password_options_held: Option<bool>,
}

/// What a run showed.
#[derive(Debug, Clone, Default)]
pub struct KindsSummary {
    /// Per kind, in the order asked.
    pub kinds: Vec<KindResult>,
    /// Secrets whose tags are hostile or wrong, each refused by createSecret: (the tag
    /// set, the function's error), with nothing written.
    pub refused: Vec<(String, String)>,
    /// Strings from every value any secret had that must never reach a log line (private
    /// key members, PEM lines, symmetric keys, passwords).
    pub secrets: Vec<String>,
}

/// The value a secret of `kind` starts with, and its tags.
fn initial(kind: &str) -> Result<(String, Vec<(String, String)>), String> {
    let mut tags = vec![("keyshift:kind".to_owned(), kind.to_owned())];
    let random: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    let value = match kind {
        "password" => {
            tags.push(("keyshift:password-length".into(), "40".into()));
            tags.push(("keyshift:exclude-characters".into(), "0O1lI".into()));
            random
        }
        "json" => {
            tags.push(("keyshift:fields".into(), "password=password".into()));
            tags.push(("keyshift:password-length".into(), "32".into()));
            json!({
                "engine": "postgres", "host": "db.internal.example", "port": 5432,
                "username": "app", "dbname": "orders", "password": random,
            })
            .to_string()
        }
        other => {
            let key = KeyKind::parse(other).ok_or_else(|| format!("unknown kind {other}"))?;
            keyshift_keys::generate(key).map_err(|e| e.to_string())?
        }
    };
    Ok((value, tags))
}

/// Strings of `value` that are secret (for the log check).
fn secret_parts(value: &str) -> Vec<String> {
    let Ok(parsed) = serde_json::from_str::<Value>(value) else {
        return vec![value.to_owned()];
    };
    let mut out = Vec::new();
    for m in ["d", "p", "q", "dp", "dq", "qi"] {
        if let Some(s) = parsed["private_jwk"][m].as_str() {
            out.push(s.to_owned());
        }
    }
    if let Some(pem) = parsed["private_key_pem"].as_str() {
        out.extend(pem.lines().filter(|l| !l.starts_with("-----")).map(str::to_owned));
    }
    for m in ["k", "password"] {
        if let Some(s) = parsed[m].as_str() {
            out.push(s.to_owned());
        }
    }
    out.retain(|s| s.len() >= 16);
    out
}

type Fleet = Vec<Client<SdkSource>>;

/// What one secret's operation loop needs.
struct Operating {
    kind: String,
    fleet: Arc<Fleet>,
    ops: AtomicU64,
    failed: AtomicU64,
    kids: Mutex<std::collections::BTreeSet<String>>,
    signers: Mutex<HashMap<String, (EncodingKey, Algorithm)>>,
}

fn alg(name: &str) -> Option<Algorithm> {
    match name {
        "EdDSA" => Some(Algorithm::EdDSA),
        "ES256" => Some(Algorithm::ES256),
        "ES384" => Some(Algorithm::ES384),
        "RS256" => Some(Algorithm::RS256),
        _ => None,
    }
}

impl Operating {
    /// One operation from instance `p` to instance `c`: `None` when `p` has nothing to
    /// use yet, else whether `c` accepted it.
    fn once(&self, p: usize, c: usize) -> Option<Result<(), String>> {
        let current = self.fleet[p].current().ok()?;
        let consumer = &self.fleet[c];
        self.kids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(current.id().as_str().to_owned());
        Some(match self.kind.as_str() {
            "password" | "json" => {
                let used = presented(&self.kind, current.value().expose());
                let accepted = consumer.accepted().map_err(|e| e.to_string());
                accepted.and_then(|a| {
                    a.iter()
                        .any(|v| used.is_some() && presented(&self.kind, v.value().expose()) == used)
                        .then_some(())
                        .ok_or_else(|| "the consumer accepts no version with that value".to_owned())
                })
            }
            "symmetric" => self.seal_open(&current, consumer),
            _ => self.sign_verify(&current, consumer),
        })
    }

    fn sign_verify(
        &self,
        current: &keyshift_client::Version,
        consumer: &Client<SdkSource>,
    ) -> Result<(), String> {
        let kid = current.id().as_str().to_owned();
        let (key, algorithm) = {
            let mut signers = self.signers.lock().unwrap_or_else(|e| e.into_inner());
            if !signers.contains_key(&kid) {
                let k = current.signing_key().map_err(|e| e.to_string())?;
                let algorithm = alg(k.alg()).ok_or("unknown alg")?;
                let pem = k.private_key_pem().as_bytes();
                let key = match algorithm {
                    Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
                    Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
                    _ => EncodingKey::from_ec_pem(pem),
                }
                .map_err(|e| format!("signing key: {e}"))?;
                signers.insert(kid.clone(), (key, algorithm));
            }
            signers.get(&kid).cloned().ok_or("no signer")?
        };
        let mut header = Header::new(algorithm);
        header.kid = Some(kid.clone());
        let exp = keyshift::Timestamp::from(std::time::SystemTime::now()).as_secs() + 60;
        let claims = json!({"sub": "fleet", "iss": "keyshift-local", "aud": "fleet", "exp": exp});
        let token = jsonwebtoken::encode(&header, &claims, &key).map_err(|e| format!("sign: {e}"))?;
        // The consumer: its own JWKS, the key under the token's kid, full validation.
        let kid_in = jsonwebtoken::decode_header(&token)
            .map_err(|e| format!("header: {e}"))?
            .kid
            .ok_or("no kid")?;
        let jwks = consumer.jwks().map_err(|e| e.to_string())?;
        let jwk = jwks.as_json()["keys"]
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["kid"] == kid_in.as_str()))
            .ok_or("the consumer's JWKS has no key under that kid")?;
        // The algorithm comes from the consumer's JWK, never from the token's header.
        let expected = jwk["alg"]
            .as_str()
            .and_then(alg)
            .ok_or("the JWK names no known alg")?;
        let jwk: Jwk = serde_json::from_value(jwk.clone()).map_err(|e| format!("jwk: {e}"))?;
        let mut validation = Validation::new(expected);
        validation.set_audience(&["fleet"]);
        validation.set_issuer(&["keyshift-local"]);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| format!("decoding key: {e}"))?;
        jsonwebtoken::decode::<Value>(&token, &decoding, &validation)
            .map(drop)
            .map_err(|e| format!("verify: {e}"))
    }

    fn seal_open(
        &self,
        current: &keyshift_client::Version,
        consumer: &Client<SdkSource>,
    ) -> Result<(), String> {
        let key = current.symmetric_key().map_err(|e| e.to_string())?;
        let kid = key.kid().as_str().to_owned();
        let sealing = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.bytes()).map_err(|_| "key")?);
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| "random")?;
        let mut data = b"order 42: 3 widgets".to_vec();
        sealing
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut data,
            )
            .map_err(|_| "seal")?;
        // The consumer: the accepted version the kid names, from its own view.
        let version = consumer
            .accepted_version(&kid)
            .map_err(|e| format!("the consumer does not accept the kid: {e}"))?;
        let opening = version.symmetric_key().map_err(|e| e.to_string())?;
        let opening = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, opening.bytes()).map_err(|_| "key")?);
        let plain = opening
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut data,
            )
            .map_err(|_| "open failed")?;
        (plain == b"order 42: 3 widgets")
            .then_some(())
            .ok_or_else(|| "wrong plaintext".to_owned())
    }
}

/// What a producer presents of a `password` or `json` value.
fn presented(kind: &str, value: &str) -> Option<String> {
    match kind {
        "json" => serde_json::from_str::<Value>(value).ok()?["password"]
            .as_str()
            .map(str::to_owned),
        _ => Some(value.to_owned()),
    }
}

/// Rotates one secret of each kind at once, through `cargo lambda watch`, with a fleet
/// per secret.
pub async fn run_kinds(opts: &KindsOptions, timeline: &Timeline) -> Result<KindsSummary, String> {
    let moto = Moto::start()?;
    timeline.say(format!("moto's server is up on 127.0.0.1:{}", moto.port));
    let sdk = moto.sdk_config().await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let sched = aws_sdk_scheduler::Client::new(&sdk);
    sched
        .create_schedule_group()
        .name(GROUP)
        .send()
        .await
        .map_err(|e| format!("CreateScheduleGroup: {e}"))?;
    let mut summary = KindsSummary::default();
    let mut secrets: Vec<(String, String, String)> = Vec::new(); // (kind, arn, name)
    let mut initials: Vec<String> = Vec::new();
    for kind in &opts.kinds {
        let (value, tags) = tokio::task::spawn_blocking({
            let kind = kind.clone();
            move || initial(&kind)
        })
        .await
        .map_err(|e| e.to_string())??;
        summary.secrets.extend(secret_parts(&value));
        initials.push(value.clone());
        let name = format!("keyshift-demo/{kind}");
        let mut create = sm.create_secret().name(&name).secret_string(&value);
        for (k, v) in &tags {
            create = create.tags(Tag::builder().key(k).value(v).build());
        }
        let created = create.send().await.map_err(|e| format!("CreateSecret: {e}"))?;
        let tag_text: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        timeline.say(format!("created {name} ({})", tag_text.join(", ")));
        secrets.push((kind.clone(), created.arn().unwrap_or_default().to_owned(), name));
    }

    let proxy = CountingProxy::start(moto.port)
        .await
        .map_err(|e| format!("counting proxy: {e}"))?;
    let mut env = emulator_env(&proxy.endpoint());
    env.extend([
        ("KEYSHIFT_GAP_SECONDS", opts.gap_secs.to_string()),
        ("KEYSHIFT_INLINE_BUDGET_SECONDS", opts.budget_secs.to_string()),
        ("KEYSHIFT_SCHEDULE_GROUP", GROUP.to_owned()),
        ("KEYSHIFT_SCHEDULER_ROLE_ARN", SCHEDULER_ROLE_ARN.to_owned()),
        ("KEYSHIFT_FUNCTION_ARN", FUNCTION_ARN.to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ]);
    timeline.say("building the release binary and starting `cargo lambda watch`");
    let watch = Watch::start(&env, &opts.log)?;
    let invoker = Arc::new(Invoker {
        watch,
        proxy,
        one_at_a_time: tokio::sync::Mutex::new(()),
        rows: Mutex::default(),
        rotations: Mutex::default(),
    });

    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let gap = Duration::from_secs(opts.gap_secs);
    // Refresh well under T: T/4 to T/2 with a read lag of T/8 (moto is consistent).
    let config = Config::builder(gap)
        .read_lag(gap / 8)
        .refresh(gap / 4, gap / 2)
        .build()
        .map_err(|e| e.to_string())?;
    let mut operating = Vec::new();
    let mut samples: Vec<Samples> = Vec::new();
    for (kind, arn, _) in &secrets {
        let mut fleet = Vec::new();
        for _ in 0..opts.consumers {
            let source = SdkSource::new(sm.clone(), arn.clone());
            fleet.push(
                Client::start(source, config.clone())
                    .await
                    .map_err(|e| format!("keyshift-client: {e}"))?,
            );
        }
        let op = Arc::new(Operating {
            kind: kind.clone(),
            fleet: Arc::new(fleet),
            ops: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            kids: Mutex::default(),
            signers: Mutex::default(),
        });
        operating.push(op.clone());
        let (stop2, tl) = (stop.clone(), timeline.clone());
        tasks.push(tokio::spawn(async move {
            while !stop2.load(Ordering::SeqCst) {
                let (p, c) = {
                    let mut rng = rand::rng();
                    (
                        rng.random_range(0..op.fleet.len()),
                        rng.random_range(0..op.fleet.len()),
                    )
                };
                let op2 = op.clone();
                let result = tokio::task::spawn_blocking(move || op2.once(p, c))
                    .await
                    .ok()
                    .flatten();
                if let Some(result) = result {
                    op.ops.fetch_add(1, Ordering::SeqCst);
                    if let Err(e) = result {
                        op.failed.fetch_add(1, Ordering::SeqCst);
                        tl.say(format!("FAILED {} operation: instance {p} -> {c}: {e}", op.kind));
                    }
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }));
        // The label monitor: samples every 50 ms.
        let (seen, monitor) = monitor_labels(&sm, arn, format!("{kind:<10} "), &stop, timeline);
        samples.push(seen);
        tasks.push(monitor);
    }
    let scheduler = SchedulerDriver::start(&sched, &invoker, &stop, timeline);
    summary.refused = bad_tags(&sm, &invoker, timeline).await?;
    tokio::time::sleep(gap).await;

    // Every secret rotates at once; the function serves one invocation at a time.
    let mut rotations = Vec::new();
    for (i, (kind, arn, _)) in secrets.iter().enumerate() {
        let (sm, invoker, tl, kind, arn) = (
            sm.clone(),
            invoker.clone(),
            timeline.clone(),
            kind.clone(),
            arn.clone(),
        );
        let (n_rotations, gap_secs) = (opts.rotations, opts.gap_secs);
        rotations.push(tokio::spawn(async move {
            let mut converged = 0;
            for n in 0..n_rotations {
                if rotate(&sm, &invoker, &tl, &kind, &arn, i * 100 + n, gap_secs).await? {
                    converged += 1;
                }
            }
            Ok::<usize, String>(converged)
        }));
    }
    let mut converged = Vec::new();
    for r in rotations {
        converged.push(r.await.map_err(|e| e.to_string())??);
    }
    tokio::time::sleep(gap).await;
    scheduler.drain.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let _ = scheduler.task.await;
    for t in tasks {
        let _ = t.await;
    }
    let pending: Vec<_> =
        std::mem::take(&mut *scheduler.deliveries.lock().unwrap_or_else(|e| e.into_inner()));
    for delivery in pending {
        let _ = delivery.await;
    }

    for (i, (kind, arn, name)) in secrets.iter().enumerate() {
        let op = &operating[i];
        let mut result = KindResult {
            kind: kind.clone(),
            secret: name.clone(),
            converged: converged[i],
            operations: op.ops.load(Ordering::SeqCst),
            failed: op.failed.load(Ordering::SeqCst),
            gaps: gaps(&samples[i].lock().unwrap_or_else(|e| e.into_inner())),
            kids_used: op.kids.lock().unwrap_or_else(|e| e.into_inner()).len(),
            ..Default::default()
        };
        // Every version's value: for the log check, and the json and password checks.
        let mut values = Vec::new();
        let listed = sm
            .list_secret_version_ids()
            .secret_id(arn)
            .include_deprecated(true)
            .send()
            .await
            .map_err(|e| format!("ListSecretVersionIds: {e}"))?;
        for v in listed.versions() {
            let Some(id) = v.version_id() else { continue };
            if let Ok(out) = sm.get_secret_value().secret_id(arn).version_id(id).send().await {
                if let Some(s) = out.secret_string() {
                    summary.secrets.extend(secret_parts(s));
                    values.push(s.to_owned());
                }
            }
        }
        if kind == "json" {
            let parsed: Vec<Value> = values
                .iter()
                .filter_map(|v| serde_json::from_str(v).ok())
                .collect();
            let first = parsed.first().cloned().unwrap_or_default();
            result.carried_over = Some(
                parsed.len() == values.len()
                    && parsed
                        .iter()
                        .all(|p| CARRIED.iter().all(|f| p[f] == first[f] && !p[f].is_null())),
            );
        }
        if kind == "password" || kind == "json" {
            let (length, excluded) = if kind == "json" { (32, "") } else { (40, "0O1lI") };
            let generated: Vec<String> = values
                .iter()
                .filter(|v| **v != initials[i])
                .filter_map(|v| presented(kind, v))
                .collect();
            result.password_options_held = Some(
                !generated.is_empty()
                    && generated
                        .iter()
                        .all(|p| p.chars().count() == length && !p.chars().any(|c| excluded.contains(c))),
            );
        }
        summary.kinds.push(result);
    }
    drop(operating);
    drop(invoker);
    drop(moto);
    Ok(summary)
}

/// Secrets tagged wrongly: createSecret must fail with `keyshift.Configuration`, naming
/// the tag, and store nothing.
async fn bad_tags(
    sm: &aws_sdk_secretsmanager::Client,
    invoker: &Invoker,
    timeline: &Timeline,
) -> Result<Vec<(String, String)>, String> {
    let cases: [&[(&str, &str)]; 5] = [
        &[("keyshift:kind", "rsa-1024")],
        &[("keyshift:kind", "json")],
        &[
            ("keyshift:kind", "json"),
            ("keyshift:fields", "password=password password=rsa-2048"),
        ],
        &[
            ("keyshift:kind", "password"),
            ("keyshift:password-length", "99999999999999999999"),
        ],
        &[("keyshift:kind", "ed25519"), ("keyshift:fields", "a=b=c")],
    ];
    let mut refused = Vec::new();
    for (n, tags) in cases.iter().enumerate() {
        let name = format!("keyshift-demo/badly-tagged-{n}");
        let mut create = sm.create_secret().name(&name).secret_string("initial value");
        for (k, v) in *tags {
            create = create.tags(Tag::builder().key(*k).value(*v).build());
        }
        let arn = create
            .send()
            .await
            .map_err(|e| format!("CreateSecret: {e}"))?
            .arn()
            .unwrap_or_default()
            .to_owned();
        let token = uuid_v4();
        let _expected_error = sm
            .rotate_secret()
            .secret_id(&arn)
            .client_request_token(&token)
            .rotation_lambda_arn(FUNCTION_ARN)
            .rotation_rules(RotationRulesType::builder().automatically_after_days(30).build())
            .send()
            .await;
        let before = labels(sm, &arn).await?;
        let event = json!({"Step": "createSecret", "SecretId": arn, "ClientRequestToken": token});
        let shown: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let shown = shown.join(" ");
        match invoker.invoke(Origin::Refused, &event).await {
            Ok(r) => return Err(format!("createSecret with tags {shown} was accepted: {r}")),
            Err(e) => {
                let stored = sm
                    .get_secret_value()
                    .secret_id(&arn)
                    .version_id(&token)
                    .send()
                    .await;
                if stored.is_ok() || labels(sm, &arn).await? != before {
                    return Err(format!(
                        "createSecret with tags {shown} failed but wrote something"
                    ));
                }
                timeline.say(format!("refused, nothing written: {}", e.body));
                refused.push((shown, e.body));
            }
        }
    }
    Ok(refused)
}

/// One rotation of one secret: RotateSecret (moto leaves the placeholder), the engine's
/// four steps through the function, then waiting for the clean end state.
pub(crate) async fn rotate(
    sm: &aws_sdk_secretsmanager::Client,
    invoker: &Invoker,
    timeline: &Timeline,
    kind: &str,
    arn: &str,
    number: usize,
    gap_secs: u64,
) -> Result<bool, String> {
    let before = labels(sm, arn).await?;
    let old = holder(&before, AWSCURRENT).cloned().unwrap_or_default();
    let token = uuid_v4();
    invoker
        .rotations
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone(), number);
    let rotation_token = format!("{}-{}", uuid_v4(), uuid_v4());
    timeline.say(format!("{kind:<10} RotateSecret with token {}", short(&token)));
    let _expected_error = sm
        .rotate_secret()
        .secret_id(arn)
        .client_request_token(&token)
        .rotation_lambda_arn(FUNCTION_ARN)
        .rotation_rules(RotationRulesType::builder().automatically_after_days(30).build())
        .send()
        .await;
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        let event = json!({"Step": step, "SecretId": arn, "ClientRequestToken": token, "RotationToken": rotation_token});
        match invoker.invoke(Origin::Engine, &event).await {
            Ok(r) => timeline.say(format!(
                "{kind:<10} engine: {step} ok: {}{}",
                r["outcome"].as_str().unwrap_or("?"),
                continued(&r)
            )),
            Err(e) => return Err(format!("{kind}: {step} failed: {e}")),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(gap_secs * 3 + 240);
    loop {
        let l = labels(sm, arn).await?;
        let current = holder(&l, AWSCURRENT);
        if current.is_some_and(|c| *c != old)
            && holder(&l, AWSPENDING).is_none_or(|p| Some(p) == current)
            && holder(&l, ROTATING).is_none()
        {
            timeline.say(format!("{kind:<10} converged: {}", show(&l)));
            return Ok(true);
        }
        if Instant::now() > deadline {
            timeline.say(format!("{kind:<10} did NOT converge: {}", show(&l)));
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The gaps of `result` that are shorter than T (none, in a correct run).
pub fn short_gaps(result: &KindResult, gap_secs: u64) -> Vec<Gap> {
    result
        .gaps
        .iter()
        .filter(|g| g.at_most < Duration::from_secs(gap_secs))
        .copied()
        .collect()
}

/// The per-kind summary table.
pub fn render(summary: &KindsSummary, gap_secs: u64) -> String {
    let mut out = String::from(
        "  kind        converged  operations  failed  key ids  gaps (s, each between at least..at most; T = ",
    );
    out.push_str(&format!("{gap_secs})\n"));
    for r in &summary.kinds {
        let gaps: Vec<String> = r
            .gaps
            .iter()
            .map(|g| {
                format!(
                    "{}:{:.1}..{:.1}",
                    g.which,
                    g.at_least.as_secs_f64(),
                    g.at_most.as_secs_f64()
                )
            })
            .collect();
        let mut extra = String::new();
        if let Some(c) = r.carried_over {
            extra.push_str(if c {
                "  other fields carried over"
            } else {
                "  FIELDS NOT CARRIED OVER"
            });
        }
        if let Some(p) = r.password_options_held {
            extra.push_str(if p {
                "  password tags obeyed"
            } else {
                "  PASSWORD TAGS IGNORED"
            });
        }
        out.push_str(&format!(
            "  {:<11} {:>9}  {:>10}  {:>6}  {:>7}  {}{}\n",
            r.kind,
            r.converged,
            r.operations,
            r.failed,
            r.kids_used,
            gaps.join(" "),
            extra
        ));
    }
    out
}

/// Parses a comma-separated list of kinds (`all` for every kind).
pub fn parse_kinds(text: &str) -> Result<Vec<String>, String> {
    if text.trim() == "all" {
        return Ok(ALL_KINDS.iter().map(|k| (*k).to_owned()).collect());
    }
    let kinds: Vec<String> = text
        .split(',')
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect();
    match kinds.iter().find(|k| !ALL_KINDS.contains(&k.as_str())) {
        Some(bad) => Err(format!("unknown kind {bad:?}; kinds: {}", ALL_KINDS.join(", "))),
        None if kinds.is_empty() => Err("no kind named".into()),
        None => Ok(kinds),
    }
}
