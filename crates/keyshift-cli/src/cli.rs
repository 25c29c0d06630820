//! The command line, as clap parses it.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use keyshift::VersionId;
use keyshift::event::{MAX_EMERGENCY_GAP_SECS, MAX_KEEP_ACCEPTING_SECS, MAX_REASON_CHARS};

/// The exit codes, as `--help` shows them (the crate documentation has the same table).
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success (for status: no rotation looks stuck; for watch: the rotation ended)
  2  usage error: a bad or missing argument, no AWS region
  3  refused: the secret or the function does not exist, AWS refused the request as
     invalid, or the function answered keyshift.InvalidEvent, keyshift.Rejected or
     keyshift.Configuration (the same command will not succeed as it is)
  4  failed: an AWS call or the function failed (network, throttling, access denied,
     keyshift.Retryable, keyshift.Failed, a timeout): it may succeed later
  5  the rotation looks stuck (status and watch: the report's `stuck` advice is set)
  6  watch: --timeout passed before the rotation ended
  130  watch: interrupted (Ctrl-C)";

/// `keyshift`: the operator's view of keyshift rotations.
#[derive(Debug, Parser)]
#[command(
    name = "keyshift",
    version,
    about = "Operate keyshift rotations: status and watch read Secrets Manager directly; rotate calls RotateSecret; emergency, cancel and redrive invoke the rotation function.",
    after_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    /// Where AWS is and who calls it.
    #[command(flatten)]
    pub aws: AwsArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The AWS options every command takes. Credentials and region otherwise come from the
/// standard chain (environment variables, the shared config and credentials files, the
/// container or instance role).
#[derive(Debug, Clone, Default, Args)]
pub struct AwsArgs {
    /// The named profile of the shared AWS config and credentials files.
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// The AWS Region (default: AWS_REGION, then the profile's region).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// Send every AWS request to this endpoint instead (an emulator such as moto).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Send Lambda Invoke requests to this endpoint instead (overrides --endpoint-url for
    /// Lambda only: a local runtime such as `cargo lambda watch` serves the Invoke API on
    /// a port of its own).
    #[arg(long, global = true, value_name = "URL")]
    pub lambda_endpoint_url: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show where a secret's rotation stands, read from Secrets Manager directly.
    #[command(
        long_about = "Show where a secret's rotation stands: the phase, every labelled version with its labels and creation time (oldest first), what consumers accept and use, the next move with its due time, and advice when the rotation looks stuck. Reads Secrets Manager directly (DescribeSecret, ListSecretVersionIds) and, when a follow-up schedule is expected, reads it by name (GetSchedule in KEYSHIFT_SCHEDULE_GROUP, default keyshift; DescribeRule when KEYSHIFT_SCHEDULER=rules) to say whether it exists; does not invoke the function and changes nothing.\n\nT is the secret's keyshift:gap-seconds tag when it has one, else --gap-seconds, else KEYSHIFT_GAP_SECONDS, else 3900 (the template's default).",
        after_help = "Exit codes: 0 reported, nothing stuck; 2 usage; 3 the secret does not exist or its gap tag is invalid; 4 an AWS call failed; 5 reported, and the rotation looks stuck."
    )]
    Status(StatusArgs),
    /// Start a rotation now (Secrets Manager RotateSecret) and print the new version id.
    #[command(
        long_about = "Start a rotation now: Secrets Manager RotateSecret with RotateImmediately, using the rotation function and schedule already configured on the secret. Prints the new version id (the rotation's ClientRequestToken). keyshift still keeps both gaps of T.",
        after_help = "Exit codes: 0 started; 2 usage; 3 the secret does not exist or Secrets Manager refused (a rotation already in progress, no rotation function configured); 4 the call failed."
    )]
    Rotate(RotateArgs),
    /// Rotate at once because a version is compromised (the function's emergencyRotate).
    #[command(
        long_about = "Rotate at once because a version is compromised: invokes the rotation function with {\"Step\":\"emergencyRotate\"}. Unless --version-id is given, the version that is AWSCURRENT now is read first and named as the compromised one, so re-running the same command after a timeout asks for the same thing. Prints the function's answer.",
        after_help = "Exit codes: 0 the function did it; 2 usage; 3 refused (the secret or function does not exist, keyshift.InvalidEvent, keyshift.Rejected, keyshift.Configuration); 4 failed (keyshift.Retryable, keyshift.Failed, AWS or network)."
    )]
    Emergency(EmergencyArgs),
    /// Cancel a rotation in progress (the function's cancel).
    #[command(
        long_about = "Cancel a rotation in progress: invokes the rotation function with {\"Step\":\"cancel\"}, optionally only if the rotation's token is --token. Prints the function's answer.",
        after_help = "Exit codes: 0 the function did it; 2 usage; 3 refused; 4 failed (see `keyshift --help`)."
    )]
    Cancel(CancelArgs),
    /// Carry a rotation on now, or replay a dead-letter queue's follow-ups.
    #[command(
        long_about = "With SECRET: invokes the rotation function with {\"Step\":\"redrive\"}, which carries the secret's rotation on from its labels (a lost or failed follow-up). With --from-dead-letter QUEUE_URL: reads the queue's messages (each a follow-up the scheduler or Lambda could not deliver), invokes the function with each message body unchanged, deletes a message only when its invocation succeeded, reports each, and stops when the queue is empty. Messages that failed are made visible again at the end.",
        after_help = "Exit codes: 0 every invocation succeeded (or the queue was empty); 2 usage; 3 refused (for a queue: some message was refused, none failed); 4 failed (for a queue: some message failed)."
    )]
    Redrive(RedriveArgs),
    /// Follow a rotation until it ends, printing each change and the time to the next move.
    #[command(
        long_about = "Follow a secret's rotation: polls its status (Secrets Manager directly) every --interval, prints a line whenever the phase or the labels change, shows a countdown to the next move on a terminal, and ends when no rotation is in progress (phase idle or released), when the rotation looks stuck, at --timeout, or on Ctrl-C.",
        after_help = "Exit codes: 0 the rotation ended (or none was in progress); 2 usage; 3 the secret does not exist; 4 AWS calls kept failing; 5 the rotation looks stuck; 6 --timeout passed; 130 interrupted."
    )]
    Watch(WatchArgs),
}

