//! The server half of the Connect protocol.

use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use http_body::Frame;

use super::json::{end_stream_body, error_body};
use super::*;
use crate::Error;
use crate::body::{Body, SourceBody};
use crate::call::{Outbound, Reply, UnaryReply};
use crate::codec::Codec;
use crate::compression::CallCompression;
use crate::compression::Compressor;
use crate::config::ServerConfig;
use crate::envelope::{BodyReader, FLAG_END_STREAM, Side, frame};
use crate::interceptor::CallEnder;
use crate::protocol::RequestEnvelopes;
use crate::protocol::{
    CallSetup, ServerProtocol, StreamEnd, StreamingBody, compress_encoded, decompress,
    parse_timeout_ms,
};
use crate::spec::{Idempotency, Protocol, Spec, StreamType};
use crate::stream::MessageSource;

/// Connect, server side.
pub(crate) struct ConnectServer;

type EarlyResponse = Box<http::Response<Body>>;

impl ServerProtocol for ConnectServer {
    fn protocol(&self) -> Protocol {
        Protocol::Connect
    }

    fn negotiate(
        &self,
        parts: &http::request::Parts,
        spec: &Spec,
        config: &ServerConfig,
    ) -> Result<CallSetup, EarlyResponse> {
        let unary = spec.stream_type() == StreamType::Unary;
        let get_allowed = unary && spec.idempotency() == Idempotency::NoSideEffects;
        if parts.method == Method::GET && get_allowed {
            return self.negotiate_get(parts, spec, config);
        }
        if parts.method != Method::POST {
            return Err(Box::new(method_not_allowed(get_allowed)));
        }
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .ok_or_else(|| Box::new(unsupported_media_type(unary)))?;
        let codec = content_type
            .to_str()
            .ok()
            .and_then(|ct| codec_of(ct, unary))
            .ok_or_else(|| Box::new(unsupported_media_type(unary)))?;
        let mut setup = CallSetup::new(codec, content_type, spec.stream_type());
        let headers = &parts.headers;
        let checked = check_protocol_version(
            headers
                .get(PROTOCOL_VERSION_HEADER)
                .map(HeaderValue::as_bytes),
            b"1",
            config,
        )
        .and_then(|()| read_timeout(headers))
        .and_then(|timeout| {
            setup.timeout = timeout;
            let (encoding, accept) = if unary {
                (
                    header::CONTENT_ENCODING.as_str(),
                    header::ACCEPT_ENCODING.as_str(),
                )
            } else {
                (STREAM_ENCODING_HEADER, STREAM_ACCEPT_ENCODING_HEADER)
            };
            let CallCompression { request, response } = negotiate_compression(
                headers.get(encoding).map(HeaderValue::as_bytes),
                headers,
                accept,
                config,
            )?;
            setup.request_compression = request;
            setup.response_compression = response;
            Ok(())
        });
        match checked {
            Ok(()) => Ok(setup),
            Err(error) => Err(Box::new(self.error_reply(setup, error, config))),
        }
    }

    fn request_source(
        &self,
        setup: &mut CallSetup,
        body: BodyReader,
        config: &ServerConfig,
    ) -> Box<dyn MessageSource> {
        let limit = config.read_max_bytes;
        let compression = setup.request_compression.clone();
        if let Some(message) = setup.get_message.take() {
            return Box::new(UnarySource {
                body,
                compression,
                limit,
                state: UnaryState::Ready(message),
                compressed: None,
            });
        }
        if setup.stream_type == StreamType::Unary {
            Box::new(UnarySource {
                body,
                compression,
                limit,
                state: UnaryState::Reading,
                compressed: None,
            })
        } else {
            Box::new(RequestEnvelopes {
                body,
                compression,
                limit,
                last_compressed: None,
            })
        }
    }

