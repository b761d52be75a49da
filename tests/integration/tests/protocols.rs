//! One handler, every protocol: our client calls our server with Connect, gRPC, gRPC-Web
//! and gRPC-Web text, over h2c, HTTP/1.1 (where the protocol allows) and TLS; mutual TLS
//! refuses a wrong certificate and shows the right one to the handler. HTTP/3 carries every
//! protocol on the TLS port's number, which TCP responses advertise with Alt-Svc.

use futures_util::StreamExt as _;
use switchboard::client::tls::client_config;
use switchboard::client::{
    BoxTransport, Client, ClientConfig, Http3Transport, HttpTransport, Transport,
};
use switchboard::codec::Codec;
use switchboard::server::ServerConfig;
use switchboard::server::tls::server_config;
use switchboard::{Code, Protocol, Request};
use switchboard_integration_tests::pki;
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::{start, start_tls};

/// (protocol, gRPC-Web text?)
const PROTOCOLS: [(Protocol, bool); 4] = [
    (Protocol::Connect, false),
    (Protocol::Grpc, false),
    (Protocol::GrpcWeb, false),
    (Protocol::GrpcWeb, true),
];

fn config(protocol: Protocol, text: bool, codec: Codec) -> ClientConfig {
    ClientConfig::default()
        .protocol(protocol)
        .grpc_web_text(text)
        .codec(codec)
}

