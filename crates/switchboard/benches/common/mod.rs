//! The messages the benches send, shaped like `bench.v1` in `benches/proto/bench/v1/echo.proto`
//! (the schema of the cross-library benchmarks), with their descriptors.
//!
//! The Rust types are written with `#[derive(prost::Message)]` and the descriptor pool is
//! built by hand from `prost_types` descriptors, so the benches need no build script. The
//! two must agree; every bench checks a round trip before timing, which catches a mismatch.

// Each bench includes this module and uses a part of it.
#![allow(dead_code)]

use std::collections::HashMap;

use bytes::Bytes;
use prost_reflect::{DescriptorPool, MessageDescriptor, MethodDescriptor};
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{
    DescriptorProto, EnumDescriptorProto, EnumValueDescriptorProto, FieldDescriptorProto,
    FileDescriptorProto, FileDescriptorSet, MessageOptions, MethodDescriptorProto,
    ServiceDescriptorProto,
};

/// `bench.v1.EchoRequest` (and, with the same shape, `EchoResponse`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    /// The bytes to echo.
    #[prost(bytes = "bytes", tag = "1")]
    pub payload: Bytes,
}

/// `bench.v1.EchoResponse`.
pub type EchoResponse = EchoRequest;

/// `bench.v1.Severity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Severity {
    /// Not set.
    Unspecified = 0,
    /// Debug.
    Debug = 1,
    /// Info.
    Info = 2,
    /// Warning.
    Warn = 3,
    /// Error.
    Error = 4,
}

/// `bench.v1.LogRecord`: one structured log line, about 400 bytes encoded.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogRecord {
    /// Event time.
    #[prost(int64, tag = "1")]
    pub timestamp_unix_nanos: i64,
    /// A [`Severity`].
    #[prost(enumeration = "Severity", tag = "2")]
    pub severity: i32,
    /// Emitting service.
    #[prost(string, tag = "3")]
    pub service: String,
    /// Emitting host.
    #[prost(string, tag = "4")]
    pub host: String,
    /// The log line.
    #[prost(string, tag = "5")]
    pub message: String,
    /// Free-form labels.
    #[prost(map = "string, string", tag = "6")]
    pub attributes: HashMap<String, String>,
    /// Trace id (16 bytes).
    #[prost(bytes = "bytes", tag = "7")]
    pub trace_id: Bytes,
    /// Span id (8 bytes).
    #[prost(bytes = "bytes", tag = "8")]
    pub span_id: Bytes,
}

/// `bench.v1.LogBatch`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogBatch {
    /// The records.
    #[prost(message, repeated, tag = "1")]
    pub records: Vec<LogRecord>,
}

/// An echo request carrying `len` bytes of deterministic, text-like payload.
pub fn echo_request(len: usize) -> EchoRequest {
    EchoRequest {
        payload: Bytes::from(text(len)),
    }
}

