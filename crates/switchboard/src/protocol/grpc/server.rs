//! The server half of gRPC and gRPC-Web.

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use http_body::Frame;

use super::base64_body::{DecodeBody, EncodeBody};
use super::status::write_status;
use super::{
    ACCEPT_ENCODING_HEADER, ENCODING_HEADER, FLAG_TRAILERS, TIMEOUT_HEADER, Variant, parse_timeout,
};
use crate::Error;
use crate::body::{Body, SourceBody};
use crate::call::{Outbound, Reply, UnaryReply};
use crate::compression::CallCompression;
use crate::config::ServerConfig;
use crate::envelope::{BodyReader, put_prefix};
use crate::interceptor::CallEnder;
use crate::protocol::{
    CallSetup, RequestEnvelopes, ServerProtocol, StreamEnd, StreamingBody, check_send_limit,
    frame_encoded,
};
use crate::spec::{Protocol, Spec};
use crate::stream::MessageSource;

/// gRPC, gRPC-Web or gRPC-Web text, server side.
pub(crate) struct GrpcServer {
    pub(crate) variant: Variant,
}

/// The three variants, as the router picks them by content type.
pub(crate) static GRPC: GrpcServer = GrpcServer {
    variant: Variant::Grpc,
};
pub(crate) static GRPC_WEB: GrpcServer = GrpcServer {
    variant: Variant::Web,
};
pub(crate) static GRPC_WEB_TEXT: GrpcServer = GrpcServer {
    variant: Variant::WebText,
};

type EarlyResponse = Box<http::Response<Body>>;

impl ServerProtocol for GrpcServer {
    fn protocol(&self) -> Protocol {
        self.variant.protocol()
    }

    fn negotiate(
        &self,
        parts: &http::request::Parts,
        spec: &Spec,
        config: &ServerConfig,
    ) -> Result<CallSetup, EarlyResponse> {
        if parts.method != Method::POST {
            let mut response = http::Response::new(Body::empty());
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return Err(Box::new(response));
        }
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(HeaderValue::from_static(""));
        let codec = content_type
            .to_str()
            .ok()
            .and_then(Variant::from_content_type)
            .and_then(|(_, codec)| codec);
        let Some(codec) = codec else {
            let mut response = http::Response::new(Body::empty());
            *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
            response.headers_mut().insert(
                HeaderName::from_static("accept-post"),
                HeaderValue::from_static(
                    "application/grpc, application/grpc+proto, application/grpc+json, \
                     application/grpc-web, application/grpc-web+proto, application/grpc-web+json, \
                     application/grpc-web-text, application/grpc-web-text+proto",
                ),
            );
            return Err(Box::new(response));
        };
        let mut setup = CallSetup::new(codec, content_type, spec.stream_type());
        let headers = &parts.headers;
        let checked = headers
            .get(TIMEOUT_HEADER)
            .map(parse_timeout)
            .transpose()
            .and_then(|timeout| {
                setup.timeout = timeout;
                let CallCompression { request, response } = negotiate_compression(headers, config)?;
                setup.request_compression = request;
                setup.response_compression = response;
                Ok(())
            });
        match checked {
            Ok(()) => Ok(setup),
            Err(error) => Err(Box::new(self.trailers_only(&setup, &error, config))),
        }
    }

    fn request_source(
        &self,
        setup: &mut CallSetup,
        mut body: BodyReader,
        config: &ServerConfig,
    ) -> Box<dyn MessageSource> {
        if self.variant == Variant::WebText {
            body.map_body(|inner| Box::pin(DecodeBody::new(inner)));
        }
        Box::new(RequestEnvelopes {
            body,
            compression: setup.request_compression.clone(),
            limit: config.read_max_bytes,
            last_compressed: None,
        })
    }

    fn respond(
        &self,
        setup: CallSetup,
        reply: Reply,
        config: &ServerConfig,
    ) -> http::Response<Body> {
        let (headers, outbound) = match reply {
            Reply::Unary(Err(error)) | Reply::Stream(Err(error)) => {
                return self.trailers_only(&setup, &error, config);
            }
            Reply::Stream(Ok(stream)) => (stream.headers, stream.outbound),
            Reply::Unary(Ok(unary)) if self.variant != Variant::WebText => {
                return self.unary_success(setup, unary, config);
            }
            Reply::Unary(Ok(unary)) => (
                unary.headers,
                Outbound {
                    messages: Box::pin(futures_util::stream::once(std::future::ready(Ok(
                        unary.payload
                    )))),
                    trailers: unary.trailers,
                    stream_trailers: None,
                    deadline: None,
                    ender: CallEnder::default(),
                },
            ),
        };
        let mut response = http::Response::new(Body::empty());
        *response.headers_mut() = headers;
        self.protocol_headers(&setup, response.headers_mut(), config);
        if let Some(c) = &setup.response_compression {
            response
                .headers_mut()
                .insert(ENCODING_HEADER, HeaderValue::from_static(c.name()));
        }
        let body = StreamingBody::new(
            outbound,
            setup.response_compression.clone(),
            config.compression_policy,
            setup.message_compression.clone(),
            config.send_max_bytes,
            GrpcEnd {
                variant: self.variant,
            },
        );
        *response.body_mut() = match self.variant {
            Variant::WebText => Body::new(EncodeBody::new(SourceBody::new(body))),
            Variant::Grpc | Variant::Web => Body::new(SourceBody::new(body)),
        };
        response
    }

