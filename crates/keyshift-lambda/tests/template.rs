//! `template.yaml` reviewed the way a security review reads it, on every CI run.
//!
//! The review fails when:
//! - an IAM statement grants `*` resources to anything but `secretsmanager:GetRandomPassword`,
//!   or names an action with a wildcard;
//! - the execution role's Secrets Manager, Scheduler and EventBridge actions differ from the
//!   calls the code makes (read from the adapters' source, so a new call without a grant, or
//!   a grant no code uses, is caught);
//! - the role EventBridge Scheduler assumes trusts anyone but `scheduler.amazonaws.com`, or
//!   may invoke anything but the rotation function;
//! - the inline-wait budget's largest allowed value does not fit the function's timeout;
//! - the function's environment names a variable the function does not read.
//!
//! The second half feeds the review widened copies of the template, one fault each, and
//! checks that each is caught: a review that passes everything would pass those too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use keyshift::policy::{LAMBDA_MAX_RUNTIME, RUNTIME_HEADROOM};
use serde_json::{Value, json};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shipped template as JSON, CloudFormation's short-form tags expanded.
fn shipped() -> Value {
    let path = workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    load(&text)
}

fn load(text: &str) -> Value {
    let yaml: serde_norway::Value =
        serde_norway::from_str(text).unwrap_or_else(|e| panic!("template.yaml: {e}"));
    to_json(yaml)
}

/// YAML to JSON; `!Ref x` becomes `{"Ref": x}`, `!GetAtt A.B` becomes
/// `{"Fn::GetAtt": ["A", "B"]}`, any other `!Name v` becomes `{"Fn::Name": v}`.
fn to_json(v: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), to_json(v)))
                .collect(),
        ),
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = to_json(t.value);
            match (name, inner) {
                ("Ref", v) => json!({ "Ref": v }),
                ("GetAtt", Value::String(s)) => {
                    let (res, att) = s.split_once('.').unwrap_or((&s, ""));
                    json!({ "Fn::GetAtt": [res, att] })
                }
                (name, v) => json!({ format!("Fn::{name}"): v }),
            }
        }
    }
}

/// Every value `v` may take: both branches of each `Fn::If`, lists flattened,
/// `AWS::NoValue` dropped.
fn branches(v: &Value) -> Vec<Value> {
    if let Some(args) = v.get("Fn::If").and_then(Value::as_array) {
        return args.iter().skip(1).flat_map(branches).collect();
    }
    if v.is_null() || v.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue") {
        return Vec::new();
    }
    match v {
        Value::Array(items) => items.iter().flat_map(branches).collect(),
        other => vec![other.clone()],
    }
}

fn strings(v: &Value) -> Vec<String> {
    branches(v)
        .iter()
        .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
        .collect()
}

fn resources(t: &Value) -> impl Iterator<Item = (&String, &Value)> {
    t["Resources"].as_object().into_iter().flatten()
}

fn of_type<'a>(t: &'a Value, ty: &'a str) -> impl Iterator<Item = (&'a String, &'a Value)> {
    resources(t).filter(move |(_, r)| r["Type"] == ty)
}

/// One IAM statement and the role(s) it is attached to.
#[derive(Debug, Clone)]
struct Statement {
    roles: Vec<String>,
    sid: String,
    allow: bool,
    actions: Vec<String>,
    resources: Vec<Value>,
}

