//! The test service and helpers shared by the integration tests.

/// Generated code of the test service.
#[allow(missing_docs)]
pub mod proto {
    switchboard::include_proto!("switchboard.test.v1");
}

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt as _;
use http::{HeaderName, HeaderValue};
use proto::*;
use switchboard::{Code, Error, ErrorDetail, Request, Response, ResponseStream, Streaming};

/// The behaviour-driven test service.
#[derive(Clone, Debug, Default)]
pub struct TestServer;

fn fail(request: &EchoRequest) -> Result<(), Error> {
    if request.fail_code == 0 {
        return Ok(());
    }
    let code = Code::from_i32(request.fail_code).unwrap_or(Code::Unknown);
    let mut error = Error::new(code, request.fail_message.clone());
    if request.fail_with_detail {
        error.add_detail(ErrorDetail::new(&prost_types::Duration {
            seconds: 42,
            nanos: 7,
        }));
    }
    error
        .metadata_mut()
        .insert("x-error-meta", HeaderValue::from_static("yes"));
    Err(error)
}

fn respond_to<T>(request: &EchoRequest, message: T) -> Response<T> {
    let mut response = Response::new(message);
    for (k, v) in &request.response_headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            response.headers_mut().append(k, v);
        }
    }
    for (k, v) in &request.response_trailers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            response.trailers_mut().append(k, v);
        }
    }
    response
}

fn echo_of<T>(request: &Request<T>, message: &EchoRequest, count: u32) -> EchoResponse {
    let mut response = echo_with(request.headers(), request.timeout(), message, count);
    if let Some(peer) = request.peer() {
        response.peer_certificates = peer.certificates().map_or(0, |c| c.len() as u32);
        response.protocol = format!("{:?}", peer.protocol());
    }
    response
}

fn echo_with(
    headers: &http::HeaderMap,
    timeout: Option<Duration>,
    message: &EchoRequest,
    count: u32,
) -> EchoResponse {
    let request_headers = headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-"))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let payload = if message.response_size > 0 {
        vec![b'z'; message.response_size as usize]
    } else {
        message.payload.clone()
    };
    EchoResponse {
        text: message.text.clone(),
        payload,
        request_headers,
        count,
        timeout_ms: timeout.map_or(-1, |t| t.as_millis() as i64),
        ..Default::default()
    }
}

impl TestService for TestServer {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Error> {
        let message = request.message();
        if message.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(message.sleep_ms.into())).await;
        }
        fail(message)?;
        Ok(respond_to(message, echo_of(&request, message, 1)))
    }

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Error> {
        let message = request.message().clone();
        let first = echo_of(&request, &message, 0);
        let repeat = message.repeat;
        let sleep = Duration::from_millis(message.sleep_ms.into());
        let failure = if message.fail_after_stream {
            fail(&message).err()
        } else {
            None
        };
        if !message.fail_after_stream {
            fail(&message)?;
        }
        let items = futures_util::stream::iter(0..repeat)
            .then(move |i| {
                let mut item = first.clone();
                item.count = i;
                async move {
                    if !sleep.is_zero() {
                        tokio::time::sleep(sleep).await;
                    }
                    Ok(item)
                }
            })
            .chain(futures_util::stream::iter(failure.map(Err)));
        Ok(respond_to(
            &message,
            Box::pin(items) as ResponseStream<EchoResponse>,
        ))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoResponse>, Error> {
        let mut text = String::new();
        let mut count = 0;
        let mut last = EchoRequest::default();
        let headers = request.headers().clone();
        let timeout = request.timeout();
        let mut messages = request.into_message();
        while let Some(message) = messages.message().await? {
            text.push_str(&message.text);
            count += 1;
            last = message;
        }
        fail(&last)?;
        let mut response = echo_with(&headers, timeout, &last, count);
        response.text = text;
        Ok(respond_to(&last, response))
    }

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<ResponseStream<EchoResponse>>, Error> {
        let mut messages = request.into_message();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut count = 0;
            loop {
                let next = messages.message().await;
                let item = match next {
                    Ok(None) => break,
                    Ok(Some(message)) => match fail(&message) {
                        Ok(()) => Ok(EchoResponse {
                            text: message.text,
                            count,
                            ..Default::default()
                        }),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                };
                count += 1;
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    break;
                }
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Response::new(
            Box::pin(stream) as ResponseStream<EchoResponse>
        ))
    }
}

/// A running test server.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `server` (any configuration) on 127.0.0.1.
    pub async fn serve<S: switchboard::server::ServeRequest>(
        server: switchboard::server::Server<S>,
    ) -> Running {
        start_server(server).await
    }

    /// Stops accepting and waits for in-flight calls.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Starts the test service on 127.0.0.1 with `config`.
pub async fn start(config: switchboard::server::ServerConfig) -> Running {
    let router = switchboard::server::Router::new()
        .with_config(config)
        .add_service(TestServiceServer::new(TestServer));
    start_router(router).await
}

/// Starts the test service on 127.0.0.1 over TLS.
pub async fn start_tls(tls: std::sync::Arc<switchboard::server::tls::ServerTlsConfig>) -> Running {
    let router = switchboard::server::Router::new().add_service(TestServiceServer::new(TestServer));
    start_server(switchboard::server::Server::new(router).with_tls(tls)).await
}

/// Starts any router on 127.0.0.1.
pub async fn start_router(router: switchboard::server::Router) -> Running {
    start_server(switchboard::server::Server::new(router)).await
}

async fn start_server<S: switchboard::server::ServeRequest>(
    server: switchboard::server::Server<S>,
) -> Running {
    let (listener, addr) = switchboard::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve_with_shutdown(listener, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
    });
    Running {
        addr,
        shutdown: Some(tx),
        task,
    }
}

/// A throwaway PKI for TLS tests, all PEM: a CA, a server certificate for 127.0.0.1 and
/// localhost, and a client certificate.
#[derive(Debug)]
pub struct Pki {
    /// The CA certificate.
    pub ca: String,
    /// The server's certificate and key.
    pub server: (String, String),
    /// The client's certificate and key.
    pub client: (String, String),
}

/// A fresh [`Pki`].
pub fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca: ca.pem(),
        server: leaf(vec!["127.0.0.1".into(), "localhost".into()]),
        client: leaf(vec!["client.test".into()]),
    }
}

/// Mutual TLS from a fresh [`Pki`]: a server configuration that requires a client
/// certificate signed by the CA, and a client configuration that trusts the CA and presents
/// the client certificate.
pub fn mutual_tls() -> (
    std::sync::Arc<switchboard::server::tls::ServerTlsConfig>,
    std::sync::Arc<switchboard::client::tls::ClientTlsConfig>,
) {
    let pki = pki();
    let server = switchboard::server::tls::server_config(
        pki.server.0.as_bytes(),
        pki.server.1.as_bytes(),
        Some(pki.ca.as_bytes()),
    )
    .expect("server TLS configuration");
    let client = switchboard::client::tls::client_config(
        Some(pki.ca.as_bytes()),
        Some((pki.client.0.as_bytes(), pki.client.1.as_bytes())),
    )
    .expect("client TLS configuration");
    (server, client)
}
