//! Metadata (headers and trailers) as `http::HeaderMap`, plus the binary-value rules.
//!
//! Connect and gRPC carry metadata as HTTP headers. switchboard uses `http::HeaderMap` for
//! request headers, response headers and trailers alike, so everything a hyper or tower user
//! knows applies. The one protocol rule a plain map cannot encode: keys ending in `-bin`
//! carry binary values as base64. [`BinaryMetadata`] adds that: it writes unpadded standard
//! base64 and reads padded or unpadded, as the protocols require. Keys beginning with
//! `connect-` and `grpc-` are reserved for the protocols themselves.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::{Code, Error};

/// Binary (`-bin`) metadata on a `HeaderMap`.
pub trait BinaryMetadata {
    /// Appends a binary value under `name`, which must end in `-bin`.
    fn append_bin(&mut self, name: &str, value: &[u8]) -> Result<(), Error>;
    /// Decodes every value stored under a `-bin` key, accepting padded and unpadded base64.
    fn get_all_bin(&self, name: &str) -> Result<Vec<Bytes>, Error>;
}

impl BinaryMetadata for HeaderMap {
    fn append_bin(&mut self, name: &str, value: &[u8]) -> Result<(), Error> {
        if !name.ends_with("-bin") {
            return Err(Error::internal(format!(
                "binary metadata key {name:?} must end in -bin"
            )));
        }
        let name = HeaderName::try_from(name)
            .map_err(|e| Error::internal(format!("invalid metadata key {name:?}: {e}")))?;
        let encoded = STANDARD_NO_PAD.encode(value);
        let value = HeaderValue::try_from(encoded)
            .map_err(|e| Error::internal(format!("invalid metadata value: {e}")))?;
        self.append(name, value);
        Ok(())
    }

    fn get_all_bin(&self, name: &str) -> Result<Vec<Bytes>, Error> {
        self.get_all(name)
            .iter()
            .map(|value| decode_binary_header(value.as_bytes()))
            .collect()
    }
}

/// Decodes one binary header value: standard base64, padded or not.
pub fn decode_binary_header(value: &[u8]) -> Result<Bytes, Error> {
    let trimmed = value.trim_ascii();
    let unpadded = trimmed
        .strip_suffix(b"==")
        .or_else(|| trimmed.strip_suffix(b"="));
    STANDARD_NO_PAD
        .decode(unpadded.unwrap_or(trimmed))
        .or_else(|_| STANDARD.decode(trimmed))
        .map(Bytes::from)
        .map_err(|e| {
            Error::new(
                Code::InvalidArgument,
                format!("invalid binary metadata: {e}"),
            )
        })
}

/// Whether a header is reserved for the protocol (and so never surfaced as user metadata).
pub(crate) fn is_reserved_header(name: &HeaderName) -> bool {
    use http::header;
    let s = name.as_str();
    s.starts_with("connect-")
        // A server's retry pushback is the application's say, kept in the error's metadata.
        || (s.starts_with("grpc-") && s != "grpc-retry-pushback-ms")
        || name == header::CONTENT_TYPE
        || name == header::CONTENT_LENGTH
        || name == header::CONTENT_ENCODING
        || name == header::ACCEPT_ENCODING
        || name == header::TE
        || name == header::TRANSFER_ENCODING
        || name == header::CONNECTION
        || name == header::TRAILER
        || name == header::HOST
        || s == "keep-alive"
        || s == "proxy-connection"
        || s == "upgrade"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_values_round_trip_and_accept_padding() {
        let mut map = HeaderMap::new();
        map.append_bin("trace-bin", &[0xff, 0x00, 0x10]).unwrap();
        assert_eq!(map.get("trace-bin").unwrap(), "/wAQ");
        assert_eq!(
            map.get_all_bin("trace-bin").unwrap(),
            vec![Bytes::from_static(&[0xff, 0, 0x10])]
        );
        map.insert("padded-bin", HeaderValue::from_static("AQ=="));
        assert_eq!(
            map.get_all_bin("padded-bin").unwrap(),
            vec![Bytes::from_static(&[1])]
        );
        map.insert("bad-bin", HeaderValue::from_static("!!!"));
        assert_eq!(
            map.get_all_bin("bad-bin").unwrap_err().code(),
            Code::InvalidArgument
        );
        assert!(map.append_bin("no-suffix", b"x").is_err());
    }
}
