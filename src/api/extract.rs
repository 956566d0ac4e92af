//! Extractors that answer bad input in our problem shape.

use axum::extract::FromRequest;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;

use crate::error::Error;
use crate::problem::HttpError;

/// JSON body; any rejection becomes an RFC 7807 problem.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(HttpError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for HttpError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => HttpError::PayloadTooLarge(r.body_text()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => HttpError::UnsupportedMediaType(
                "expected a body with Content-Type: application/json".into(),
            ),
            _ => Error::BadRequest(r.body_text()).into(),
        }
    }
}

/// Query string; any rejection becomes an RFC 7807 problem.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(HttpError))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for HttpError {
    fn from(r: QueryRejection) -> Self {
        Error::BadRequest(r.body_text()).into()
    }
}

/// Path parameters; any rejection becomes an RFC 7807 problem.
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(HttpError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for HttpError {
    fn from(r: PathRejection) -> Self {
        Error::BadRequest(r.body_text()).into()
    }
}