/// Every statement of every role and policy in the template, with its roles.
fn statements(t: &Value, problems: &mut Vec<String>) -> Vec<Statement> {
    let mut docs: Vec<(Vec<String>, Value)> = Vec::new();
    for (id, role) in of_type(t, "AWS::IAM::Role") {
        let p = &role["Properties"];
        if !p["ManagedPolicyArns"].is_null() {
            problems.push(format!(
                "{id}: ManagedPolicyArns cannot be reviewed here; grant inline instead"
            ));
        }
        for policy in branches(&p["Policies"]) {
            docs.push((vec![id.clone()], policy["PolicyDocument"].clone()));
        }
    }
    for ty in ["AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"] {
        for (id, policy) in of_type(t, ty) {
            let p = &policy["Properties"];
            let roles: Vec<String> = branches(&p["Roles"])
                .iter()
                .filter_map(|r| r["Ref"].as_str().map(str::to_owned))
                .collect();
            if roles.is_empty() {
                problems.push(format!("{id}: a policy attached to no role of this template"));
            }
            docs.push((roles, p["PolicyDocument"].clone()));
        }
    }
    for (id, f) in of_type(t, "AWS::Serverless::Function") {
        if !f["Properties"]["Policies"].is_null() {
            problems.push(format!(
                "{id}: SAM Policies on the function bypass this review; grant on FunctionRole"
            ));
        }
    }
    docs.into_iter()
        .flat_map(|(roles, doc)| {
            branches(&doc["Statement"]).into_iter().map(move |s| Statement {
                roles: roles.clone(),
                sid: s["Sid"].as_str().unwrap_or("(no Sid)").to_owned(),
                allow: s["Effect"] == "Allow",
                actions: strings(&s["Action"]),
                resources: branches(&s["Resource"]),
            })
        })
        .collect()
}

fn function_id(t: &Value) -> Option<String> {
    of_type(t, "AWS::Serverless::Function")
        .map(|(id, _)| id.clone())
        .next()
}

/// Whether `resource` names the rotation function `function` (its ARN, or a qualified
/// ARN built from it), and nothing else.
fn names_function(resource: &Value, function: &str) -> bool {
    if let Some(att) = resource.get("Fn::GetAtt").and_then(Value::as_array) {
        return att.first().and_then(Value::as_str) == Some(function)
            && att.get(1).and_then(Value::as_str) == Some("Arn");
    }
    if let Some(sub) = resource.get("Fn::Sub").and_then(Value::as_str) {
        return sub.starts_with(&format!("${{{function}.Arn}}"));
    }
    false
}

/// The SDK operations the adapters call, as IAM actions, read from their source: every
/// `client.<operation>()` in the files that talk to AWS.
fn code_actions() -> BTreeSet<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeSet::new();
    for file in ["secrets.rs", "target.rs", "scheduler.rs", "lifecycle.rs"] {
        let text = std::fs::read_to_string(src.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let flat: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        for (i, _) in flat.match_indices("client.") {
            let rest = &flat[i + "client.".len()..];
            let op: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if op.is_empty() || !rest[op.len()..].starts_with("()") || op == "clone" {
                continue;
            }
            let service = match file {
                "secrets.rs" | "target.rs" => "secretsmanager",
                _ if op.contains("schedule") => "scheduler",
                _ => "events",
            };
            let pascal: String = op
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect();
            out.insert(format!("{service}:{pascal}"));
        }
    }
    out
}

