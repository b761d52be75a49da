//! Serving one HTTP/3 connection with a [`Router`]: each request stream becomes an
//! `http::Request` whose body reads the stream, handled like any other call, and answered on
//! the same stream. The peer's address and verified certificates reach `Peer` through the
//! request's extensions, as for the TCP server.
//!
//! Still to come (issue 14, steps 3-5 of docs/design/http3.md): limits and timeouts, graceful
//! shutdown with GOAWAY, and the endpoint's accept loop beside the TCP listener.

use std::sync::Arc;

use bytes::Bytes;
use rustls_pki_types::CertificateDer;
use tokio::task::JoinSet;

use super::Router;
use super::h3_body::{RequestBody, ResponseWriter};
use crate::spec::{PeerCertificates, RemoteAddr};

/// Serves the requests of one QUIC connection until the peer closes it, or until `stop`
/// turns true: then GOAWAY tells the peer no new request will be taken, and the calls in
/// flight finish. Returns once every call it started has ended.
pub(crate) async fn serve_connection(
    router: Router,
    connection: h3_quinn::quinn::Connection,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let remote = connection.remote_address();
    let certificates: Option<Arc<[Bytes]>> = connection
        .peer_identity()
        .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok())
        .map(|chain| {
            chain
                .iter()
                .map(|cert| Bytes::copy_from_slice(cert.as_ref()))
                .collect()
        });
    let Ok(mut h3) =
        h3::server::Connection::<_, Bytes>::new(h3_quinn::Connection::new(connection)).await
    else {
        return;
    };
    let mut calls = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = h3.accept() => Some(accepted),
            () = async {
                let _ = stop.wait_for(|stop| *stop).await;
            } => None,
        };
        let resolver = match accepted {
            Some(Ok(Some(resolver))) => resolver,
            Some(Ok(None) | Err(_)) => break,
            None => {
                // GOAWAY: the requests already accepted are served, no new one is.
                let _ = h3.shutdown(0).await;
                break;
            }
        };
        let router = router.clone();
        let certificates = certificates.clone();
        calls.spawn(async move {
            let Ok((head, stream)) = resolver.resolve_request().await else {
                return;
            };
            let (send, recv) = stream.split();
            let mut request = head.map(|()| RequestBody::new(recv));
            request.extensions_mut().insert(RemoteAddr(remote));
            if let Some(certificates) = certificates {
                request
                    .extensions_mut()
                    .insert(PeerCertificates(certificates));
            }
            let response = router.handle(request).await;
            let _ = ResponseWriter::new(send).write(response).await;
        });
        // Reap the calls that ended, so the set stays as large as the calls in flight.
        while calls.try_join_next().is_some() {}
    }
    // Dropping the connection would cut the calls in flight: they finish first.
    while calls.join_next().await.is_some() {}
}

