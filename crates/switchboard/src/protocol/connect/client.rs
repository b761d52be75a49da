//! The client half of the Connect protocol.

use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

use super::json::{parse_end_stream, parse_error_body};
use super::*;
use crate::body::{Body, SourceBody};
use crate::codec::Codec;
use crate::compression::{CompressionRegistry, Compressor};
use crate::envelope::{BodyReader, FLAG_END_STREAM, Side};
use crate::interceptor::BoxFuture;
use crate::metadata::is_reserved_header;
use crate::protocol::client_shared::{
    RequestFrames, error_from_status, response_compression, user_headers,
};
use crate::protocol::{
    ClientProtocol, DynBody, IncomingResponse, OutgoingBody, OutgoingCall, compress, decompress,
    envelope_payload,
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
                    if let Some(request) = get_request(call, &headers, &payload)? {
                        return Ok(request);
                    }
                    // The URL would be too long for proxies and servers: POST instead.
                }
                headers.insert(header::CONTENT_TYPE, unary_content_type(call.codec));
                if let Some(accept) = call.registry.accept_header() {
                    headers.insert(header::ACCEPT_ENCODING, accept.clone());
                }
                let (compressed, payload) = compress(
                    call.compression.as_ref(),
                    call.policy,
                    &call.message_compression,
                    payload,
                )?;
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
                    message_compression: call.message_compression.clone(),
                    failure: call.send_failure.clone(),
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
                    let _ = reader.drain(limit).await;
                    let mut error = error_from_status(parts.status);
                    append_metadata(error.metadata_mut(), &user_headers(&parts.headers));
                    return Err(error);
                }
                check_content_type(&parts.headers, STREAM_PREFIX, codec)?;
                let compression =
                    response_compression(&parts.headers, STREAM_ENCODING_HEADER, &registry)?;
                let headers = user_headers(&parts.headers);
                Ok(IncomingResponse {
                    headers: headers.clone(),
                    messages: Box::new(StreamResponseSource {
                        headers,
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
    headers: &HeaderMap,
    payload: &Bytes,
) -> Result<Option<http::Request<Body>>, Error> {
    let (compressed, payload) = compress(
        call.compression.as_ref(),
        call.policy,
        &call.message_compression,
        payload.clone(),
    )?;
    // The order the protocol recommends (connect, base64, compression, encoding, message),
    // so equal requests give equal URLs and shared caches hit.
    let mut query = String::with_capacity(64 + payload.len() * 4 / 3);
    query.push_str("connect=v1");
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
    query.push_str("&encoding=");
    query.push_str(call.codec.name());
    query.push_str("&message=");
    if text {
        query.extend(percent_encoding::percent_encode(&payload, QUERY_VALUE));
    } else {
        query.push_str(&URL_SAFE_NO_PAD.encode(&payload));
    }
    let path = call.uri.path();
    let url_len = call.uri.scheme_str().map_or(0, |scheme| scheme.len() + 3)
        + call.uri.authority().map_or(0, |a| a.as_str().len())
        + path.len()
        + 1
        + query.len();
    if url_len > call.get_max_url_bytes {
        return Ok(None);
    }
    let mut headers = headers.clone();
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
    build(Method::GET, uri, headers, Body::empty()).map(Some)
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
    if parts.status == StatusCode::NOT_MODIFIED {
        // The answer to a conditional GET: the caller's cached copy is still good.
        let _ = reader.drain(limit).await;
        let mut error = Error::not_modified(user_headers(&parts.headers));
        error.mark_wire();
        return Err(error);
    }
    if parts.status != StatusCode::OK {
        let body = reader.read_to_end(limit).await.unwrap_or_default();
        let body = match (&compression, body.is_empty()) {
            (Ok(Some(c)), false) => {
                decompress(Some(c), body, limit, Side::Client).unwrap_or_default()
            }
            _ => body,
        };
        // Error bodies are JSON; anything else tells only the HTTP status.
        let mut error = is_json(&parts.headers)
            .then(|| parse_unary_error(&body, Code::from_http_status(parts.status)))
            .flatten()
            .unwrap_or_else(|| error_from_status(parts.status));
        let (headers, trailers) = split_unary_headers(&parts.headers);
        append_metadata(error.metadata_mut(), &headers);
        append_metadata(error.metadata_mut(), &trailers);
        return Err(error);
    }
    check_content_type(&parts.headers, UNARY_PREFIX, codec)?;
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

/// Appends every entry of `from` to `to`, keeping what `to` already holds (unlike
/// `HeaderMap::extend`, which replaces values of names present in both).
fn append_metadata(to: &mut HeaderMap, from: &HeaderMap) {
    for (name, value) in from {
        to.append(name.clone(), value.clone());
    }
}

/// Whether a unary error response is JSON, as the protocol requires of error bodies.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|base| base.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads a unary error body. A code that is missing, null or not one the protocol defines
/// reads as `fallback` (the code the HTTP status implies), keeping the message and details.
/// `None` when the body is not a JSON object.
fn parse_unary_error(body: &[u8], fallback: Code) -> Option<Error> {
    let mut document: serde_json::Value = serde_json::from_slice(body).ok()?;
    normalize_code(document.as_object_mut()?, fallback);
    parse_error_body(&serde_json::to_vec(&document).ok()?)
}

/// Reads an end-of-stream message; the error's code, if missing, null or unrecognised, reads
/// as `unknown`.
fn parse_stream_end(body: &[u8]) -> Result<(HeaderMap, Option<Error>), Error> {
    let Ok(mut document) = serde_json::from_slice::<serde_json::Value>(body) else {
        // Let the strict parser describe what is wrong.
        return parse_end_stream(body);
    };
    match document.get_mut("error").and_then(|e| e.as_object_mut()) {
        Some(error) => {
            normalize_code(error, Code::Unknown);
            let body = serde_json::to_vec(&document)
                .map_err(|e| Error::internal(format!("re-encode end-of-stream message: {e}")))?;
            parse_end_stream(&body)
        }
        None => parse_end_stream(body),
    }
}

/// Replaces an error document's code with `fallback` unless it names a known code.
fn normalize_code(error: &mut serde_json::Map<String, serde_json::Value>, fallback: Code) {
    let known = error
        .get("code")
        .and_then(|c| c.as_str())
        .is_some_and(|name| Code::ALL.iter().any(|code| code.as_str() == name));
    if !known {
        error.insert(
            "code".to_owned(),
            serde_json::Value::String(fallback.as_str().to_owned()),
        );
    }
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

/// Checks a response's content type against the codec requested. A content type that is not
/// the protocol's at all reads as `unknown` (the peer is probably not a Connect server); one
/// of the protocol with another codec is an `internal` error.
fn check_content_type(headers: &HeaderMap, prefix: &str, codec: Codec) -> Result<(), Error> {
    let got = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let expected = format!("{prefix}{}", codec.name());
    let base = got
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if base == expected {
        return Ok(());
    }
    let code = if base.starts_with(prefix) {
        Code::Internal
    } else {
        Code::Unknown
    };
    Err(Error::new(
        code,
        format!("invalid content-type {got:?}; expecting {expected:?}"),
    ))
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
    /// The response headers, which an error at the end of the stream carries in its metadata
    /// along with the trailers.
    headers: HeaderMap,
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
            let flags = envelope.flags;
            let data = match envelope_payload(
                envelope,
                self.compression.as_ref(),
                self.limit,
                Side::Client,
            ) {
                Ok(data) => data,
                Err(e) => {
                    self.state = StreamState::Done;
                    return Poll::Ready(Some(Err(e)));
                }
            };
            if flags & FLAG_END_STREAM == 0 {
                return Poll::Ready(Some(Ok(data)));
            }
            match parse_stream_end(&data) {
                Ok((trailers, error)) => {
                    if let Some(mut error) = error {
                        let mut metadata = std::mem::take(&mut self.headers);
                        append_metadata(&mut metadata, &trailers);
                        *error.metadata_mut() = metadata;
                        self.trailers = Some(trailers);
                        self.state = StreamState::Done;
                        return Poll::Ready(Some(Err(error)));
                    }
                    self.trailers = Some(trailers);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn content_type(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn content_type_mismatches_are_unknown_or_internal() {
        let check = |value, prefix, codec| {
            check_content_type(&content_type(value), prefix, codec).map_err(|e| e.code())
        };
        assert_eq!(
            check("application/proto", UNARY_PREFIX, Codec::Proto),
            Ok(())
        );
        assert_eq!(
            check("Application/JSON; charset=utf-8", UNARY_PREFIX, Codec::Json),
            Ok(())
        );
        assert_eq!(
            check("application/json", UNARY_PREFIX, Codec::Proto),
            Err(Code::Internal)
        );
        assert_eq!(
            check("image/jpeg", UNARY_PREFIX, Codec::Proto),
            Err(Code::Unknown)
        );
        assert_eq!(
            check("application/connect+json", STREAM_PREFIX, Codec::Proto),
            Err(Code::Internal)
        );
        assert_eq!(
            check("application/proto", STREAM_PREFIX, Codec::Proto),
            Err(Code::Unknown)
        );
    }

    #[test]
    fn unary_errors_without_a_known_code_take_the_status_code() {
        for body in [
            &br#"{"message":"oops"}"#[..],
            br#"{"code":null,"message":"oops"}"#,
            br#"{"code":"foobar","message":"oops"}"#,
        ] {
            let error = parse_unary_error(body, Code::Unavailable).unwrap();
            assert_eq!(error.code(), Code::Unavailable);
            assert_eq!(error.message(), "oops");
        }
        let error = parse_unary_error(br#"{"code":"out_of_range"}"#, Code::Unknown).unwrap();
        assert_eq!(error.code(), Code::OutOfRange);
        assert!(parse_unary_error(b"null", Code::Unknown).is_none());
        assert!(parse_unary_error(b"\x0a\x00", Code::Unknown).is_none());
    }

    #[test]
    fn end_stream_errors_without_a_known_code_are_unknown() {
        for body in [
            &br#"{"error":{"message":"oops"}}"#[..],
            br#"{"error":{"code":null,"message":"oops"}}"#,
            br#"{"error":{"code":"foobar","message":"oops"}}"#,
        ] {
            let (_, error) = parse_stream_end(body).unwrap();
            let error = error.unwrap();
            assert_eq!(error.code(), Code::Unknown);
            assert_eq!(error.message(), "oops");
        }
        let (trailers, error) =
            parse_stream_end(br#"{"error":null,"metadata":{"a":["1","2"]}}"#).unwrap();
        assert!(error.is_none());
        assert_eq!(trailers.get_all("a").iter().count(), 2);
        assert!(parse_stream_end(b"{").is_err());
    }

    #[test]
    fn appending_metadata_keeps_both_values() {
        let mut to = HeaderMap::new();
        to.append("x-a", HeaderValue::from_static("1"));
        let mut from = HeaderMap::new();
        from.append("x-a", HeaderValue::from_static("2"));
        append_metadata(&mut to, &from);
        let values: Vec<_> = to.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
    }
}
