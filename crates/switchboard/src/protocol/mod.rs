//! Wire protocols. Each protocol is one module implementing [`ServerProtocol`] (and a client
//! counterpart); everything protocol-specific — content types, headers, framing, how a
//! status travels — lives there and nowhere else.

pub(crate) mod client_shared;
pub(crate) mod connect;
pub(crate) mod grpc;
mod stream_body;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_core::Stream;
use http::{HeaderMap, HeaderValue};

use crate::Code;
use crate::Error;
use crate::body::Body;
use crate::call::Reply;
use crate::codec::Codec;
use crate::compression::{CompressionPolicy, Compressor, DecompressError, MessageCompression};
use crate::config::ServerConfig;
use crate::envelope::{BodyReader, Encoded, FLAG_COMPRESSED, PREFIX_LEN, Side, put_prefix};
use crate::spec::{Protocol, Spec, StreamType};
use crate::stream::MessageSource;

pub(crate) use stream_body::{StreamEnd, StreamingBody, check_send_limit};

/// What negotiation settled for one call.
pub(crate) struct CallSetup {
    pub(crate) codec: Codec,
    /// The request's content type, echoed on unary responses.
    pub(crate) content_type: HeaderValue,
    pub(crate) request_compression: Option<Arc<dyn Compressor>>,
    pub(crate) response_compression: Option<Arc<dyn Compressor>>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) stream_type: StreamType,
    /// A Connect GET request carries its message in the URL.
    pub(crate) get_message: Option<Bytes>,
    /// The call is a Connect GET (which may be answered `304 Not Modified`).
    pub(crate) is_get: bool,
    /// The handler's say over compressing each response message.
    pub(crate) message_compression: MessageCompression,
}

impl CallSetup {
    /// A call with its codec settled and nothing else negotiated yet (identity compression,
    /// no timeout).
    pub(crate) fn new(codec: Codec, content_type: HeaderValue, stream_type: StreamType) -> Self {
        CallSetup {
            codec,
            content_type,
            request_compression: None,
            response_compression: None,
            timeout: None,
            stream_type,
            get_message: None,
            is_get: false,
            message_compression: crate::compression::MessageCompression::default(),
        }
    }
}

/// The protocol's error response to a request head it refused.
pub(crate) type Refused = Box<http::Response<Body>>;

/// One call as its protocol handles it, from the request head to the response.
/// [`ServerExchange::start`] settles everything the protocol decides for the call (codec,
/// compression, timeout, a Connect GET's message) and opens the request's messages;
/// [`ServerExchange::respond`] writes the handler's reply the protocol's way. The router
/// makes one per call and follows it down to the handler and back once.
pub(crate) struct ServerExchange {
    protocol: &'static dyn ServerProtocol,
    setup: CallSetup,
}

impl ServerExchange {
    /// Starts a call of `protocol`: the exchange, and the request's messages (unframed and
    /// decompressed) — or the protocol's error response when the head is refused.
    pub(crate) fn start(
        protocol: &'static dyn ServerProtocol,
        parts: &http::request::Parts,
        spec: &Spec,
        body: BodyReader,
        config: &ServerConfig,
    ) -> Result<(Self, Box<dyn MessageSource>), Refused> {
        let mut setup = protocol.negotiate(parts, spec, config)?;
        let messages = protocol.request_source(&mut setup, body, config);
        Ok((ServerExchange { protocol, setup }, messages))
    }

    /// The protocol.
    pub(crate) fn protocol(&self) -> Protocol {
        self.protocol.protocol()
    }

    /// The codec of the call's messages.
    pub(crate) fn codec(&self) -> Codec {
        self.setup.codec
    }

    /// The timeout the client asked for.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.setup.timeout
    }

    /// The handler's say over compressing each response message.
    pub(crate) fn message_compression(&self) -> &MessageCompression {
        &self.setup.message_compression
    }

    /// Writes the handler's reply, ending the exchange.
    pub(crate) fn respond(self, reply: Reply, config: &ServerConfig) -> http::Response<Body> {
        self.protocol.respond(self.setup, reply, config)
    }
}

/// The server half of a protocol.
pub(crate) trait ServerProtocol: Send + Sync + 'static {
    /// Which protocol this is.
    fn protocol(&self) -> Protocol;

    /// Checks the request head and settles codec, compression and timeout — or answers at
    /// once with a protocol error response.
    fn negotiate(
        &self,
        parts: &http::request::Parts,
        spec: &Spec,
        config: &ServerConfig,
    ) -> Result<CallSetup, Box<http::Response<Body>>>;

    /// The request messages, unframed and decompressed.
    fn request_source(
        &self,
        setup: &mut CallSetup,
        body: BodyReader,
        config: &ServerConfig,
    ) -> Box<dyn MessageSource>;

    /// Writes the handler's reply.
    fn respond(
        &self,
        setup: CallSetup,
        reply: Reply,
        config: &ServerConfig,
    ) -> http::Response<Body>;

    /// The answer for a procedure no service provides.
    fn unimplemented(&self, parts: &http::request::Parts) -> http::Response<Body>;

    /// Answers a request of this protocol with `error` before (or instead of) any handler,
    /// in the form its clients read: see [`crate::server::error_response`].
    fn error_response(&self, headers: &HeaderMap, error: &Error) -> http::Response<Body>;
}

