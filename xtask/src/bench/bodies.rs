//! The request bodies every load generator sends, built once per run: the `bench.v1` messages
//! (prost derives here, so the harness needs neither protoc nor the benches workspace) and
//! their framing for each protocol.
//!
//! Framing: a Connect unary request is the bare message; Connect streaming, gRPC and gRPC-Web
//! requests are envelopes (a flags byte, a big-endian `u32` length, the message). A Connect
//! client stream ends with the end of the body: clients send no end-stream envelope.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use prost::Message as _;

use super::matrix::{Call, Protocol};

/// `bench.v1.EchoRequest` (and `EchoResponse`, which has the same shape).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct EchoRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) payload: Vec<u8>,
}

/// `bench.v1.StreamRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct StreamRequest {
    #[prost(uint32, tag = "1")]
    pub(crate) count: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) payload: Vec<u8>,
}

/// `bench.v1.StreamSummary`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct StreamSummary {
    #[prost(uint32, tag = "1")]
    pub(crate) messages: u32,
    #[prost(uint64, tag = "2")]
    pub(crate) bytes: u64,
}

/// `bench.v1.LogRecord`; `severity` is the `bench.v1.Severity` number.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct LogRecord {
    #[prost(int64, tag = "1")]
    pub(crate) timestamp_unix_nanos: i64,
    #[prost(int32, tag = "2")]
    pub(crate) severity: i32,
    #[prost(string, tag = "3")]
    pub(crate) service: String,
    #[prost(string, tag = "4")]
    pub(crate) host: String,
    #[prost(string, tag = "5")]
    pub(crate) message: String,
    #[prost(btree_map = "string, string", tag = "6")]
    pub(crate) attributes: BTreeMap<String, String>,
    #[prost(bytes = "vec", tag = "7")]
    pub(crate) trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "8")]
    pub(crate) span_id: Vec<u8>,
}

/// `bench.v1.LogBatch`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct LogBatch {
    #[prost(message, repeated, tag = "1")]
    pub(crate) records: Vec<LogRecord>,
}

/// `bench.v1.IngestAck`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct IngestAck {
    #[prost(uint32, tag = "1")]
    pub(crate) records: u32,
    #[prost(uint64, tag = "2")]
    pub(crate) message_bytes: u64,
}

/// The small payload of unary, streaming and bidi calls.
pub(crate) const SMALL_PAYLOAD: usize = 64;
/// The large unary payload.
pub(crate) const LARGE_PAYLOAD: usize = 16 * 1024;
/// Records in the log-ingest batch.
pub(crate) const LOG_RECORDS: usize = 50;
/// Messages in a server stream and in a client stream.
pub(crate) const STREAM_MESSAGES: u32 = 1000;
/// Messages the bidi verification sends (the load itself comes from `pingpong`).
pub(crate) const BIDI_CHECK_MESSAGES: usize = 3;

/// A payload of `len` bytes that is not all one value (so nothing could special-case it).
pub(crate) fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

/// A small deterministic generator for ids, so every run sends the same bytes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// A batch shaped like what a log shipper sends from a checkout service: 50 records of about
/// 400 bytes, each with a ~250-character message and four attributes.
pub(crate) fn log_batch() -> LogBatch {
    const SEVERITIES: [i32; 4] = [2, 2, 3, 4]; // INFO, INFO, WARN, ERROR
    const ROUTES: [&str; 4] = [
        "/api/v1/orders",
        "/api/v1/cart",
        "/api/v1/payment",
        "/api/v1/shipping",
    ];
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    let start = 1_767_225_600_000_000_000_i64; // 2026-01-01T00:00:00Z
    let records = (0..LOG_RECORDS)
        .map(|i| {
            let order = 480_000 + i * 37;
            let message = format!(
                "order {order} placed: 3 items, total {}.{:02} EUR, payment authorised by card \
                 processor in {} ms; stock reserved in warehouse ams-2; shipping quote 4.95 EUR \
                 via parcel service (2-3 days); customer tier gold, coupon SPRING25 applied, \
                 fraud score 0.0{}",
                40 + i * 3,
                i % 100,
                120 + (i * 13) % 200,
                i % 10,
            );
            let attributes = BTreeMap::from([
                ("http.method".to_owned(), "POST".to_owned()),
                ("http.route".to_owned(), ROUTES[i % ROUTES.len()].to_owned()),
                ("user.id".to_owned(), format!("u-{:06}", 100_000 + i * 97)),
                ("region".to_owned(), "eu-west-1".to_owned()),
            ]);
            LogRecord {
                timestamp_unix_nanos: start + i as i64 * 1_234_567,
                severity: SEVERITIES[i % SEVERITIES.len()],
                service: "checkout".to_owned(),
                host: format!("checkout-7d9f8c6b5-{}", ["x2kqp", "m4tzr", "b8wlc"][i % 3]),
                message,
                attributes,
                trace_id: random.bytes(16),
                span_id: random.bytes(8),
            }
        })
        .collect();
    LogBatch { records }
}

