//! EventBridge against moto's server.
//!
//! The classic rules backend: a one-shot cron rule per follow-up with the function as
//! its only target and the event as its input; a second create is "already scheduled";
//! `complete` removes the target, then the rule, of that follow-up and no other; a rule
//! left without its target (or at another minute) is repaired, not "already scheduled".
//! And lifecycle events: one PutEvents entry per phase change.

mod support;

use aws_sdk_eventbridge::types::RuleState;
use keyshift::event::Invocation;
use keyshift::ports::{Job, Scheduled, Scheduler};
use keyshift::{SecretId, Timestamp, VersionId};
use keyshift_lambda::scheduler::{EventBridgeRules, RULE_TARGET_ID};

const FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:keyshift-rotation";

fn job(secret: &SecretId, fire_secs: i64) -> Job {
    let token = VersionId::new("0b0b0b0b-1111-4222-8333-444444444444");
    support::swap_job(secret, token, Timestamp::from_secs(fire_secs))
}

#[tokio::test]
async fn rules_backend_on_moto() {
    let moto = support::moto();
    let client = aws_sdk_eventbridge::Client::new(&moto.sdk_config().await);
    let rules = EventBridgeRules::new(client.clone(), FUNCTION);
    let (a, b) = (SecretId::new("rules/a"), SecretId::new("rules/b"));
    // 2026-11-24T00:17:30Z: the cron minute rounds up to 00:18.
    let (ja, jb) = (job(&a, 1_795_479_450), job(&b, 1_795_479_450));

    assert_eq!(rules.schedule(&ja).await, Ok(Scheduled::Created));
    assert_eq!(rules.schedule(&ja).await, Ok(Scheduled::AlreadyScheduled));
    assert_eq!(rules.schedule(&jb).await, Ok(Scheduled::Created));

    let rule = client
        .describe_rule()
        .name(ja.name.as_str())
        .send()
        .await
        .expect("the rule exists");
    assert_eq!(rule.schedule_expression(), Some("cron(18 0 24 11 ? 2026)"));
    assert_only_our_target(&client, &ja).await;

    // Once delivered, the rule is cleaned up (targets first: moto, like AWS, refuses to
    // delete a rule that still has targets).
    rules.complete(&ja.name).await.expect("complete");
    assert!(
        client
            .describe_rule()
            .name(ja.name.as_str())
            .send()
            .await
            .is_err()
    );
    rules.complete(&ja.name).await.expect("a second complete is fine");

    assert!(
        client.describe_rule().name(jb.name.as_str()).send().await.is_ok(),
        "another secret's rule is untouched"
    );
}

/// The rule of `job` has exactly one target: the function, with the event as input.
async fn assert_only_our_target(client: &aws_sdk_eventbridge::Client, job: &Job) {
    let targets = client
        .list_targets_by_rule()
        .rule(job.name.as_str())
        .send()
        .await
        .expect("its targets");
    let [target] = targets.targets() else {
        panic!("one target: {:?}", targets.targets())
    };
    assert_eq!(target.id(), RULE_TARGET_ID);
    assert_eq!(target.arn(), FUNCTION);
    let input = target.input().expect("the event as input");
    assert_eq!(
        Invocation::from_slice(input.as_bytes()).expect("parses"),
        job.invocation
    );
}

/// PutRule succeeded, then PutTargets failed or its answer was lost: the rule exists
/// and would never invoke anything. It is not "already scheduled" until its target is
/// there, and a rule whose expression is not the job's minute is corrected.
#[tokio::test]
async fn a_rule_without_its_target_or_with_another_minute_is_repaired() {
    let moto = support::moto();
    let client = aws_sdk_eventbridge::Client::new(&moto.sdk_config().await);
    let rules = EventBridgeRules::new(client.clone(), FUNCTION);
    let j = job(&SecretId::new("rules/lost-target"), 1_795_479_450);
    let put_rule_by_hand = |expression: &'static str| {
        client
            .put_rule()
            .name(j.name.as_str())
            .schedule_expression(expression)
            .state(RuleState::Enabled)
            .send()
    };
    put_rule_by_hand("cron(18 0 24 11 ? 2026)")
        .await
        .expect("the rule, by hand, without its target");

    assert_eq!(rules.schedule(&j).await, Ok(Scheduled::Created));
    assert_only_our_target(&client, &j).await;
    assert_eq!(rules.schedule(&j).await, Ok(Scheduled::AlreadyScheduled));

    // The same name with another minute (a rule edited by hand): put back to the job's.
    put_rule_by_hand("cron(0 0 1 1 ? 2030)")
        .await
        .expect("the rule moved by hand");
    assert_eq!(rules.schedule(&j).await, Ok(Scheduled::Created));
    let rule = client
        .describe_rule()
        .name(j.name.as_str())
        .send()
        .await
        .expect("the rule exists");
    assert_eq!(rule.schedule_expression(), Some("cron(18 0 24 11 ? 2026)"));
    assert_only_our_target(&client, &j).await;
    assert_eq!(rules.schedule(&j).await, Ok(Scheduled::AlreadyScheduled));
}

#[tokio::test]
async fn lifecycle_events_on_moto() {
    use keyshift::decide::Outcome;
    use keyshift_lambda::lifecycle::{Lifecycle, phase};

    let moto = support::moto();
    let client = aws_sdk_eventbridge::Client::new(&moto.sdk_config().await);
    client
        .create_event_bus()
        .name("keyshift-events")
        .send()
        .await
        .expect("create the bus");
    let lifecycle = Lifecycle::new(client, "keyshift-events");
    let secret = SecretId::new("arn:aws:secretsmanager:us-east-1:123456789012:secret:demo-AbCdEf");
    let token = VersionId::new("0b0b0b0b-1111-4222-8333-444444444444");
    let outcomes = [
        Outcome::Created,
        Outcome::Tested,
        Outcome::Copied {
            new_version: token.copy(1_764_508_672),
        },
        Outcome::Swapped,
        Outcome::AlreadyReleased,
        Outcome::Released,
    ];
    // Only phase changes are events: not Tested, not AlreadyReleased.
    assert_eq!(outcomes.iter().filter(|o| phase(o).is_some()).count(), 4);
    assert_eq!(lifecycle.publish(&secret, &token, &outcomes).await, Ok(4));
    assert_eq!(
        lifecycle.publish(&secret, &token, &[Outcome::Tested]).await,
        Ok(0)
    );
}