/// The review. Returns the problems found, as sentences; empty means it passes.
fn review(t: &Value, code: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(function) = function_id(t) else {
        return vec!["no AWS::Serverless::Function in the template".into()];
    };
    let all = statements(t, &mut problems);

    // 1. `*` only for GetRandomPassword and, for a function in a VPC, the network
    // interface actions Lambda itself needs (what AWSLambdaVPCAccessExecutionRole grants,
    // on "*" too); no wildcard actions.
    const VPC_ENI_ACTIONS: [&str; 6] = [
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    ];
    for s in all.iter().filter(|s| s.allow) {
        for a in &s.actions {
            if a.contains('*') {
                problems.push(format!("{}: wildcard action {a}", s.sid));
            }
        }
        let eni_only = s.actions.iter().all(|a| VPC_ENI_ACTIONS.contains(&a.as_str()));
        if s.resources.iter().any(|r| r == "*")
            && !eni_only
            && s.actions.iter().any(|a| a != "secretsmanager:GetRandomPassword")
        {
            problems.push(format!(
                "{}: grants {:?} on \"*\"; only secretsmanager:GetRandomPassword may have \"*\" (and, in a VPC, Lambda's network interface actions)",
                s.sid, s.actions
            ));
        }
    }

    // 2. The execution role grants exactly what the code calls.
    let exec_role = of_type(t, "AWS::Serverless::Function")
        .filter_map(|(_, f)| f["Properties"]["Role"]["Fn::GetAtt"][0].as_str())
        .next()
        .map(str::to_owned);
    let Some(exec_role) = exec_role else {
        problems.push(format!(
            "{function}: Role must be a role of this template (Fn::GetAtt X.Arn)"
        ));
        return problems;
    };
    let granted: BTreeSet<String> = all
        .iter()
        .filter(|s| s.allow && s.roles.contains(&exec_role))
        .flat_map(|s| s.actions.iter().cloned())
        .filter(|a| {
            ["secretsmanager:", "scheduler:", "events:"]
                .iter()
                .any(|p| a.starts_with(p))
        })
        .collect();
    for missing in code.difference(&granted) {
        problems.push(format!(
            "{exec_role}: the code calls {missing} but the role does not grant it"
        ));
    }
    for extra in granted.difference(code) {
        problems.push(format!("{exec_role}: grants {extra}, which no code calls"));
    }

    // 3. The role Scheduler assumes: trusted by Scheduler only, invokes the function only.
    let mut scheduler_roles = 0;
    for (id, role) in of_type(t, "AWS::IAM::Role") {
        let trust = branches(&role["Properties"]["AssumeRolePolicyDocument"]["Statement"]);
        let principals: Vec<String> = trust
            .iter()
            .flat_map(|s| {
                let p = &s["Principal"];
                let mut v = strings(&p["Service"]);
                for k in ["AWS", "Federated", "CanonicalUser"] {
                    v.extend(strings(&p[k]));
                }
                if p.is_string() {
                    v.push(p.as_str().unwrap_or_default().to_owned());
                }
                v
            })
            .collect();
        if !principals.iter().any(|p| p == "scheduler.amazonaws.com") {
            continue;
        }
        scheduler_roles += 1;
        if principals.iter().any(|p| p != "scheduler.amazonaws.com") {
            problems.push(format!("{id}: the Scheduler role also trusts {principals:?}"));
        }
        let mine: Vec<&Statement> = all.iter().filter(|s| s.allow && s.roles.contains(id)).collect();
        if !mine
            .iter()
            .any(|s| s.actions.iter().any(|a| a == "lambda:InvokeFunction"))
        {
            problems.push(format!("{id}: the Scheduler role cannot invoke the function"));
        }
        for s in mine {
            for a in &s.actions {
                match a.as_str() {
                    "lambda:InvokeFunction" => {
                        for r in &s.resources {
                            if !names_function(r, &function) {
                                problems.push(format!(
                                    "{id}/{}: the Scheduler role may invoke {r}, not only {function}",
                                    s.sid
                                ));
                            }
                        }
                    }
                    "sqs:SendMessage" => {}
                    other => problems.push(format!("{id}/{}: the Scheduler role may also {other}", s.sid)),
                }
            }
        }
    }
    if scheduler_roles == 0 {
        problems.push("no role trusted by scheduler.amazonaws.com".into());
    }

    // 4. The inline budget fits the timeout.
    let props = &resources(t)
        .find(|(id, _)| **id == function)
        .map(|(_, f)| f["Properties"].clone())
        .unwrap_or_default();
    let timeout = props["Timeout"].as_u64().unwrap_or(3);
    let budget = &t["Parameters"]["InlineBudgetSeconds"];
    match (budget["MaxValue"].as_u64(), budget["Default"].as_u64()) {
        (Some(max), Some(default)) => {
            if max + RUNTIME_HEADROOM.as_secs() > timeout {
                problems.push(format!(
                    "InlineBudgetSeconds may be {max} s, which with {} s of head-room does not fit the {timeout} s timeout",
                    RUNTIME_HEADROOM.as_secs()
                ));
            }
            if default > max {
                problems.push(format!(
                    "InlineBudgetSeconds defaults to {default}, above its MaxValue {max}"
                ));
            }
        }
        _ => problems.push("InlineBudgetSeconds needs a numeric MaxValue and Default".into()),
    }
    if timeout > LAMBDA_MAX_RUNTIME.as_secs() {
        problems.push(format!(
            "Timeout {timeout} is above Lambda's {} s",
            LAMBDA_MAX_RUNTIME.as_secs()
        ));
    }

    // 5. The environment names only variables the function reads.
    let known = [
        keyshift_lambda::config::GAP,
        keyshift_lambda::config::INLINE_BUDGET,
        keyshift_lambda::config::BACKEND,
        keyshift_lambda::config::GROUP,
        keyshift_lambda::config::ROLE_ARN,
        keyshift_lambda::config::FUNCTION_ARN,
        keyshift_lambda::config::DEAD_LETTER_ARN,
        keyshift_lambda::config::EVENT_BUS,
        keyshift_lambda::config::PASSWORD_LENGTH,
        keyshift_lambda::config::DEFAULT_KIND,
        keyshift_lambda::config::PG_VARIABLES[0],
        keyshift_lambda::config::PG_VARIABLES[1],
        keyshift_lambda::config::PG_VARIABLES[2],
        keyshift_lambda::config::CREATED_DATES,
        keyshift_lambda::config::WATCHDOG,
        keyshift_lambda::metrics::NAMESPACE_ENV,
        "RUST_LOG",
    ];
    let vars = props["Environment"]["Variables"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for name in vars.keys() {
        if !known.contains(&name.as_str()) {
            problems.push(format!(
                "{function}: environment variable {name} is read by nothing"
            ));
        }
    }
    if !vars.contains_key(keyshift_lambda::config::GAP) {
        problems.push(format!(
            "{function}: {} is required",
            keyshift_lambda::config::GAP
        ));
    }
    problems
}

#[test]
fn the_code_calls_are_read_from_the_adapters() {
    let code = code_actions();
    for expected in [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetRandomPassword",
        "secretsmanager:PutSecretValue",
        "scheduler:CreateSchedule",
        "events:PutEvents",
        "events:DeleteRule",
    ] {
        assert!(code.contains(expected), "{expected} not found in {code:?}");
    }
}

#[test]
fn the_shipped_template_passes_the_review() {
    let t = shipped();
    let mut scratch = Vec::new();
    let n = statements(&t, &mut scratch).len();
    assert!(
        n >= 10,
        "the review saw only {n} statements: is it reading the template?"
    );
    let problems = review(&t, &code_actions());
    assert!(
        problems.is_empty(),
        "template.yaml fails the review:\n{}",
        problems.join("\n")
    );
}

/// A statement of the execution role, by Sid, inside its `Fn::If` if it has one.
fn exec_statement<'a>(t: &'a mut Value, sid: &str) -> &'a mut Value {
    let list = t["Resources"]["FunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array_mut()
        .expect("the execution role's statements");
    list.iter_mut()
        .map(|s| {
            if s.get("Fn::If").is_some() {
                &mut s["Fn::If"][1]
            } else {
                s
            }
        })
        .find(|s| s["Sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid}"))
}