/// `len` bytes of deterministic, somewhat compressible ASCII (words from a small vocabulary
/// picked by a tiny LCG), so compression numbers are neither best nor worst case.
pub fn text(len: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "request", "handler", "stream", "deadline", "payload", "gzip", "router", "envelope",
        "connect", "grpc", "status", "trailer", "message", "codec", "header", "service",
    ];
    let mut out = Vec::with_capacity(len + 16);
    let mut state: u32 = 0x1234_5678;
    while out.len() < len {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        out.extend_from_slice(WORDS[(state >> 28) as usize].as_bytes());
        out.push(if state & 0x700 == 0 { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

/// A batch of `records` log records (about 400 bytes each when encoded).
pub fn log_batch(records: usize) -> LogBatch {
    let records = (0..records)
        .map(|i| {
            let mut attributes = HashMap::new();
            attributes.insert("region".to_owned(), "eu-west-1".to_owned());
            attributes.insert("pod".to_owned(), format!("ingest-7f9c-{i:04}"));
            attributes.insert("request_id".to_owned(), format!("req-{:016x}", i * 7919));
            attributes.insert(
                "user_agent".to_owned(),
                "connect-go/1.18 (go1.24)".to_owned(),
            );
            let message = String::from_utf8(text(160 + i % 64)).expect("ascii");
            LogRecord {
                timestamp_unix_nanos: 1_750_000_000_000_000_000 + i as i64 * 1_000_003,
                severity: [Severity::Info, Severity::Warn, Severity::Debug][i % 3] as i32,
                service: "checkout-api".to_owned(),
                host: format!("node-{:02}.cluster.local", i % 17),
                message,
                attributes,
                trace_id: Bytes::from(vec![(i % 251) as u8; 16]),
                span_id: Bytes::from(vec![(i % 127) as u8; 8]),
            }
        })
        .collect();
    LogBatch { records }
}

/// The descriptor pool of the `bench.v1` subset above, with `bench.v1.EchoService` reduced
/// to its unary `Echo` method.
pub fn pool() -> DescriptorPool {
    let file = FileDescriptorProto {
        name: Some("bench/v1/echo.proto".to_owned()),
        package: Some("bench.v1".to_owned()),
        syntax: Some("proto3".to_owned()),
        message_type: vec![
            message("EchoRequest", vec![field("payload", 1, Type::Bytes, None)]),
            message("EchoResponse", vec![field("payload", 1, Type::Bytes, None)]),
            DescriptorProto {
                nested_type: vec![DescriptorProto {
                    options: Some(MessageOptions {
                        map_entry: Some(true),
                        ..Default::default()
                    }),
                    ..message(
                        "AttributesEntry",
                        vec![
                            field("key", 1, Type::String, None),
                            field("value", 2, Type::String, None),
                        ],
                    )
                }],
                ..message(
                    "LogRecord",
                    vec![
                        field("timestamp_unix_nanos", 1, Type::Int64, None),
                        field("severity", 2, Type::Enum, Some(".bench.v1.Severity")),
                        field("service", 3, Type::String, None),
                        field("host", 4, Type::String, None),
                        field("message", 5, Type::String, None),
                        FieldDescriptorProto {
                            label: Some(Label::Repeated as i32),
                            ..field(
                                "attributes",
                                6,
                                Type::Message,
                                Some(".bench.v1.LogRecord.AttributesEntry"),
                            )
                        },
                        field("trace_id", 7, Type::Bytes, None),
                        field("span_id", 8, Type::Bytes, None),
                    ],
                )
            },
            message(
                "LogBatch",
                vec![FieldDescriptorProto {
                    label: Some(Label::Repeated as i32),
                    ..field("records", 1, Type::Message, Some(".bench.v1.LogRecord"))
                }],
            ),
        ],
        enum_type: vec![EnumDescriptorProto {
            name: Some("Severity".to_owned()),
            value: [
                "SEVERITY_UNSPECIFIED",
                "SEVERITY_DEBUG",
                "SEVERITY_INFO",
                "SEVERITY_WARN",
                "SEVERITY_ERROR",
            ]
            .iter()
            .zip(0..)
            .map(|(name, number)| EnumValueDescriptorProto {
                name: Some((*name).to_owned()),
                number: Some(number),
                options: None,
            })
            .collect(),
            ..Default::default()
        }],
        service: vec![ServiceDescriptorProto {
            name: Some("EchoService".to_owned()),
            method: vec![method(
                "Echo",
                ".bench.v1.EchoRequest",
                ".bench.v1.EchoResponse",
            )],
            options: None,
        }],
        ..Default::default()
    };
    DescriptorPool::from_file_descriptor_set(FileDescriptorSet { file: vec![file] })
        .expect("the hand-written bench descriptors are valid")
}

/// A message's descriptor from [`pool`], e.g. `"bench.v1.LogBatch"`.
pub fn message_descriptor(pool: &DescriptorPool, name: &str) -> MessageDescriptor {
    pool.get_message_by_name(name)
        .unwrap_or_else(|| panic!("{name} is in the bench pool"))
}

/// A method of `bench.v1.EchoService` from [`pool`].
pub fn method_descriptor(pool: &DescriptorPool, name: &str) -> MethodDescriptor {
    pool.get_service_by_name("bench.v1.EchoService")
        .and_then(|s| s.methods().find(|m| m.name() == name))
        .unwrap_or_else(|| panic!("EchoService/{name} is in the bench pool"))
}

fn message(name: &str, fields: Vec<FieldDescriptorProto>) -> DescriptorProto {
    DescriptorProto {
        name: Some(name.to_owned()),
        field: fields,
        ..Default::default()
    }
}

fn field(name: &str, number: i32, kind: Type, type_name: Option<&str>) -> FieldDescriptorProto {
    FieldDescriptorProto {
        name: Some(name.to_owned()),
        number: Some(number),
        label: Some(Label::Optional as i32),
        r#type: Some(kind as i32),
        type_name: type_name.map(str::to_owned),
        json_name: Some(switchboard::__bench::json_name(name)),
        ..Default::default()
    }
}

fn method(name: &str, input: &str, output: &str) -> MethodDescriptorProto {
    MethodDescriptorProto {
        name: Some(name.to_owned()),
        input_type: Some(input.to_owned()),
        output_type: Some(output.to_owned()),
        ..Default::default()
    }
}
