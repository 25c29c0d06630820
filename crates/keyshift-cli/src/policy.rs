//! T and the inline budget for a status report, as the function would apply them.

use std::collections::BTreeMap;
use std::time::Duration;

use keyshift::Policy;
use keyshift_lambda::config::{GAP, GAP_TAG, INLINE_BUDGET};

use crate::exit::{CliError, Exit};

/// T when neither the secret's tag, nor `--gap-seconds`, nor `KEYSHIFT_GAP_SECONDS` gives
/// one: the template's `GapSeconds` default (the function itself requires the variable).
pub const DEFAULT_GAP_SECONDS: u64 = 3900;

/// The inline budget when `KEYSHIFT_INLINE_BUDGET_SECONDS` is not set: the function's
/// default.
pub const DEFAULT_INLINE_BUDGET_SECONDS: u64 = 600;

/// Where T came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapSource {
    /// The secret's `keyshift:gap-seconds` tag (what the function applies).
    Tag,
    /// `--gap-seconds`.
    Flag,
    /// The `KEYSHIFT_GAP_SECONDS` environment variable.
    Environment,
    /// [`DEFAULT_GAP_SECONDS`].
    Default,
}

impl GapSource {
    /// A few words for the report.
    pub fn describe(self) -> &'static str {
        match self {
            GapSource::Tag => "from the secret's keyshift:gap-seconds tag",
            GapSource::Flag => "from --gap-seconds; the secret has no keyshift:gap-seconds tag",
            GapSource::Environment => "from KEYSHIFT_GAP_SECONDS; the secret has no keyshift:gap-seconds tag",
            GapSource::Default => {
                "the template's default: the secret has no keyshift:gap-seconds tag; pass --gap-seconds with the function's T"
            }
        }
    }
}

fn whole_seconds(what: &str, text: &str) -> Result<u64, CliError> {
    text.trim()
        .parse::<u64>()
        .map_err(|_| CliError::new(Exit::Usage, format!("{what} must be a whole number of seconds")))
}

/// The policy a status report applies to a secret with `tags`: T from the secret's
/// `keyshift:gap-seconds` tag when it has one (an invalid tag is refused, exit 3, as the
/// function refuses it), else `flag` (`--gap-seconds`), else `KEYSHIFT_GAP_SECONDS` (as
/// `var` looks it up), else [`DEFAULT_GAP_SECONDS`]; the inline budget from
/// `KEYSHIFT_INLINE_BUDGET_SECONDS`, else 600 s, as the function's configuration reads
/// them.
pub fn policy_for(
    tags: &BTreeMap<String, String>,
    flag: Option<u64>,
    var: impl Fn(&str) -> Option<String>,
) -> Result<(Policy, GapSource), CliError> {
    let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let budget = match get(INLINE_BUDGET) {
        Some(v) => whole_seconds(INLINE_BUDGET, &v)?,
        None => DEFAULT_INLINE_BUDGET_SECONDS,
    };
    let (gap, source) = if let Some(tag) = tags.get(GAP_TAG) {
        let secs = tag.trim().parse::<u64>().map_err(|_| {
            CliError::new(
                Exit::Refused,
                format!("the secret's tag {GAP_TAG} must be a whole number of seconds T allows"),
            )
        })?;
        (secs, GapSource::Tag)
    } else if let Some(secs) = flag {
        (secs, GapSource::Flag)
    } else if let Some(v) = get(GAP) {
        (whole_seconds(GAP, &v)?, GapSource::Environment)
    } else {
        (DEFAULT_GAP_SECONDS, GapSource::Default)
    };
    let policy = Policy::new(Duration::from_secs(gap), Duration::from_secs(budget)).map_err(|e| {
        let exit = if source == GapSource::Tag {
            Exit::Refused
        } else {
            Exit::Usage
        };
        let what = match source {
            GapSource::Tag => format!("the secret's tag {GAP_TAG}"),
            GapSource::Flag => "--gap-seconds".into(),
            GapSource::Environment | GapSource::Default => format!("{GAP} / {INLINE_BUDGET}"),
        };
        CliError::new(exit, format!("{what}: {e}"))
    })?;
    Ok((policy, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(gap: Option<&str>) -> BTreeMap<String, String> {
        gap.map(|g| (GAP_TAG.to_owned(), g.to_owned()))
            .into_iter()
            .collect()
    }

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn the_tag_wins_then_the_flag_then_the_variable_then_the_default() {
        let (p, s) = policy_for(&tags(Some("120")), Some(300), env(&[(GAP, "900")])).expect("valid");
        assert_eq!((p.gap, s), (Duration::from_secs(120), GapSource::Tag));
        let (p, s) = policy_for(&tags(None), Some(300), env(&[(GAP, "900")])).expect("valid");
        assert_eq!((p.gap, s), (Duration::from_secs(300), GapSource::Flag));
        let (p, s) = policy_for(&tags(None), None, env(&[(GAP, "900")])).expect("valid");
        assert_eq!((p.gap, s), (Duration::from_secs(900), GapSource::Environment));
        let (p, s) = policy_for(&tags(None), None, env(&[])).expect("valid");
        assert_eq!((p.gap, s), (Duration::from_secs(3900), GapSource::Default));
        assert_eq!(p.inline_budget, Duration::from_secs(600));
        assert_eq!(p.precision, Policy::EVENTBRIDGE_PRECISION);
        let (p, _) = policy_for(&tags(None), None, env(&[(INLINE_BUDGET, "60")])).expect("valid");
        assert_eq!(p.inline_budget, Duration::from_secs(60));
    }

    #[test]
    fn a_bad_tag_is_refused_and_a_bad_variable_is_a_usage_error() {
        let e = policy_for(&tags(Some("soon")), None, env(&[])).expect_err("bad tag");
        assert_eq!(e.exit, Exit::Refused);
        assert!(e.message.contains(GAP_TAG), "{e}");
        let e = policy_for(&tags(Some("0")), None, env(&[])).expect_err("T of 0");
        assert_eq!(e.exit, Exit::Refused);
        let e = policy_for(&tags(None), None, env(&[(GAP, "ten")])).expect_err("bad variable");
        assert_eq!(e.exit, Exit::Usage);
        assert!(e.message.contains(GAP), "{e}");
        let e = policy_for(&tags(None), None, env(&[(INLINE_BUDGET, "900")])).expect_err("budget too long");
        assert_eq!(e.exit, Exit::Usage);
    }
}
