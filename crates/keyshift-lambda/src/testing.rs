//! SDK errors as the adapters receive them, for the classification tests.

use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

/// The error metadata a service answer carries: its code and message.
pub fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

/// `err` as the service's answer to a request, with a 400 response.
pub fn service_error<E>(err: E) -> SdkError<E, HttpResponse> {
    let status = StatusCode::try_from(400).unwrap_or_else(|_| unreachable!("400 is a status code"));
    SdkError::service_error(err, HttpResponse::new(status, SdkBody::empty()))
}
