//! `keyshift-migrate`: the online migration of stored values to envelope encryption on
//! PostgreSQL. See the library's documentation for the steps and guarantees.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use keyshift_migrate::db::Tls;
use keyshift_migrate::kek::{aws_kms_envelope, aws_source};
use keyshift_migrate::progress::Mode;
use keyshift_migrate::{
    KekSource, MigrateError, Migrator, Options, PREPARE, RotateTarget, connect, open_envelope,
};

/// Online migration of stored values to envelope encryption (PostgreSQL).
#[derive(Debug, Parser)]
#[command(name = "keyshift-migrate", version)]
#[command(group(clap::ArgGroup::new("kek").multiple(false)))]
struct Cli {
    /// The database (a libpq URL or key=value string).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Verify the server's certificate against this CA bundle (PEM); without it, the
    /// platform's roots.
    #[arg(long, conflicts_with = "no_tls")]
    ca_file: Option<PathBuf>,
    /// Plain text (a local test server only).
    #[arg(long)]
    no_tls: bool,
    /// The KEK: a `symmetric` secret in Secrets Manager (credentials and Region from
    /// the environment).
    #[arg(long, group = "kek")]
    kek_secret: Option<String>,
    /// The KEK: a key in AWS KMS (key id, ARN or alias; moving the alias is a KEK
    /// rotation). Legacy values are then KMS `Encrypt` blobs. Credentials, Region and
    /// endpoint (`AWS_ENDPOINT_URL`) from the environment.
    #[arg(long, group = "kek")]
    kek_kms: Option<String>,
    /// The KEK: a local KEK file (tests, rehearsals).
    #[arg(long, group = "kek")]
    kek_file: Option<PathBuf>,
    /// Rows per batch.
    #[arg(long, default_value_t = 1000)]
    batch: i64,
    /// Read and count; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Re-reads of a row whose compare-and-swap lost, before leaving it for the next pass.
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// The final report as one JSON line.
    #[arg(long)]
    json: bool,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
    /// Connections (workers) for the value passes, each over its share of the id range.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Pause after every batch, milliseconds (throttling).
    #[arg(long, default_value_t = 0)]
    pause_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Adds `environments.dek_created_at` and the `keyshift_migrate_state` table.
    Prepare,
    /// Step 1: a wrapped DEK for every environment without one.
    GenerateDeks,
    /// Step 2: legacy values re-encrypted into the envelope form.
    EncryptLegacy,
    /// Step 3: after a KEK rotation, every DEK rewrapped to the current KEK version and
    /// every value's header moved to it.
    Rewrap,
    /// Step 4: a new DEK for an environment (or all), its values re-encrypted.
    RotateDek(RotateCmd),
    /// Opens every value; exits 1 when any fails.
    Verify,
    /// The KEK versions still referenced by DEKs and values, and the legacy values left.
    Report,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct RotateArgs {
    /// The environment.
    #[arg(long)]
    environment: Option<i64>,
    /// Every environment.
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Args)]
struct RotateCmd {
    #[command(flatten)]
    target: RotateArgs,
    /// Start another rotation even though the recorded one finished (without it, a run
    /// resumes the recorded rotation, or only sweeps stragglers when it is done).
    #[arg(long)]
    new: bool,
}

async fn run(cli: Cli) -> Result<bool, MigrateError> {
    let tls = if cli.no_tls {
        Tls::Disable
    } else if let Some(ca) = &cli.ca_file {
        Tls::CaFile(ca.clone())
    } else {
        Tls::Platform
    };
    let db = connect(&cli.database_url, &tls).await?;
    if let Command::Prepare = cli.command {
        db.batch_execute(PREPARE).await?;
        println!("prepared");
        return Ok(true);
    }
    let envelope = match (&cli.kek_file, &cli.kek_secret, &cli.kek_kms) {
        (Some(path), _, _) => open_envelope(KekSource::file(path)).await?,
        (None, Some(id), _) => open_envelope(aws_source(id).await).await?,
        (None, None, Some(key)) => aws_kms_envelope(key).await,
        (None, None, None) => {
            return Err(MigrateError::Config(
                "one of --kek-secret, --kek-kms or --kek-file".into(),
            ));
        }
    };
    let opts = Options {
        batch: cli.batch.max(1),
        dry_run: cli.dry_run,
        retries: cli.retries,
        progress: if cli.quiet { Mode::Quiet } else { Mode::Auto },
        pause: Duration::from_millis(cli.pause_ms),
    };
    let mut m = Migrator::new(db, envelope, opts);
    for _ in 1..cli.workers.max(1) {
        m = m.with_connection(connect(&cli.database_url, &tls).await?);
    }
    let report = match cli.command {
        Command::Prepare => unreachable!("handled above"),
        Command::GenerateDeks => m.generate_deks().await?,
        Command::EncryptLegacy => m.encrypt_legacy().await?,
        Command::Rewrap => m.rewrap().await?,
        Command::RotateDek(a) => {
            let target = match a.target.environment {
                Some(id) => RotateTarget::Environment(id),
                None => RotateTarget::All,
            };
            m.rotate_dek(target, a.new).await?
        }
        Command::Verify => m.verify().await?,
        Command::Report => m.report().await?,
    };
    if cli.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| MigrateError::Config(e.to_string()))?
        );
    } else {
        print!("{}", report.lines());
    }
    Ok(report.failures == 0)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("keyshift-migrate: {e}");
            ExitCode::from(2)
        }
    }
}
