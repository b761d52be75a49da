//! The prebuilt unary Echo request of each protocol, and the checks on its response.
//!
//! Messages are encoded by hand (field 1, length-delimited), not with any of the three
//! libraries' codecs, so the input is the same bytes for all of them. `EchoRequest` and
//! `EchoResponse` have the same shape, so an echoed response is byte-for-byte the request
//! message.

use std::fmt;

use bytes::{BufMut as _, Bytes, BytesMut};
use http::header::{CONTENT_TYPE, HeaderValue, TE};
use http::{Method, Request, StatusCode, Version};
use http_body::Frame;
use http_body_util::Full;

/// The method every case calls.
pub const ECHO_URI: &str = "http://localhost/bench.v1.EchoService/Echo";

/// Length of the echoed payload.
pub const PAYLOAD_LEN: usize = 64;

/// The wire protocol of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// gRPC over HTTP/2: enveloped body, status in trailers.
    Grpc,
    /// Connect unary: bare message body, status in the HTTP status.
    Connect,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Grpc => "grpc",
            Protocol::Connect => "connect",
        })
    }
}

/// A request body built once; each call gets a cheap clone of it.
pub struct Prebuilt {
    protocol: Protocol,
    /// The request body (enveloped for gRPC) — also the expected response body.
    body: Bytes,
}

impl Prebuilt {
    /// The unary Echo request of `protocol` with a [`PAYLOAD_LEN`]-byte payload.
    pub fn echo(protocol: Protocol) -> Self {
        let payload: Vec<u8> = (0..PAYLOAD_LEN).map(|i| b'a' + (i % 26) as u8).collect();
        let message = encode_bytes_field(&payload);
        let body = match protocol {
            Protocol::Grpc => envelope(&message),
            Protocol::Connect => message,
        };
        Prebuilt { protocol, body }
    }

    /// A fresh request: the headers are built anew and the body is a clone of the shared
    /// `Bytes` (a reference-count increment).
    pub fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = http::Uri::from_static(ECHO_URI);
        *request.version_mut() = Version::HTTP_2;
        let headers = request.headers_mut();
        match self.protocol {
            Protocol::Grpc => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                headers.insert(TE, HeaderValue::from_static("trailers"));
            }
            Protocol::Connect => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/proto"));
                headers.insert("connect-protocol-version", HeaderValue::from_static("1"));
            }
        }
        request
    }

    /// Checks a complete response: status 200, the payload echoed, and for gRPC
    /// `grpc-status: 0` in the trailers.
    pub fn verify(&self, status: StatusCode, frames: &[Frame<Bytes>]) -> Result<(), String> {
        if status != StatusCode::OK {
            return Err(format!("HTTP status {status}"));
        }
        let mut data = Vec::with_capacity(self.body.len());
        let mut trailers = None;
        for frame in frames {
            if let Some(chunk) = frame.data_ref() {
                data.extend_from_slice(chunk);
            } else if let Some(map) = frame.trailers_ref() {
                trailers = Some(map);
            }
        }
        if data != self.body {
            return Err(format!(
                "body {data:02x?} is not the echoed {:02x?}",
                &self.body[..]
            ));
        }
        if self.protocol == Protocol::Grpc {
            let grpc_status = trailers
                .and_then(|map| map.get("grpc-status"))
                .ok_or("no grpc-status trailer")?;
            if grpc_status != "0" {
                return Err(format!("grpc-status {grpc_status:?}"));
            }
        }
        Ok(())
    }
}

/// A message whose only field is field 1 (`bytes`) holding `payload`.
fn encode_bytes_field(payload: &[u8]) -> Bytes {
    let mut message = BytesMut::with_capacity(payload.len() + 11);
    message.put_u8(0x0a); // field 1, wire type 2 (length-delimited)
    let mut len = payload.len() as u64;
    while len >= 0x80 {
        message.put_u8((len as u8) | 0x80);
        len >>= 7;
    }
    message.put_u8(len as u8);
    message.put_slice(payload);
    message.freeze()
}

/// A gRPC envelope: flags 0 (uncompressed), big-endian length, message.
fn envelope(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(message.len() + 5);
    framed.put_u8(0);
    framed.put_u32(u32::try_from(message.len()).expect("message under 4 GiB"));
    framed.put_slice(message);
    framed.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_field_one_with_a_varint_length() {
        assert_eq!(&encode_bytes_field(b"hi")[..], b"\x0a\x02hi");
        let long = encode_bytes_field(&[7; 200]);
        assert_eq!(&long[..3], b"\x0a\xc8\x01");
        assert_eq!(long.len(), 203);
    }

    #[test]
    fn grpc_case_is_enveloped_and_checked_end_to_end() {
        let case = Prebuilt::echo(Protocol::Grpc);
        assert_eq!(&case.body[..7], b"\x00\x00\x00\x00\x42\x0a\x40");
        let request = case.request();
        assert_eq!(request.headers()["content-type"], "application/grpc");
        assert_eq!(request.headers()["te"], "trailers");

        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        // The echo may arrive split across frames.
        let good = [
            Frame::data(case.body.slice(..5)),
            Frame::data(case.body.slice(5..)),
            Frame::trailers(trailers.clone()),
        ];
        assert_eq!(case.verify(StatusCode::OK, &good), Ok(()));
        assert!(
            case.verify(StatusCode::OK, &good[..2]).is_err(),
            "no trailers"
        );
        trailers.insert("grpc-status", HeaderValue::from_static("12"));
        let failed = [Frame::data(case.body.clone()), Frame::trailers(trailers)];
        assert!(case.verify(StatusCode::OK, &failed).is_err());
    }

    #[test]
    fn connect_case_is_a_bare_message() {
        let case = Prebuilt::echo(Protocol::Connect);
        assert_eq!(case.body.len(), 2 + PAYLOAD_LEN);
        let request = case.request();
        assert_eq!(request.headers()["content-type"], "application/proto");
        assert_eq!(request.headers()["connect-protocol-version"], "1");
        assert_eq!(
            case.verify(StatusCode::OK, &[Frame::data(case.body.clone())]),
            Ok(())
        );
        let truncated = [Frame::data(case.body.slice(1..))];
        assert!(case.verify(StatusCode::OK, &truncated).is_err());
        assert!(case.verify(StatusCode::NOT_FOUND, &[]).is_err());
    }
}
