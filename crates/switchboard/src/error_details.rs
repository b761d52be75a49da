//! The standard error details of `google/rpc/error_details.proto`, ready to attach to an
//! [`crate::Error`] and to read back from one.
//!
//! gRPC and Connect clients in every language know these types (grpcurl prints them,
//! connect-es and grpc-go decode them), so an error that carries a `BadRequest` or a
//! `RetryInfo` is understood without sharing a schema. The messages are written here from
//! the public schema's field numbers, as prost would generate them, so no `.proto` file or
//! code generation is needed to use them.
//!
//! ```
//! use switchboard::error_details::{BadRequest, bad_request::FieldViolation};
//! use switchboard::{Code, Error, ErrorDetail};
//!
//! let error = Error::new(Code::InvalidArgument, "the request is invalid").with_detail(
//!     ErrorDetail::new(&BadRequest {
//!         field_violations: vec![FieldViolation {
//!             field: "sentence".into(),
//!             description: "must not be empty".into(),
//!             ..Default::default()
//!         }],
//!     }),
//! );
//! let bad = error.detail::<BadRequest>().unwrap();
//! assert_eq!(bad.field_violations[0].field, "sentence");
//! ```

#![allow(missing_docs)] // The fields are documented by the public schema; each type says what it is.

use std::collections::HashMap;

/// Declares `prost::Name` for a message of package `google.rpc`.
macro_rules! named {
    ($($ty:ty => $name:literal),* $(,)?) => {$(
        impl prost::Name for $ty {
            const NAME: &'static str = $name;
            const PACKAGE: &'static str = "google.rpc";
            fn type_url() -> String {
                format!("type.googleapis.com/google.rpc.{}", $name)
            }
        }
    )*};
}

/// Why a request failed with the details of the failure: a reason (an UPPER_SNAKE_CASE
/// constant), the domain that defines it, and metadata.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ErrorInfo {
    #[prost(string, tag = "1")]
    pub reason: String,
    #[prost(string, tag = "2")]
    pub domain: String,
    #[prost(map = "string, string", tag = "3")]
    pub metadata: HashMap<String, String>,
}

/// When the client may retry a failed request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<prost_types::Duration>,
}

/// Debugging information from the server (stack entries, detail) — for developers, not end
/// users.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DebugInfo {
    #[prost(string, repeated, tag = "1")]
    pub stack_entries: Vec<String>,
    #[prost(string, tag = "2")]
    pub detail: String,
}

/// Which quota checks failed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QuotaFailure {
    #[prost(message, repeated, tag = "1")]
    pub violations: Vec<quota_failure::Violation>,
}

/// Nested types of [`QuotaFailure`].
pub mod quota_failure {
    /// One quota check that failed.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Violation {
        #[prost(string, tag = "1")]
        pub subject: String,
        #[prost(string, tag = "2")]
        pub description: String,
        #[prost(string, tag = "3")]
        pub api_service: String,
        #[prost(string, tag = "4")]
        pub quota_metric: String,
        #[prost(string, tag = "5")]
        pub quota_id: String,
        #[prost(map = "string, string", tag = "6")]
        pub quota_dimensions: std::collections::HashMap<String, String>,
        #[prost(int64, tag = "7")]
        pub quota_value: i64,
        #[prost(int64, optional, tag = "8")]
        pub future_quota_value: Option<i64>,
    }
}

/// Which preconditions failed (e.g. terms of service not accepted).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PreconditionFailure {
    #[prost(message, repeated, tag = "1")]
    pub violations: Vec<precondition_failure::Violation>,
}

/// Nested types of [`PreconditionFailure`].
pub mod precondition_failure {
    /// One precondition that failed.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Violation {
        #[prost(string, tag = "1")]
        pub r#type: String,
        #[prost(string, tag = "2")]
        pub subject: String,
        #[prost(string, tag = "3")]
        pub description: String,
    }
}

/// Which fields of the request are invalid, and why.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BadRequest {
    #[prost(message, repeated, tag = "1")]
    pub field_violations: Vec<bad_request::FieldViolation>,
}

/// Nested types of [`BadRequest`].
pub mod bad_request {
    /// One invalid field: its path (e.g. `items[2].name`) and what is wrong with it.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FieldViolation {
        #[prost(string, tag = "1")]
        pub field: String,
        #[prost(string, tag = "2")]
        pub description: String,
        #[prost(string, tag = "3")]
        pub reason: String,
        #[prost(message, optional, tag = "4")]
        pub localized_message: Option<super::LocalizedMessage>,
    }
}

/// Which request failed, for support: its ID and any data the server can share.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RequestInfo {
    #[prost(string, tag = "1")]
    pub request_id: String,
    #[prost(string, tag = "2")]
    pub serving_data: String,
}

/// The resource the request was about (e.g. a missing file).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceInfo {
    #[prost(string, tag = "1")]
    pub resource_type: String,
    #[prost(string, tag = "2")]
    pub resource_name: String,
    #[prost(string, tag = "3")]
    pub owner: String,
    #[prost(string, tag = "4")]
    pub description: String,
}

/// Links to documentation that helps with the error.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Help {
    #[prost(message, repeated, tag = "1")]
    pub links: Vec<help::Link>,
}

/// Nested types of [`Help`].
pub mod help {
    /// One link.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Link {
        #[prost(string, tag = "1")]
        pub description: String,
        #[prost(string, tag = "2")]
        pub url: String,
    }
}

/// An error message in a locale (BCP-47, e.g. `en-US`), safe to show to end users.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LocalizedMessage {
    #[prost(string, tag = "1")]
    pub locale: String,
    #[prost(string, tag = "2")]
    pub message: String,
}

named! {
    ErrorInfo => "ErrorInfo",
    RetryInfo => "RetryInfo",
    DebugInfo => "DebugInfo",
    QuotaFailure => "QuotaFailure",
    PreconditionFailure => "PreconditionFailure",
    BadRequest => "BadRequest",
    RequestInfo => "RequestInfo",
    ResourceInfo => "ResourceInfo",
    Help => "Help",
    LocalizedMessage => "LocalizedMessage",
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    /// Field numbers and wire types against bytes written by hand from the schema.
    #[test]
    fn the_wire_layout_is_the_schemas() {
        let info = ErrorInfo {
            reason: "R".into(),
            domain: "d".into(),
            metadata: [("k".to_owned(), "v".to_owned())].into(),
        };
        assert_eq!(
            info.encode_to_vec(),
            b"\x0a\x01R\x12\x01d\x1a\x06\x0a\x01k\x12\x01v".to_vec()
        );
        let retry = RetryInfo {
            retry_delay: Some(prost_types::Duration {
                seconds: 2,
                nanos: 0,
            }),
        };
        assert_eq!(retry.encode_to_vec(), b"\x0a\x02\x08\x02".to_vec());
        let bad = BadRequest {
            field_violations: vec![bad_request::FieldViolation {
                field: "f".into(),
                description: "x".into(),
                ..Default::default()
            }],
        };
        assert_eq!(bad.encode_to_vec(), b"\x0a\x06\x0a\x01f\x12\x01x".to_vec());
        assert_eq!(
            <BadRequest as prost::Name>::full_name(),
            "google.rpc.BadRequest"
        );
        assert_eq!(
            <Help as prost::Name>::type_url(),
            "type.googleapis.com/google.rpc.Help"
        );
    }
}
