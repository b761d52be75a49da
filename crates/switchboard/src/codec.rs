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

/// A message a protobuf runtime can encode and decode.
///
/// Only the binary format is required; JSON defaults to transcoding the binary form through
/// the method's descriptors, which is exact for every message. `descriptor` is the type the
/// method declares: statically typed runtimes ignore it, [`Dynamic`] messages need it.
pub trait Message: Send + Sized + 'static {
    /// Appends the binary encoding to `buf`.
    fn encode_binary(&self, buf: &mut BytesMut);
    /// The length of the binary encoding, to reserve space once.
    fn binary_len(&self) -> usize;
    /// Decodes the binary encoding.
    fn decode_binary(buf: Bytes, descriptor: Option<&MessageDescriptor>) -> Result<Self, Error>;

    /// Appends the canonical JSON encoding to `out`.
    fn encode_json(
        &self,
        descriptor: Option<&MessageDescriptor>,
        out: &mut BytesMut,
    ) -> Result<(), Error> {
        let descriptor = require_descriptor(descriptor)?;
        let mut binary = BytesMut::with_capacity(self.binary_len());
        self.encode_binary(&mut binary);
        binary_to_json(descriptor, binary.freeze(), out)
    }

    /// Decodes canonical JSON.
    fn decode_json(json: &[u8], descriptor: Option<&MessageDescriptor>) -> Result<Self, Error> {
        let binary = json_to_binary(require_descriptor(descriptor)?, json)?;
        Self::decode_binary(binary, descriptor)
    }
}

impl<M: prost::Message + Default + 'static> Message for M {
    fn encode_binary(&self, buf: &mut BytesMut) {
        // `encode_raw`, not `encode`: `encode` computes the encoded length again only to
        // check a capacity BytesMut does not have (it grows as needed); callers reserve
        // `binary_len()` first. prost marks it hidden, but it is the required method every
        // generated message implements.
        prost::Message::encode_raw(self, buf);
    }

    fn binary_len(&self) -> usize {
        prost::Message::encoded_len(self)
    }

    fn decode_binary(buf: Bytes, _descriptor: Option<&MessageDescriptor>) -> Result<Self, Error> {
        <M as prost::Message>::decode(buf)
            .map_err(|e| Error::new(Code::InvalidArgument, format!("unmarshal protobuf: {e}")))
    }
}

/// A message whose type is known only at run time, from its descriptor: for gateways,
/// proxies and generic tools that call or serve methods they were not compiled with.
///
/// Use it as the request or response type of any client call or route, with a [`crate::Spec`]
/// built from the method descriptor ([`crate::Spec::from_descriptor`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Dynamic(pub DynamicMessage);

impl Message for Dynamic {
    fn encode_binary(&self, buf: &mut BytesMut) {
        let _ = prost::Message::encode(&self.0, buf);
    }

    fn binary_len(&self) -> usize {
        prost::Message::encoded_len(&self.0)
    }

    fn decode_binary(buf: Bytes, descriptor: Option<&MessageDescriptor>) -> Result<Self, Error> {
        DynamicMessage::decode(require_descriptor(descriptor)?.clone(), buf)
            .map(Dynamic)
            .map_err(|e| Error::new(Code::InvalidArgument, format!("unmarshal protobuf: {e}")))
    }

    fn encode_json(
        &self,
        _descriptor: Option<&MessageDescriptor>,
        out: &mut BytesMut,
    ) -> Result<(), Error> {
        let mut serializer = serde_json::Serializer::new(out.writer());
        self.0
            .serialize_with_options(&mut serializer, &prost_reflect::SerializeOptions::new())
            .map_err(|e| Error::internal(format!("marshal JSON: {e}")))
    }

    fn decode_json(json: &[u8], descriptor: Option<&MessageDescriptor>) -> Result<Self, Error> {
        dynamic_from_json(require_descriptor(descriptor)?, json).map(Dynamic)
    }
}

/// A wire serialisation of messages, named in content types (`application/proto`,
/// `application/connect+json`, `application/grpc+proto`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
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
            Codec::Json => message.encode_json(descriptor, buf),
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
            Codec::Proto => M::decode_binary(bytes, descriptor),
            Codec::Json => M::decode_json(&bytes, descriptor),
        }
    }
}

fn require_descriptor(descriptor: Option<&MessageDescriptor>) -> Result<&MessageDescriptor, Error> {
    descriptor.ok_or_else(|| {
        Error::new(
            Code::Unimplemented,
            "this message needs its descriptor (for JSON or dynamic messages), and the method has none",
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
    let message = dynamic_from_json(descriptor, json)?;
    Ok(Bytes::from(prost::Message::encode_to_vec(&message)))
}

fn dynamic_from_json(descriptor: &MessageDescriptor, json: &[u8]) -> Result<DynamicMessage, Error> {
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
    Ok(message)
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

#[cfg(test)]
mod dynamic_tests {
    use super::*;
    use prost_reflect::{ReflectMessage, Value};

    #[test]
    fn dynamic_messages_use_both_codecs() {
        let descriptor = prost_types::Duration::default().descriptor();
        let mut message = DynamicMessage::new(descriptor.clone());
        message.set_field_by_name("seconds", Value::I64(90));
        let dynamic = Dynamic(message);
        for codec in [Codec::Proto, Codec::Json] {
            let mut buf = BytesMut::new();
            codec.encode(&dynamic, Some(&descriptor), &mut buf).unwrap();
            let back: Dynamic = codec.decode(buf.freeze(), Some(&descriptor)).unwrap();
            assert_eq!(back, dynamic, "{codec:?}");
        }
        // Statically typed messages read what dynamic ones wrote.
        let mut buf = BytesMut::new();
        Codec::Proto
            .encode(&dynamic, None, &mut buf)
            .unwrap_or_default();
        let typed: prost_types::Duration = Codec::Proto.decode(buf.freeze(), None).unwrap();
        assert_eq!(typed.seconds, 90);
        // Without a descriptor, a dynamic message cannot be decoded.
        assert!(Codec::Proto.decode::<Dynamic>(Bytes::new(), None).is_err());
    }
}
