//! Serving HTTP/3 with the built-in server ([`crate::server::Server::http3`]): a QUIC
//! endpoint's connections, each request stream an `http::Request` whose body reads the
//! stream, handled like any other call and answered on the same stream. The peer's address
//! and verified certificates reach `Peer` as on TCP; the server's limits on connections and
//! calls in flight count QUIC and TCP together.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use rustls_pki_types::CertificateDer;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::h3_body::{Http3Body, ResponseWriter};
use super::serve::{ServeRequest, over_call_limit};

/// The bounds one HTTP/3 endpoint is served with: the server's own.
#[derive(Clone)]
pub(crate) struct Http3Limits {
    /// Places for open connections, shared with the TCP listener; at the limit a new QUIC
    /// connection is refused (QUIC has no accept queue to wait in).
    pub(crate) connection_slots: Option<Arc<Semaphore>>,
    /// Places for calls in flight, shared with TCP, and their number.
    pub(crate) call_slots: Option<(Arc<Semaphore>, usize)>,
    /// How long a handshake, and a new request stream's headers, may take.
    pub(crate) first_bytes_timeout: Duration,
    /// How long shutdown waits for the calls in flight.
    pub(crate) grace: Duration,
}

impl Default for Http3Limits {
    fn default() -> Self {
        Http3Limits {
            connection_slots: None,
            call_slots: None,
            first_bytes_timeout: super::DEFAULT_FIRST_BYTES_TIMEOUT,
            grace: super::DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// How a server starts serving HTTP/3 for its service: [`serve_endpoint`] for that service
/// type, chosen where the type is known to take [`Http3Body`] requests.
pub(crate) type Http3Serving<S> =
    fn(S, quinn::Endpoint, Http3Limits, watch::Receiver<bool>) -> BoxFuture<'static, ()>;

/// [`serve_endpoint`] as an [`Http3Serving`].
pub(crate) fn serving<S: ServeRequest<Http3Body>>() -> Http3Serving<S> {
    |service, endpoint, limits, stop| Box::pin(serve_endpoint(service, endpoint, limits, stop))
}

/// Serves the requests of one QUIC connection until the peer closes it, or until `stop`
/// turns true: then GOAWAY tells the peer no new request will be taken, and the calls in
/// flight finish. Returns once every call it started has ended.
pub(crate) async fn serve_connection<S: ServeRequest<Http3Body>>(
    service: S,
    connection: quinn::Connection,
    limits: &Http3Limits,
    mut stop: watch::Receiver<bool>,
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
        let service = service.clone();
        let certificates = certificates.clone();
        let call_slots = limits.call_slots.clone();
        let headers_timeout = limits.first_bytes_timeout;
        calls.spawn(async move {
            // A stream whose headers never come is dropped (slow-loris, per stream).
            let resolved = tokio::time::timeout(headers_timeout, resolver.resolve_request()).await;
            let Ok(Ok((head, stream))) = resolved else {
                return;
            };
            let (send, recv) = stream.split();
            let request = head.map(|()| Http3Body::new(recv));
            let writer = ResponseWriter::new(send);
            // The call's place among the calls in flight, held until its response has ended.
            let _place = match call_slots {
                None => None,
                Some((slots, limit)) => match slots.try_acquire_owned() {
                    Ok(place) => Some(place),
                    Err(_) => {
                        let refused = over_call_limit(request.headers(), limit);
                        let _ = writer.write(refused).await;
                        return;
                    }
                },
            };
            let response = service.serve_request(request, remote, certificates).await;
            let _ = writer.write(response).await;
        });
        // Reap the calls that ended, so the set stays as large as the calls in flight.
        while calls.try_join_next().is_some() {}
    }
    // Dropping the connection would cut the calls in flight: they finish first.
    while calls.join_next().await.is_some() {}
}

/// Serves a QUIC endpoint's connections until `stop` turns true; then new connections are
/// refused, every connection gets GOAWAY, and this returns once their calls have finished
/// (or the grace period is over: the rest are reset) and the endpoint is closed.
pub(crate) async fn serve_endpoint<S: ServeRequest<Http3Body>>(
    service: S,
    endpoint: quinn::Endpoint,
    limits: Http3Limits,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            _ = stop.wait_for(|stop| *stop) => None,
        };
        let Some(incoming) = incoming else { break };
        let slot = match &limits.connection_slots {
            None => None,
            Some(slots) => match slots.clone().try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(_) => {
                    tracing::debug!(remote = %incoming.remote_address(), "connection limit reached; QUIC connection refused");
                    incoming.refuse();
                    continue;
                }
            },
        };
        let service = service.clone();
        let stopping = stop.clone();
        let limits = limits.clone();
        connections.spawn(async move {
            // Held for as long as the connection lives.
            let _slot = slot;
            // A handshake that does not finish in time is dropped (the TCP server's
            // first-bytes timeout, for QUIC).
            let handshake = tokio::time::timeout(limits.first_bytes_timeout, incoming).await;
            match handshake {
                Ok(Ok(connection)) => {
                    serve_connection(service, connection, &limits, stopping).await;
                }
                Ok(Err(error)) => tracing::info!(%error, "QUIC handshake failed"),
                Err(_) => tracing::info!("QUIC handshake timed out"),
            }
        });
        while connections.try_join_next().is_some() {}
    }
    endpoint.set_server_config(None);
    let drained = tokio::time::timeout(limits.grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(grace = ?limits.grace, "shutdown grace period over; closing the remaining QUIC connections");
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    endpoint.close(0u32.into(), b"shutting down");
    // The close reaches the peers; a peer that never acknowledges it does not hold us.
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use bytes::Buf as _;

    use super::*;
    use crate::request::{Request, Response};
    use crate::server::Router;
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

    /// A Connect unary call of `Whoami`'s `method` with an empty message, its request sent
    /// whole.
    async fn connect_unary(
        send_request: &mut h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
        method: &str,
    ) -> h3::client::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes> {
        let mut stream = send_request
            .send_request(
                http::Request::post(format!("https://localhost/whoami.v1.Whoami/{method}"))
                    .header("content-type", "application/proto")
                    .body(())
                    .unwrap(),
            )
            .await
            .unwrap();
        stream.finish().await.unwrap();
        stream
    }

    /// Serves `Whoami` on each connection `server` accepts, with no limits and no stop.
    fn serve_each_connection(server: quinn::Endpoint) {
        let router = Router::new().add_service(Whoami);
        tokio::spawn(async move {
            while let Some(incoming) = server.accept().await {
                let router = router.clone();
                tokio::spawn(async move {
                    if let Ok(connection) = incoming.await {
                        serve_connection(router, connection, &Http3Limits::default(), never_stop())
                            .await;
                    }
                });
            }
        });
    }

    #[tokio::test]
    async fn a_connect_call_over_http3_reaches_its_handler_with_the_peer() {
        let (server, client) = crate::server::h3_body::tests::endpoints();
        let addr: SocketAddr = server.local_addr().unwrap();
        serve_each_connection(server);
        let mut send_request = crate::server::h3_body::tests::h3_client(&client, addr).await;
        let mut stream = connect_unary(&mut send_request, "Get").await;
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
        serve_each_connection(server);
        let mut send_request = crate::server::h3_body::tests::h3_client(&client, addr).await;
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
        let (shut, stop) = watch::channel(false);
        let serving = tokio::spawn(serve_endpoint(
            Router::new().add_service(Whoami),
            server,
            Http3Limits::default(),
            stop,
        ));
        let mut send_request = crate::server::h3_body::tests::h3_client(&client, addr).await;
        let mut stream = connect_unary(&mut send_request, "Slow").await;
        // Shut down while the call is in its handler.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        shut.send(true).unwrap();
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
