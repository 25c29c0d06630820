//! Exit codes, and the one error type every command returns.

use std::fmt;

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use keyshift::aws_errors::{AwsErrorClass, class_of};
use keyshift::ports::{StoreError, StoreErrorKind};

/// What the process exits with (the crate documentation and `--help` list them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: done (status: nothing stuck; watch: the rotation ended).
    Success,
    /// 2: a bad or missing argument (clap's own code), or no AWS region.
    Usage,
    /// 3: refused: retrying the same command will not help.
    Refused,
    /// 4: failed: an AWS call or the function failed; it may succeed later.
    Failed,
    /// 5: the rotation looks stuck.
    Stuck,
    /// 6: `watch --timeout` passed.
    TimedOut,
    /// 130: `watch` was interrupted (Ctrl-C), as shells report SIGINT.
    Interrupted,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Usage => 2,
            Exit::Refused => 3,
            Exit::Failed => 4,
            Exit::Stuck => 5,
            Exit::TimedOut => 6,
            Exit::Interrupted => 130,
        }
    }

    /// The worse of two outcomes, for a command that does several things (a dead-letter
    /// redrive): a failure outranks a refusal, which outranks success.
    pub fn worst(self, other: Exit) -> Exit {
        let rank = |e: Exit| match e {
            Exit::Success => 0,
            Exit::Stuck => 1,
            Exit::Refused => 2,
            Exit::TimedOut => 3,
            Exit::Failed => 4,
            Exit::Usage => 5,
            Exit::Interrupted => 6,
        };
        if rank(other) > rank(self) { other } else { self }
    }
}

/// A command that did not succeed: how to exit, and one line for stderr. The line never
/// holds a secret value or a RotationToken: it is built from error codes, AWS's messages
/// about the request and the function's own error messages, none of which carries one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// The exit code.
    pub exit: Exit,
    /// What went wrong, one line.
    pub message: String,
}

impl CliError {
    /// An error exiting with `exit`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            exit,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the message held.
        let line: String = self
            .message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        f.write_str(line.trim())
    }
}

impl std::error::Error for CliError {}

/// The exit code for a function error's `errorType`: the function's refusals
/// (`keyshift.InvalidEvent`, `keyshift.Rejected`, `keyshift.Configuration`) are 3;
/// `keyshift.Retryable`, `keyshift.Failed` and anything else (a runtime error, a
/// timeout: `Sandbox.Timedout`, `Runtime.ExitError`) are 4.
pub fn exit_for_error_type(error_type: &str) -> Exit {
    match error_type {
        "keyshift.InvalidEvent" | "keyshift.Rejected" | "keyshift.Configuration" => Exit::Refused,
        _ => Exit::Failed,
    }
}

/// The exit code for a Secrets Manager error as [`keyshift_lambda::secrets::classify`]
/// sorted it: what the request itself gets wrong is 3, the rest 4.
pub fn exit_for_store_error(kind: StoreErrorKind) -> Exit {
    match kind {
        StoreErrorKind::NotFound
        | StoreErrorKind::AlreadyExists
        | StoreErrorKind::InvalidParameter
        | StoreErrorKind::InvalidRequest
        | StoreErrorKind::Deleted => Exit::Refused,
        StoreErrorKind::Throttled
        | StoreErrorKind::Transient
        | StoreErrorKind::AccessDenied
        | StoreErrorKind::LimitExceeded
        | StoreErrorKind::Kms => Exit::Failed,
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        let exit = exit_for_store_error(e.kind);
        let message = if e.kind == StoreErrorKind::NotFound {
            format!("the secret does not exist ({})", e.message)
        } else {
            e.message
        };
        CliError::new(exit, message)
    }
}

/// Whether an error code of Lambda or SQS says the request cannot succeed as it is: no
/// such function or queue, a bad parameter, a payload too large or of the wrong type.
fn is_refused_code(code: &str) -> bool {
    matches!(
        class_of(code),
        Some(AwsErrorClass::NotFound | AwsErrorClass::InvalidParameter)
    )
}