/// The `IngestAck` a correct server returns for `batch`.
pub(crate) fn expected_ack(batch: &LogBatch) -> IngestAck {
    IngestAck {
        records: batch.records.len() as u32,
        message_bytes: batch.records.iter().map(|r| r.message.len() as u64).sum(),
    }
}

/// One envelope: flags, big-endian length, message.
pub(crate) fn envelope(flags: u8, message: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(flags);
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    framed
}

/// The encoded request messages of one call, before framing.
pub(crate) fn messages(call: Call) -> Vec<Vec<u8>> {
    let echo = |len| {
        EchoRequest {
            payload: payload(len),
        }
        .encode_to_vec()
    };
    match call {
        Call::Echo64 => vec![echo(SMALL_PAYLOAD)],
        Call::Echo16k => vec![echo(LARGE_PAYLOAD)],
        Call::Ingest => vec![log_batch().encode_to_vec()],
        Call::ServerStream => vec![
            StreamRequest {
                count: STREAM_MESSAGES,
                payload: payload(SMALL_PAYLOAD),
            }
            .encode_to_vec(),
        ],
        Call::ClientStream => (0..STREAM_MESSAGES).map(|_| echo(SMALL_PAYLOAD)).collect(),
        Call::Bidi => (0..BIDI_CHECK_MESSAGES)
            .map(|_| echo(SMALL_PAYLOAD))
            .collect(),
    }
}

/// The encoded response messages a correct server sends for `call`'s request.
pub(crate) fn response_messages(call: Call) -> Vec<Vec<u8>> {
    // EchoResponse and EchoRequest share their encoding.
    let echo = |len| {
        EchoRequest {
            payload: payload(len),
        }
        .encode_to_vec()
    };
    match call {
        Call::Echo64 => vec![echo(SMALL_PAYLOAD)],
        Call::Echo16k => vec![echo(LARGE_PAYLOAD)],
        Call::Ingest => vec![expected_ack(&log_batch()).encode_to_vec()],
        Call::ServerStream => (0..STREAM_MESSAGES).map(|_| echo(SMALL_PAYLOAD)).collect(),
        Call::ClientStream => vec![
            StreamSummary {
                messages: STREAM_MESSAGES,
                bytes: u64::from(STREAM_MESSAGES) * SMALL_PAYLOAD as u64,
            }
            .encode_to_vec(),
        ],
        Call::Bidi => (0..BIDI_CHECK_MESSAGES)
            .map(|_| echo(SMALL_PAYLOAD))
            .collect(),
    }
}

/// The fewest response body bytes a successful call carries: its messages, framed, without
/// whatever trailers or end-of-stream message follow. A load generator that counts only
/// HTTP statuses cannot tell a gRPC error (HTTP 200, no message) from a success; fewer body
/// bytes than this per call can.
pub(crate) fn min_response_bytes(call: Call, protocol: Protocol) -> u64 {
    let messages = response_messages(call);
    let framing = if is_bare(call, protocol) { 0 } else { 5 };
    messages.iter().map(|m| (m.len() + framing) as u64).sum()
}

/// Whether `protocol` sends `call`'s request as one bare message (Connect unary) rather than
/// as envelopes.
pub(crate) fn is_bare(call: Call, protocol: Protocol) -> bool {
    protocol.is_connect() && call.is_unary()
}

/// The request body of `call` over `protocol`.
pub(crate) fn body(call: Call, protocol: Protocol) -> Vec<u8> {
    let messages = messages(call);
    if is_bare(call, protocol) {
        return messages.concat();
    }
    messages.iter().flat_map(|m| envelope(0, m)).collect()
}

/// Where the bodies are written, one file per call and framing.
pub(crate) struct Bodies {
    dir: PathBuf,
}

