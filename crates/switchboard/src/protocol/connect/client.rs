//! The client half of the Connect protocol.

use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use http_body::Frame;

use super::json::{parse_end_stream, parse_error_body};
use super::*;
use crate::body::{Body, FrameSource, SourceBody};
use crate::codec::Codec;
use crate::compression::{CompressionPolicy, CompressionRegistry, Compressor};
use crate::envelope::{BodyReader, FLAG_COMPRESSED, FLAG_END_STREAM, PREFIX_LEN, Side, put_prefix};
use crate::interceptor::BoxFuture;
use crate::metadata::is_reserved_header;
use crate::protocol::{
    ClientProtocol, DynBody, IncomingResponse, OutgoingBody, OutgoingCall, compress, decompress,
};
use crate::spec::{Idempotency, Protocol, StreamType};
use crate::stream::MessageSource;
use crate::{Code, Error};

/// Connect, client side.
pub(crate) struct ConnectClient;

impl ClientProtocol for ConnectClient {
    fn protocol(&self) -> Protocol {
        Protocol::Connect
    }

    fn request(
        &self,
        call: &OutgoingCall,
        body: OutgoingBody,
    ) -> Result<http::Request<Body>, Error> {
        let unary = call.spec.stream_type() == StreamType::Unary;
        let mut headers = call.headers.clone();
        headers.insert(PROTOCOL_VERSION_HEADER, HeaderValue::from_static("1"));
        if let Some(timeout) = call.timeout {
            // At most 10 digits of milliseconds, as the protocol allows.
            let ms = timeout.as_millis().clamp(1, 9_999_999_999);
            headers.insert(TIMEOUT_HEADER, HeaderValue::from(ms as u64));
        }
        match body {
            OutgoingBody::Unary(payload) if unary => {
                if call.use_get && call.spec.idempotency() == Idempotency::NoSideEffects {
                    return get_request(call, headers, payload);
                }
                headers.insert(header::CONTENT_TYPE, unary_content_type(call.codec));
                if let Some(accept) = call.registry.accept_header() {
                    headers.insert(header::ACCEPT_ENCODING, accept.clone());
                }
                let (compressed, payload) =
                    compress(call.compression.as_ref(), call.policy, payload)?;
                if compressed {
                    if let Some(c) = &call.compression {
                        headers
                            .insert(header::CONTENT_ENCODING, HeaderValue::from_static(c.name()));
                    }
                }
                build(Method::POST, call.uri.clone(), headers, Body::full(payload))
            }
            body => {
                headers.insert(header::CONTENT_TYPE, stream_content_type(call.codec));
                if let Some(accept) = call.registry.accept_header() {
                    headers.insert(STREAM_ACCEPT_ENCODING_HEADER, accept.clone());
                }
                if let Some(c) = &call.compression {
                    headers.insert(STREAM_ENCODING_HEADER, HeaderValue::from_static(c.name()));
                }
                let messages = match body {
                    OutgoingBody::Unary(payload) => {
                        Box::pin(futures_util::stream::once(std::future::ready(Ok(payload)))) as _
                    }
                    OutgoingBody::Stream(messages) => messages,
                };
                let source = RequestFrames {
                    messages,
                    compression: call.compression.clone(),
                    policy: call.policy,
                };
                build(
                    Method::POST,
                    call.uri.clone(),
                    headers,
                    Body::new(SourceBody::new(source)),
                )
            }
        }
    }

    fn response(
        &self,
        call: &OutgoingCall,
        response: http::Response<DynBody>,
    ) -> BoxFuture<'static, Result<IncomingResponse, Error>> {
        let unary = call.spec.stream_type() == StreamType::Unary;
        let codec = call.codec;
        let registry = call.registry.clone();
        let limit = call.read_max_bytes;
        Box::pin(async move {
            let (parts, body) = response.into_parts();
            let mut reader = BodyReader::new(body, Side::Client);
            if unary {
                read_unary(parts, reader, codec, &registry, limit).await
            } else {
                if parts.status != StatusCode::OK {
                    reader.drain(limit).await;
                    return Err(error_from_status(parts.status, &parts.headers));
                }
                check_content_type(&parts.headers, &stream_content_type(codec))?;
                let compression =
                    response_compression(&parts.headers, STREAM_ENCODING_HEADER, &registry)?;
                Ok(IncomingResponse {
                    headers: user_headers(&parts.headers),
                    messages: Box::new(StreamResponseSource {
                        reader,
                        compression,
                        limit,
                        trailers: None,
                        state: StreamState::Messages,
                    }),
                })
            }
        })
    }
}

