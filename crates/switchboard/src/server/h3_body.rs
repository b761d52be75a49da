//! The server's HTTP/3 bodies: a request stream's data and trailers read as the request's
//! body ([`Http3Body`], what the Router or a tower service sees), and the response written
//! to the stream by [`ResponseWriter`] — reset, never ended cleanly, when the response body
//! failed or was abandoned (see [`crate::h3_stream`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use h3::server::RequestStream;
use http_body::{Body as HttpBody, Frame};

use crate::body::BoxError;
use crate::h3_stream::{BodySender, RecvBody};

/// The body of a request that arrived over HTTP/3: its stream's data, then its trailers. This
/// is the request body a tower service sees when [`crate::server::Server::http3`] serves it
/// (a [`crate::server::Router`] takes any body); dropped before its end, it tells the peer to
/// stop sending.
pub struct Http3Body(RecvBody<RequestStream<h3_quinn::RecvStream, Bytes>>);

impl Http3Body {
    pub(crate) fn new(stream: RequestStream<h3_quinn::RecvStream, Bytes>) -> Self {
        Http3Body(RecvBody::new(stream))
    }
}

impl std::fmt::Debug for Http3Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http3Body")
            .field("ended", &self.0.is_end_stream())
            .finish()
    }
}

impl HttpBody for Http3Body {
    type Data = Bytes;
    type Error = BoxError;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().0).poll_frame(cx)
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }
}

/// Writes a response to the sending half of an HTTP/3 stream: the head, then the body through
/// a [`BodySender`], which resets the stream if the body fails or the writer is dropped
/// before the end.
pub(crate) struct ResponseWriter<S: h3::quic::SendStream<Bytes> + Send>(
    BodySender<RequestStream<S, Bytes>>,
);

impl<S: h3::quic::SendStream<Bytes> + Send> ResponseWriter<S> {
    pub(crate) fn new(stream: RequestStream<S, Bytes>) -> Self {
        ResponseWriter(BodySender::new(stream))
    }

    /// Sends the head, then every frame of the body, then ends the stream.
    pub(crate) async fn write<B>(mut self, response: http::Response<B>) -> Result<(), BoxError>
    where
        B: HttpBody<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = response.into_parts();
        self.0
            .stream()
            .send_response(http::Response::from_parts(parts, ()))
            .await?;
        self.0.send(body).await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::Arc;

    use http_body_util::BodyExt as _;

    use super::*;
    use bytes::Buf as _;
    use h3::error::Code;
    use http::HeaderMap;

    /// A server and a client QUIC endpoint on loopback that trust each other.
    pub(crate) fn endpoints() -> (h3_quinn::quinn::Endpoint, h3_quinn::quinn::Endpoint) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let tls = crate::server::tls::server_config(
            cert.pem().as_bytes(),
            key.serialize_pem().as_bytes(),
            None,
        )
        .unwrap();
        let server_config = crate::server::tls::quic_server_config(&tls).unwrap();
        let server = h3_quinn::quinn::Endpoint::server(
            server_config,
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        )
        .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let mut client_tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        client_tls.alpn_protocols = vec![b"h3".to_vec()];
        let crypto =
            h3_quinn::quinn::crypto::rustls::QuicClientConfig::try_from(client_tls).unwrap();
        let mut client =
            h3_quinn::quinn::Endpoint::client(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        client.set_default_client_config(h3_quinn::quinn::ClientConfig::new(Arc::new(crypto)));
        (server, client)
    }

    /// An HTTP/3 client connection from `client` to `addr`, its driver running.
    pub(crate) async fn h3_client(
        client: &h3_quinn::quinn::Endpoint,
        addr: SocketAddr,
    ) -> h3::client::SendRequest<h3_quinn::OpenStreams, Bytes> {
        let connection = client.connect(addr, "localhost").unwrap().await.unwrap();
        let (mut driver, send_request) = h3::client::new(h3_quinn::Connection::new(connection))
            .await
            .unwrap();
        tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
        send_request
    }

    /// The first request `server` receives, with its stream, and the connection it came on
    /// (kept by the caller: dropping it closes the connection).
    async fn first_request(
        server: &h3_quinn::quinn::Endpoint,
    ) -> (
        h3::server::Connection<h3_quinn::Connection, Bytes>,
        http::Request<()>,
        RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>,
    ) {
        let incoming = server.accept().await.unwrap();
        let mut connection = h3::server::Connection::<_, Bytes>::new(h3_quinn::Connection::new(
            incoming.await.unwrap(),
        ))
        .await
        .unwrap();
        let resolver = connection.accept().await.unwrap().unwrap();
        let (request, stream) = resolver.resolve_request().await.unwrap();
        (connection, request, stream)
    }

