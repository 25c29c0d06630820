//! The error codes AWS answers with, and what each means: one table for every crate that
//! calls AWS (the function's Secrets Manager and scheduler adapters, the client's
//! Secrets Manager source, the envelope's KMS key, the CLI, the PostgreSQL target). Each
//! maps the class to its own error kind; the codes are listed here only.
//!
//! Plain text, no SDK types: an adapter passes the code of a service error
//! (`ProvideErrorMetadata::code`). A code not in the table is `None`: each adapter says
//! what an unknown code is (mostly "worth another try").
//!
//! A code means one thing whatever the service, with one exception documented on
//! [`AwsErrorClass::LimitExceeded`]. The table lists the codes of the services keyshift
//! calls (Secrets Manager, EventBridge Scheduler, EventBridge, KMS, Lambda, SQS) that
//! an adapter tells apart.

/// What an AWS error code says about the request and whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AwsErrorClass {
    /// The resource (secret, version, schedule, rule, key, function, queue) does not exist.
    NotFound,
    /// The resource to create exists already (Secrets Manager's ResourceExistsException,
    /// Scheduler's ConflictException).
    AlreadyExists,
    /// A parameter is out of range or the request is malformed: the same request fails
    /// the same way.
    InvalidParameter,
    /// The request is not valid for the resource's current state (Secrets Manager's
    /// InvalidRequestException: a rotation in progress, a secret marked for deletion).
    InvalidState,
    /// A limit is reached. In Secrets Manager, Scheduler and EventBridge a quota
    /// (versions, schedules, rules): trying again does not help. In KMS,
    /// `LimitExceededException` is a request rate: its adapter retries it.
    LimitExceeded,
    /// The KMS key cannot be used: disabled, pending deletion, unavailable, or its
    /// policy refuses (KMS's own codes and those Secrets Manager passes on).
    KeyUnusable,
    /// Encryption or decryption failed (Secrets Manager's DecryptionFailure and
    /// EncryptionFailure, KMS's wrong ciphertext or key).
    Crypto,
    /// The caller may not do this (IAM, a resource policy).
    AccessDenied,
    /// The caller's credentials are not recognised (a bad or expired key pair).
    Unauthenticated,
    /// Too many requests: slow down and try again.
    Throttled,
    /// A failure on AWS's side: try again.
    ServerError,
    /// A concurrent change to the same resource: try again.
    Conflict,
}

/// Every code the adapters tell apart, with its class.
pub const AWS_ERROR_CODES: &[(&str, AwsErrorClass)] = &[
    // Not found.
    ("ResourceNotFoundException", AwsErrorClass::NotFound),
    ("NotFoundException", AwsErrorClass::NotFound),
    ("QueueDoesNotExist", AwsErrorClass::NotFound),
    ("AWS.SimpleQueueService.NonExistentQueue", AwsErrorClass::NotFound),
    // Exists already.
    ("ResourceExistsException", AwsErrorClass::AlreadyExists),
    ("ConflictException", AwsErrorClass::AlreadyExists),
    // A bad request.
    ("InvalidParameterException", AwsErrorClass::InvalidParameter),
    ("ValidationException", AwsErrorClass::InvalidParameter),
    ("InvalidParameterValueException", AwsErrorClass::InvalidParameter),
    ("InvalidRequestContentException", AwsErrorClass::InvalidParameter),
    ("RequestTooLargeException", AwsErrorClass::InvalidParameter),
    ("UnsupportedMediaTypeException", AwsErrorClass::InvalidParameter),
    ("InvalidAddress", AwsErrorClass::InvalidParameter),
    ("InvalidRequestException", AwsErrorClass::InvalidState),
    // Limits.
    ("LimitExceededException", AwsErrorClass::LimitExceeded),
    ("ServiceQuotaExceededException", AwsErrorClass::LimitExceeded),
    // The KMS key.
    ("KMSInvalidStateException", AwsErrorClass::KeyUnusable),
    ("KMSAccessDeniedException", AwsErrorClass::KeyUnusable),
    ("KMSDisabledException", AwsErrorClass::KeyUnusable),
    ("KMSNotFoundException", AwsErrorClass::KeyUnusable),
    ("DisabledException", AwsErrorClass::KeyUnusable),
    ("KeyUnavailableException", AwsErrorClass::KeyUnusable),
    ("DecryptionFailure", AwsErrorClass::Crypto),
    ("EncryptionFailure", AwsErrorClass::Crypto),
    ("InvalidCiphertextException", AwsErrorClass::Crypto),
    ("IncorrectKeyException", AwsErrorClass::Crypto),
    // Who is asking.
    ("AccessDeniedException", AwsErrorClass::AccessDenied),
    ("AccessDenied", AwsErrorClass::AccessDenied),
    ("UnrecognizedClientException", AwsErrorClass::Unauthenticated),
    // Passing failures.
    ("ThrottlingException", AwsErrorClass::Throttled),
    ("TooManyRequestsException", AwsErrorClass::Throttled),
    ("RequestLimitExceeded", AwsErrorClass::Throttled),
    ("InternalServiceError", AwsErrorClass::ServerError),
    ("InternalServerException", AwsErrorClass::ServerError),
    ("InternalException", AwsErrorClass::ServerError),
    ("KMSInternalException", AwsErrorClass::ServerError),
    ("DependencyTimeoutException", AwsErrorClass::ServerError),
    ("ConcurrentModificationException", AwsErrorClass::Conflict),
];

