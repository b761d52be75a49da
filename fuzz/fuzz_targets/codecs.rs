//! Any bytes as a dynamic message of a few well-known types, in the binary and JSON codecs;
//! what decodes is encoded again in both.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use prost_reflect::DescriptorPool;
use switchboard::codec::{Codec, Dynamic};
use switchboard_fuzz::Input;

const MESSAGES: &[&str] = &[
    "google.protobuf.FileDescriptorProto",
    "google.protobuf.Struct",
    "google.protobuf.Value",
    "google.protobuf.Any",
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.Int64Value",
    "google.protobuf.BytesValue",
];

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let name = input.pick(MESSAGES);
    let codec = input.pick(&[Codec::Proto, Codec::Json]);
    let Some(descriptor) = DescriptorPool::global().get_message_by_name(name) else {
        return;
    };
    let bytes = Bytes::copy_from_slice(input.rest());
    if let Ok(message) = codec.decode::<Dynamic>(bytes, Some(&descriptor)) {
        for codec in [Codec::Proto, Codec::Json] {
            let mut out = bytes::BytesMut::new();
            let _ = codec.encode(&message, Some(&descriptor), &mut out);
        }
    }
});