impl Bodies {
    /// Writes every body into `dir`.
    pub(crate) fn write(dir: &Path) -> Result<Bodies> {
        std::fs::create_dir_all(dir)?;
        let bodies = Bodies {
            dir: dir.to_path_buf(),
        };
        for call in Call::ALL {
            for protocol in [Protocol::Connect, Protocol::Grpc] {
                let path = bodies.path(call, protocol);
                std::fs::write(&path, body(call, protocol))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        Ok(bodies)
    }

    /// The file holding `call`'s body over `protocol`.
    pub(crate) fn path(&self, call: Call, protocol: Protocol) -> PathBuf {
        let framing = if is_bare(call, protocol) {
            "bare"
        } else {
            "enveloped"
        };
        self.dir.join(format!("{}.{framing}.bin", call.key()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_encodes_as_protobuf() {
        let bytes = EchoRequest {
            payload: vec![1, 2, 3],
        }
        .encode_to_vec();
        assert_eq!(bytes, [0x0a, 3, 1, 2, 3]);
        let bytes = StreamRequest {
            count: 1000,
            payload: vec![9],
        }
        .encode_to_vec();
        // count: field 1 varint 1000 = e8 07; payload: field 2, length 1.
        assert_eq!(bytes, [0x08, 0xe8, 0x07, 0x12, 1, 9]);
    }

    #[test]
    fn log_batch_is_realistic() {
        let batch = log_batch();
        assert_eq!(batch.records.len(), LOG_RECORDS);
        let size = batch.encoded_len();
        assert!((18_000..24_000).contains(&size), "batch is {size} bytes");
        for record in &batch.records {
            let len = record.encoded_len();
            assert!((350..460).contains(&len), "record is {len} bytes");
            assert!((230..270).contains(&record.message.len()));
            assert_eq!(record.attributes.len(), 4);
            assert_eq!(record.trace_id.len(), 16);
            assert_eq!(record.span_id.len(), 8);
        }
        let ack = expected_ack(&batch);
        assert_eq!(ack.records, 50);
        assert_eq!(
            ack.message_bytes,
            batch
                .records
                .iter()
                .map(|r| r.message.len() as u64)
                .sum::<u64>()
        );
        // Decoding what was encoded gives the same batch back.
        assert_eq!(LogBatch::decode(&*batch.encode_to_vec()).unwrap(), batch);
    }

    #[test]
    fn framing_follows_the_protocol() {
        let bare = body(Call::Echo64, Protocol::Connect);
        assert_eq!(bare.len(), 2 + SMALL_PAYLOAD);
        assert_eq!(&bare[..2], [0x0a, 64]);
        assert_eq!(body(Call::Echo64, Protocol::ConnectH1), bare);
        let framed = body(Call::Echo64, Protocol::Grpc);
        assert_eq!(&framed[..5], [0, 0, 0, 0, 66]);
        assert_eq!(&framed[5..], bare);
        assert_eq!(body(Call::Echo64, Protocol::GrpcWeb), framed);
        // Connect streaming calls are enveloped, and the client sends no end-stream envelope.
        let stream = body(Call::ClientStream, Protocol::Connect);
        assert_eq!(stream.len(), 1000 * (5 + 2 + SMALL_PAYLOAD));
        assert!(stream.chunks(71).all(|chunk| chunk[0] == 0));
        assert_eq!(body(Call::ServerStream, Protocol::Connect)[0], 0);
    }

    #[test]
    fn minimum_response_sizes() {
        assert_eq!(min_response_bytes(Call::Echo64, Protocol::Connect), 66);
        assert_eq!(min_response_bytes(Call::Echo64, Protocol::Grpc), 71);
        assert_eq!(
            min_response_bytes(Call::Echo16k, Protocol::GrpcWeb),
            5 + 1 + 3 + 16384
        );
        assert_eq!(
            min_response_bytes(Call::ServerStream, Protocol::Connect),
            71_000
        );
        // StreamSummary{1000, 64000}: 08 e8 07 10 80 f4 03.
        assert_eq!(
            min_response_bytes(Call::ClientStream, Protocol::Grpc),
            5 + 7
        );
    }

    #[test]
    fn envelope_layout() {
        assert_eq!(envelope(0x80, b"ab"), [0x80, 0, 0, 0, 2, b'a', b'b']);
    }
}
