//! REST errors: the catalogue's code, text and action as JSON, with the
//! code's HTTP status. Technical detail is logged where it happens.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use csp_domain::ErrorCode;

#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) code: ErrorCode,
    /// Overrides the catalogue text (e.g. to name the limit that was hit).
    pub(crate) message: Option<String>,
}

impl ApiError {
    pub(crate) fn new(code: ErrorCode) -> Self {
        Self {
            code,
            message: None,
        }
    }

    pub(crate) fn from_status(status: &tonic::Status) -> Self {
        let code = csp_rpc::error_code(status);
        if code == ErrorCode::Internal || code == ErrorCode::Unavailable {
            tracing::error!(grpc.code = ?status.code(), detail = status.message(), "backend call failed");
        }
        Self {
            code,
            message: csp_rpc::user_message(status),
        }
    }
}

impl From<crate::dto::UnknownValue> for ApiError {
    fn from(v: crate::dto::UnknownValue) -> Self {
        tracing::error!(error = %v.error, "the tickets service sent an unknown {}", v.what);
        ApiError::new(ErrorCode::Internal)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = http::StatusCode::from_u16(self.code.http_status())
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = crate::dto::ErrorBody {
            error: crate::dto::ErrorDetail {
                code: self.code,
                message: self.message.as_deref().unwrap_or(self.code.user_message()),
                action: self.code.suggested_action(),
            },
        };
        (status, Json(body)).into_response()
    }
}

/// The body, or the catalogued answer to one over the limit (axum's own
/// answer is plain text) or cut short. Every handler that reads a body
/// takes it through here, so a 413 is the same JSON error on every route.
pub(crate) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::PayloadTooLarge)
        } else {
            ApiError {
                code: ErrorCode::InvalidRequest,
                message: Some("The request body could not be read.".into()),
            }
        }
    })
}