    fn unimplemented(&self, parts: &http::request::Parts) -> http::Response<Body> {
        let error = Error::unimplemented(format!("{} is not implemented", parts.uri.path()));
        self.error_response(&parts.headers, &error)
    }

    /// A trailers-only response: HTTP 200, the status and the error's metadata in the
    /// headers, no body (gRPC and gRPC-Web alike).
    fn error_response(&self, request: &HeaderMap, error: &Error) -> http::Response<Body> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            request
                .get(header::CONTENT_TYPE)
                .cloned()
                .unwrap_or(HeaderValue::from_static("application/grpc")),
        );
        for (name, value) in error.metadata() {
            headers.append(name.clone(), value.clone());
        }
        write_status(&mut headers, Some(error));
        let mut response = http::Response::new(Body::empty());
        *response.headers_mut() = headers;
        response
    }
}

impl GrpcServer {
    /// One reply message (unary and client-streaming methods, binary variants): framed at
    /// once, then the status — the same bytes the streaming body would write, without it.
    fn unary_success(
        &self,
        setup: CallSetup,
        unary: UnaryReply,
        config: &ServerConfig,
    ) -> http::Response<Body> {
        let framed = check_send_limit(unary.payload.len(), config.send_max_bytes).and_then(|()| {
            frame_encoded(
                setup.response_compression.as_ref(),
                config.compression_policy,
                &setup.message_compression,
                unary.payload,
            )
        });
        let framed = match framed {
            Ok(framed) => framed,
            Err(error) => return self.trailers_only(&setup, &error, config),
        };
        let mut response = http::Response::new(Body::empty());
        *response.headers_mut() = unary.headers;
        self.protocol_headers(&setup, response.headers_mut(), config);
        if let Some(c) = &setup.response_compression {
            response
                .headers_mut()
                .insert(ENCODING_HEADER, HeaderValue::from_static(c.name()));
        }
        let end = GrpcEnd {
            variant: self.variant,
        }
        .end(None, unary.trailers);
        *response.body_mut() = Body::framed(framed, end);
        response
    }

    fn protocol_headers(&self, setup: &CallSetup, headers: &mut HeaderMap, config: &ServerConfig) {
        headers.insert(header::CONTENT_TYPE, setup.content_type.clone());
        if let Some(accept) = config.compression.accept_header() {
            headers.insert(ACCEPT_ENCODING_HEADER, accept.clone());
        }
    }

    /// An error before any message: the status travels in the response headers and the body
    /// is empty ("trailers-only").
    fn trailers_only(
        &self,
        setup: &CallSetup,
        error: &Error,
        config: &ServerConfig,
    ) -> http::Response<Body> {
        let mut response = http::Response::new(Body::empty());
        self.protocol_headers(setup, response.headers_mut(), config);
        write_status(response.headers_mut(), Some(error));
        response
    }
}

/// The request's and the response's compression (see
/// [`crate::compression::CompressionRegistry::negotiate_call`]).
fn negotiate_compression(
    headers: &HeaderMap,
    config: &ServerConfig,
) -> Result<CallCompression, Error> {
    config.compression.negotiate_call(
        headers.get(ENCODING_HEADER).and_then(|v| v.to_str().ok()),
        headers
            .get_all(ACCEPT_ENCODING_HEADER)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// Ends a gRPC stream with HTTP trailers, or a gRPC-Web stream with a trailers envelope.
struct GrpcEnd {
    variant: Variant,
}

impl StreamEnd for GrpcEnd {
    fn end(&mut self, error: Option<&Error>, mut trailers: HeaderMap) -> Frame<Bytes> {
        write_status(&mut trailers, error);
        match self.variant {
            Variant::Grpc => Frame::trailers(trailers),
            Variant::Web | Variant::WebText => Frame::data(web_trailers_envelope(&trailers)),
        }
    }
}

/// The gRPC-Web trailers envelope: `0x80`, a length, then HTTP/1-style `name: value` lines.
pub(crate) fn web_trailers_envelope(trailers: &HeaderMap) -> Bytes {
    let mut block = BytesMut::new();
    for (name, value) in trailers {
        block.put_slice(name.as_str().as_bytes());
        block.put_slice(b": ");
        block.put_slice(value.as_bytes());
        block.put_slice(b"\r\n");
    }
    let mut out = BytesMut::with_capacity(5 + block.len());
    // A trailer block is far below 4 GiB; framing cannot fail.
    let _ = put_prefix(&mut out, FLAG_TRAILERS, block.len());
    out.extend_from_slice(&block);
    out.freeze()
}