/// `--json`: machine-readable output.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct Output {
    /// Print JSON instead of the human summary.
    #[arg(long)]
    pub json: bool,
}

/// `--function`: the rotation function.
#[derive(Debug, Clone, Args)]
pub struct FunctionArg {
    /// The rotation function's name or ARN.
    #[arg(long, env = "KEYSHIFT_FUNCTION", value_name = "NAME_OR_ARN")]
    pub function: String,
}

/// `keyshift status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The secret's name or ARN.
    #[arg(value_name = "SECRET", value_parser = secret_id)]
    pub secret: String,
    /// T in seconds when the secret has no keyshift:gap-seconds tag.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub gap_seconds: Option<u64>,
    /// Output.
    #[command(flatten)]
    pub output: Output,
}

/// `keyshift rotate`.
#[derive(Debug, Clone, Args)]
pub struct RotateArgs {
    /// The secret's name or ARN.
    #[arg(value_name = "SECRET", value_parser = secret_id)]
    pub secret: String,
    /// Output.
    #[command(flatten)]
    pub output: Output,
}

/// `keyshift emergency`.
#[derive(Debug, Clone, Args)]
pub struct EmergencyArgs {
    /// The secret's name or ARN.
    #[arg(value_name = "SECRET", value_parser = secret_id)]
    pub secret: String,
    /// Why (1 to 256 printable characters; logged by the function and returned).
    #[arg(long, value_name = "TEXT", value_parser = reason)]
    pub reason: String,
    /// Accept the new value this long before using it, 0 to 600 seconds (default 0: cut
    /// over at once); the function waits it out inline.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=MAX_EMERGENCY_GAP_SECS))]
    pub gap_seconds: Option<u64>,
    /// Keep accepting the compromised version this long after the cut, in seconds (a
    /// suspected, not a known, compromise; the function caps it at T). Default: revoked
    /// at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=MAX_KEEP_ACCEPTING_SECS))]
    pub keep_accepting_seconds: Option<u64>,
    /// The compromised version (default: the one AWSCURRENT now, read before invoking).
    #[arg(long, value_name = "V", value_parser = version_id)]
    pub version_id: Option<String>,
    /// The rotation function.
    #[command(flatten)]
    pub function: FunctionArg,
    /// Output.
    #[command(flatten)]
    pub output: Output,
}