fn build(
    method: Method,
    uri: http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<http::Request<Body>, Error> {
    let mut request = http::Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    Ok(request)
}

fn unary_content_type(codec: Codec) -> HeaderValue {
    HeaderValue::from_static(match codec {
        Codec::Proto => "application/proto",
        Codec::Json => "application/json",
    })
}

fn stream_content_type(codec: Codec) -> HeaderValue {
    HeaderValue::from_static(match codec {
        Codec::Proto => "application/connect+proto",
        Codec::Json => "application/connect+json",
    })
}

/// A unary call as a GET: the message goes in the query, base64 unless it is uncompressed
/// JSON.
fn get_request(
    call: &OutgoingCall,
    mut headers: HeaderMap,
    payload: Bytes,
) -> Result<http::Request<Body>, Error> {
    let (compressed, payload) = compress(call.compression.as_ref(), call.policy, payload)?;
    let mut query = String::with_capacity(64 + payload.len() * 4 / 3);
    query.push_str("connect=v1&encoding=");
    query.push_str(call.codec.name());
    let text = call.codec == Codec::Json && !compressed;
    if !text {
        query.push_str("&base64=1");
    }
    if compressed {
        if let Some(c) = &call.compression {
            query.push_str("&compression=");
            query.push_str(c.name());
        }
    }
    query.push_str("&message=");
    if text {
        query.extend(percent_encoding::percent_encode(&payload, QUERY_VALUE));
    } else {
        query.push_str(&URL_SAFE_NO_PAD.encode(&payload));
    }
    let path = call.uri.path();
    let mut uri = http::uri::Builder::new();
    if let Some(scheme) = call.uri.scheme() {
        uri = uri.scheme(scheme.clone());
    }
    if let Some(authority) = call.uri.authority() {
        uri = uri.authority(authority.clone());
    }
    let uri = uri
        .path_and_query(format!("{path}?{query}"))
        .build()
        .map_err(|e| Error::internal(format!("build GET URL: {e}")))?;
    if let Some(accept) = call.registry.accept_header() {
        headers.insert(header::ACCEPT_ENCODING, accept.clone());
    }
    build(Method::GET, uri, headers, Body::empty())
}

/// Characters escaped in a query value: everything but RFC 3986 unreserved characters.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

async fn read_unary(
    parts: http::response::Parts,
    mut reader: BodyReader,
    codec: Codec,
    registry: &CompressionRegistry,
    limit: usize,
) -> Result<IncomingResponse, Error> {
    let compression =
        response_compression(&parts.headers, header::CONTENT_ENCODING.as_str(), registry);
    if parts.status != StatusCode::OK {
        let body = reader.read_to_end(limit).await.unwrap_or_default();
        let body = match (&compression, body.is_empty()) {
            (Ok(Some(c)), false) => {
                decompress(Some(c), body, limit, Side::Client).unwrap_or_default()
            }
            _ => body,
        };
        let mut error = parse_error_body(&body)
            .unwrap_or_else(|| error_from_status(parts.status, &parts.headers));
        let (headers, trailers) = split_unary_headers(&parts.headers);
        error.metadata_mut().extend(headers);
        error.metadata_mut().extend(trailers);
        return Err(error);
    }
    check_content_type(&parts.headers, &unary_content_type(codec))?;
    let compression = compression?;
    let body = reader.read_to_end(limit).await?;
    let payload = match compression {
        Some(c) if !body.is_empty() => decompress(Some(&c), body, limit, Side::Client)?,
        _ => body,
    };
    let (headers, trailers) = split_unary_headers(&parts.headers);
    Ok(IncomingResponse {
        headers,
        messages: Box::new(OnceSource {
            payload: Some(payload),
            trailers: Some(trailers),
        }),
    })
}

/// Splits unary response headers into user headers and `trailer-`-prefixed trailers.
fn split_unary_headers(all: &HeaderMap) -> (HeaderMap, HeaderMap) {
    let mut headers = HeaderMap::new();
    let mut trailers = HeaderMap::new();
    for (name, value) in all {
        if let Some(stripped) = name.as_str().strip_prefix(TRAILER_PREFIX) {
            if let Ok(name) = HeaderName::try_from(stripped) {
                trailers.append(name, value.clone());
            }
        } else if !is_reserved_header(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    (headers, trailers)
}

fn user_headers(all: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(all.len());
    for (name, value) in all {
        if !is_reserved_header(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

fn error_from_status(status: StatusCode, headers: &HeaderMap) -> Error {
    let mut error = Error::wire(
        Code::from_http_status(status),
        format!("HTTP status {status}"),
    );
    error.metadata_mut().extend(user_headers(headers));
    error
}

fn check_content_type(headers: &HeaderMap, expected: &HeaderValue) -> Result<(), Error> {
    let got = headers.get(header::CONTENT_TYPE);
    let matches = got.is_some_and(|got| {
        got == expected
            || got
                .to_str()
                .ok()
                .and_then(|g| g.split(';').next())
                .is_some_and(|base| {
                    base.trim()
                        .eq_ignore_ascii_case(expected.to_str().unwrap_or(""))
                })
    });
    if matches {
        Ok(())
    } else {
        Err(Error::new(
            Code::Internal,
            format!(
                "invalid content-type {:?}; expecting {:?}",
                got.and_then(|g| g.to_str().ok()).unwrap_or(""),
                expected.to_str().unwrap_or("")
            ),
        ))
    }
}

fn response_compression(
    headers: &HeaderMap,
    name: &str,
    registry: &CompressionRegistry,
) -> Result<Option<Arc<dyn Compressor>>, Error> {
    match headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        None | Some("") | Some("identity") => Ok(None),
        Some(encoding) => registry.get(encoding).cloned().map(Some).ok_or_else(|| {
            Error::new(
                Code::Internal,
                format!(
                    "the server used compression {encoding:?}, which this client does not support"
                ),
            )
        }),
    }
}

/// Frames request messages as they are produced.
struct RequestFrames {
    messages: std::pin::Pin<Box<dyn futures_core::Stream<Item = Result<Bytes, Error>> + Send>>,
    compression: Option<Arc<dyn Compressor>>,
    policy: CompressionPolicy,
}

impl FrameSource for RequestFrames {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        loop {
            return match self.messages.as_mut().poll_next(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Ready(Some(Err(error))) => {
                    // The request cannot go on; end the body and let the response tell.
                    tracing::debug!(%error, "request message could not be sent");
                    Poll::Ready(None)
                }
                Poll::Ready(Some(Ok(payload))) => {
                    let Ok((compressed, payload)) =
                        compress(self.compression.as_ref(), self.policy, payload)
                    else {
                        continue;
                    };
                    let mut buf = BytesMut::with_capacity(PREFIX_LEN + payload.len());
                    if put_prefix(
                        &mut buf,
                        if compressed { FLAG_COMPRESSED } else { 0 },
                        payload.len(),
                    )
                    .is_err()
                    {
                        return Poll::Ready(None);
                    }
                    buf.extend_from_slice(&payload);
                    Poll::Ready(Some(Frame::data(buf.freeze())))
                }
            };
        }
    }
}

/// A unary response's single message.
struct OnceSource {
    payload: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl MessageSource for OnceSource {
    fn poll_message(&mut self, _cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        Poll::Ready(self.payload.take().map(Ok))
    }

    fn trailers(&self) -> Option<&HeaderMap> {
        if self.payload.is_none() {
            self.trailers.as_ref()
        } else {
            None
        }
    }
}

enum StreamState {
    Messages,
    /// The end-of-stream message was read; the body must end now.
    CheckEof,
    Done,
}

/// The messages of a streamed response, ending with the end-of-stream message.
struct StreamResponseSource {
    reader: BodyReader,
    compression: Option<Arc<dyn Compressor>>,
    limit: usize,
    trailers: Option<HeaderMap>,
    state: StreamState,
}

impl MessageSource for StreamResponseSource {
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        loop {
            match self.state {
                StreamState::Done => return Poll::Ready(None),
                StreamState::CheckEof => {
                    return match self.reader.poll_envelope(cx, self.limit) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(None) => {
                            self.state = StreamState::Done;
                            Poll::Ready(None)
                        }
                        Poll::Ready(Some(_)) => {
                            self.state = StreamState::Done;
                            Poll::Ready(Some(Err(Error::internal(
                                "protocol error: received data after the end-of-stream message",
                            ))))
                        }
                    };
                }
                StreamState::Messages => {}
            }
            let envelope = match self.reader.poll_envelope(cx, self.limit) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.state = StreamState::Done;
                    return Poll::Ready(Some(Err(Error::internal(
                        "protocol error: the stream ended without an end-of-stream message",
                    ))));
                }
                Poll::Ready(Some(Err(e))) => {
                    self.state = StreamState::Done;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(envelope))) => envelope,
            };
            let data = if envelope.is_compressed() {
                match decompress(
                    self.compression.as_ref(),
                    envelope.data,
                    self.limit,
                    Side::Client,
                ) {
                    Ok(data) => data,
                    Err(e) => {
                        self.state = StreamState::Done;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            } else {
                envelope.data
            };
            if envelope.flags & FLAG_END_STREAM == 0 {
                return Poll::Ready(Some(Ok(data)));
            }
            match parse_end_stream(&data) {
                Ok((trailers, error)) => {
                    self.trailers = Some(trailers);
                    if let Some(error) = error {
                        self.state = StreamState::Done;
                        return Poll::Ready(Some(Err(error)));
                    }
                    self.state = StreamState::CheckEof;
                }
                Err(e) => {
                    self.state = StreamState::Done;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    fn trailers(&self) -> Option<&HeaderMap> {
        self.trailers.as_ref()
    }
}
