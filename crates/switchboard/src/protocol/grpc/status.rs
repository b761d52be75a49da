//! The gRPC status: `grpc-status`, `grpc-message` and `grpc-status-details-bin`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use http::{HeaderMap, HeaderName, HeaderValue};
use prost::Message as _;

use super::{DETAILS_HEADER, MESSAGE_HEADER, STATUS_HEADER};
use crate::error::ErrorDetail;
use crate::metadata::decode_binary_header;
use crate::{Code, Error};

/// `google.rpc.Status`, the payload of `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    /// The numeric code.
    #[prost(int32, tag = "1")]
    pub(crate) code: i32,
    /// The message.
    #[prost(string, tag = "2")]
    pub(crate) message: String,
    /// The details.
    #[prost(message, repeated, tag = "3")]
    pub(crate) details: Vec<prost_types::Any>,
}

/// Writes the status of a call (OK when `error` is `None`) into `trailers`, with the error's
/// metadata.
pub(crate) fn write_status(trailers: &mut HeaderMap, error: Option<&Error>) {
    let Some(error) = error else {
        trailers.insert(STATUS_HEADER, HeaderValue::from_static("0"));
        return;
    };
    for (name, value) in error.metadata() {
        if !is_protocol_trailer(name) {
            trailers.append(name.clone(), value.clone());
        }
    }
    trailers.insert(STATUS_HEADER, HeaderValue::from(error.code().as_i32()));
    if !error.message().is_empty() {
        if let Ok(value) = HeaderValue::try_from(percent_encode(&error.wire_message())) {
            trailers.insert(MESSAGE_HEADER, value);
        }
    }
    if !error.details().is_empty() {
        let status = RpcStatus {
            code: error.code().as_i32(),
            message: error.wire_message().into_owned(),
            details: error.details().iter().map(ErrorDetail::to_any).collect(),
        };
        let encoded = STANDARD_NO_PAD.encode(status.encode_to_vec());
        if let Ok(value) = HeaderValue::try_from(encoded) {
            trailers.insert(DETAILS_HEADER, value);
        }
    }
}

fn is_protocol_trailer(name: &HeaderName) -> bool {
    let name = name.as_str();
    name == STATUS_HEADER || name == MESSAGE_HEADER || name == DETAILS_HEADER
}

/// Reads the status from trailers (or trailers-only headers): `Ok(())` for OK, the error
/// otherwise; `None` when there is no `grpc-status` at all.
pub(crate) fn read_status(trailers: &HeaderMap) -> Option<Result<(), Error>> {
    let status = trailers.get(STATUS_HEADER)?;
    let code = status
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    let Some(code) = code else {
        return Some(Err(Error::internal(format!(
            "protocol error: invalid grpc-status {status:?}"
        ))));
    };
    let Some(code) = Code::from_i32(code) else {
        return Some(Ok(()));
    };
    let message = trailers
        .get(MESSAGE_HEADER)
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    let mut error = Error::wire(code, message);
    if let Some(details) = trailers.get(DETAILS_HEADER) {
        let status = decode_binary_header(details.as_bytes())
            .ok()
            .and_then(|bytes| RpcStatus::decode(bytes).ok());
        match status {
            Some(status) => {
                for detail in status.details {
                    error.add_detail(ErrorDetail::from_any(detail));
                }
            }
            None => {
                return Some(Err(Error::internal(
                    "protocol error: invalid grpc-status-details-bin",
                )));
            }
        }
    }
    for (name, value) in trailers {
        if !is_protocol_trailer(name) {
            error.metadata_mut().append(name.clone(), value.clone());
        }
    }
    Some(Err(error))
}

/// Percent-encodes a status message as gRPC asks: bytes outside printable ASCII, and `%`.
pub(crate) fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Decodes a percent-encoded status message; invalid escapes are kept as they are.
pub(crate) fn percent_decode(value: &[u8]) -> String {
    percent_encoding::percent_decode(value)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_with_details_and_metadata() {
        let error = Error::new(Code::NotFound, "no such 🦀 at 100%")
            .with_detail(ErrorDetail::from_parts(
                "google.protobuf.Duration",
                vec![8, 1],
            ))
            .with_metadata(
                HeaderName::from_static("x-meta"),
                HeaderValue::from_static("1"),
            );
        let mut trailers = HeaderMap::new();
        write_status(&mut trailers, Some(&error));
        assert_eq!(trailers.get(STATUS_HEADER).unwrap(), "5");
        assert_eq!(
            trailers.get(MESSAGE_HEADER).unwrap(),
            "no such %F0%9F%A6%80 at 100%25"
        );
        let back = read_status(&trailers).unwrap().unwrap_err();
        assert_eq!(back.code(), Code::NotFound);
        assert_eq!(back.message(), error.message());
        assert_eq!(back.details(), error.details());
        assert_eq!(back.metadata().get("x-meta").unwrap(), "1");
        let mut ok = HeaderMap::new();
        write_status(&mut ok, None);
        assert!(read_status(&ok).unwrap().is_ok());
        assert!(read_status(&HeaderMap::new()).is_none());
    }
}
