//! The server under test for `connectconformance --mode server`.
//!
//! Reads one `ServerCompatRequest` from stdin, starts a switchboard server on an ephemeral
//! port of 127.0.0.1, answers with a `ServerCompatResponse` on stdout, and serves the
//! `ConformanceService` through the normal generated service trait and router until killed.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use switchboard::server::{Router, Server, ServerConfig};
use switchboard::{Code, Error, ErrorDetail, Request, Response, ResponseStream, Streaming};
use switchboard_conformance::proto::conformance_payload::{ConnectGetInfo, RequestInfo};
use switchboard_conformance::proto::{self, *};
use switchboard_conformance::{read_message, write_message};

/// The conformance service.
struct Conformance;

/// Packs a conformance message as `google.protobuf.Any`.
fn any_of<M: prost::Message>(type_name: &str, message: &M) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("type.googleapis.com/connectrpc.conformance.v1.{type_name}"),
        value: message.encode_to_vec(),
    }
}

/// Headers as the conformance protocol's name → values list, in first-seen order.
fn headers_to_proto(headers: &HeaderMap) -> Vec<Header> {
    let mut out: Vec<Header> = Vec::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match out.iter_mut().find(|h| h.name == name.as_str()) {
            Some(header) => header.value.push(value),
            None => out.push(Header {
                name: name.as_str().to_owned(),
                value: vec![value],
            }),
        }
    }
    out
}

/// Appends headers described by the test case.
fn add_headers(definitions: &[Header], map: &mut HeaderMap) {
    for header in definitions {
        let Ok(name) = HeaderName::try_from(header.name.as_str()) else {
            continue;
        };
        for value in &header.value {
            if let Ok(value) = HeaderValue::try_from(value.as_str()) {
                map.append(name.clone(), value);
            }
        }
    }
}

/// The query parameters of a Connect GET request, decoded.
fn query_params(request_uri: Option<&http::Uri>, is_get: bool) -> Option<ConnectGetInfo> {
    let query = request_uri?.query()?;
    if !is_get {
        return None;
    }
    let decode = |s: &str| percent_decode(&s.replace('+', " "));
    let mut params: Vec<Header> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (decode(name), decode(value));
        match params.iter_mut().find(|h| h.name == name) {
            Some(header) => header.value.push(value),
            None => params.push(Header {
                name,
                value: vec![value],
            }),
        }
    }
    Some(ConnectGetInfo {
        query_params: params,
    })
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// What the server observed about a request.
fn request_info<T>(request: &Request<T>, requests: Vec<prost_types::Any>) -> RequestInfo {
    let is_get = request.http_method() == Some(&http::Method::GET);
    RequestInfo {
        request_headers: headers_to_proto(request.headers()),
        timeout_ms: request.timeout().map(|t| t.as_millis() as i64),
        requests,
        connect_get_info: query_params(request.uri(), is_get),
    }
}

/// The error a test case asks for, with the request info appended as a detail.
fn error_from_proto(error: &proto::Error, info: Option<&RequestInfo>) -> Error {
    let code = Code::from_i32(error.code).unwrap_or(Code::Unknown);
    let mut out = Error::new(code, error.message.clone().unwrap_or_default());
    for detail in &error.details {
        out.add_detail(ErrorDetail::from_any(detail.clone()));
    }
    if let Some(info) = info {
        out.add_detail(ErrorDetail::from_any(any_of(
            "ConformancePayload.RequestInfo",
            info,
        )));
    }
    out
}

/// The shared logic of Unary, IdempotentUnary and ClientStream.
async fn respond_unary<T>(
    definition: Option<UnaryResponseDefinition>,
    info: RequestInfo,
    make: impl FnOnce(ConformancePayload) -> T,
) -> Result<Response<T>, Error> {
    let Some(definition) = definition else {
        return Ok(Response::new(make(ConformancePayload {
            data: Vec::new(),
            request_info: Some(info),
        })));
    };
    let delay = Duration::from_millis(definition.response_delay_ms.into());
    match &definition.response {
        Some(unary_response_definition::Response::Error(error)) => {
            let mut error = error_from_proto(error, Some(&info));
            add_headers(&definition.response_headers, error.metadata_mut());
            add_headers(&definition.response_trailers, error.metadata_mut());
            tokio::time::sleep(delay).await;
            Err(error)
        }
        other => {
            let data = match other {
                Some(unary_response_definition::Response::ResponseData(data)) => data.clone(),
                _ => Vec::new(),
            };
            let mut response = Response::new(make(ConformancePayload {
                data,
                request_info: Some(info),
            }));
            add_headers(&definition.response_headers, response.headers_mut());
            add_headers(&definition.response_trailers, response.trailers_mut());
            tokio::time::sleep(delay).await;
            Ok(response)
        }
    }
}

