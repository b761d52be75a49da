//! HTTP/1.1 connection reuse after an early answer: a request whose body the server stops
//! reading (here: a message over the receive limit) is drained before the reply when it is
//! small, so the connection serves the next request; when it is too large to drain, the
//! reply says `Connection: close`, so the client never reuses a connection the server is
//! about to close (the cause of `unexpected EOF` on a client's next POST).

use std::time::Duration;

use switchboard::server::ServerConfig;
use switchboard_integration_tests::{Running, start};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

const PATH: &str = "/switchboard.test.v1.TestService/Echo";

/// The head of a Connect unary JSON request with a body of `len` bytes.
fn head(server: &Running, len: usize) -> String {
    format!(
        "POST {PATH} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n",
        server.addr
    )
}

/// A JSON body of exactly `len` bytes (`{"text":"xxx…"}`).
fn body(len: usize) -> Vec<u8> {
    let mut body = br#"{"text":""#.to_vec();
    body.resize(len - 2, b'x');
    body.extend_from_slice(br#""}"#);
    body
}

/// One response read from `reader`: status, lowercase header lines, body.
async fn response(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> (u16, Vec<String>, Vec<u8>) {
    let mut line = String::new();
    reader.read_line(&mut line).await.expect("status line");
    let status: u16 = line
        .split(' ')
        .nth(1)
        .expect("status")
        .parse()
        .expect("status code");
    let mut headers = Vec::new();
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).await.expect("header line");
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(value) = header.strip_prefix("content-length:") {
            length = value.trim().parse().expect("content-length");
        }
        headers.push(header);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.expect("body");
    (status, headers, body)
}

fn says_close(headers: &[String]) -> bool {
    headers.iter().any(|h| h == "connection: close")
}

#[tokio::test]
async fn a_small_unread_body_is_drained_and_the_connection_serves_the_next_call() {
    let server = start(ServerConfig::default().read_max_bytes(1024)).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);

    // Over the limit (the server answers before reading it all), small enough to drain.
    let over = body(64 * 1024);
    write
        .write_all(head(&server, over.len()).as_bytes())
        .await
        .unwrap();
    write.write_all(&over).await.unwrap();
    let (status, headers, body_bytes) = response(&mut reader).await;
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body_bytes));
    assert!(!says_close(&headers), "{headers:?}");

    // The same connection answers the next call.
    let ok = body(32);
    write
        .write_all(head(&server, ok.len()).as_bytes())
        .await
        .unwrap();
    write.write_all(&ok).await.unwrap();
    let (status, _, body_bytes) = response(&mut reader).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body_bytes));
    server.stop().await;
}

#[tokio::test]
async fn a_body_too_large_to_drain_gets_connection_close() {
    let server = start(ServerConfig::default().read_max_bytes(1024)).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);

    let huge = body(4 * 1024 * 1024);
    write
        .write_all(head(&server, huge.len()).as_bytes())
        .await
        .unwrap();
    // The server stops reading part way: send from a task that may never finish.
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&huge).await;
        write
    });
    let (status, headers, body_bytes) =
        tokio::time::timeout(Duration::from_secs(30), response(&mut reader))
            .await
            .expect("the server answers although the body is still coming");
    assert_eq!(status, 429, "{}", String::from_utf8_lossy(&body_bytes));
    assert!(says_close(&headers), "{headers:?}");
    writer.abort();
    server.stop().await;
}