async fn exercise<T: Transport>(
    client: &TestServiceClient<T>,
    what: &str,
    expected_protocol: &str,
) {
    let unary = client
        .echo(EchoRequest {
            text: "hi".into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(unary.message().text, "hi", "{what}");
    assert_eq!(unary.message().protocol, expected_protocol, "{what}");

    let mut message = EchoRequest {
        repeat: 3,
        text: "s".into(),
        ..Default::default()
    };
    message
        .response_trailers
        .insert("x-tail".into(), "t".into());
    let mut stream = client.server_stream(message).await.unwrap().into_message();
    let mut n = 0;
    while let Some(item) = stream
        .message()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
    {
        assert_eq!(item.count, n);
        n += 1;
    }
    assert_eq!(n, 3, "{what}");
    assert_eq!(
        stream.trailers().unwrap().get("x-tail").unwrap(),
        "t",
        "{what}"
    );

    let upload = futures_util::stream::iter(vec![
        EchoRequest {
            text: "a".into(),
            ..Default::default()
        },
        EchoRequest {
            text: "b".into(),
            ..Default::default()
        },
    ]);
    assert_eq!(
        client
            .client_stream(Request::new(upload))
            .await
            .unwrap()
            .message()
            .text,
        "ab",
        "{what}"
    );

    let chat = futures_util::stream::iter(vec![EchoRequest {
        text: "x".into(),
        ..Default::default()
    }]);
    let replies: Vec<_> = client
        .bidi(Request::new(chat))
        .await
        .unwrap()
        .into_message()
        .collect()
        .await;
    assert_eq!(replies.len(), 1, "{what}");

    let failing = EchoRequest {
        fail_code: Code::AlreadyExists.as_i32(),
        fail_message: "taken: 100% ✓".into(),
        fail_with_detail: true,
        ..Default::default()
    };
    let err = client.echo(failing.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{what}");
    assert_eq!(err.message(), "taken: 100% ✓", "{what}");
    assert_eq!(err.details().len(), 1, "{what}");
    assert_eq!(err.metadata().get("x-error-meta").unwrap(), "yes", "{what}");
    let mut stream = client
        .server_stream(EchoRequest {
            repeat: 1,
            fail_after_stream: true,
            ..failing
        })
        .await
        .unwrap()
        .into_message();
    assert!(stream.message().await.unwrap().is_some());
    assert_eq!(
        stream.message().await.unwrap_err().code(),
        Code::AlreadyExists,
        "{what}"
    );
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Connect => "Connect",
        Protocol::Grpc => "Grpc",
        Protocol::GrpcWeb => "GrpcWeb",
        other => panic!("a protocol this test does not know: {other:?}"),
    }
}

#[tokio::test]
async fn every_protocol_over_h2c_and_http1() {
    let server = start(ServerConfig::default()).await;
    for (protocol, text) in PROTOCOLS {
        for codec in [Codec::Proto, Codec::Json] {
            for h2c in [true, false] {
                if protocol == Protocol::Grpc && !h2c {
                    continue; // gRPC needs HTTP/2
                }
                let what = format!("{protocol:?} text={text} {codec:?} h2c={h2c}");
                let base = if h2c {
                    Client::h2c(&server.url())
                } else {
                    Client::http1(&server.url())
                }
                .unwrap();
                let client =
                    TestServiceClient::new(base.with_config(config(protocol, text, codec)));
                exercise(&client, &what, protocol_name(protocol)).await;
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_procedures_are_unimplemented_in_every_protocol() {
    let server = start(ServerConfig::default()).await;
    for (protocol, text) in PROTOCOLS {
        let client =
            Client::h2c(&server.url())
                .unwrap()
                .with_config(config(protocol, text, Codec::Proto));
        let spec = switchboard::Spec::new(
            "/switchboard.test.v1.TestService/Missing",
            switchboard::StreamType::Unary,
            switchboard::Idempotency::Unknown,
        );
        let err = client
            .unary::<EchoRequest, EchoResponse>(spec, Request::new(EchoRequest::default()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unimplemented, "{protocol:?} text={text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn every_protocol_over_tls_with_alpn() {
    let pki = pki();
    let tls = server_config(pki.server.0.as_bytes(), pki.server.1.as_bytes(), None).unwrap();
    let server = start_tls(tls).await;
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    let roots = client_config(Some(pki.ca.as_bytes()), None).unwrap();
    for (protocol, text) in PROTOCOLS {
        let transports = [
            ("alpn", HttpTransport::tls(roots.clone())),
            ("http/1.1", HttpTransport::tls_http1(roots.clone())),
            ("h2", HttpTransport::tls_http2(roots.clone())),
        ];
        for (name, transport) in transports {
            if protocol == Protocol::Grpc && name == "http/1.1" {
                continue; // gRPC needs HTTP/2 trailers
            }
            let what = format!("{protocol:?} text={text} tls {name}");
            let client =
                TestServiceClient::new(Client::new(&url, transport).unwrap().with_config(config(
                    protocol,
                    text,
                    Codec::Proto,
                )));
            exercise(&client, &what, protocol_name(protocol)).await;
        }
    }
    server.stop().await;
}

/// A TLS server for the test service that also serves HTTP/3, and the URL of both.
async fn start_http3(
    tls: std::sync::Arc<switchboard::server::tls::ServerTlsConfig>,
) -> (switchboard_integration_tests::Running, String) {
    let router = switchboard::server::Router::new().add_service(TestServiceServer::new(
        switchboard_integration_tests::TestServer,
    ));
    let server = switchboard_integration_tests::Running::serve(
        switchboard::server::Server::new(router)
            .with_tls(tls)
            .http3(),
    )
    .await;
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    (server, url)
}

#[tokio::test]
async fn every_protocol_over_http3_on_the_tls_port_which_tcp_advertises() {
    let pki = pki();
    let tls = server_config(pki.server.0.as_bytes(), pki.server.1.as_bytes(), None).unwrap();
    let (server, url) = start_http3(tls).await;
    let roots = client_config(Some(pki.ca.as_bytes()), None).unwrap();
    // One transport, so every call shares one pooled QUIC connection.
    let transport = Http3Transport::new(roots.clone()).unwrap();
    for (protocol, text) in PROTOCOLS {
        for codec in [Codec::Proto, Codec::Json] {
            let what = format!("{protocol:?} text={text} {codec:?} HTTP/3");
            let client = TestServiceClient::new(
                Client::new(&url, transport.clone())
                    .unwrap()
                    .with_config(config(protocol, text, codec)),
            );
            exercise(&client, &what, protocol_name(protocol)).await;
        }
    }
    // The same port number over TCP answers too, and points at HTTP/3.
    let tcp = TestServiceClient::new(Client::new(&url, HttpTransport::tls(roots)).unwrap());
    let reply = tcp.echo(EchoRequest::default()).await.unwrap();
    let port = server.addr.port();
    assert_eq!(
        reply.headers().get("alt-svc").unwrap(),
        &format!("h3=\":{port}\"; ma=86400")
    );
    server.stop().await;
}

/// Mutual TLS over TCP or over HTTP/3: a stranger's certificate and none are refused, the
/// right one reaches the handler.
async fn mutual_tls_refuses_strangers_and_shows_the_certificate_over(http3: bool) {
    let pki = pki();
    let stranger = switchboard_integration_tests::pki();
    let tls = server_config(
        pki.server.0.as_bytes(),
        pki.server.1.as_bytes(),
        Some(pki.ca.as_bytes()),
    )
    .unwrap();
    let (server, url) = if http3 {
        start_http3(tls).await
    } else {
        let server = start_tls(tls).await;
        let url = format!("https://127.0.0.1:{}", server.addr.port());
        (server, url)
    };
    let call = |identity: Option<(&str, &str)>| {
        let config = client_config(
            Some(pki.ca.as_bytes()),
            identity.map(|(c, k)| (c.as_bytes(), k.as_bytes())),
        )
        .unwrap();
        let transport = if http3 {
            BoxTransport::new(Http3Transport::new(config).unwrap())
        } else {
            BoxTransport::new(HttpTransport::tls(config))
        };
        let client = TestServiceClient::new(Client::new(&url, transport).unwrap());
        async move { client.echo(EchoRequest::default()).await }
    };
    let accepted = call(Some((&pki.client.0, &pki.client.1)))
        .await
        .expect("a trusted client certificate is accepted");
    assert_eq!(accepted.message().peer_certificates, 1);
    assert_eq!(accepted.message().protocol, "Connect");
    let wrong = call(Some((&stranger.client.0, &stranger.client.1)))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unavailable, "{wrong}");
    let none = call(None).await.unwrap_err();
    assert_eq!(none.code(), Code::Unavailable, "{none}");
    server.stop().await;
}

#[tokio::test]
async fn mutual_tls_refuses_strangers_and_shows_the_certificate() {
    mutual_tls_refuses_strangers_and_shows_the_certificate_over(false).await;
}

#[tokio::test]
async fn mutual_tls_over_http3_refuses_strangers_and_shows_the_certificate() {
    mutual_tls_refuses_strangers_and_shows_the_certificate_over(true).await;
}
