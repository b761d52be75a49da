//! Envelope framing: writing the 5-byte prefix around a message, and the server's reader
//! slicing envelopes back out of a request body, both when one chunk holds many envelopes
//! (the zero-copy fast path) and when an envelope arrives split across chunks (the
//! reassembly path).
//!
//! The framing code is crate-private; the benches reach it through the hidden
//! `switchboard::__bench` module (feature `bench-internals`, enabled for benches only).

use std::hint::black_box;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http_body::Frame;
use http_body_util::StreamBody;
use switchboard::__bench::{EnvelopeReader, FLAG_COMPRESSED, PREFIX_LEN, frame, put_prefix};

/// Largest message the readers accept (the server default, 4 MiB).
const LIMIT: usize = 4 * 1024 * 1024;

/// A body that yields `chunks` one data frame each, always ready.
fn body_of(
    chunks: Vec<Bytes>,
) -> StreamBody<impl futures_core::Stream<Item = Result<Frame<Bytes>, std::convert::Infallible>>> {
    StreamBody::new(futures_util::stream::iter(
        chunks.into_iter().map(|c| Ok(Frame::data(c))),
    ))
}

/// Reads every envelope of a body whose chunks are all ready, returning how many and their
/// total payload length. Panics on an error or a body that would wait.
fn read_all(chunks: Vec<Bytes>) -> (usize, usize) {
    let mut reader = EnvelopeReader::new(body_of(chunks));
    let mut cx = Context::from_waker(Waker::noop());
    let (mut count, mut bytes) = (0, 0);
    loop {
        match reader.poll_envelope(&mut cx, LIMIT) {
            Poll::Ready(Some(Ok((_flags, data)))) => {
                count += 1;
                bytes += black_box(data).len();
            }
            Poll::Ready(None) => return (count, bytes),
            Poll::Ready(Some(Err(e))) => panic!("envelope error: {e}"),
            Poll::Pending => panic!("an in-memory body never waits"),
        }
    }
}

/// Splits `bytes` into chunks of `size` (the last one shorter).
fn chunked(bytes: &Bytes, size: usize) -> Vec<Bytes> {
    (0..bytes.len())
        .step_by(size)
        .map(|start| bytes.slice(start..(start + size).min(bytes.len())))
        .collect()
}

fn write(c: &mut Criterion) {
    let mut group = c.benchmark_group("envelope/write");
    for (label, len) in [("64B", 64), ("16KiB", 16 * 1024)] {
        let payload = vec![0xA5_u8; len];

        // Checked once, outside the timed loop: prefix, flags, length and payload.
        let framed = frame(FLAG_COMPRESSED, &payload).expect("frame");
        assert_eq!(framed.len(), PREFIX_LEN + len);
        assert_eq!(framed[0], FLAG_COMPRESSED);
        assert_eq!(
            u32::from_be_bytes(framed[1..5].try_into().unwrap()) as usize,
            len
        );
        assert_eq!(&framed[PREFIX_LEN..], &payload[..]);

        group.throughput(Throughput::Bytes(len as u64));
        // What every streamed message and gRPC unary reply pays: a fresh buffer, the prefix,
        // a copy of the payload.
        group.bench_with_input(BenchmarkId::new("frame", label), &payload, |b, p| {
            b.iter(|| frame(0, black_box(p)).expect("frame"))
        });
    }
    // The prefix alone, into a reused buffer: the floor under `frame` (the same for any
    // length, so no throughput).
    let mut buf = BytesMut::with_capacity(PREFIX_LEN);
    put_prefix(&mut buf, 0, 16 * 1024).expect("prefix");
    assert_eq!(&buf[..], &[0, 0, 0, 0x40, 0]);
    group.throughput(Throughput::Elements(1));
    group.bench_function("put_prefix", |b| {
        b.iter(|| {
            buf.clear();
            put_prefix(&mut buf, 0, black_box(16 * 1024)).expect("prefix");
            black_box(&buf);
        })
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let mut group = c.benchmark_group("envelope/read");

    // One chunk holding 256 envelopes of 64 bytes: every envelope is sliced out of the
    // chunk without copying.
    let (count, len) = (256, 64);
    let mut many = BytesMut::new();
    for i in 0..count {
        many.extend_from_slice(&frame(0, &[i as u8; 64]).expect("frame"));
    }
    let many = many.freeze();
    assert_eq!(read_all(vec![many.clone()]), (count, count * len));
    group.throughput(Throughput::Bytes(many.len() as u64));
    group.bench_function("one_chunk_256x64B", |b| {
        b.iter(|| read_all(vec![black_box(many.clone())]))
    });

    // One 16 KiB envelope in a single chunk: the fast path for a large message.
    let big = frame(0, &vec![7_u8; 16 * 1024]).expect("frame");
    assert_eq!(read_all(vec![big.clone()]), (1, 16 * 1024));
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.bench_function("one_chunk_1x16KiB", |b| {
        b.iter(|| read_all(vec![black_box(big.clone())]))
    });

    // The same envelope split across chunks: first inside the prefix (3 bytes, then the rest
    // of the prefix), then in 4 KiB pieces, as HTTP/2 DATA frames might cut it. The reader
    // reassembles it in a buffer reserved from the declared length.
    let mut split = vec![big.slice(..3), big.slice(3..PREFIX_LEN + 100)];
    split.extend(chunked(&big.slice(PREFIX_LEN + 100..), 4096));
    assert_eq!(split.iter().map(Bytes::len).sum::<usize>(), big.len());
    assert_eq!(read_all(split.clone()), (1, 16 * 1024));
    group.bench_function("split_1x16KiB_in_6_chunks", |b| {
        b.iter(|| read_all(black_box(split.clone())))
    });

    // 64-byte envelopes cut every 100 bytes: most envelopes straddle two chunks.
    let straddling = chunked(&many, 100);
    assert_eq!(read_all(straddling.clone()), (count, count * len));
    group.throughput(Throughput::Bytes(many.len() as u64));
    group.bench_function("split_256x64B_in_100B_chunks", |b| {
        b.iter(|| read_all(black_box(straddling.clone())))
    });
    group.finish();
}

criterion_group!(benches, write, read);
criterion_main!(benches);