    fn respond(
        &self,
        setup: CallSetup,
        reply: Reply,
        config: &ServerConfig,
    ) -> http::Response<Body> {
        if setup.stream_type == StreamType::Unary {
            match reply {
                Reply::Unary(Ok(unary)) => self.unary_success(setup, unary, config),
                Reply::Unary(Err(error)) | Reply::Stream(Err(error))
                    if error.is_not_modified() && !setup.is_get =>
                {
                    // 304 answers only a GET; anything else gets an ordinary `unknown`.
                    let mut plain = Error::new(error.code(), error.message().to_owned());
                    *plain.metadata_mut() = error.metadata().clone();
                    unary_error(&plain, config)
                }
                Reply::Unary(Err(error)) | Reply::Stream(Err(error)) => unary_error(&error, config),
                Reply::Stream(Ok(_)) => {
                    unary_error(&Error::internal("a unary method produced a stream"), config)
                }
            }
        } else {
            let (headers, outbound) = match reply {
                Reply::Stream(Ok(stream)) => (stream.headers, stream.outbound),
                Reply::Unary(Ok(unary)) => (
                    unary.headers,
                    Outbound {
                        messages: Box::pin(futures_util::stream::once(std::future::ready(Ok(
                            unary.payload,
                        )))),
                        trailers: unary.trailers,
                        stream_trailers: None,
                        deadline: None,
                        ender: CallEnder::default(),
                    },
                ),
                Reply::Unary(Err(error)) | Reply::Stream(Err(error)) => (
                    HeaderMap::new(),
                    Outbound {
                        messages: Box::pin(futures_util::stream::once(std::future::ready(Err(
                            error,
                        )))),
                        trailers: HeaderMap::new(),
                        stream_trailers: None,
                        deadline: None,
                        ender: CallEnder::default(),
                    },
                ),
            };
            self.stream_response(setup, headers, outbound, config)
        }
    }

    /// Unary requests (and GETs) get the JSON error with its HTTP status; streaming
    /// requests get HTTP 200 and an end-of-stream message carrying the error.
    fn error_response(&self, request: &HeaderMap, error: &Error) -> http::Response<Body> {
        let streaming = request
            .get(header::CONTENT_TYPE)
            .filter(|v| {
                v.to_str().ok().is_some_and(|v| {
                    v.get(..STREAM_PREFIX.len())
                        .is_some_and(|p| p.eq_ignore_ascii_case(STREAM_PREFIX))
                })
            })
            .cloned();
        let Some(content_type) = streaming else {
            return unary_error(error, &ServerConfig::default());
        };
        let end = ConnectEnd.end(Some(error), error.metadata().clone());
        let mut response = http::Response::new(Body::full(end.into_data().unwrap_or_default()));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
        response
    }

