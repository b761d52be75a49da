//! Connect's JSON `Error` and `EndStreamResponse` documents.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ErrorDetail;
use crate::{Code, Error};

#[derive(Serialize, Deserialize, Default)]
struct WireError {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    details: Vec<WireDetail>,
}

#[derive(Serialize, Deserialize)]
struct WireDetail {
    #[serde(rename = "type")]
    type_name: String,
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    debug: Option<Value>,
}

fn to_wire(error: &Error) -> WireError {
    WireError {
        code: Some(error.code().as_str().to_owned()),
        message: (!error.message().is_empty()).then(|| error.wire_message().into_owned()),
        details: error
            .details()
            .iter()
            .map(|d| WireDetail {
                type_name: d.type_name().to_owned(),
                value: STANDARD_NO_PAD.encode(d.value()),
                debug: d.debug().cloned(),
            })
            .collect(),
    }
}

/// Serialises an error as the body of a unary error response.
pub(crate) fn error_body(error: &Error) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&to_wire(error)).unwrap_or_else(|_| b"{\"code\":\"internal\"}".to_vec()),
    )
}

fn decode_base64(value: &str) -> Option<Vec<u8>> {
    let trimmed = value.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .or_else(|_| STANDARD.decode(value))
        .or_else(|_| URL_SAFE.decode(value))
        .ok()
}

fn from_wire(wire: WireError) -> Option<Error> {
    let code = wire.code.filter(|c| !c.is_empty())?;
    let mut error = Error::wire(Code::from_name(&code), wire.message.unwrap_or_default());
    for detail in wire.details {
        let value = decode_base64(&detail.value)?;
        let mut d = ErrorDetail::from_parts(detail.type_name, value);
        if let Some(debug) = detail.debug {
            d = d.with_debug(debug);
        }
        error.add_detail(d);
    }
    Some(error)
}

/// Parses a unary error body; `None` when it is not a valid Connect error (the caller then
/// infers the code from the HTTP status).
pub(crate) fn parse_error_body(body: &[u8]) -> Option<Error> {
    serde_json::from_slice::<WireError>(body)
        .ok()
        .and_then(from_wire)
}

/// Serialises an end-of-stream message: the error if any, and the trailers as metadata.
pub(crate) fn end_stream_body(error: Option<&Error>, trailers: &HeaderMap) -> Bytes {
    let mut doc = Map::new();
    if let Some(error) = error {
        if let Ok(value) = serde_json::to_value(to_wire(error)) {
            doc.insert("error".into(), value);
        }
    }
    let mut metadata: Map<String, Value> = Map::new();
    let mut add = |name: &HeaderName, value: &HeaderValue| {
        if let Ok(text) = value.to_str() {
            let entry = metadata
                .entry(name.as_str().to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(values) = entry {
                values.push(Value::String(text.to_owned()));
            }
        }
    };
    for (name, value) in trailers {
        add(name, value);
    }
    if let Some(error) = error {
        for (name, value) in error.metadata() {
            add(name, value);
        }
    }
    if !metadata.is_empty() {
        doc.insert("metadata".into(), Value::Object(metadata));
    }
    Bytes::from(serde_json::to_vec(&Value::Object(doc)).unwrap_or_else(|_| b"{}".to_vec()))
}

#[derive(Deserialize)]
struct WireEndStream {
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

/// Parses an end-of-stream message into (trailers, error).
pub(crate) fn parse_end_stream(body: &[u8]) -> Result<(HeaderMap, Option<Error>), Error> {
    let invalid = |why: &str| {
        Error::new(
            Code::Internal,
            format!("protocol error: invalid end-of-stream message: {why}"),
        )
    };
    let end: WireEndStream = serde_json::from_slice(body).map_err(|e| invalid(&e.to_string()))?;
    let mut trailers = HeaderMap::new();
    for (key, values) in end.metadata.unwrap_or_default() {
        let name = HeaderName::try_from(key.as_str()).map_err(|_| invalid("bad metadata key"))?;
        let Value::Array(values) = values else {
            return Err(invalid("metadata values must be arrays"));
        };
        for value in values {
            let Value::String(value) = value else {
                return Err(invalid("metadata values must be strings"));
            };
            let value = HeaderValue::try_from(value).map_err(|_| invalid("bad metadata value"))?;
            trailers.append(name.clone(), value);
        }
    }
    let error = match end.error {
        None | Some(Value::Null) => None,
        Some(value) => {
            let wire: WireError =
                serde_json::from_value(value).map_err(|e| invalid(&e.to_string()))?;
            let mut error = from_wire(wire).ok_or_else(|| invalid("error without a code"))?;
            error.metadata_mut().extend(trailers.clone());
            Some(error)
        }
    };
    Ok((trailers, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_round_trip_with_details() {
        let error = Error::new(Code::Unavailable, "overloaded").with_detail(
            ErrorDetail::from_parts("google.rpc.RetryInfo", vec![0x0a, 0x02, 0x08, 0x3c]),
        );
        let body = error_body(&error);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"code":"unavailable","message":"overloaded","details":[{"type":"google.rpc.RetryInfo","value":"CgIIPA"}]}"#
        );
        let back = parse_error_body(&body).unwrap();
        assert_eq!(back.code(), Code::Unavailable);
        assert!(back.is_wire());
        assert_eq!(back.details(), error.details());
    }

    #[test]
    fn invalid_errors_are_rejected() {
        assert!(parse_error_body(b"{}").is_none());
        assert!(parse_error_body(b"{\"code\":null}").is_none());
        assert!(parse_error_body(b"not json").is_none());
    }

    #[test]
    fn end_stream_round_trip() {
        let mut trailers = HeaderMap::new();
        trailers.append("acme-cost", HeaderValue::from_static("237"));
        let body = end_stream_body(None, &trailers);
        assert_eq!(&body[..], br#"{"metadata":{"acme-cost":["237"]}}"#);
        let (back, error) = parse_end_stream(&body).unwrap();
        assert!(error.is_none());
        assert_eq!(back, trailers);
        let failed = end_stream_body(Some(&Error::new(Code::Aborted, "x")), &HeaderMap::new());
        let (_, error) = parse_end_stream(&failed).unwrap();
        assert_eq!(error.unwrap().code(), Code::Aborted);
        assert!(parse_end_stream(b"{\"error\":{}}").is_err());
        assert!(parse_end_stream(b"{").is_err());
    }
}
