//! What the commands print: pure functions of a status report or a function's answer.
//! Nothing here ever sees a secret value ([`keyshift::status::Status`] holds none).

use std::fmt::Write as _;

use keyshift::status::{Move, Next, Status};
use keyshift::{SecretId, VersionId};
use serde_json::Value;

use crate::policy::GapSource;
use crate::schedule::Lookup;

/// `ms` as `4m12s`, `1h02m03s` or `7s` (the sign dropped: say "in" or "overdue by").
pub fn duration(ms: i64) -> String {
    let total = ms.unsigned_abs().div_ceil(1000);
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// `in 4m12s` for a time ahead, `overdue by 1m03s` for one passed, `now` within a second.
pub fn relative(ms: i64) -> String {
    // unsigned_abs: `abs` of i64::MIN overflows (a due time read from an answer).
    if ms.unsigned_abs() < 1000 {
        "now".into()
    } else if ms > 0 {
        format!("in {}", duration(ms))
    } else {
        format!("overdue by {}", duration(ms))
    }
}

/// The status report as `--json` prints it: [`Status::to_json`] plus `secret` and
/// `expected_schedule` (the next follow-up's schedule name, or null), the shape the
/// function's own status payload answers with.
pub fn status_json(report: &Status, secret: &SecretId) -> Value {
    let mut json = report.to_json();
    json["secret"] = Value::from(secret.as_str());
    json["expected_schedule"] = report
        .schedule_name(secret)
        .map_or(Value::Null, |n| Value::from(n.as_str()));
    json
}

/// The versions in the order they were written (unknown dates last, then by id).
fn timeline(report: &Status) -> Vec<&keyshift::status::VersionStatus> {
    let mut versions: Vec<_> = report.versions.iter().collect();
    versions.sort_by(|a, b| {
        (a.created.is_none(), a.created, &a.id).cmp(&(b.created.is_none(), b.created, &b.id))
    });
    versions
}

/// What the next move does, in words.
fn move_words(action: &Move) -> String {
    match action {
        Move::Copy { token } => {
            format!("copy: swapPending writes keyshift's copy of the engine's version {token} (AWSPENDING)")
        }
        Move::MarkAccepted { copy } => format!(
            "mark accepted: once every replica Region shows {copy} with AWSPENDING, the first gap starts"
        ),
        Move::Swap { copy, from } if copy == from => {
            format!("swap: {copy} becomes AWSCURRENT (no version is AWSCURRENT now)")
        }
        Move::Swap { copy, from } => {
            format!("swap: {copy} becomes AWSCURRENT; {from} keeps being accepted (ROTATING)")
        }
        Move::MarkSwap { old } => {
            format!("mark swap: the next step stamps the swap marker on {old}; the second gap starts then")
        }
        Move::Release { old } => {
            format!("release: {old} stops being accepted (ROTATING off, its value revoked)")
        }
    }
}

fn due_words(next: &Next) -> String {
    match (next.due, next.due_in_ms) {
        (Some(due), Some(ms)) => format!("due {due} ({})", relative(ms)),
        _ => "due time not known from the labels (it waits for another step)".into(),
    }
}

/// `text` with every control character escaped (`\u{1b}`, `\n`...), the rest as it is:
/// what the CLI prints of values it did not write itself (labels and version ids as
/// Secrets Manager returns them, the function's answers, dead-letter bodies).
pub fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The human status report: the phase, a label timeline (each version with its labels
/// and creation time, oldest first), what is accepted and used, the next move with its
/// due time ("in 4m12s" or "overdue by ..."), the expected schedule, stuck advice and
/// notes.
pub fn status_text(report: &Status, secret: &SecretId, gap: GapSource, schedule: &Lookup) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "secret:   {secret}");
    let _ = writeln!(w, "phase:    {} ({})", report.phase, report.phase.meaning());
    let _ = writeln!(
        w,
        "rotation: {}{}; T = {} ({})",
        if report.rotation_enabled {
            "enabled"
        } else {
            "disabled"
        },
        if report.deleted {
            ", scheduled for deletion"
        } else {
            ""
        },
        duration(i64::try_from(report.gap.as_millis()).unwrap_or(i64::MAX)),
        gap.describe()
    );
    let _ = writeln!(w, "now:      {}", report.now);
    let _ = writeln!(w, "labels, oldest first:");
    let versions = timeline(report);
    if versions.is_empty() {
        let _ = writeln!(w, "  (no labelled version)");
    }
    for v in versions {
        let created = v.created.map_or_else(
            || "created ?                ".to_string(),
            |t| format!("created {t}"),
        );
        let copy = if v.keyshift_copy { "  [keyshift copy]" } else { "" };
        let _ = writeln!(
            w,
            "  {created}  {}  {}{copy}",
            escape_controls(v.id.as_str()),
            escape_controls(&v.labels.join(" "))
        );
    }
    let accepted: Vec<&str> = report.accepted.iter().map(VersionId::as_str).collect();
    let _ = writeln!(
        w,
        "accepted: {}",
        if accepted.is_empty() {
            "none".to_string()
        } else {
            escape_controls(&accepted.join(", "))
        }
    );
    let _ = writeln!(
        w,
        "in use:   {}",
        escape_controls(report.in_use.as_ref().map_or("none", VersionId::as_str))
    );
    match &report.next {
        None => {
            let _ = writeln!(w, "next:     nothing (no rotation in progress)");
        }
        Some(n) => {
            let _ = writeln!(w, "next:     {}", move_words(&n.action));
            let _ = writeln!(w, "          {}", due_words(n));
            if let Some(name) = report.schedule_name(secret) {
                if let Some(j) = &n.schedule {
                    let _ = writeln!(
                        w,
                        "          expected schedule {name}, firing at {} ({})",
                        j.fire_at,
                        relative(j.fire_at.millis_since(report.now))
                    );
                    match schedule {
                        Lookup::NotExpected => {}
                        Lookup::Found(f) => {
                            let _ = writeln!(
                                w,
                                "          found: {} {} {}",
                                escape_controls(&f.name),
                                escape_controls(f.expression.as_deref().unwrap_or("(no expression)")),
                                escape_controls(f.state.as_deref().unwrap_or(""))
                            );
                        }
                        Lookup::Missing => {
                            let _ = writeln!(
                                w,
                                "          NOT FOUND (delivered already, lost, or not created yet): `keyshift redrive {secret}` runs the next move now"
                            );
                        }
                        Lookup::Error(e) => {
                            let _ = writeln!(w, "          could not be read: {e}");
                        }
                    }
                }
            }
        }
    }
    match &report.stuck {
        None => {
            let _ = writeln!(w, "stuck:    no");
        }
        Some(advice) => {
            let _ = writeln!(w, "stuck:    YES. {}", escape_controls(&advice.to_string()));
            let _ = writeln!(
                w,
                "          Or: keyshift redrive {secret} --function <the rotation function>"
            );
        }
    }
    for note in &report.notes {
        let _ = writeln!(w, "note:     {}", escape_controls(&note.to_string()));
    }
    out
}