/// A response stream fed by a task, so replies can be produced while requests still arrive.
fn channel_stream<T: Send + 'static>(
    capacity: usize,
) -> (
    tokio::sync::mpsc::Sender<Result<T, Error>>,
    ResponseStream<T>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (tx, Box::pin(stream))
}

impl ConformanceService for Conformance {
    async fn unary(
        &self,
        request: Request<UnaryRequest>,
    ) -> Result<Response<UnaryResponse>, Error> {
        let info = request_info(&request, vec![any_of("UnaryRequest", request.message())]);
        let definition = request.message().response_definition.clone();
        respond_unary(definition, info, |payload| UnaryResponse {
            payload: Some(payload),
        })
        .await
    }

    async fn idempotent_unary(
        &self,
        request: Request<IdempotentUnaryRequest>,
    ) -> Result<Response<IdempotentUnaryResponse>, Error> {
        let info = request_info(
            &request,
            vec![any_of("IdempotentUnaryRequest", request.message())],
        );
        let definition = request.message().response_definition.clone();
        respond_unary(definition, info, |payload| IdempotentUnaryResponse {
            payload: Some(payload),
        })
        .await
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<ClientStreamRequest>>,
    ) -> Result<Response<ClientStreamResponse>, Error> {
        let mut info = request_info(&request, Vec::new());
        let mut messages = request.into_message();
        let mut definition = None;
        let mut first = true;
        while let Some(message) = messages.message().await? {
            if first {
                definition = message.response_definition.clone();
                first = false;
            }
            info.requests.push(any_of("ClientStreamRequest", &message));
        }
        respond_unary(definition, info, |payload| ClientStreamResponse {
            payload: Some(payload),
        })
        .await
    }

