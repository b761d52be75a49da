//! HTTP/2 settings that let ordinary traffic through and bound the rest: a burst of streams
//! each opened with a small message is answered (h2's flood budget for small DATA frames no
//! longer trips on it), and a limit on concurrent streams is advertised.

use std::future::Future as _;

use switchboard::Request;
use switchboard::client::Client;
use switchboard::server::{DEFAULT_MAX_CONCURRENT_STREAMS, ServerConfig};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::start;

/// 150 bidi streams opened together on one connection, a small first message each: before,
/// the server closed the connection with GOAWAY ENHANCE_YOUR_CALM at 50.
#[tokio::test]
async fn a_burst_of_streams_with_small_messages_is_answered() {
    let server = start(ServerConfig::default()).await;
    let client = TestServiceClient::new(Client::h2c(&server.url()).unwrap());
    let calls = (0..150).map(|i| {
        let client = client.clone();
        async move {
            let n = i % 3 + 1;
            let items: Vec<_> = (0..n)
                .map(|j| EchoRequest {
                    text: format!("{i}.{j}"),
                    ..Default::default()
                })
                .collect();
            let mut stream = client
                .bidi(Request::new(futures_util::stream::iter(items)))
                .await
                .unwrap()
                .into_message();
            let mut seen = 0;
            while let Some(item) = stream.message().await.unwrap() {
                assert_eq!(item.text, format!("{i}.{seen}"));
                seen += 1;
            }
            assert_eq!(seen, n);
        }
    });
    futures_util::future::join_all(calls).await;
    server.stop().await;
}

/// The server's SETTINGS carry its stream limit, as a raw HTTP/2 client sees them.
#[tokio::test]
async fn the_concurrent_stream_limit_is_advertised() {
    let server = start(ServerConfig::default()).await;
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (send, mut connection) = h2::client::handshake(tcp).await.unwrap();
    // One call, so the server's SETTINGS have been received and applied; the connection is
    // driven by hand to read them afterwards.
    let url = format!("{}/switchboard.test.v1.TestService/Echo", server.url());
    let mut call = Box::pin(async move {
        let mut send = send.ready().await?;
        let request = http::Request::post(url)
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let (response, mut body) = send.send_request(request, false)?;
        body.send_data(bytes::Bytes::from_static(b"{}"), true)?;
        response.await
    });
    let response = std::future::poll_fn(|cx| {
        let _ = std::pin::Pin::new(&mut connection).poll(cx);
        call.as_mut().poll(cx)
    })
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        connection.max_concurrent_send_streams(),
        DEFAULT_MAX_CONCURRENT_STREAMS as usize
    );
    // Closed before the server stops, which would otherwise wait out its grace period.
    drop(connection);
    server.stop().await;
}