/// The first 8 characters of a version id, as the watch lines show them.
fn short(id: &VersionId) -> &str {
    let s = id.as_str();
    s.get(..8).unwrap_or(s)
}

/// What `watch` compares from one read to the next: the phase and every version's
/// labels.
pub fn watch_key(report: &Status) -> String {
    let labels: Vec<String> = report
        .versions
        .iter()
        .map(|v| format!("{}={}", v.id, v.labels.join("+")))
        .collect();
    format!("{} {}", report.phase, labels.join(" "))
}

/// One `watch` line: the time, the phase, the labels (ids cut to 8 characters, oldest
/// first), and the next move with its countdown.
pub fn watch_line(report: &Status) -> String {
    let labels: Vec<String> = timeline(report)
        .into_iter()
        .map(|v| format!("{}:{}", short(&v.id), v.labels.join("+")))
        .collect();
    let mut line = format!(
        "{}  {:<10}  {}",
        report.now,
        report.phase.as_str(),
        labels.join("  ")
    );
    if let Some(n) = &report.next {
        let _ = write!(
            line,
            "  | next: {} {}",
            n.action.as_str(),
            short(n.action.version())
        );
        if let Some(ms) = n.due_in_ms {
            let _ = write!(line, " {}", relative(ms));
        }
    }
    if report.stuck.is_some() {
        line.push_str("  | STUCK");
    }
    line
}

