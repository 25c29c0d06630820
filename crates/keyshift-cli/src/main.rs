//! `keyshift`: the operator CLI. Everything is in the library ([`keyshift_cli`]); this
//! parses the command line, runs it on a single-threaded runtime and exits with the
//! documented code.

use std::process::ExitCode;

use clap::Parser;
use keyshift_cli::cli::Cli;

fn main() -> ExitCode {
    // Usage errors exit 2, `--help` and `--version` 0 (clap's codes).
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keyshift: could not start the async runtime: {e}");
            return ExitCode::from(keyshift_cli::Exit::Failed.code());
        }
    };
    ExitCode::from(runtime.block_on(keyshift_cli::run(cli)).code())
}
