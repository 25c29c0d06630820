//! `keyshift`, the operator CLI for keyshift rotations.
//!
//! Install it with `cargo install --path crates/keyshift-cli` (add `--features sso` for
//! profiles that sign in with IAM Identity Center; see below).
//!
//! | command | what it does | how |
//! |---|---|---|
//! | `keyshift status SECRET [--json] [--gap-seconds N]` | where the rotation stands: phase, a label timeline (each version, its labels and creation time, oldest first), accepted and in use, the next move with its due time ("in 4m12s", "overdue by 1m03s"), the expected follow-up schedule and whether it exists, stuck advice | Secrets Manager directly (DescribeSecret, ListSecretVersionIds), then [`keyshift::status::status`]; the expected schedule read by name (GetSchedule, or DescribeRule); no function |
//! | `keyshift rotate SECRET` | starts a rotation now; prints the new version id | RotateSecret with RotateImmediately |
//! | `keyshift emergency SECRET --reason TEXT [--gap-seconds N] [--keep-accepting-seconds N] [--version-id V]` | rotates at once because a version is compromised | DescribeSecret (to pin the AWSCURRENT version unless `--version-id`), then the function's `emergencyRotate` |
//! | `keyshift cancel SECRET [--token V]` | cancels a rotation in progress | the function's `cancel` |
//! | `keyshift redrive SECRET` | carries a rotation on from its labels (a lost follow-up) | the function's `redrive` |
//! | `keyshift redrive --from-dead-letter QUEUE_URL` | replays the follow-ups of a dead-letter queue | SQS ReceiveMessage; the function with each body unchanged; DeleteMessage on success only |
//! | `keyshift watch SECRET [--interval S] [--timeout S]` | follows a rotation until it ends: a line per change, a countdown on a terminal | `status` every interval |
//!
//! T for `status` and `watch` is what the function applies: the secret's
//! `keyshift:gap-seconds` tag when it has one, else `--gap-seconds`, else
//! `KEYSHIFT_GAP_SECONDS`, else 3900 s (the template's default; the function itself
//! requires the variable). The inline budget, which decides whether a follow-up schedule
//! is expected, is `KEYSHIFT_INLINE_BUDGET_SECONDS`, else 600 s, as in the function; the
//! schedule is looked for in `KEYSHIFT_SCHEDULE_GROUP` (default `keyshift`), or among the
//! EventBridge rules when `KEYSHIFT_SCHEDULER=rules`. `status --json` answers with the
//! function's own status payload: [`keyshift::status::Status::to_json`] plus `secret`,
//! `expected_schedule` and, when one is expected, `schedule` (the schedule found, null
//! with a note when it is missing, or `{"error"}` when it could not be read).
//!
//! # The function
//!
//! `emergency`, `cancel` and `redrive` invoke the rotation function (`--function
//! NAME_OR_ARN`, default `$KEYSHIFT_FUNCTION`) through the Lambda Invoke API,
//! synchronously (RequestResponse), once: the Lambda client's retries are disabled, so a
//! function error or a lost answer is reported and never sent again behind the
//! operator's back. The answer is printed as a summary, or as the function's JSON with
//! `--json`. `emergency` without `--version-id` names the version that is AWSCURRENT
//! when the command starts, and prints it: re-running the same command after a timeout
//! asks for the same thing, even if the first attempt already swapped.
//!
//! # AWS
//!
//! Credentials and Region come from aws-config's standard chain (environment variables,
//! the shared config and credentials files, `credential_process`, the container and
//! instance roles), with `--profile` and `--region` on top. `--endpoint-url` sends every
//! request to an emulator; `--lambda-endpoint-url` overrides it for Lambda alone, for a
//! local runtime such as `cargo lambda watch`, which serves the Invoke API on a port of
//! its own. IAM Identity Center (SSO) profiles need the `sso` feature: aws-config's SSO
//! provider brings ring, and the workspace's one crypto provider is aws-lc-rs.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (`status`: nothing looks stuck; `watch`: the rotation ended) |
//! | 2 | usage error: a bad or missing argument (clap), no AWS Region |
//! | 3 | refused, the same command will not succeed as it is: the secret, function or queue does not exist; AWS refused the request as invalid (a rotation already in progress); the function answered `keyshift.InvalidEvent`, `keyshift.Rejected` or `keyshift.Configuration` |
//! | 4 | failed, it may succeed later: an AWS call failed (network, throttling, access denied), or the function did (`keyshift.Retryable`, `keyshift.Failed`, a runtime error or timeout) |
//! | 5 | `status` or `watch`: the rotation looks stuck (the report's `stuck` advice is set) |
//! | 6 | `watch`: `--timeout` passed before the rotation ended |
//! | 130 | `watch`: interrupted (Ctrl-C) |
//!
//! `redrive --from-dead-letter` exits with the worst of its messages (4 over 3 over 0).
//!
//! Errors go to stderr, one line each, prefixed `keyshift: `. Nothing the CLI prints
//! holds a secret value or a RotationToken: it never reads a value, the status report
//! has none, the function's answers and errors carry none, and dead-letter message
//! bodies are sent on, never printed.

pub mod aws;
pub mod cli;
pub mod commands;
pub mod exit;
pub mod invoke;
pub mod policy;
pub mod render;
pub mod schedule;

pub use exit::{CliError, Exit};

/// Runs a parsed command line: prints its result on stdout, its error (one line) on
/// stderr, and returns the exit code.
pub async fn run(cli: cli::Cli) -> Exit {
    match commands::execute(cli).await {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("keyshift: {e}");
            e.exit
        }
    }
}