    fn unimplemented(&self, parts: &http::request::Parts) -> http::Response<Body> {
        let error = Error::unimplemented(format!("{} is not implemented", parts.uri.path()));
        let mut response = http::Response::new(Body::full(error_body(&error)));
        *response.status_mut() = StatusCode::NOT_FOUND;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

impl ConnectServer {
    fn negotiate_get(
        &self,
        parts: &http::request::Parts,
        spec: &Spec,
        config: &ServerConfig,
    ) -> Result<CallSetup, EarlyResponse> {
        let query = GetQuery::parse(parts.uri.query().unwrap_or(""));
        let codec = query
            .encoding
            .as_deref()
            .and_then(Codec::from_name)
            .ok_or_else(|| Box::new(unsupported_media_type(true)))?;
        let content_type = HeaderValue::from_static(match codec {
            Codec::Proto => "application/proto",
            Codec::Json => "application/json",
        });
        let mut setup = CallSetup::new(codec, content_type, spec.stream_type());
        let checked =
            check_protocol_version(query.connect.as_deref().map(str::as_bytes), b"v1", config)
                .and_then(|()| read_timeout(&parts.headers))
                .and_then(|timeout| {
                    setup.timeout = timeout;
                    let CallCompression { request, response } = negotiate_compression(
                        query.compression.as_deref().map(str::as_bytes),
                        &parts.headers,
                        header::ACCEPT_ENCODING.as_str(),
                        config,
                    )?;
                    setup.request_compression = request;
                    setup.response_compression = response;
                    let message = query.message.ok_or_else(|| {
                        Error::invalid_argument("missing \"message\" query parameter")
                    })?;
                    let message = if query.base64 {
                        let trimmed = message.trim_end_matches(['=']);
                        URL_SAFE_NO_PAD
                            .decode(trimmed)
                            .or_else(|_| URL_SAFE.decode(&message))
                            .map_err(|e| {
                                Error::invalid_argument(format!(
                                    "invalid base64 in \"message\": {e}"
                                ))
                            })?
                    } else {
                        message.into_bytes()
                    };
                    if message.len() > config.read_max_bytes {
                        return Err(crate::envelope::too_large(
                            message.len() as u64,
                            config.read_max_bytes,
                        ));
                    }
                    setup.get_message = Some(Bytes::from(message));
                    setup.is_get = true;
                    Ok(())
                });
        match checked {
            Ok(()) => Ok(setup),
            Err(error) => Err(Box::new(unary_error(&error, config))),
        }
    }

    fn error_reply(
        &self,
        setup: CallSetup,
        error: Error,
        config: &ServerConfig,
    ) -> http::Response<Body> {
        self.respond(setup, Reply::Unary(Err(error)), config)
    }

    fn unary_success(
        &self,
        setup: CallSetup,
        reply: UnaryReply,
        config: &ServerConfig,
    ) -> http::Response<Body> {
        if reply.payload.len() > config.send_max_bytes {
            return unary_error(
                &Error::resource_exhausted(format!(
                    "message size {} exceeds send limit {}",
                    reply.payload.len(),
                    config.send_max_bytes
                )),
                config,
            );
        }
        let (compressed, payload) = match compress_encoded(
            setup.response_compression.as_ref(),
            config.compression_policy,
            &setup.message_compression,
            reply.payload,
        ) {
            Ok(result) => result,
            Err(error) => return unary_error(&error, config),
        };
        let mut headers = reply.headers;
        headers.insert(header::CONTENT_TYPE, setup.content_type);
        if compressed {
            if let Some(c) = &setup.response_compression {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(c.name()));
            }
        }
        if let Some(accept) = config.compression.accept_header() {
            headers.insert(header::ACCEPT_ENCODING, accept.clone());
        }
        append_prefixed_trailers(&mut headers, &reply.trailers);
        let mut response = http::Response::new(Body::full(payload));
        *response.headers_mut() = headers;
        response
    }

    fn stream_response(
        &self,
        setup: CallSetup,
        mut headers: HeaderMap,
        outbound: Outbound,
        config: &ServerConfig,
    ) -> http::Response<Body> {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(match setup.codec {
                Codec::Proto => "application/connect+proto",
                Codec::Json => "application/connect+json",
            }),
        );
        if let Some(c) = &setup.response_compression {
            headers.insert(STREAM_ENCODING_HEADER, HeaderValue::from_static(c.name()));
        }
        if let Some(accept) = config.compression.accept_header() {
            headers.insert(STREAM_ACCEPT_ENCODING_HEADER, accept.clone());
        }
        let body = StreamingBody::new(
            outbound,
            setup.response_compression.clone(),
            config.compression_policy,
            setup.message_compression.clone(),
            config.send_max_bytes,
            ConnectEnd,
        );
        let mut response = http::Response::new(Body::new(SourceBody::new(body)));
        *response.headers_mut() = headers;
        response
    }
}

/// Ends a Connect stream with its JSON end-of-stream envelope.
struct ConnectEnd;

impl StreamEnd for ConnectEnd {
    fn end(&mut self, error: Option<&Error>, trailers: HeaderMap) -> Frame<Bytes> {
        let body = end_stream_body(error, &trailers);
        Frame::data(frame(FLAG_END_STREAM, &body).unwrap_or_default())
    }
}

fn codec_of(content_type: &str, unary: bool) -> Option<Codec> {
    let lower = content_type.to_ascii_lowercase();
    let name = if unary {
        let name = lower.strip_prefix(UNARY_PREFIX)?;
        if name.starts_with("connect+") {
            return None;
        }
        name.to_owned()
    } else {
        lower.strip_prefix(STREAM_PREFIX)?.to_owned()
    };
    Codec::from_name(&name)
}

fn check_protocol_version(
    value: Option<&[u8]>,
    expected: &[u8],
    config: &ServerConfig,
) -> Result<(), Error> {
    match value {
        Some(v) if v == expected => Ok(()),
        Some(v) => Err(Error::invalid_argument(format!(
            "connect protocol version {:?} is not supported",
            String::from_utf8_lossy(v)
        ))),
        None if config.require_connect_protocol_header => Err(Error::invalid_argument(
            "missing required Connect protocol version (header connect-protocol-version: 1, or query connect=v1)",
        )),
        None => Ok(()),
    }
}

fn read_timeout(headers: &HeaderMap) -> Result<Option<std::time::Duration>, Error> {
    headers
        .get(TIMEOUT_HEADER)
        .map(parse_timeout_ms)
        .transpose()
}

