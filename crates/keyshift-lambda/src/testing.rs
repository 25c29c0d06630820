//! SDK errors as the adapters receive them, for the classification tests.

use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ErrorMetadata, SdkError};

/// The error metadata a service answer carries: its code and message.
pub fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

/// `err` as the service's answer to a request, with a 400 response.
pub fn service_error<E>(err: E) -> SdkError<E, HttpResponse> {
    // The status and the empty body through their conversions: the SDK re-exports the
    // response type but not these two, and naming them would take two more crates.
    let status = 400_u16
        .try_into()
        .unwrap_or_else(|_| unreachable!("400 is a status code"));
    SdkError::service_error(err, HttpResponse::new(status, Vec::<u8>::new().into()))
}