/// The countdown a terminal shows between two changes.
pub fn countdown(report: &Status, now: keyshift::Timestamp) -> Option<String> {
    let n = report.next.as_ref()?;
    let due = n.due?;
    Some(format!(
        "next: {} of {} {}",
        n.action.as_str(),
        short(n.action.version()),
        relative(due.millis_since(now))
    ))
}

/// The human summary of a function's answer: `step`, `outcome`, `continued`,
/// `scheduled`, `final`, then every other field it returned.
pub fn answer_text(answer: &Value) -> String {
    let Some(obj) = answer.as_object() else {
        return format!("{answer}\n");
    };
    let mut out = String::new();
    let w = &mut out;
    // The function's answer: whoever controls it (or the labels it names) must not
    // write control sequences to the operator's terminal.
    let text = |v: &Value| match v {
        Value::String(s) => escape_controls(s),
        other => other.to_string(),
    };
    for key in ["step", "outcome"] {
        if let Some(v) = obj.get(key) {
            let _ = writeln!(w, "{:<10} {}", format!("{key}:"), text(v));
        }
    }
    if let Some(list) = obj.get("continued").and_then(Value::as_array) {
        for (i, v) in list.iter().enumerate() {
            let label = if i == 0 { "continued:" } else { "" };
            let _ = writeln!(w, "{label:<10} {}", text(v));
        }
    }
    if let Some(list) = obj.get("scheduled").and_then(Value::as_array) {
        for (i, j) in list.iter().enumerate() {
            let label = if i == 0 { "scheduled:" } else { "" };
            let _ = writeln!(
                w,
                "{label:<10} {} at {} ({})",
                j.get("step").map(text).unwrap_or_default(),
                j.get("fireAt").map(text).unwrap_or_default(),
                j.get("name").map(text).unwrap_or_default()
            );
        }
    }
    if let Some(v) = obj.get("final") {
        let _ = writeln!(w, "{:<10} {}", "final:", text(v));
    }
    let known = ["step", "outcome", "continued", "scheduled", "final", "status"];
    for (key, v) in obj.iter().filter(|(k, _)| !known.contains(&k.as_str())) {
        let _ = writeln!(w, "{:<10} {}", format!("{key}:"), text(v));
    }
    if let Some(status) = obj.get("status") {
        let _ = writeln!(w, "{:<10} {}", "status:", status_summary(status));
    }
    out
}

/// One line of the status report an operator step answers with (`status`): phase, what
/// is in use, the next move and when, and whether it looks stuck.
fn status_summary(status: &Value) -> String {
    if let Some(e) = status.get("error").and_then(Value::as_str) {
        return format!("not read: {e}");
    }
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let mut line = format!(
        "{}; in use {}",
        text(&status["phase"]).unwrap_or_else(|| "?".into()),
        text(&status["in_use"]).unwrap_or_else(|| "none".into())
    );
    let next = &status["next"];
    if let Some(m) = text(&next["move"]) {
        let _ = write!(
            line,
            "; next {m} of {}",
            text(&next["version"]).unwrap_or_default()
        );
        match next["due_in_ms"].as_i64() {
            Some(ms) => {
                let _ = write!(line, " {}", relative(ms));
            }
            None => line.push_str(" (due time not known)"),
        }
    }
    if let Some(advice) = text(&status["stuck"]) {
        let _ = write!(line, "; STUCK: {advice}");
    }
    line
}

#[cfg(test)]
mod tests;
