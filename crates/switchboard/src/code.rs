//! The sixteen status codes shared by Connect and gRPC.

use std::fmt;
use std::str::FromStr;

/// A status code for a failed call.
///
/// The set is fixed by gRPC and reused by Connect; there are no user-defined codes. `Ok` is
/// deliberately absent: a successful call has no code, it has a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Code {
    /// The call was cancelled, usually by the caller.
    Canceled = 1,
    /// Catch-all for errors of unclear origin.
    Unknown = 2,
    /// The request is invalid regardless of system state.
    InvalidArgument = 3,
    /// The deadline expired before the call completed.
    DeadlineExceeded = 4,
    /// A requested entity was not found.
    NotFound = 5,
    /// The entity the caller tried to create already exists.
    AlreadyExists = 6,
    /// The caller is not allowed to perform the operation.
    PermissionDenied = 7,
    /// A resource (quota, memory, a size limit) is exhausted.
    ResourceExhausted = 8,
    /// The system is not in the state the operation needs.
    FailedPrecondition = 9,
    /// The operation was aborted, typically by a concurrency conflict.
    Aborted = 10,
    /// The operation was attempted past the valid range.
    OutOfRange = 11,
    /// The operation is not implemented, supported or enabled.
    Unimplemented = 12,
    /// An invariant of the underlying system is broken.
    Internal = 13,
    /// The service is unavailable, usually transiently.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The caller has no valid credentials.
    Unauthenticated = 16,
}

impl Code {
    /// Every code, in numeric order.
    pub const ALL: [Code; 16] = [
        Code::Canceled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    /// The snake_case name used on the Connect wire, e.g. `"invalid_argument"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::Canceled => "canceled",
            Code::Unknown => "unknown",
            Code::InvalidArgument => "invalid_argument",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::PermissionDenied => "permission_denied",
            Code::ResourceExhausted => "resource_exhausted",
            Code::FailedPrecondition => "failed_precondition",
            Code::Aborted => "aborted",
            Code::OutOfRange => "out_of_range",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::DataLoss => "data_loss",
            Code::Unauthenticated => "unauthenticated",
        }
    }

    /// Reads a wire name; anything unrecognised reads as [`Code::Unknown`], as the protocol
    /// asks, so a newer peer never breaks an older one.
    pub fn from_name(name: &str) -> Code {
        Code::ALL
            .into_iter()
            .find(|code| code.as_str() == name)
            .unwrap_or(Code::Unknown)
    }

    /// The numeric gRPC status value (1..=16).
    pub const fn as_i32(self) -> i32 {
        self as i32
    }

    /// The code for a numeric gRPC status; `None` for 0 (OK), and [`Code::Unknown`] for
    /// values outside the known range.
    pub fn from_i32(value: i32) -> Option<Code> {
        match value {
            0 => None,
            1..=16 => Some(Code::ALL[(value - 1) as usize]),
            _ => Some(Code::Unknown),
        }
    }

    /// The HTTP status a Connect unary error response carries for this code.
    pub const fn http_status(self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            // 499 is not a registered status, but `from_u16` accepts any 3-digit value.
            Code::Canceled => match S::from_u16(499) {
                Ok(status) => status,
                Err(_) => S::REQUEST_TIMEOUT,
            },
            Code::Unknown | Code::Internal | Code::DataLoss => S::INTERNAL_SERVER_ERROR,
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => S::BAD_REQUEST,
            Code::DeadlineExceeded => S::GATEWAY_TIMEOUT,
            Code::NotFound => S::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => S::CONFLICT,
            Code::PermissionDenied => S::FORBIDDEN,
            Code::ResourceExhausted => S::TOO_MANY_REQUESTS,
            Code::Unimplemented => S::NOT_IMPLEMENTED,
            Code::Unavailable => S::SERVICE_UNAVAILABLE,
            Code::Unauthenticated => S::UNAUTHORIZED,
        }
    }

    /// The code a client infers from an HTTP status when the body carries no Connect error
    /// (the protocol's "HTTP to error code" table).
    pub fn from_http_status(status: http::StatusCode) -> Code {
        match status.as_u16() {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Code {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Code::from_name(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_read_as_unknown() {
        for code in Code::ALL {
            assert_eq!(Code::from_name(code.as_str()), code);
            assert_eq!(Code::from_i32(code.as_i32()), Some(code));
        }
        assert_eq!(Code::from_name("no_such_code"), Code::Unknown);
        assert_eq!(Code::from_i32(0), None);
        assert_eq!(Code::from_i32(99), Some(Code::Unknown));
    }

    #[test]
    fn http_mapping_follows_the_protocol_tables() {
        assert_eq!(Code::Canceled.http_status().as_u16(), 499);
        assert_eq!(Code::ResourceExhausted.http_status().as_u16(), 429);
        assert_eq!(Code::Unimplemented.http_status().as_u16(), 501);
        assert_eq!(Code::DeadlineExceeded.http_status().as_u16(), 504);
        let infer = |s: u16| Code::from_http_status(http::StatusCode::from_u16(s).unwrap());
        assert_eq!(infer(400), Code::Internal);
        assert_eq!(infer(404), Code::Unimplemented);
        assert_eq!(infer(429), Code::Unavailable);
        assert_eq!(infer(502), Code::Unavailable);
        assert_eq!(infer(418), Code::Unknown);
    }
}
