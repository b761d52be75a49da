//! Codecs: encoding and decoding with `Codec::Proto` and `Codec::Json`, through the same
//! `Codec::encode` / `Codec::decode` calls the handlers make, for a small message (an
//! `EchoRequest` with a 64-byte payload) and a structured one (a `LogBatch` of 32 records,
//! about 13 KB in protobuf: strings, an enum, a map and bytes fields).
//!
//! JSON transcodes through the method's descriptors, as it does for generated code: the
//! descriptors come from the hand-built pool in `common`.

mod common;

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use prost_reflect::MessageDescriptor;
use switchboard::codec::{Codec, Message};

/// Encodes `message` as a handler does: into a fresh buffer.
fn encode<M: Message>(codec: Codec, message: &M, descriptor: &MessageDescriptor) -> Bytes {
    let mut buf = BytesMut::new();
    codec
        .encode(message, Some(descriptor), &mut buf)
        .expect("encode");
    buf.freeze()
}

fn bench_message<M>(c: &mut Criterion, label: &str, message: &M, descriptor: &MessageDescriptor)
where
    M: Message + PartialEq + std::fmt::Debug,
{
    let mut group = c.benchmark_group(format!("codec/{label}"));
    for codec in [Codec::Proto, Codec::Json] {
        let encoded = encode(codec, message, descriptor);
        // Checked once, outside the timed loops: the round trip is exact.
        let decoded: M = codec
            .decode(encoded.clone(), Some(descriptor))
            .expect("decode");
        assert_eq!(&decoded, message, "{codec:?} round trip of {label}");
        if codec == Codec::Json {
            assert_eq!(encoded.first(), Some(&b'{'), "JSON is an object");
        }

        group.throughput(Throughput::Bytes(encoded.len() as u64));
        group.bench_function(BenchmarkId::new("encode", codec.name()), |b| {
            b.iter(|| encode(codec, black_box(message), descriptor))
        });
        group.bench_function(BenchmarkId::new("decode", codec.name()), |b| {
            b.iter(|| {
                codec
                    .decode::<M>(black_box(encoded.clone()), Some(descriptor))
                    .expect("decode")
            })
        });
    }
    group.finish();
}

fn codecs(c: &mut Criterion) {
    let pool = common::pool();

    let small = common::echo_request(64);
    let small_descriptor = common::message_descriptor(&pool, "bench.v1.EchoRequest");
    bench_message(c, "echo_64B", &small, &small_descriptor);

    let large = common::log_batch(32);
    let large_descriptor = common::message_descriptor(&pool, "bench.v1.LogBatch");
    let proto_len = encode(Codec::Proto, &large, &large_descriptor).len();
    assert!(
        (8_000..20_000).contains(&proto_len),
        "the structured message is about 13 KB ({proto_len})"
    );
    bench_message(c, "log_batch_32", &large, &large_descriptor);
}

criterion_group!(benches, codecs);
criterion_main!(benches);