/// The request's and the response's compression (see
/// [`crate::compression::CompressionRegistry::negotiate_call`]): `sent` from the encoding
/// header (or the GET `compression` parameter), the peer's list from `accept_header`.
fn negotiate_compression(
    sent: Option<&[u8]>,
    headers: &HeaderMap,
    accept_header: &str,
    config: &ServerConfig,
) -> Result<CallCompression, Error> {
    config.compression.negotiate_call(
        sent.map(|name| std::str::from_utf8(name).unwrap_or("")),
        headers
            .get_all(accept_header)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

fn append_prefixed_trailers(headers: &mut HeaderMap, trailers: &HeaderMap) {
    for (name, value) in trailers {
        let mut prefixed = String::with_capacity(TRAILER_PREFIX.len() + name.as_str().len());
        prefixed.push_str(TRAILER_PREFIX);
        prefixed.push_str(name.as_str());
        if let Ok(name) = HeaderName::try_from(prefixed) {
            headers.append(name, value.clone());
        }
    }
}

/// A unary error: the code's HTTP status and a JSON error body; error metadata as headers.
pub(crate) fn unary_error(error: &Error, config: &ServerConfig) -> http::Response<Body> {
    let _ = config;
    if error.is_not_modified() {
        // Only reached for GET (see `respond`): an empty 304 with the validators.
        let mut response = http::Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        *response.headers_mut() = error.metadata().clone();
        return response;
    }
    let mut response = http::Response::new(Body::full(error_body(error)));
    *response.status_mut() = error.code().http_status();
    let headers = response.headers_mut();
    for (name, value) in error.metadata() {
        headers.append(name.clone(), value.clone());
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn method_not_allowed(get_allowed: bool) -> http::Response<Body> {
    let mut response = http::Response::new(Body::empty());
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response.headers_mut().insert(
        header::ALLOW,
        HeaderValue::from_static(if get_allowed { "GET, POST" } else { "POST" }),
    );
    response
}

fn unsupported_media_type(unary: bool) -> http::Response<Body> {
    let mut response = http::Response::new(Body::empty());
    *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
    response.headers_mut().insert(
        HeaderName::from_static("accept-post"),
        HeaderValue::from_static(if unary {
            "application/json, application/proto"
        } else {
            "application/connect+json, application/connect+proto"
        }),
    );
    response
}

/// The Connect parameters of a GET query, in any order, unknown ones ignored.
#[derive(Default)]
struct GetQuery {
    message: Option<String>,
    encoding: Option<String>,
    compression: Option<String>,
    connect: Option<String>,
    base64: bool,
}

impl GetQuery {
    fn parse(query: &str) -> GetQuery {
        let mut out = GetQuery::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = form_decode(value);
            match key {
                "message" => out.message = Some(value),
                "encoding" => out.encoding = Some(value),
                "compression" => out.compression = Some(value),
                "connect" => out.connect = Some(value),
                "base64" => out.base64 = value == "1",
                _ => {}
            }
        }
        out
    }
}

/// Decodes one `application/x-www-form-urlencoded` value: `+` is a space, `%XX` a byte.
fn form_decode(value: &str) -> String {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

enum UnaryState {
    Reading,
    Ready(Bytes),
    Done,
}

/// The single message of a unary request: the whole body, or the GET query's message.
struct UnarySource {
    body: BodyReader,
    compression: Option<Arc<dyn Compressor>>,
    limit: usize,
    state: UnaryState,
    /// Whether the message arrived compressed, once read.
    compressed: Option<bool>,
}

impl MessageSource for UnarySource {
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        let raw = match std::mem::replace(&mut self.state, UnaryState::Done) {
            UnaryState::Done => return Poll::Ready(None),
            UnaryState::Ready(bytes) => bytes,
            UnaryState::Reading => match self.body.poll_read_to_end(cx, self.limit) {
                Poll::Pending => {
                    self.state = UnaryState::Reading;
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Ok(bytes)) => bytes,
            },
        };
        // Zero-length content is never decompressed.
        let compressed = !raw.is_empty() && self.compression.is_some();
        self.compressed = Some(compressed);
        if !compressed {
            return Poll::Ready(Some(Ok(raw)));
        }
        Poll::Ready(Some(decompress(
            self.compression.as_ref(),
            raw,
            self.limit,
            Side::Server,
        )))
    }

    fn trailers(&self) -> Option<&HeaderMap> {
        None
    }

    fn last_compressed(&self) -> Option<bool> {
        self.compressed
    }
}
