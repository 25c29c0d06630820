//! Structured JSON logs.
//!
//! Only keyshift's own crates log at the level `RUST_LOG` asks for; every other crate is
//! capped at `warn`, whatever `RUST_LOG` says. An allow-list rather than a list of crates
//! known to log payloads, because that list is never complete: below `warn`,
//! `lambda_runtime` logs the raw event (with its RotationToken), `aws_smithy_runtime` the
//! requests and responses (with secret values), `aws_sigv4` the canonical request (with
//! the session token), and `hyper`, `h2`, `hyper_util`, `tower` and `rustls` what they
//! send and receive; a dependency update can add another at any time. keyshift's own
//! crates are the only ones whose log lines are reviewed here (ids, labels, decisions,
//! never a value or a token), so they are the only ones that may say more. The one
//! exception is the runtime's span around each invocation ([`RUNTIME_SPAN`]): ids only.

use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The crates (log targets) that log at the level `RUST_LOG` asks for: the core, these
/// adapters and the Lambda binary.
pub const OWN_CRATES: [&str; 3] = ["keyshift", "keyshift_lambda", "keyshift_rotation"];

/// The most verbose level any other crate may log at.
pub const OTHERS_MAX: Level = Level::WARN;

/// Crates added by [`allow_crates`]: a custom target's own crate, whose log lines its
/// authors have reviewed.
static EXTRA_CRATES: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();

/// Lets `crates` (log targets, as `module_path!()` spells them, for example
/// `my_target`) log at the level `RUST_LOG` asks for, like keyshift's own. Only for
/// crates whose every log line you have checked carries no secret value; call it once,
/// before [`crate::run()`]. Returns false if a list was already set (it is kept).
pub fn allow_crates(crates: &'static [&'static str]) -> bool {
    EXTRA_CRATES.set(crates).is_ok()
}

/// Whether `target` is one of [`OWN_CRATES`] (or of [`allow_crates`]'s) or a module of
/// one.
pub fn is_own(target: &str) -> bool {
    let extra: &[&str] = EXTRA_CRATES.get().copied().unwrap_or_default();
    OWN_CRATES.iter().chain(extra).any(|krate| {
        target
            .strip_prefix(krate)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// The Lambda runtime's span around each invocation: its fields are the request id and
/// the X-Ray trace id, and it is kept so that a line outside keyshift's own span (the
/// binary's "invocation failed") still names the request. A span prints nothing itself.
pub const RUNTIME_SPAN: (&str, &str) = ("lambda_runtime::", "Lambda runtime invoke");

/// Whether a span or event may be logged at all: one of ours, `warn` and above, or the
/// runtime's invocation span.
pub fn allowed(metadata: &Metadata<'_>) -> bool {
    is_own(metadata.target())
        || *metadata.level() <= OTHERS_MAX
        || (metadata.is_span()
            && metadata.target().starts_with(RUNTIME_SPAN.0)
            && metadata.name() == RUNTIME_SPAN.1)
}

/// `RUST_LOG`, or `info` without it.
pub fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// JSON lines to `writer`: one object per line with the level, target, message, fields
/// and the invocation span (secret, token, step), filtered by `env` and [`allowed`].
pub fn layer<S, W>(env: EnvFilter, writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_ansi(false)
        .without_time()
        .with_writer(writer)
        .with_filter(env.and(filter_fn(allowed)))
}

/// Installs JSON logging to stdout (CloudWatch Logs in Lambda).
pub fn init() {
    let _ = tracing_subscriber::registry()
        .with(layer(filter(), std::io::stdout))
        .try_init();
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What the function's subscriber writes for the events `emit` makes under `rust_log`.
    fn logged(rust_log: &str, emit: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber =
            tracing_subscriber::registry().with(layer(EnvFilter::new(rust_log), move || writer.clone()));
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = buffer.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn only_our_crates_log_below_warn_whatever_rust_log_says() {
        let text = logged("trace", || {
            tracing::trace!(target: "lambda_runtime::layers::api_response", body = "RAW-EVENT", "raw JSON event received from Lambda");
            tracing::debug!(target: "aws_smithy_runtime::client::orchestrator", "REQUEST-BODY");
            tracing::trace!(target: "aws_sigv4::http_request::sign", "CANONICAL-REQUEST");
            tracing::debug!(target: "h2::codec", "FRAME");
            tracing::trace!(target: "keyshiftish", "A-LOOKALIKE");
            tracing::warn!(target: "hyper_util::client", "A-WARNING");
            tracing::trace!(target: "keyshift::executor", "CORE-TRACE");
            tracing::debug!(target: "keyshift_lambda::handler", "ADAPTER-DEBUG");
            tracing::debug!(target: "keyshift_rotation", "BINARY-DEBUG");
        });
        for hidden in [
            "RAW-EVENT",
            "REQUEST-BODY",
            "CANONICAL-REQUEST",
            "FRAME",
            "A-LOOKALIKE",
        ] {
            assert!(!text.contains(hidden), "{hidden} logged:\n{text}");
        }
        for shown in ["A-WARNING", "CORE-TRACE", "ADAPTER-DEBUG", "BINARY-DEBUG"] {
            assert!(text.contains(shown), "{shown} not logged:\n{text}");
        }
    }

    #[test]
    fn only_the_runtime_span_around_an_invocation_is_kept() {
        let text = logged("trace", || {
            let runtime = tracing::info_span!(target: "lambda_runtime::layers::trace", "Lambda runtime invoke", requestId = "REQUEST-ID");
            runtime.in_scope(|| tracing::warn!(target: "keyshift_rotation", "invocation failed"));
            let other = tracing::info_span!(target: "hyper::proto", "Lambda runtime invoke", body = "A-BODY");
            other.in_scope(|| tracing::warn!(target: "keyshift_rotation", "OUTSIDE"));
            let event = tracing::info_span!(target: "lambda_runtime::layers::api_response", "raw", body = "RAW-EVENT");
            event.in_scope(|| tracing::warn!(target: "keyshift_rotation", "INSIDE"));
        });
        assert!(text.contains("REQUEST-ID"), "{text}");
        assert!(!text.contains("A-BODY") && !text.contains("RAW-EVENT"), "{text}");
        assert!(text.contains("OUTSIDE") && text.contains("INSIDE"), "{text}");
    }

    #[test]
    fn rust_log_still_quiets_our_crates() {
        let text = logged("warn", || {
            tracing::info!(target: "keyshift::executor", "CORE-INFO");
            tracing::error!(target: "lambda_runtime", "RUNTIME-ERROR");
        });
        assert!(!text.contains("CORE-INFO"), "{text}");
        assert!(text.contains("RUNTIME-ERROR"), "{text}");
    }
}
