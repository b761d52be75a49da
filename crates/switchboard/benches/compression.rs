//! Compression choice and cost: negotiating the response algorithm from the peer's
//! `grpc-accept-encoding` / `accept-encoding` header against the default registry, the
//! policy decision for an outgoing message (below the 1 KiB minimum it stays identity), and
//! gzip compressing and decompressing a 16 KiB payload for scale.
//!
//! The policy decision is the crate-private `protocol::compress`, reached through the hidden
//! `switchboard::__bench` module (feature `bench-internals`, enabled for benches only).

mod common;

use std::hint::black_box;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use switchboard::__bench::compress;
use switchboard::compression::{
    CompressionPolicy, CompressionRegistry, Compressor, Gzip, MessageCompression,
};

/// Negotiates as the protocols do: every value of the accept header, skipping non-UTF-8 ones.
fn negotiate(
    registry: &CompressionRegistry,
    headers: &HeaderMap,
    name: &str,
) -> Option<&'static str> {
    registry
        .negotiate(headers.get_all(name).iter().filter_map(|v| v.to_str().ok()))
        .map(|c| c.name())
}

fn negotiation(c: &mut Criterion) {
    let registry = CompressionRegistry::with_defaults();
    // (label, header name, values, expected choice)
    let cases: [(&str, &str, &[&str], Option<&str>); 5] = [
        ("grpc_gzip", "grpc-accept-encoding", &["gzip"], Some("gzip")),
        (
            "grpc_go_list",
            "grpc-accept-encoding",
            &["identity,deflate,gzip"],
            Some("deflate"),
        ),
        (
            "browser_list",
            "accept-encoding",
            &["gzip, deflate, br, zstd"],
            Some("gzip"),
        ),
        (
            "refusals_and_unknowns",
            "accept-encoding",
            &["lz4, compress;q=0.9", "zstd;q=0, br;q=0.5, gzip"],
            Some("br"),
        ),
        ("identity_only", "accept-encoding", &["identity"], None),
    ];
    let mut group = c.benchmark_group("compression/negotiate");
    for (label, name, values, expected) in cases {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(name, HeaderValue::from_static(value));
        }
        // Checked once, outside the timed loop.
        assert_eq!(negotiate(&registry, &headers, name), expected, "{label}");
        group.bench_function(label, |b| {
            b.iter(|| negotiate(&registry, black_box(&headers), name))
        });
    }
    group.finish();
}

fn policy(c: &mut Criterion) {
    let gzip: Arc<dyn Compressor> = Arc::new(Gzip);
    let policy = CompressionPolicy::default();
    let switch = MessageCompression::new();
    let small = Bytes::from(common::text(64));
    let large = Bytes::from(common::text(16 * 1024));

    // Checked once: below the minimum, and without an algorithm, the payload goes out as it
    // is (the very same bytes); at 16 KiB with gzip negotiated, it is compressed.
    let (compressed, out) = compress(Some(&gzip), policy, &switch, small.clone()).unwrap();
    assert!(!compressed);
    assert_eq!(out.as_ptr(), small.as_ptr(), "identity does not copy");
    let (compressed, _) = compress(None, policy, &switch, large.clone()).unwrap();
    assert!(!compressed);
    let (compressed, out) = compress(Some(&gzip), policy, &switch, large.clone()).unwrap();
    assert!(compressed && out.len() < large.len() / 2);

    let mut group = c.benchmark_group("compression/policy");
    group.bench_function("64B_below_min_gzip_negotiated", |b| {
        b.iter(|| compress(Some(&gzip), policy, &switch, black_box(small.clone())).unwrap())
    });
    group.bench_function("16KiB_nothing_negotiated", |b| {
        b.iter(|| compress(None, policy, &switch, black_box(large.clone())).unwrap())
    });
    group.throughput(Throughput::Bytes(large.len() as u64));
    group.bench_function("16KiB_gzip_negotiated", |b| {
        b.iter(|| compress(Some(&gzip), policy, &switch, black_box(large.clone())).unwrap())
    });
    group.finish();
}

fn gzip(c: &mut Criterion) {
    let input = common::text(16 * 1024);
    let mut compressed = BytesMut::new();
    Gzip.compress(&input, &mut compressed).unwrap();
    let compressed = compressed.freeze();
    // Checked once: the round trip is exact.
    assert_eq!(
        &Gzip.decompress(&compressed, 4 << 20).unwrap()[..],
        &input[..]
    );

    let mut group = c.benchmark_group("compression/gzip");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_with_input(BenchmarkId::new("compress", "16KiB"), &input, |b, input| {
        b.iter(|| {
            let mut out = BytesMut::with_capacity(input.len() / 2 + 64);
            Gzip.compress(black_box(input), &mut out).unwrap();
            out
        })
    });
    group.bench_with_input(
        BenchmarkId::new("decompress", "16KiB"),
        &compressed,
        |b, compressed| b.iter(|| Gzip.decompress(black_box(compressed), 4 << 20).unwrap()),
    );
    group.finish();
}

criterion_group!(benches, negotiation, policy, gzip);
criterion_main!(benches);
