//! The client half of gRPC and gRPC-Web.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

use super::base64_body::{DecodeBody, EncodeBody};
use super::status::read_status;
use super::{
    ACCEPT_ENCODING_HEADER, ENCODING_HEADER, FLAG_TRAILERS, TIMEOUT_HEADER, Variant, format_timeout,
};
use crate::body::{Body, SourceBody};
use crate::compression::Compressor;
use crate::envelope::{BodyReader, Side};
use crate::interceptor::BoxFuture;
use crate::protocol::client_shared::{
    RequestFrames, error_from_status, response_compression, user_headers,
};
use crate::protocol::{
    ClientProtocol, DynBody, IncomingResponse, OutgoingBody, OutgoingCall, envelope_payload,
};
use crate::spec::Protocol;
use crate::stream::MessageSource;
use crate::{Code, Error};

/// gRPC, gRPC-Web or gRPC-Web text, client side.
pub(crate) struct GrpcClient {
    pub(crate) variant: Variant,
}

/// The three variants, as a client config picks them.
pub(crate) static GRPC: GrpcClient = GrpcClient {
    variant: Variant::Grpc,
};
pub(crate) static GRPC_WEB: GrpcClient = GrpcClient {
    variant: Variant::Web,
};
pub(crate) static GRPC_WEB_TEXT: GrpcClient = GrpcClient {
    variant: Variant::WebText,
};

impl ClientProtocol for GrpcClient {
    fn protocol(&self) -> Protocol {
        self.variant.protocol()
    }

    fn request(
        &self,
        call: &OutgoingCall,
        body: OutgoingBody,
    ) -> Result<http::Request<Body>, Error> {
        let mut headers = call.headers.clone();
        headers.insert(header::CONTENT_TYPE, self.variant.content_type(call.codec));
        match self.variant {
            Variant::Grpc => {
                headers.insert(header::TE, HeaderValue::from_static("trailers"));
            }
            Variant::Web | Variant::WebText => {
                headers.insert(
                    HeaderName::from_static("x-grpc-web"),
                    HeaderValue::from_static("1"),
                );
            }
        }
        if let Some(timeout) = call.timeout {
            headers.insert(TIMEOUT_HEADER, format_timeout(timeout));
        }
        if let Some(c) = &call.compression {
            headers.insert(ENCODING_HEADER, HeaderValue::from_static(c.name()));
        }
        if let Some(accept) = call.registry.accept_header() {
            headers.insert(ACCEPT_ENCODING_HEADER, accept.clone());
        }
        let messages = match body {
            OutgoingBody::Unary(payload) => {
                Box::pin(futures_util::stream::once(std::future::ready(Ok(payload)))) as _
            }
            OutgoingBody::Stream(messages) => messages,
        };
        let frames = SourceBody::new(RequestFrames {
            messages,
            compression: call.compression.clone(),
            policy: call.policy,
            message_compression: call.message_compression.clone(),
            failure: call.send_failure.clone(),
        });
        let body = match self.variant {
            Variant::WebText => Body::new(EncodeBody::new(frames)),
            Variant::Grpc | Variant::Web => Body::new(frames),
        };
        let mut request = http::Request::new(body);
        *request.method_mut() = Method::POST;
        *request.uri_mut() = call.uri.clone();
        *request.headers_mut() = headers;
        Ok(request)
    }

    fn response(
        &self,
        call: &OutgoingCall,
        response: http::Response<DynBody>,
    ) -> BoxFuture<'static, Result<IncomingResponse, Error>> {
        let variant = self.variant;
        let codec = call.codec;
        let registry = call.registry.clone();
        let limit = call.read_max_bytes;
        Box::pin(async move {
            let (parts, body) = response.into_parts();
            let mut reader = BodyReader::new(body, Side::Client);
            if parts.status != StatusCode::OK {
                let _ = reader.drain(limit).await;
                let mut error = error_from_status(parts.status);
                error.metadata_mut().extend(user_headers(&parts.headers));
                return Err(error);
            }
            // Trailers-only: the status came in the headers and the body is empty. The header
            // block then is the trailers, and there are no response headers.
            if parts.headers.contains_key(super::STATUS_HEADER) && reader.is_end_stream() {
                return Ok(IncomingResponse {
                    headers: HeaderMap::new(),
                    messages: Box::new(GrpcResponseSource {
                        reader,
                        variant,
                        compression: None,
                        limit,
                        headers: HeaderMap::new(),
                        header_status: None,
                        trailers: None,
                        received: 0,
                        state: State::TrailersOnly(Some(parts.headers)),
                    }),
                });
            }
            let headers = user_headers(&parts.headers);
            // A status in the headers of a response that has a body is not trailers-only; it
            // only counts if the body turns out empty and no trailers carry a status.
            let header_status = parts
                .headers
                .contains_key(super::STATUS_HEADER)
                .then(|| parts.headers.clone());
            check_content_type(&parts.headers, variant, codec)?;
            let compression = response_compression(&parts.headers, ENCODING_HEADER, &registry)?;
            if variant == Variant::WebText {
                reader.map_body(|inner| Box::pin(DecodeBody::new(inner)));
            }
            Ok(IncomingResponse {
                headers: headers.clone(),
                messages: Box::new(GrpcResponseSource {
                    reader,
                    variant,
                    compression,
                    limit,
                    headers,
                    header_status,
                    trailers: None,
                    received: 0,
                    state: State::Messages,
                }),
            })
        })
    }
}