/// Serves a QUIC endpoint's connections until `shutdown` completes; then new connections are
/// refused, every connection gets GOAWAY, and this returns once their calls have finished and
/// the endpoint is idle.
pub(crate) async fn serve_endpoint(
    router: Router,
    endpoint: h3_quinn::quinn::Endpoint,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let router = router.clone();
                let stopping = stopping.clone();
                connections.spawn(async move {
                    // A handshake that does not finish in time is dropped (the TCP server's
                    // first-bytes timeout, for QUIC).
                    let handshake =
                        tokio::time::timeout(super::DEFAULT_FIRST_BYTES_TIMEOUT, incoming).await;
                    if let Ok(Ok(connection)) = handshake {
                        serve_connection(router, connection, stopping).await;
                    }
                });
                while connections.try_join_next().is_some() {}
            }
            () = &mut shutdown => break,
        }
    }
    endpoint.set_server_config(None);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    endpoint.close(0u32.into(), b"shutting down");
    endpoint.wait_idle().await;
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use bytes::Buf as _;

    use super::*;
    use crate::request::{Request, Response};
    use crate::server::{Routes, RpcService};
    use crate::spec::{Idempotency, Spec, StreamType};

    /// A stop signal that never comes.
    fn never_stop() -> tokio::sync::watch::Receiver<bool> {
        let (stop, stopping) = tokio::sync::watch::channel(false);
        std::mem::forget(stop);
        stopping
    }

    /// A service whose one method answers with the caller's protocol and address.
    struct Whoami;

    impl RpcService for Whoami {
        fn name(&self) -> &'static str {
            "whoami.v1.Whoami"
        }

        fn register(self, routes: &mut Routes) {
            let spec = Spec::new(
                "/whoami.v1.Whoami/Get",
                StreamType::Unary,
                Idempotency::Unknown,
            );
            let echo = Spec::new(
                "/whoami.v1.Whoami/Echo",
                StreamType::BidiStreaming,
                Idempotency::Unknown,
            );
            routes.bidi_streaming(echo, |request: Request<crate::Streaming<()>>| async move {
                let stream: crate::ResponseStream<()> = Box::pin(request.into_message());
                Ok(Response::new(stream))
            });
            let slow = Spec::new(
                "/whoami.v1.Whoami/Slow",
                StreamType::Unary,
                Idempotency::Unknown,
            );
            routes.unary(slow, |_request: Request<()>| async move {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                Ok(Response::new(()))
            });
            routes.unary(spec, |request: Request<()>| async move {
                let peer = request.peer().cloned();
                let mut response = Response::new(());
                let who = format!(
                    "{:?} from {}",
                    peer.as_ref().map(crate::Peer::protocol),
                    peer.and_then(|p| p.addr())
                        .map(|a| a.ip().to_string())
                        .unwrap_or_default()
                );
                response
                    .headers_mut()
                    .insert("x-who", http::HeaderValue::from_str(&who).unwrap());
                Ok(response)
            });
        }
    }

    #[tokio::test]
    async fn a_connect_call_over_http3_reaches_its_handler_with_the_peer() {
        let (server, client) = crate::server::h3_body::tests::endpoints();
        let addr: SocketAddr = server.local_addr().unwrap();
        let router = Router::new().add_service(Whoami);
        tokio::spawn(async move {
            while let Some(incoming) = server.accept().await {
                let router = router.clone();
                tokio::spawn(async move {
                    if let Ok(connection) = incoming.await {
                        serve_connection(router, connection, never_stop()).await;
                    }
                });
            }
        });
        let connection = client.connect(addr, "localhost").unwrap().await.unwrap();
        let (mut driver, mut send_request) = h3::client::new(h3_quinn::Connection::new(connection))
            .await
            .unwrap();
        tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
        let mut stream = send_request
            .send_request(
                http::Request::post("https://localhost/whoami.v1.Whoami/Get")
                    .header("content-type", "application/proto")
                    .body(())
                    .unwrap(),
            )
            .await
            .unwrap();
        stream.finish().await.unwrap();
        let response = stream.recv_response().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/proto");
        let who = response.headers()["x-who"].to_str().unwrap();
        assert_eq!(who, format!("Some(Connect) from {}", Ipv4Addr::LOCALHOST));
        let mut body = Vec::new();
        while let Some(mut data) = stream.recv_data().await.unwrap() {
            body.extend_from_slice(&data.copy_to_bytes(data.remaining()));
        }
        assert!(body.is_empty(), "an empty message encodes to nothing");
    }

    #[tokio::test]
    async fn a_grpc_bidi_stream_over_http3_is_full_duplex_and_ends_with_trailers() {
        let (server, client) = crate::server::h3_body::tests::endpoints();
        let addr: SocketAddr = server.local_addr().unwrap();
        let router = Router::new().add_service(Whoami);
        tokio::spawn(async move {
            if let Some(incoming) = server.accept().await {
                if let Ok(connection) = incoming.await {
                    serve_connection(router, connection, never_stop()).await;
                }
            }
        });
        let connection = client.connect(addr, "localhost").unwrap().await.unwrap();
        let (mut driver, mut send_request) = h3::client::new(h3_quinn::Connection::new(connection))
            .await
            .unwrap();
        tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
        let mut stream = send_request
            .send_request(
                http::Request::post("https://localhost/whoami.v1.Whoami/Echo")
                    .header("content-type", "application/grpc")
                    .header("te", "trailers")
                    .body(())
                    .unwrap(),
            )
            .await
            .unwrap();
        // An empty message: flags 0, length 0.
        let empty = Bytes::from_static(&[0, 0, 0, 0, 0]);
        stream.send_data(empty.clone()).await.unwrap();
        let response = stream.recv_response().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/grpc");
        // The echo of the first message arrives before the request stream ends.
        let mut first = stream.recv_data().await.unwrap().unwrap();
        assert_eq!(first.copy_to_bytes(first.remaining()), empty);
        stream.send_data(empty.clone()).await.unwrap();
        stream.finish().await.unwrap();
        let mut rest = Vec::new();
        while let Some(mut data) = stream.recv_data().await.unwrap() {
            rest.extend_from_slice(&data.copy_to_bytes(data.remaining()));
        }
        assert_eq!(rest, empty);
        let trailers = stream.recv_trailers().await.unwrap().unwrap();
        assert_eq!(trailers["grpc-status"], "0");
    }

    #[tokio::test]
    async fn shutdown_sends_goaway_finishes_calls_in_flight_and_refuses_new_connections() {
        let (server, client) = crate::server::h3_body::tests::endpoints();
        let addr: SocketAddr = server.local_addr().unwrap();
        let (shut, shutdown) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(serve_endpoint(
            Router::new().add_service(Whoami),
            server,
            async move {
                let _ = shutdown.await;
            },
        ));
        let connection = client.connect(addr, "localhost").unwrap().await.unwrap();
        let (mut driver, mut send_request) = h3::client::new(h3_quinn::Connection::new(connection))
            .await
            .unwrap();
        tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
        let mut stream = send_request
            .send_request(
                http::Request::post("https://localhost/whoami.v1.Whoami/Slow")
                    .header("content-type", "application/proto")
                    .body(())
                    .unwrap(),
            )
            .await
            .unwrap();
        stream.finish().await.unwrap();
        // Shut down while the call is in its handler.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        shut.send(()).unwrap();
        let response = stream.recv_response().await.unwrap();
        assert_eq!(response.status(), 200, "the call in flight is served");
        while stream.recv_data().await.unwrap().is_some() {}
        drop(stream);
        drop(send_request);
        tokio::time::timeout(std::time::Duration::from_secs(10), serving)
            .await
            .expect("the server stops once its calls are done")
            .unwrap();
        // Nothing listens any more (no answer within a second).
        let again = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            client.connect(addr, "localhost").unwrap(),
        )
        .await;
        assert!(!matches!(again, Ok(Ok(_))), "a new connection was accepted");
    }
}