/// The class of an AWS error `code` (exact, case-sensitive, as AWS spells it), or `None`
/// for a code the table does not list.
pub fn class_of(code: &str) -> Option<AwsErrorClass> {
    AWS_ERROR_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|&(_, class)| class)
}

impl AwsErrorClass {
    /// Whether the same request may succeed later without anyone acting: throttling, a
    /// server error, a concurrent change.
    pub fn is_passing(self) -> bool {
        matches!(
            self,
            AwsErrorClass::Throttled | AwsErrorClass::ServerError | AwsErrorClass::Conflict
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn each_code_is_listed_once_and_looked_up_exactly() {
        let codes: BTreeSet<&str> = AWS_ERROR_CODES.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes.len(), AWS_ERROR_CODES.len(), "a code listed twice");
        for &(code, class) in AWS_ERROR_CODES {
            assert_eq!(class_of(code), Some(class), "{code}");
            assert!(
                !code.is_empty() && !code.contains(char::is_whitespace),
                "{code:?}"
            );
        }
        assert_eq!(class_of(""), None);
        assert_eq!(class_of("throttlingexception"), None);
        assert_eq!(class_of("ManagedRuleException"), None);
    }

    #[test]
    fn the_classes_of_the_codes_the_adapters_rely_on() {
        use AwsErrorClass::*;
        for (code, class) in [
            ("ResourceNotFoundException", NotFound),
            ("ResourceExistsException", AlreadyExists),
            ("ConflictException", AlreadyExists),
            ("InvalidParameterException", InvalidParameter),
            ("ValidationException", InvalidParameter),
            ("InvalidRequestException", InvalidState),
            ("LimitExceededException", LimitExceeded),
            ("DecryptionFailure", Crypto),
            ("KMSDisabledException", KeyUnusable),
            ("AccessDeniedException", AccessDenied),
            ("UnrecognizedClientException", Unauthenticated),
            ("ThrottlingException", Throttled),
            ("InternalServiceError", ServerError),
            ("ConcurrentModificationException", Conflict),
        ] {
            assert_eq!(class_of(code), Some(class), "{code}");
        }
        let passing: Vec<&str> = AWS_ERROR_CODES
            .iter()
            .filter(|(_, class)| class.is_passing())
            .map(|(c, _)| *c)
            .collect();
        assert_eq!(
            passing,
            [
                "ThrottlingException",
                "TooManyRequestsException",
                "RequestLimitExceeded",
                "InternalServiceError",
                "InternalServerException",
                "InternalException",
                "KMSInternalException",
                "DependencyTimeoutException",
                "ConcurrentModificationException",
            ]
        );
    }
}