    #[tokio::test]
    async fn bodies_carry_data_and_trailers_both_ways_in_full_duplex() {
        let (server, client) = endpoints();
        let addr = server.local_addr().unwrap();
        let served = tokio::spawn(async move {
            let (_connection, request, stream) = first_request(&server).await;
            let (send, recv) = stream.split();
            let mut body = RecvBody::new(recv);
            // Full duplex: the first message is echoed before the request has ended.
            let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Frame<Bytes>, BoxError>>();
            tx.send(Ok(Frame::data(first))).unwrap();
            let echo = http_body_util::StreamBody::new(
                tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
            );
            let writing = tokio::spawn(ResponseWriter::new(send).write(http::Response::new(echo)));
            let mut rest = Vec::new();
            let mut request_trailers = None;
            while let Some(frame) = body.frame().await {
                let frame = frame.unwrap();
                match frame.into_data() {
                    Ok(data) => rest.extend_from_slice(&data),
                    Err(frame) => request_trailers = frame.into_trailers().ok(),
                }
            }
            tx.send(Ok(Frame::data(Bytes::from(rest)))).unwrap();
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            tx.send(Ok(Frame::trailers(trailers))).unwrap();
            drop(tx);
            writing.await.unwrap().unwrap();
            (request.uri().path().to_owned(), request_trailers)
        });
        let mut send_request = h3_client(&client, addr).await;
        let mut stream = send_request
            .send_request(
                http::Request::post("https://localhost/echo.v1.Echo/Bidi")
                    .body(())
                    .unwrap(),
            )
            .await
            .unwrap();
        stream.send_data(Bytes::from_static(b"one")).await.unwrap();
        let response = stream.recv_response().await.unwrap();
        assert_eq!(response.status(), 200);
        // The echo of the first message arrives while the request is still open.
        let mut first = stream.recv_data().await.unwrap().unwrap();
        assert_eq!(first.copy_to_bytes(first.remaining()), "one");
        stream.send_data(Bytes::from_static(b"two")).await.unwrap();
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sent", http::HeaderValue::from_static("2"));
        stream.send_trailers(trailers).await.unwrap();
        stream.finish().await.unwrap();
        let mut second = stream.recv_data().await.unwrap().unwrap();
        assert_eq!(second.copy_to_bytes(second.remaining()), "two");
        assert!(stream.recv_data().await.unwrap().is_none());
        let trailers = stream.recv_trailers().await.unwrap().unwrap();
        assert_eq!(trailers["grpc-status"], "0");
        let (path, request_trailers) = served.await.unwrap();
        assert_eq!(path, "/echo.v1.Echo/Bidi");
        assert_eq!(request_trailers.unwrap()["x-sent"], "2");
    }

    #[tokio::test]
    async fn a_response_body_that_fails_resets_the_stream_instead_of_ending_it() {
        let (server, client) = endpoints();
        let addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            let (_connection, _request, stream) = first_request(&server).await;
            let (send, _recv) = stream.split();
            let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
                Ok(Frame::data(Bytes::from_static(b"partial"))),
                Err("the handler's stream failed".into()),
            ];
            let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
            let _ = ResponseWriter::new(send)
                .write(http::Response::new(body))
                .await;
            // Keep the connection while the client reads.
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        });
        let mut send_request = h3_client(&client, addr).await;
        let mut stream = send_request
            .send_request(http::Request::get("https://localhost/x").body(()).unwrap())
            .await
            .unwrap();
        stream.finish().await.unwrap();
        // A reset may overtake even the head (QUIC drops unread data of a reset stream).
        if let Err(error) = stream.recv_response().await {
            assert!(
                matches!(
                    error,
                    h3::error::StreamError::RemoteTerminate { code, .. } if code == Code::H3_INTERNAL_ERROR
                ),
                "{error:?}"
            );
            return;
        }
        let mut read = Vec::new();
        let ended = loop {
            match stream.recv_data().await {
                Ok(Some(mut data)) => read.extend_from_slice(&data.copy_to_bytes(data.remaining())),
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        assert!(
            ended.is_err(),
            "a failed body must not end cleanly (read {read:?})"
        );
    }
}