    async fn server_stream(
        &self,
        request: Request<ServerStreamRequest>,
    ) -> Result<Response<ResponseStream<ServerStreamResponse>>, Error> {
        let info = request_info(
            &request,
            vec![any_of("ServerStreamRequest", request.message())],
        );
        let Some(definition) = request.into_message().response_definition else {
            return Ok(Response::new(Box::pin(futures_util::stream::empty())));
        };
        let (tx, stream) = channel_stream(1);
        let mut response = Response::new(stream);
        add_headers(&definition.response_headers, response.headers_mut());
        add_headers(&definition.response_trailers, response.trailers_mut());
        tokio::spawn(async move {
            let delay = Duration::from_millis(definition.response_delay_ms.into());
            let mut info = Some(info);
            for data in definition.response_data {
                tokio::time::sleep(delay).await;
                let payload = ConformancePayload {
                    data,
                    request_info: info.take(),
                };
                if tx
                    .send(Ok(ServerStreamResponse {
                        payload: Some(payload),
                    }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if let Some(error) = &definition.error {
                let _ = tx.send(Err(error_from_proto(error, info.as_ref()))).await;
            }
        });
        Ok(response)
    }

    async fn bidi_stream(
        &self,
        request: Request<Streaming<BidiStreamRequest>>,
    ) -> Result<Response<ResponseStream<BidiStreamResponse>>, Error> {
        let first_info = request_info(&request, Vec::new());
        let mut messages = request.into_message();
        // The first request says how to respond (headers included), so read it before the
        // response starts.
        let first = messages.message().await?;
        let definition = first.as_ref().and_then(|m| m.response_definition.clone());
        let full_duplex = first.as_ref().is_some_and(|m| m.full_duplex);
        let (tx, stream) = channel_stream(1);
        let mut response = Response::new(stream);
        if let Some(definition) = &definition {
            add_headers(&definition.response_headers, response.headers_mut());
            add_headers(&definition.response_trailers, response.trailers_mut());
        }
        tokio::spawn(async move {
            let data = definition
                .as_ref()
                .map(|d| d.response_data.clone())
                .unwrap_or_default();
            let delay = Duration::from_millis(
                definition
                    .as_ref()
                    .map_or(0, |d| d.response_delay_ms)
                    .into(),
            );
            let mut requests = Vec::new();
            let mut sent = 0;
            let mut next = first;
            let mut first_info = Some(first_info);
            while let Some(message) = next {
                requests.push(any_of("BidiStreamRequest", &message));
                if full_duplex {
                    if sent >= data.len() {
                        break;
                    }
                    let mut info = first_info.take().unwrap_or_default();
                    info.requests = std::mem::take(&mut requests);
                    tokio::time::sleep(delay).await;
                    let payload = ConformancePayload {
                        data: data[sent].clone(),
                        request_info: Some(info),
                    };
                    if tx
                        .send(Ok(BidiStreamResponse {
                            payload: Some(payload),
                        }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    sent += 1;
                }
                next = match messages.message().await {
                    Ok(next) => next,
                    Err(error) => {
                        let _ = tx.send(Err(error)).await;
                        return;
                    }
                };
            }
            let Some(definition) = definition else { return };
            while sent < data.len() {
                let info = if sent == 0 {
                    first_info.take().map(|mut info| {
                        info.requests = std::mem::take(&mut requests);
                        info
                    })
                } else {
                    None
                };
                tokio::time::sleep(delay).await;
                let payload = ConformancePayload {
                    data: data[sent].clone(),
                    request_info: info,
                };
                if tx
                    .send(Ok(BidiStreamResponse {
                        payload: Some(payload),
                    }))
                    .await
                    .is_err()
                {
                    return;
                }
                sent += 1;
            }
            if let Some(error) = &definition.error {
                let info = if sent == 0 {
                    first_info.take().map(|mut info| {
                        info.requests = std::mem::take(&mut requests);
                        info
                    })
                } else {
                    None
                };
                let _ = tx.send(Err(error_from_proto(error, info.as_ref()))).await;
            }
        });
        Ok(response)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let request: ServerCompatRequest = read_message(&mut std::io::stdin().lock())?
        .ok_or_else(|| anyhow::anyhow!("no ServerCompatRequest on stdin"))?;
    let mut config = ServerConfig::default();
    if request.message_receive_limit > 0 {
        config = config.read_max_bytes(request.message_receive_limit as usize);
    } else {
        config = config.read_max_bytes(usize::MAX);
    }
    let router = Router::new()
        .with_config(config)
        .add_service(ConformanceServiceServer::new(Conformance));
    let mut server = Server::new(router);
    // The runner's reference client uses a Go transport with no idle timeout, so it may reuse
    // an HTTP/1.1 connection after any pause. hyper's header-read timeout also closes idle
    // keep-alive connections, and a POST sent on one at the moment it closes fails with an
    // unexpected EOF (Go never retries POSTs). Like connect-go's reference server, this test
    // server therefore keeps idle connections open; the runner closes them at the end.
    server.http().http1().header_read_timeout(None);
    let mut pem_cert = Vec::new();
    if request.use_tls {
        let creds = request
            .server_creds
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("use_tls without server_creds"))?;
        let client_roots =
            (!request.client_tls_cert.is_empty()).then_some(&request.client_tls_cert[..]);
        let tls = switchboard::server::tls::server_config(&creds.cert, &creds.key, client_roots)?;
        server = server.with_tls(tls);
        // HTTP/3 on the same port number (the runner dials UDP at the port reported).
        if request.http_version == HttpVersion::HttpVersion3 as i32 {
            server = server.http3();
        }
        pem_cert = creds.cert.clone();
    }
    let (listener, addr) = switchboard::server::bind("127.0.0.1:0".parse()?).await?;
    write_message(
        &mut std::io::stdout().lock(),
        &ServerCompatResponse {
            host: addr.ip().to_string(),
            port: u32::from(addr.port()),
            pem_cert,
        },
    )?;
    server
        .serve_with_shutdown(listener, std::future::pending())
        .await?;
    Ok(())
}
