//! How messages become bytes: the message runtime boundary and the two wire codecs.
//!
//! [`Message`] is the boundary to a protobuf runtime: it only needs binary encode and
//! decode. It is implemented for every prost message, so tonic/prost users keep their
//! types; another runtime plugs in by implementing it for its own types.
//!
//! [`Codec`] is what the wire carries: `proto` (binary) or `json` (canonical proto3 JSON).
//! JSON is produced from the binary form through the method's descriptors
//! (`prost_reflect`), so it is exact for every message, including well-known types and
//! `google.protobuf.Any` (resolved through the descriptor pool of the generated code).

use bytes::{BufMut, Bytes, BytesMut};
use prost_reflect::{DynamicMessage, MessageDescriptor};

use crate::{Code, Error};

/// A message a protobuf runtime can encode and decode in the binary format.
pub trait Message: Send + Sized + 'static {
    /// Appends the binary encoding to `buf`.
    fn encode_binary(&self, buf: &mut BytesMut);
    /// The length of the binary encoding, to reserve space once.
    fn binary_len(&self) -> usize;
    /// Decodes the binary encoding.
    fn decode_binary(buf: Bytes) -> Result<Self, prost::DecodeError>;
}

impl<M: prost::Message + Default + 'static> Message for M {
    fn encode_binary(&self, buf: &mut BytesMut) {
        // BytesMut grows as needed, so encoding cannot fail for lack of capacity.
        let _ = prost::Message::encode(self, buf);
    }

    fn binary_len(&self) -> usize {
        prost::Message::encoded_len(self)
    }

    fn decode_binary(buf: Bytes) -> Result<Self, prost::DecodeError> {
        <M as prost::Message>::decode(buf)
    }
}

/// A wire serialisation of messages, named in content types (`application/proto`,
/// `application/connect+json`, `application/grpc+proto`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Binary protobuf.
    Proto,
    /// Canonical proto3 JSON.
    Json,
}

impl Codec {
    /// The codec's name in content types.
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Proto => "proto",
            Codec::Json => "json",
        }
    }

    /// Looks up a codec by its content-type name. A `; charset=utf-8` parameter is accepted on
    /// JSON; anything else unknown is `None`.
    pub fn from_name(name: &str) -> Option<Codec> {
        let (base, params) = match name.split_once(';') {
            Some((base, params)) => (base.trim(), Some(params.trim())),
            None => (name.trim(), None),
        };
        match (base, params) {
            ("proto", None) => Some(Codec::Proto),
            ("json", None) => Some(Codec::Json),
            ("json", Some(params)) if params.eq_ignore_ascii_case("charset=utf-8") => {
                Some(Codec::Json)
            }
            _ => None,
        }
    }

    /// Encodes `message` onto the end of `buf`.
    ///
    /// `descriptor` is the message's descriptor; only JSON needs it.
    pub fn encode<M: Message>(
        self,
        message: &M,
        descriptor: Option<&MessageDescriptor>,
        buf: &mut BytesMut,
    ) -> Result<(), Error> {
        match self {
            Codec::Proto => {
                buf.reserve(message.binary_len());
                message.encode_binary(buf);
                Ok(())
            }
            Codec::Json => {
                let descriptor = require_descriptor(descriptor)?;
                let mut binary = BytesMut::with_capacity(message.binary_len());
                message.encode_binary(&mut binary);
                binary_to_json(descriptor, binary.freeze(), buf)
            }
        }
    }

    /// Decodes one message. Failures are [`Code::InvalidArgument`]: the peer sent bytes that
    /// are not a valid message of this type.
    pub fn decode<M: Message>(
        self,
        bytes: Bytes,
        descriptor: Option<&MessageDescriptor>,
    ) -> Result<M, Error> {
        match self {
            Codec::Proto => M::decode_binary(bytes)
                .map_err(|e| Error::new(Code::InvalidArgument, format!("unmarshal protobuf: {e}"))),
            Codec::Json => {
                let descriptor = require_descriptor(descriptor)?;
                let binary = json_to_binary(descriptor, &bytes)?;
                M::decode_binary(binary)
                    .map_err(|e| Error::new(Code::InvalidArgument, format!("unmarshal JSON: {e}")))
            }
        }
    }
}

fn require_descriptor(descriptor: Option<&MessageDescriptor>) -> Result<&MessageDescriptor, Error> {
    descriptor.ok_or_else(|| {
        Error::new(
            Code::Unimplemented,
            "JSON needs the message descriptor, and this method has none",
        )
    })
}

/// Transcodes the binary encoding of a message of type `descriptor` to canonical JSON.
pub fn binary_to_json(
    descriptor: &MessageDescriptor,
    binary: Bytes,
    out: &mut BytesMut,
) -> Result<(), Error> {
    let message = DynamicMessage::decode(descriptor.clone(), binary)
        .map_err(|e| Error::internal(format!("marshal JSON: {e}")))?;
    let mut serializer = serde_json::Serializer::new(out.writer());
    message
        .serialize_with_options(&mut serializer, &prost_reflect::SerializeOptions::new())
        .map_err(|e| Error::internal(format!("marshal JSON: {e}")))
}

/// Transcodes canonical JSON to the binary encoding of a message of type `descriptor`.
/// Unknown fields are an error, as in other Connect implementations.
pub fn json_to_binary(descriptor: &MessageDescriptor, json: &[u8]) -> Result<Bytes, Error> {
    if json.is_empty() {
        return Err(Error::new(
            Code::InvalidArgument,
            "unmarshal JSON: zero-length payload is not a valid JSON object",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let message = DynamicMessage::deserialize(descriptor.clone(), &mut deserializer)
        .and_then(|m| deserializer.end().map(|()| m))
        .map_err(|e| Error::new(Code::InvalidArgument, format!("unmarshal JSON: {e}")))?;
    Ok(Bytes::from(prost::Message::encode_to_vec(&message)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::ReflectMessage;

    #[test]
    fn codec_names() {
        assert_eq!(Codec::from_name("proto"), Some(Codec::Proto));
        assert_eq!(Codec::from_name("json"), Some(Codec::Json));
        assert_eq!(Codec::from_name("json; charset=utf-8"), Some(Codec::Json));
        assert_eq!(Codec::from_name("json;charset=UTF-8"), Some(Codec::Json));
        assert_eq!(Codec::from_name("json; charset=latin1"), None);
        assert_eq!(Codec::from_name("xml"), None);
    }

    #[test]
    fn json_round_trip_of_a_well_known_type() {
        let duration = prost_types::Duration {
            seconds: 3,
            nanos: 500_000_000,
        };
        let descriptor = duration.descriptor();
        let mut out = BytesMut::new();
        Codec::Json
            .encode(&duration, Some(&descriptor), &mut out)
            .unwrap();
        assert_eq!(&out[..], b"\"3.500s\"");
        let back: prost_types::Duration =
            Codec::Json.decode(out.freeze(), Some(&descriptor)).unwrap();
        assert_eq!(back, duration);
    }

    #[test]
    fn json_rejects_unknown_fields_and_garbage() {
        let descriptor = prost_types::Timestamp::default().descriptor();
        let err = Codec::Json
            .decode::<prost_types::Timestamp>(
                Bytes::from_static(b"{\"nope\":1}"),
                Some(&descriptor),
            )
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let err = Codec::Json
            .decode::<prost_types::Timestamp>(Bytes::from_static(b"{"), Some(&descriptor))
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }

    #[test]
    fn malformed_binary_is_invalid_argument() {
        let err = Codec::Proto
            .decode::<prost_types::Duration>(Bytes::from_static(&[0x08]), None)
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
}