/// `keyshift cancel`.
#[derive(Debug, Clone, Args)]
pub struct CancelArgs {
    /// The secret's name or ARN.
    #[arg(value_name = "SECRET", value_parser = secret_id)]
    pub secret: String,
    /// Cancel only if the rotation in progress is this one (its ClientRequestToken).
    #[arg(long, value_name = "V", value_parser = version_id)]
    pub token: Option<String>,
    /// The rotation function.
    #[command(flatten)]
    pub function: FunctionArg,
    /// Output.
    #[command(flatten)]
    pub output: Output,
}

/// `keyshift redrive`.
#[derive(Debug, Clone, Args)]
pub struct RedriveArgs {
    /// The secret's name or ARN (or --from-dead-letter).
    #[arg(
        value_name = "SECRET",
        value_parser = secret_id,
        required_unless_present = "from_dead_letter",
        conflicts_with = "from_dead_letter"
    )]
    pub secret: Option<String>,
    /// Replay the follow-ups in this SQS queue (its URL) instead.
    #[arg(long, value_name = "QUEUE_URL", value_parser = queue_url)]
    pub from_dead_letter: Option<String>,
    /// With --from-dead-letter: stop after this many messages (default 1000).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_messages: Option<u32>,
    /// The rotation function.
    #[command(flatten)]
    pub function: FunctionArg,
    /// Output.
    #[command(flatten)]
    pub output: Output,
}

/// `keyshift watch`.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// The secret's name or ARN.
    #[arg(value_name = "SECRET", value_parser = secret_id)]
    pub secret: String,
    /// Seconds between two reads of the secret.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = seconds)]
    pub interval: Duration,
    /// Give up after this many seconds (exit 6).
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub timeout: Option<Duration>,
    /// T in seconds when the secret has no keyshift:gap-seconds tag.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub gap_seconds: Option<u64>,
}

