//! Structured JSON logs.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Directive;

/// Crates whose debug and trace output can include request and response bodies, which
/// carry secret values: capped at `warn` whatever `RUST_LOG` says.
pub const WIRE_CRATES: [&str; 7] = [
    "aws_smithy_runtime",
    "aws_smithy_http_client",
    "aws_sdk_secretsmanager",
    "aws_sdk_scheduler",
    "aws_sdk_eventbridge",
    "aws_config",
    "hyper",
];

/// The filter: `RUST_LOG` (default `info`), with [`WIRE_CRATES`] capped at `warn`.
pub fn filter() -> EnvFilter {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for krate in WIRE_CRATES {
        if let Ok(d) = format!("{krate}=warn").parse::<Directive>() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

/// Installs JSON logging to stdout (CloudWatch Logs in Lambda): one object per line
/// with the level, target, message, fields and the invocation span (secret, token, step).
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter())
        .with_current_span(true)
        .with_span_list(false)
        .with_ansi(false)
        .without_time()
        .try_init();
}