fn assert_caught(name: &str, t: &Value, needle: &str) {
    let problems = review(t, &code_actions());
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "{name}: expected a problem mentioning {needle:?}, got {problems:#?}"
    );
}

#[test]
fn a_widened_resource_fails_the_review() {
    let mut t = shipped();
    exec_statement(&mut t, "RotateSecretsUnderThePrefix")["Resource"] = json!("*");
    assert_caught(
        "secrets on *",
        &t,
        "only secretsmanager:GetRandomPassword may have \"*\"",
    );
}

#[test]
fn a_new_statement_on_star_fails_the_review() {
    let mut t = shipped();
    t["Resources"]["FunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array_mut()
        .expect("statements")
        .push(json!({"Sid": "Extra", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}));
    assert_caught("s3 on *", &t, "Extra: grants");
}

#[test]
fn wildcard_and_unused_actions_fail_the_review() {
    let mut t = shipped();
    exec_statement(&mut t, "RotateSecretsUnderThePrefix")["Action"] = json!("secretsmanager:*");
    assert_caught("secretsmanager:*", &t, "wildcard action secretsmanager:*");

    let mut t = shipped();
    exec_statement(&mut t, "RotateSecretsUnderThePrefix")["Action"]
        .as_array_mut()
        .expect("actions")
        .push(json!("secretsmanager:DeleteSecret"));
    assert_caught(
        "DeleteSecret",
        &t,
        "grants secretsmanager:DeleteSecret, which no code calls",
    );
}

#[test]
fn a_missing_grant_fails_the_review() {
    for sid in ["RotateSecretsUnderThePrefix", "RotateTheListedSecrets"] {
        let mut t = shipped();
        exec_statement(&mut t, sid)["Action"]
            .as_array_mut()
            .expect("actions")
            .retain(|a| a != "secretsmanager:PutSecretValue");
        // The other statement still grants it: only removing it from both is a gap.
        let problems = review(&t, &code_actions());
        assert!(problems.is_empty(), "{sid}: {problems:?}");
    }
    let mut t = shipped();
    for sid in ["RotateSecretsUnderThePrefix", "RotateTheListedSecrets"] {
        exec_statement(&mut t, sid)["Action"]
            .as_array_mut()
            .expect("actions")
            .retain(|a| a != "secretsmanager:PutSecretValue");
    }
    assert_caught(
        "no PutSecretValue",
        &t,
        "calls secretsmanager:PutSecretValue but the role does not grant it",
    );
}

#[test]
fn a_scheduler_role_that_can_invoke_more_fails_the_review() {
    let mut t = shipped();
    t["Resources"]["SchedulerRolePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Resource"] =
        json!("*");
    assert_caught("invoke *", &t, "the Scheduler role may invoke");

    let mut t = shipped();
    t["Resources"]["SchedulerRolePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Resource"] =
        json!({"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:other"});
    assert_caught("invoke another function", &t, "not only RotationFunction");

    let mut t = shipped();
    t["Resources"]["SchedulerRolePolicy"]["Properties"]["PolicyDocument"]["Statement"][1]["Action"] =
        json!("sqs:ReceiveMessage");
    assert_caught("another action", &t, "may also sqs:ReceiveMessage");

    let mut t = shipped();
    t["Resources"]["SchedulerRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        ["Service"] = json!(["scheduler.amazonaws.com", "lambda.amazonaws.com"]);
    assert_caught("trust", &t, "also trusts");
}

#[test]
fn a_budget_that_does_not_fit_the_timeout_fails_the_review() {
    let mut t = shipped();
    t["Parameters"]["InlineBudgetSeconds"]["MaxValue"] = json!(870);
    assert_caught("budget", &t, "does not fit the 900 s timeout");

    let mut t = shipped();
    t["Resources"]["RotationFunction"]["Properties"]["Timeout"] = json!(600);
    assert_caught("timeout", &t, "does not fit the 600 s timeout");
}

#[test]
fn an_unknown_environment_variable_fails_the_review() {
    let mut t = shipped();
    t["Resources"]["RotationFunction"]["Properties"]["Environment"]["Variables"]["KEYSHIFT_GAP"] =
        json!("60");
    assert_caught("typo", &t, "KEYSHIFT_GAP is read by nothing");
}

#[test]
fn the_template_matches_the_core_limits() {
    // The core refuses a budget above LAMBDA_MAX_RUNTIME - RUNTIME_HEADROOM at cold start;
    // the template's MaxValue is that same number, so no deployable value is refused.
    let t = shipped();
    let max = t["Parameters"]["InlineBudgetSeconds"]["MaxValue"]
        .as_u64()
        .expect("MaxValue");
    assert_eq!(max, (LAMBDA_MAX_RUNTIME - RUNTIME_HEADROOM).as_secs());
    assert!(
        keyshift::Policy::new(
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(max)
        )
        .is_ok()
    );
    assert!(
        keyshift::Policy::new(
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(max + 1)
        )
        .is_err()
    );
}

#[test]
fn the_readme_names_every_parameter() {
    let t = shipped();
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let params = t["Parameters"].as_object().expect("Parameters");
    assert!(params.len() >= 10, "only {} parameters?", params.len());
    let missing: Vec<&String> = params
        .keys()
        .filter(|p| !readme.contains(&format!("| `{p}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's parameter table lacks {missing:?}"
    );
}
