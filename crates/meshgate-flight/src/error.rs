//! Errors of the Flight SQL layer and the one place they become gRPC statuses.

use meshgate_catalog::{ProblemKind, ProductError};
use meshgate_engine::EngineError;
use meshgate_policy::PolicyError;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum FlightError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A ticket or handle that is forged, tampered, for someone else or expired.
    #[error("{0}")]
    InvalidTicket(String),
    /// A valid ticket or handle redeemed by someone it was not issued to.
    #[error("{0}")]
    OtherPrincipal(String),
    /// A request the server cannot decode.
    #[error("{0}")]
    BadRequest(String),
    /// A Flight SQL feature meshgate does not offer (yet), with what to use instead.
    #[error("{0}")]
    Unsupported(String),
    /// A session cookie that is forged, expired or closed.
    #[error("{0}")]
    SessionNotFound(String),
    /// The query was cancelled with CancelFlightInfo.
    #[error("the query was cancelled (CancelFlightInfo)")]
    Cancelled,
    /// Encoding results failed.
    #[error("cannot encode results: {0}")]
    Encode(String),
    /// One result message larger than the server sends (a single row over the limit).
    #[error(
        "a result message of {bytes} bytes is over the server's limit of {limit} bytes \
         (one row too large to send); select fewer or smaller columns"
    )]
    MessageTooLarge { bytes: usize, limit: usize },
    /// A broken invariant in the Flight layer itself.
    #[error("{0}")]
    Internal(String),
}

impl From<datafusion::common::DataFusionError> for FlightError {
    fn from(error: datafusion::common::DataFusionError) -> Self {
        FlightError::Engine(EngineError::from(error))
    }
}

impl From<arrow::error::ArrowError> for FlightError {
    fn from(error: arrow::error::ArrowError) -> Self {
        FlightError::Encode(error.to_string())
    }
}

impl From<FlightError> for Status {
    fn from(error: FlightError) -> Self {
        to_status(&error)
    }
}

/// The one mapping from meshgate errors to gRPC statuses. Internal details are
/// logged here and never sent.
pub fn to_status(error: &FlightError) -> Status {
    let (code, message) = match error {
        FlightError::Engine(engine) => match engine {
            EngineError::InvalidSql(_)
            | EngineError::Refused { .. }
            | EngineError::TooComplex(_)
            | EngineError::Unsupported { .. }
            | EngineError::NotShardable(_)
            | EngineError::Execution(_) => (Code::InvalidArgument, engine.to_string()),
            EngineError::TableNotFound { .. } => (Code::NotFound, engine.to_string()),
            EngineError::PartitioningChanged | EngineError::ShardsChanged(_) | EngineError::Degraded(_) => {
                (Code::FailedPrecondition, engine.to_string())
            }
            EngineError::TimedOut(_) => (Code::DeadlineExceeded, engine.to_string()),
            EngineError::Product(product) => (product_code(product), engine.to_string()),
            EngineError::ResourcesExhausted(_) => (Code::ResourceExhausted, engine.to_string()),
            EngineError::WorkerUnavailable(_) => (Code::Unavailable, engine.to_string()),
            EngineError::Governance(PolicyError::ExplainAnalyzeRefused) => (Code::InvalidArgument, engine.to_string()),
            EngineError::Governance(PolicyError::Unverified) => {
                tracing::error!("a query plan failed governance verification");
                (Code::Internal, engine.to_string())
            }
            EngineError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (Code::Internal, "internal error in meshgate; the server log has the details".to_owned())
            }
        },
        FlightError::InvalidTicket(_) => (Code::InvalidArgument, error.to_string()),
        FlightError::OtherPrincipal(_) => (Code::Unauthenticated, error.to_string()),
        FlightError::BadRequest(_) => (Code::InvalidArgument, error.to_string()),
        FlightError::Unsupported(_) => (Code::Unimplemented, error.to_string()),
        FlightError::SessionNotFound(_) => (Code::NotFound, error.to_string()),
        FlightError::Cancelled => (Code::Cancelled, error.to_string()),
        FlightError::MessageTooLarge { .. } => (Code::ResourceExhausted, error.to_string()),
        FlightError::Internal(detail) => {
            tracing::error!(%detail, "internal error");
            (Code::Internal, "internal error in meshgate; the server log has the details".to_owned())
        }
        FlightError::Encode(detail) => {
            tracing::error!(%detail, "encoding results failed");
            (Code::Internal, "cannot encode results; the server log has the details".to_owned())
        }
    };
    if code != Code::Internal {
        tracing::debug!(?code, %message, "request failed");
    }
    Status::new(code, bounded(message))
}

/// A gRPC code's canonical name (`NOT_FOUND`, `PERMISSION_DENIED`, …), as the audit
/// log records it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Longest error message sent. The message travels as an HTTP/2 trailer, and
/// clients cap those (grpc-java at 8 KiB of metadata, after percent-encoding);
/// over the cap, a client reports its own error instead of meshgate's.
const MAX_MESSAGE_BYTES: usize = 4096;

/// `message`, cut at a character boundary once longer than [`MAX_MESSAGE_BYTES`].
fn bounded(mut message: String) -> String {
    const MARK: &str = " … (truncated)";
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES - MARK.len();
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str(MARK);
    }
    message
}

fn product_code(product: &ProductError) -> Code {
    match product.kind {
        ProblemKind::Unavailable => Code::Unavailable,
        ProblemKind::SchemaDrift => Code::FailedPrecondition,
        // gRPC's "unrecoverable data loss or corruption": the files, not the query.
        ProblemKind::Corrupt => Code::DataLoss,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let long = format!("valid fields are {}", "é, ".repeat(3000));
        let status = to_status(&FlightError::BadRequest(long.clone()));
        assert!(status.message().len() <= MAX_MESSAGE_BYTES, "{}", status.message().len());
        assert!(status.message().ends_with("(truncated)"));
        assert!(long.starts_with(status.message().trim_end_matches(" … (truncated)")));
        let short = to_status(&FlightError::BadRequest("bad ticket".into()));
        assert_eq!(short.message(), "bad ticket");
    }

    #[test]
    fn codes_follow_the_error() {
        let not_found =
            FlightError::Engine(EngineError::TableNotFound { name: "sales.nope".into(), hint: String::new() });
        let status = to_status(&not_found);
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "table sales.nope not found");
        let down = ProductError {
            product: "crm.customer".into(),
            kind: ProblemKind::Unavailable,
            detail: "connection refused".into(),
        };
        assert_eq!(to_status(&FlightError::Engine(EngineError::Product(down))).code(), Code::Unavailable);
        let internal = to_status(&FlightError::Engine(EngineError::Internal("secret detail".into())));
        assert!(!internal.message().contains("secret detail"));
    }
}