/// One client call, as the protocol needs to see it.
pub(crate) struct OutgoingCall {
    pub(crate) spec: Spec,
    pub(crate) codec: Codec,
    pub(crate) uri: http::Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) timeout: Option<Duration>,
    /// Compression for request messages, if any.
    pub(crate) compression: Option<Arc<dyn Compressor>>,
    pub(crate) registry: crate::compression::CompressionRegistry,
    pub(crate) policy: CompressionPolicy,
    pub(crate) read_max_bytes: usize,
    pub(crate) use_get: bool,
    /// Longest URL a GET may have; a longer one is sent as a POST.
    pub(crate) get_max_url_bytes: usize,
    /// The caller's say over compressing each request message.
    pub(crate) message_compression: MessageCompression,
    /// Why the request body failed, if it did.
    pub(crate) send_failure: client_shared::SendFailure,
    /// The interceptors' view of the call, told the response's HTTP version.
    pub(crate) intercepted: Option<Arc<crate::interceptor::CallShared>>,
}

/// What a client sends.
pub(crate) enum OutgoingBody {
    /// One encoded (uncompressed) message.
    Unary(Bytes),
    /// Encoded (uncompressed) messages, framed by the protocol as they come.
    Stream(Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>),
}

/// What a client received: headers, then messages ending with trailers or an error.
pub(crate) struct IncomingResponse {
    pub(crate) headers: HeaderMap,
    pub(crate) messages: Box<dyn MessageSource>,
}

/// A response body, boxed.
pub(crate) type DynBody =
    Pin<Box<dyn http_body::Body<Data = Bytes, Error = crate::body::BoxError> + Send + 'static>>;

/// The client half of a protocol.
pub(crate) trait ClientProtocol: Send + Sync + 'static {
    /// Which protocol this is.
    #[allow(dead_code)]
    fn protocol(&self) -> Protocol;

    /// Builds the HTTP request of a call.
    fn request(
        &self,
        call: &OutgoingCall,
        body: OutgoingBody,
    ) -> Result<http::Request<Body>, Error>;

    /// Reads the response head (and, for unary-format responses, the message), turning
    /// protocol errors into [`Error`]s.
    fn response(
        &self,
        call: &OutgoingCall,
        response: http::Response<DynBody>,
    ) -> crate::interceptor::BoxFuture<'static, Result<IncomingResponse, Error>>;
}

/// Picks the protocol of a request from its content type: gRPC and gRPC-Web announce
/// themselves; everything else is Connect (which answers unknown types with 415).
pub(crate) fn classify(parts: &http::request::Parts) -> &'static dyn ServerProtocol {
    classify_headers(&parts.headers)
}

/// [`classify`] from the request headers alone.
pub(crate) fn classify_headers(headers: &HeaderMap) -> &'static dyn ServerProtocol {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match grpc::Variant::from_content_type(content_type) {
        Some((grpc::Variant::Grpc, _)) => &grpc::server::GRPC,
        Some((grpc::Variant::Web, _)) => &grpc::server::GRPC_WEB,
        Some((grpc::Variant::WebText, _)) => &grpc::server::GRPC_WEB_TEXT,
        None => &connect::ConnectServer,
    }
}

/// Decompresses a received payload, bounded by `limit`.
pub(crate) fn decompress(
    compression: Option<&Arc<dyn Compressor>>,
    data: Bytes,
    limit: usize,
    side: Side,
) -> Result<Bytes, Error> {
    let Some(compressor) = compression else {
        return Err(Error::internal(
            "protocol error: received a compressed message but no compression was negotiated",
        ));
    };
    compressor.decompress(&data, limit).map_err(|e| match e {
        DecompressError::TooLarge { limit } => Error::resource_exhausted(format!(
            "decompressed message is larger than configured max {limit}"
        )),
        DecompressError::Corrupt(why) => Error::new(
            match side {
                Side::Server => Code::InvalidArgument,
                Side::Client => Code::Internal,
            },
            format!("decompress {}: {why}", compressor.name()),
        ),
    })
}

/// The payload of a received envelope, decompressed when its flag says so.
pub(crate) fn envelope_payload(
    envelope: crate::envelope::Envelope,
    compression: Option<&Arc<dyn Compressor>>,
    limit: usize,
    side: Side,
) -> Result<Bytes, Error> {
    if envelope.is_compressed() {
        decompress(compression, envelope.data, limit, side)
    } else {
        Ok(envelope.data)
    }
}

/// Compresses an outgoing payload when the call's [`MessageCompression`] (by default, the
/// policy) says so; returns whether it did.
pub(crate) fn compress(
    compression: Option<&Arc<dyn Compressor>>,
    policy: CompressionPolicy,
    switch: &MessageCompression,
    payload: Bytes,
) -> Result<(bool, Bytes), Error> {
    match compression {
        Some(compressor) if switch.should_compress(policy, payload.len()) => {
            Ok((true, compress_with(compressor, &payload, 0)?.freeze()))
        }
        _ => Ok((false, payload)),
    }
}