/// A secret's name or ARN: 1 to 2048 characters, no control characters.
fn secret_id(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > keyshift::SecretId::MAX_LEN {
        return Err(format!("must be 1 to {} characters", keyshift::SecretId::MAX_LEN));
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(s.to_owned())
}

/// A version id as Secrets Manager makes them (32 to 64 characters).
fn version_id(s: &str) -> Result<String, String> {
    keyshift::event::parse_version_id("version id", s)
        .map(|v: VersionId| v.as_str().to_owned())
        .map_err(|_| {
            format!(
                "must be a version id: {} to {} letters, digits and '-'",
                VersionId::MIN_LEN,
                VersionId::MAX_LEN
            )
        })
}

/// The emergency's reason: 1 to 256 printable characters once trimmed, as the function
/// takes it.
fn reason(s: &str) -> Result<String, String> {
    let s = s.trim();
    let n = s.chars().count();
    if n == 0 || n > MAX_REASON_CHARS {
        return Err(format!(
            "must say why in 1 to {MAX_REASON_CHARS} characters (got {n})"
        ));
    }
    if s.chars().any(char::is_control) {
        return Err("must be printable (no control characters or line breaks)".into());
    }
    Ok(s.to_owned())
}

/// An SQS queue URL.
fn queue_url(s: &str) -> Result<String, String> {
    if s.starts_with("https://") || s.starts_with("http://") {
        Ok(s.to_owned())
    } else {
        Err("must be the queue's URL (https://sqs.<region>.amazonaws.com/<account>/<name>)".into())
    }
}

/// Whole seconds, at least one.
fn seconds(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(Duration::from_secs(n)),
        _ => Err("must be a whole number of seconds, at least 1".into()),
    }
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;

    const V: &str = "0b6b0e4e-5d49-4bd5-9c4f-6a1f5c8e2d31";

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("keyshift").chain(args.iter().copied()))
    }

    fn kind(args: &[&str]) -> ErrorKind {
        parse(args).expect_err("refused").kind()
    }

    #[test]
    fn status_takes_a_secret_json_and_a_gap() {
        let cli = parse(&["status", "keyshift/demo", "--json", "--gap-seconds", "600"]).expect("valid");
        let Command::Status(a) = cli.command else {
            panic!("status")
        };
        assert_eq!(a.secret, "keyshift/demo");
        assert!(a.output.json);
        assert_eq!(a.gap_seconds, Some(600));
        let cli = parse(&["status", "keyshift/demo"]).expect("valid");
        let Command::Status(a) = cli.command else {
            panic!("status")
        };
        assert!(!a.output.json);
        assert_eq!(a.gap_seconds, None);
    }

    #[test]
    fn the_aws_options_are_global() {
        let cli = parse(&[
            "status",
            "s",
            "--region",
            "eu-west-1",
            "--profile",
            "ops",
            "--endpoint-url",
            "http://127.0.0.1:5000",
            "--lambda-endpoint-url",
            "http://127.0.0.1:9000",
        ])
        .expect("valid");
        assert_eq!(cli.aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(cli.aws.profile.as_deref(), Some("ops"));
        assert_eq!(cli.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(
            cli.aws.lambda_endpoint_url.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        let cli = parse(&["--region", "eu-west-1", "rotate", "s"]).expect("before the command too");
        assert_eq!(cli.aws.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn emergency_takes_its_options() {
        let cli = parse(&[
            "emergency",
            "s",
            "--reason",
            "key posted in a public channel",
            "--gap-seconds",
            "0",
            "--keep-accepting-seconds",
            "120",
            "--version-id",
            V,
            "--function",
            "keyshift-rotation",
        ])
        .expect("valid");
        let Command::Emergency(a) = cli.command else {
            panic!("emergency")
        };
        assert_eq!(a.reason, "key posted in a public channel");
        assert_eq!(a.gap_seconds, Some(0));
        assert_eq!(a.keep_accepting_seconds, Some(120));
        assert_eq!(a.version_id.as_deref(), Some(V));
        assert_eq!(a.function.function, "keyshift-rotation");
    }

    #[test]
    fn emergency_refuses_bad_values() {
        let f = ["--function", "f"];
        let with = |extra: &[&'static str]| -> Vec<&'static str> {
            let mut v = vec!["emergency", "s"];
            v.extend_from_slice(extra);
            v.extend_from_slice(&f);
            v
        };
        assert_eq!(kind(&with(&[])), ErrorKind::MissingRequiredArgument);
        assert_eq!(kind(&with(&["--reason", ""])), ErrorKind::ValueValidation);
        let long = "x".repeat(257);
        let long: &'static str = Box::leak(long.into_boxed_str());
        assert_eq!(kind(&with(&["--reason", long])), ErrorKind::ValueValidation);
        assert!(parse(&with(&["--reason", &long[..256]])).is_ok());
        assert_eq!(
            kind(&with(&["--reason", "two\nlines"])),
            ErrorKind::ValueValidation
        );
        assert_eq!(kind(&with(&["--reason", "   "])), ErrorKind::ValueValidation);
        assert_eq!(
            kind(&with(&["--reason", "r", "--gap-seconds", "601"])),
            ErrorKind::ValueValidation
        );
        assert!(parse(&with(&["--reason", "r", "--gap-seconds", "600"])).is_ok());
        assert_eq!(
            kind(&with(&["--reason", "r", "--keep-accepting-seconds", "604801"])),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&with(&["--reason", "r", "--keep-accepting-seconds", "0"])),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&with(&["--reason", "r", "--gap-seconds", "-1"])),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            kind(&with(&["--reason", "r", "--version-id", "short"])),
            ErrorKind::ValueValidation
        );
    }

    #[test]
    fn function_commands_need_a_function() {
        // Cleared so that the test does not depend on the environment it runs in.
        // SAFETY of the test: no other test of this crate reads KEYSHIFT_FUNCTION.
        let missing = |args: &[&str]| {
            let e = parse(args).expect_err("no --function");
            assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument, "{e}");
            assert!(e.to_string().contains("--function"), "{e}");
        };
        if std::env::var_os("KEYSHIFT_FUNCTION").is_none() {
            missing(&["cancel", "s"]);
            missing(&["redrive", "s"]);
            missing(&["emergency", "s", "--reason", "r"]);
        }
        let cli = parse(&[
            "cancel",
            "s",
            "--token",
            V,
            "--function",
            "arn:aws:lambda:us-east-1:1:function:f",
        ])
        .expect("valid");
        let Command::Cancel(a) = cli.command else {
            panic!("cancel")
        };
        assert_eq!(a.token.as_deref(), Some(V));
    }

    #[test]
    fn redrive_takes_a_secret_or_a_queue_never_both() {
        let cli = parse(&["redrive", "s", "--function", "f"]).expect("valid");
        let Command::Redrive(a) = cli.command else {
            panic!("redrive")
        };
        assert_eq!(a.secret.as_deref(), Some("s"));
        assert_eq!(a.from_dead_letter, None);
        let url = "https://sqs.us-east-1.amazonaws.com/123456789012/keyshift-dlq";
        let cli = parse(&["redrive", "--from-dead-letter", url, "--function", "f"]).expect("valid");
        let Command::Redrive(a) = cli.command else {
            panic!("redrive")
        };
        assert_eq!(a.from_dead_letter.as_deref(), Some(url));
        assert_eq!(a.max_messages, None);
        assert_eq!(
            kind(&["redrive", "--function", "f"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["redrive", "s", "--from-dead-letter", url, "--function", "f"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            kind(&["redrive", "--from-dead-letter", "keyshift-dlq", "--function", "f"]),
            ErrorKind::ValueValidation
        );
    }

    #[test]
    fn watch_takes_an_interval_and_a_timeout() {
        let cli = parse(&["watch", "s"]).expect("valid");
        let Command::Watch(a) = cli.command else {
            panic!("watch")
        };
        assert_eq!(a.interval, Duration::from_secs(5));
        assert_eq!(a.timeout, None);
        let cli = parse(&["watch", "s", "--interval", "1", "--timeout", "600"]).expect("valid");
        let Command::Watch(a) = cli.command else {
            panic!("watch")
        };
        assert_eq!(a.interval, Duration::from_secs(1));
        assert_eq!(a.timeout, Some(Duration::from_secs(600)));
        assert_eq!(
            kind(&["watch", "s", "--interval", "0"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind(&["watch", "s", "--interval", "soon"]),
            ErrorKind::ValueValidation
        );
    }

    #[test]
    fn hostile_arguments_are_usage_errors() {
        assert_eq!(kind(&["status"]), ErrorKind::MissingRequiredArgument);
        assert_eq!(kind(&["status", ""]), ErrorKind::ValueValidation);
        assert_eq!(kind(&["status", "a\u{7}b"]), ErrorKind::ValueValidation);
        let huge = "s".repeat(2049);
        assert_eq!(kind(&["status", &huge]), ErrorKind::ValueValidation);
        assert_eq!(
            kind(&["status", "s", "--no-such-flag"]),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            kind(&["status", "s", "--gap-seconds", "0"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(kind(&["explode", "s"]), ErrorKind::InvalidSubcommand);
        assert_eq!(kind(&[]), ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand);
        // Every usage error exits 2, as clap does.
        assert_eq!(
            parse(&["status", "s", "--bogus"]).expect_err("bad").exit_code(),
            2
        );
    }

    #[test]
    fn every_command_has_help_with_its_exit_codes() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        Cli::command().debug_assert();
        let top = cmd.render_long_help().to_string();
        assert!(top.contains("Exit codes:"), "{top}");
        for sub in ["status", "rotate", "emergency", "cancel", "redrive", "watch"] {
            let c = cmd.find_subcommand_mut(sub).expect("a subcommand");
            let help = c.render_long_help().to_string();
            assert!(help.contains("Exit codes: 0"), "{sub}: {help}");
            assert!(
                help.contains("--endpoint-url"),
                "{sub} takes the global options: {help}"
            );
        }
    }
}
