//! Malformed requests to a method whose request is a buffa view, over a real socket: each is
//! refused with `invalid_argument` in every protocol, and the server goes on serving.

use buffa_ingest::proto::{IngestRequest, LogRecord, LogServiceClient, log_service_specs};
use bytes::{Bytes, BytesMut};
use switchboard::client::{Client, ClientConfig};
use switchboard::codec::Message;
use switchboard::prost_reflect::MessageDescriptor;
use switchboard::server::Server;
use switchboard::{Code, Error, Protocol, Request};

/// Bytes sent as they are: a request no protobuf library would encode.
struct Raw(Bytes);

impl Message for Raw {
    fn encode_binary(&self, buf: &mut BytesMut) {
        buf.extend_from_slice(&self.0);
    }

    fn binary_len(&self) -> usize {
        self.0.len()
    }

    fn decode_binary(buf: Bytes, _descriptor: Option<&MessageDescriptor>) -> Result<Self, Error> {
        Ok(Raw(buf))
    }
}

/// Field 1 (`records`, length-delimited) holding `inner`.
fn record(inner: &[u8]) -> Bytes {
    let mut out = vec![0x0a, inner.len() as u8];
    out.extend_from_slice(inner);
    out.into()
}

#[tokio::test]
async fn malformed_requests_are_invalid_argument() {
    let (listener, addr) = switchboard::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    tokio::spawn(
        Server::new(buffa_ingest::router()).serve_with_shutdown(listener, std::future::pending()),
    );
    let url = format!("http://{addr}");
    let cases: [(&str, Bytes); 4] = [
        // `service` (field 2 of LogRecord) is not UTF-8.
        (
            "a string that is not UTF-8",
            record(&[0x12, 0x03, 0xff, 0xfe, 0xfd]),
        ),
        // A length running past the end of the message.
        ("a truncated field", record(&[0x12, 0x7f, b'a'])),
        // A varint of eleven bytes.
        (
            "an overlong varint",
            Bytes::from_static(&[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ]),
        ),
        // Wire type 7 does not exist.
        ("an unknown wire type", Bytes::from_static(&[0x0f, 0x00])),
    ];
    for protocol in [Protocol::Connect, Protocol::Grpc, Protocol::GrpcWeb] {
        let client = Client::h2c(&url)
            .unwrap()
            .with_config(ClientConfig::default().protocol(protocol));
        for (what, bytes) in &cases {
            let result = client
                .unary::<Raw, Raw>(
                    log_service_specs::ingest(),
                    Request::new(Raw(bytes.clone())),
                )
                .await;
            let error = result
                .err()
                .unwrap_or_else(|| panic!("{protocol:?}: {what} was accepted"));
            assert_eq!(
                error.code(),
                Code::InvalidArgument,
                "{protocol:?}: {what}: {error}"
            );
        }
        // A well-formed call on the same client still works.
        let ok = LogServiceClient::new(client.clone())
            .ingest(IngestRequest {
                records: vec![LogRecord {
                    service: "after".into(),
                    message: "still serving".into(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ok.message().view().accepted, 1);
    }
}