/// Like [`compress`], for a message encoded with envelope headroom (a unary body: no prefix).
pub(crate) fn compress_encoded(
    compression: Option<&Arc<dyn Compressor>>,
    policy: CompressionPolicy,
    switch: &MessageCompression,
    message: Encoded,
) -> Result<(bool, Bytes), Error> {
    match compression {
        Some(compressor) if switch.should_compress(policy, message.len()) => Ok((
            true,
            compress_with(compressor, message.message(), 0)?.freeze(),
        )),
        _ => Ok((false, message.into_message())),
    }
}

/// Compresses `input` into a new buffer that starts with `headroom` zero bytes.
fn compress_with(
    compressor: &Arc<dyn Compressor>,
    input: &[u8],
    headroom: usize,
) -> Result<BytesMut, Error> {
    let mut out = BytesMut::with_capacity(headroom + input.len() / 2 + 64);
    out.put_bytes(0, headroom);
    compressor
        .compress(input, &mut out)
        .map_err(|e| Error::internal(format!("compress {}: {e}", compressor.name())))?;
    Ok(out)
}

/// Compresses one outgoing message when the policy and the handler's switch say so, and
/// frames it: an uncompressed message gets its prefix written in place, without a copy.
pub(crate) fn frame_encoded(
    compression: Option<&Arc<dyn Compressor>>,
    policy: CompressionPolicy,
    switch: &MessageCompression,
    message: Encoded,
) -> Result<Bytes, Error> {
    match compression {
        Some(compressor) if switch.should_compress(policy, message.len()) => {
            let mut out = compress_with(compressor, message.message(), PREFIX_LEN)?;
            let len = out.len() - PREFIX_LEN;
            put_prefix(&mut &mut out[..PREFIX_LEN], FLAG_COMPRESSED, len)?;
            Ok(out.freeze())
        }
        _ => message.into_frame(0),
    }
}

/// Frames, in place, the message appended to `buf` at `start` after [`PREFIX_LEN`] bytes of
/// headroom: writes its prefix there, or, when the policy and the handler's switch say so,
/// replaces it with its compressed form.
pub(crate) fn frame_in_place(
    compression: Option<&Arc<dyn Compressor>>,
    policy: CompressionPolicy,
    switch: &MessageCompression,
    buf: &mut BytesMut,
    start: usize,
) -> Result<(), Error> {
    let len = buf.len() - start - PREFIX_LEN;
    match compression {
        Some(compressor) if switch.should_compress(policy, len) => {
            let compressed = compress_with(compressor, &buf[start + PREFIX_LEN..], 0)?;
            buf.truncate(start);
            put_prefix(buf, FLAG_COMPRESSED, compressed.len())?;
            buf.extend_from_slice(&compressed);
            Ok(())
        }
        _ => put_prefix(&mut &mut buf[start..start + PREFIX_LEN], 0, len),
    }
}

/// Reads a timeout of at most 10 ASCII digits of milliseconds (Connect) and similar.
pub(crate) fn parse_timeout_ms(value: &HeaderValue) -> Result<Duration, Error> {
    let text = value.as_bytes();
    if text.is_empty() || text.len() > 10 || !text.iter().all(u8::is_ascii_digit) {
        return Err(Error::invalid_argument(format!(
            "protocol error: invalid timeout {:?}",
            String::from_utf8_lossy(text)
        )));
    }
    let ms: u64 = std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::invalid_argument("protocol error: invalid timeout"))?;
    Ok(Duration::from_millis(ms))
}

/// The messages of an enveloped request stream (Connect streaming, gRPC, gRPC-Web): only the
/// compression flag may be set on a request envelope.
pub(crate) struct RequestEnvelopes {
    pub(crate) body: BodyReader,
    pub(crate) compression: Option<Arc<dyn Compressor>>,
    pub(crate) limit: usize,
    /// Whether the message last returned arrived compressed.
    pub(crate) last_compressed: Option<bool>,
}

impl MessageSource for RequestEnvelopes {
    fn poll_message(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, Error>>> {
        use std::task::Poll;
        let envelope = match self.body.poll_envelope(cx, self.limit) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
            Poll::Ready(Some(Ok(envelope))) => envelope,
        };
        if envelope.flags & !crate::envelope::FLAG_COMPRESSED != 0 {
            return Poll::Ready(Some(Err(Error::internal(format!(
                "protocol error: invalid envelope flags {:#04x} in a request",
                envelope.flags
            )))));
        }
        self.last_compressed = Some(envelope.is_compressed());
        Poll::Ready(Some(envelope_payload(
            envelope,
            self.compression.as_ref(),
            self.limit,
            Side::Server,
        )))
    }

    fn trailers(&self) -> Option<&HeaderMap> {
        None
    }

    fn last_compressed(&self) -> Option<bool> {
        self.last_compressed
    }
}