/// An SDK error of any service (Lambda, SQS) as a [`CliError`]: `operation: code:
/// message`, never a request parameter. The codes in which AWS says the request itself
/// is wrong (no such function or queue, a bad parameter) are 3, everything else 4.
pub fn sdk_error<E, R>(e: SdkError<E, R>, operation: &str) -> CliError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    let exit = match &e {
        SdkError::ServiceError(_) if e.code().is_some_and(is_refused_code) => Exit::Refused,
        SdkError::ConstructionFailure(_) => Exit::Usage,
        _ => Exit::Failed,
    };
    let store = keyshift_lambda::secrets::classify(e, operation);
    CliError::new(exit, store.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_error_types_map_to_refused_or_failed() {
        for t in [
            "keyshift.InvalidEvent",
            "keyshift.Rejected",
            "keyshift.Configuration",
        ] {
            assert_eq!(exit_for_error_type(t), Exit::Refused, "{t}");
        }
        for t in [
            "keyshift.Retryable",
            "keyshift.Failed",
            "Sandbox.Timedout",
            "Runtime.ExitError",
            "Unhandled",
            "",
        ] {
            assert_eq!(exit_for_error_type(t), Exit::Failed, "{t}");
        }
    }

    #[test]
    fn the_codes_are_the_documented_ones() {
        let all = [
            (Exit::Success, 0),
            (Exit::Usage, 2),
            (Exit::Refused, 3),
            (Exit::Failed, 4),
            (Exit::Stuck, 5),
            (Exit::TimedOut, 6),
            (Exit::Interrupted, 130),
        ];
        for (exit, code) in all {
            assert_eq!(exit.code(), code, "{exit:?}");
            if code != 130 {
                assert!(
                    crate::cli::EXIT_CODES.contains(&format!("\n  {code}  ")),
                    "{code} is in --help"
                );
            }
        }
        assert!(crate::cli::EXIT_CODES.contains("130  watch: interrupted"));
    }

    #[test]
    fn store_errors_split_into_refused_and_failed() {
        assert_eq!(exit_for_store_error(StoreErrorKind::NotFound), Exit::Refused);
        assert_eq!(
            exit_for_store_error(StoreErrorKind::InvalidRequest),
            Exit::Refused
        );
        assert_eq!(exit_for_store_error(StoreErrorKind::Deleted), Exit::Refused);
        assert_eq!(exit_for_store_error(StoreErrorKind::Transient), Exit::Failed);
        assert_eq!(exit_for_store_error(StoreErrorKind::Throttled), Exit::Failed);
        assert_eq!(exit_for_store_error(StoreErrorKind::AccessDenied), Exit::Failed);
        let e = CliError::from(StoreError::new(
            StoreErrorKind::NotFound,
            "DescribeSecret: ResourceNotFoundException: Secrets Manager can't find the specified secret.",
        ));
        assert_eq!(e.exit, Exit::Refused);
        assert!(e.to_string().starts_with("the secret does not exist"), "{e}");
    }

    #[test]
    fn lambda_and_sqs_codes_that_cannot_succeed_are_refused() {
        for code in [
            "ResourceNotFoundException",
            "InvalidParameterValueException",
            "InvalidRequestContentException",
            "RequestTooLargeException",
            "UnsupportedMediaTypeException",
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
            "InvalidAddress",
        ] {
            assert!(is_refused_code(code), "{code}");
        }
        for code in [
            "ThrottlingException",
            "TooManyRequestsException",
            "AccessDeniedException",
            "ServiceException",
            "KMSDisabledException",
            "",
        ] {
            assert!(!is_refused_code(code), "{code}");
        }
    }

    #[test]
    fn the_worst_outcome_wins() {
        assert_eq!(Exit::Success.worst(Exit::Refused), Exit::Refused);
        assert_eq!(Exit::Refused.worst(Exit::Failed), Exit::Failed);
        assert_eq!(Exit::Failed.worst(Exit::Refused), Exit::Failed);
        assert_eq!(Exit::Success.worst(Exit::Success), Exit::Success);
    }

    #[test]
    fn an_error_is_one_line() {
        let e = CliError::new(Exit::Failed, "first\nsecond\r\tthird\n");
        assert_eq!(e.to_string(), "first second  third");
    }
}