/// A response's content type must be this variant's, with the codec requested.
fn check_content_type(
    headers: &HeaderMap,
    variant: Variant,
    codec: crate::codec::Codec,
) -> Result<(), Error> {
    let got = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match Variant::from_content_type(got) {
        Some((v, Some(c))) if v == variant && c == codec => Ok(()),
        Some((v, _)) if v == variant => Err(Error::internal(format!(
            "invalid content-type {got:?}; expecting codec {}",
            codec.name()
        ))),
        _ => Err(Error::new(
            Code::Unknown,
            format!("invalid content-type {got:?} for {:?}", variant.protocol()),
        )),
    }
}

enum State {
    /// A trailers-only response: these headers are its trailers.
    TrailersOnly(Option<HeaderMap>),
    Messages,
    /// gRPC-Web: the trailers envelope was read; the body must end now.
    CheckEof,
    Done,
}

/// The messages of a gRPC or gRPC-Web response, ending in the status.
struct GrpcResponseSource {
    reader: BodyReader,
    variant: Variant,
    compression: Option<Arc<dyn Compressor>>,
    limit: usize,
    /// Response headers, added to an error's metadata.
    headers: HeaderMap,
    /// The headers, when they carried a status although the response was not trailers-only.
    header_status: Option<HeaderMap>,
    trailers: Option<HeaderMap>,
    /// Messages received so far.
    received: u64,
    state: State,
}

impl GrpcResponseSource {
    /// Settles the call from its trailers: the end of the stream, or its error.
    fn finish(&mut self, mut trailers: HeaderMap) -> Option<Result<Bytes, Error>> {
        self.state = State::Done;
        if !trailers.contains_key(super::STATUS_HEADER) && self.received == 0 {
            if let Some(headers) = self.header_status.take() {
                // An empty body after all: the headers were trailers-only, so there were no
                // response headers (HTTP/3 tells an empty body only once it is read).
                trailers = headers;
                self.headers = HeaderMap::new();
            }
        }
        let status = read_status(&trailers);
        // What users see as trailers: no protocol fields (which also leaves out the
        // content-type of a trailers-only header block).
        let user_trailers = user_headers(&trailers);
        self.trailers = Some(user_trailers);
        match status {
            None => Some(Err(Error::internal(
                "protocol error: the response ended without a grpc-status",
            ))),
            Some(Ok(())) => None,
            Some(Err(mut error)) => {
                let mut metadata = self.headers.clone();
                for (name, value) in self.trailers.iter().flatten() {
                    metadata.append(name.clone(), value.clone());
                }
                *error.metadata_mut() = metadata;
                Some(Err(error))
            }
        }
    }
}

/// Parses a gRPC-Web trailers block: HTTP/1-style `name: value` lines, any letter case.
fn parse_web_trailers(block: &[u8]) -> Result<HeaderMap, Error> {
    let mut trailers = HeaderMap::new();
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| Error::internal("protocol error: invalid gRPC-Web trailer line"))?;
        let name = HeaderName::from_bytes(line[..colon].trim_ascii())
            .map_err(|_| Error::internal("protocol error: invalid gRPC-Web trailer name"))?;
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii())
            .map_err(|_| Error::internal("protocol error: invalid gRPC-Web trailer value"))?;
        trailers.append(name, value);
    }
    Ok(trailers)
}

impl MessageSource for GrpcResponseSource {
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        loop {
            match &mut self.state {
                State::Done => return Poll::Ready(None),
                State::TrailersOnly(headers) => {
                    let headers = headers.take().unwrap_or_default();
                    return Poll::Ready(self.finish(headers));
                }
                State::CheckEof => {
                    return match self.reader.poll_envelope(cx, self.limit) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(None) => {
                            let trailers = self.trailers.take().unwrap_or_default();
                            Poll::Ready(self.finish(trailers))
                        }
                        Poll::Ready(Some(_)) => {
                            self.state = State::Done;
                            Poll::Ready(Some(Err(Error::internal(
                                "protocol error: received data after the gRPC-Web trailers",
                            ))))
                        }
                    };
                }
                State::Messages => {}
            }
            let envelope = match self.reader.poll_envelope(cx, self.limit) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => {
                    self.state = State::Done;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    // gRPC carries its status in HTTP trailers; a gRPC-Web body that ends
                    // without a trailers envelope may still have had HTTP trailers.
                    let trailers = self.reader.take_trailers().unwrap_or_default();
                    return Poll::Ready(self.finish(trailers));
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
                    self.state = State::Done;
                    return Poll::Ready(Some(Err(e)));
                }
            };
            if flags & FLAG_TRAILERS != 0 && self.variant != Variant::Grpc {
                match parse_web_trailers(&data) {
                    Ok(trailers) => {
                        self.trailers = Some(trailers);
                        self.state = State::CheckEof;
                        continue;
                    }
                    Err(e) => {
                        self.state = State::Done;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
            }
            if flags & !crate::envelope::FLAG_COMPRESSED != 0 {
                self.state = State::Done;
                return Poll::Ready(Some(Err(Error::internal(format!(
                    "protocol error: invalid envelope flags {:#04x}",
                    flags
                )))));
            }
            self.received += 1;
            return Poll::Ready(Some(Ok(data)));
        }
    }

    fn trailers(&self) -> Option<&HeaderMap> {
        match self.state {
            State::Done => self.trailers.as_ref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_trailers_accept_any_case_and_line_endings() {
        let trailers =
            parse_web_trailers(b"Grpc-Status: 0\r\ngrpc-MESSAGE: ok\nX-Custom:  v \r\n").unwrap();
        assert_eq!(trailers.get("grpc-status").unwrap(), "0");
        assert_eq!(trailers.get("grpc-message").unwrap(), "ok");
        assert_eq!(trailers.get("x-custom").unwrap(), "v");
        assert!(parse_web_trailers(b"no colon here").is_err());
    }
}
