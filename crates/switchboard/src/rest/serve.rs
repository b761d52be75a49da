//! One REST call: the request message from the path, query and body; the handler's reply as
//! JSON, raw bytes or a stream.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use prost_reflect::{DescriptorPool, MessageDescriptor};

use super::bind::{self, RestInput};
use super::respond::{self, Rendered};
use super::{Found, RestRoute, RestTable};
use crate::Error;
use crate::body::Body;
use crate::call::{Outbound, Reply};
use crate::envelope::BodyReader;
use crate::protocol::Refused;
use crate::stream::MessageSource;

/// What the router needs to run a REST call: the route, its request messages, and how to
/// answer.
pub(crate) struct RestCall {
    pub(crate) route: RestRoute,
    output: MessageDescriptor,
    pool: DescriptorPool,
}

/// Whether a request that matched no RPC route is for the transcoder: anything but the RPC
/// protocols' own content types (gRPC, gRPC-Web, Connect streaming) and Connect's marker.
pub(crate) fn is_rest_request(parts: &http::request::Parts) -> bool {
    let headers = &parts.headers;
    if headers.contains_key("connect-protocol-version") {
        return false;
    }
    // A Connect GET carries its message in the query, with `connect=v1`.
    if parts
        .uri
        .query()
        .is_some_and(|query| query.split('&').any(|pair| pair == "connect=v1"))
    {
        return false;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    !(content_type.starts_with("application/grpc")
        || content_type.starts_with("application/connect+"))
}

/// Routes a REST request: its call and the request's messages, or the transcoder's refusal
/// (404, 405, 415).
pub(crate) fn dispatch(
    table: &RestTable,
    parts: &http::request::Parts,
    body: BodyReader,
    read_max_bytes: usize,
) -> Result<(RestCall, Box<dyn MessageSource>), Refused> {
    if !well_escaped(parts.uri.path()) {
        return Err(Box::new(respond::plain(
            StatusCode::BAD_REQUEST,
            "Bad Request",
        )));
    }
    let (route, captures) = match table.find(&parts.method, parts.uri.path()) {
        Found::Route(route, captures) => (route.clone(), captures),
        Found::OtherMethods(methods) => {
            let mut response = respond::plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            if let Ok(allow) = HeaderValue::from_str(&methods.join(", ")) {
                response.headers_mut().insert(header::ALLOW, allow);
            }
            return Err(Box::new(response));
        }
        Found::Nothing => return Err(Box::new(super::not_found())),
    };
    let method = route
        .spec
        .method()
        .cloned()
        .ok_or_else(|| Box::new(super::not_found()))?;
    let input = method.input();
    let stream_type = route.spec.stream_type();
    if stream_type.client_streams() {
        return Err(Box::new(respond::plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "client and bidi streams cannot be called over REST",
        )));
    }
    if parts.headers.get_all(header::CONTENT_TYPE).iter().count() > 1 {
        return Err(Box::new(respond::plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "more than one Content-Type",
        )));
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let raw_body = bind::takes_raw_body(&input, &route.binding);
    if let Some(content_type) = &content_type {
        if !raw_body && !is_json(content_type) {
            return Err(Box::new(respond::plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("{content_type:?} is not supported: send application/json"),
            )));
        }
    }
    let source = Box::new(RestSource {
        body,
        limit: read_max_bytes,
        input,
        route: route.clone(),
        captures,
        query: parts.uri.query().map(str::to_owned),
        content_type,
        discard_unknown_query: table.settings.discard_unknown_query,
        done: false,
    });
    let call = RestCall {
        output: method.output(),
        pool: method.parent_pool().clone(),
        route,
    };
    Ok((call, source))
}

/// Whether every `%` of a path starts an escape of two hex digits.
fn well_escaped(path: &str) -> bool {
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            match bytes.get(i + 1..i + 3) {
                Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => i += 3,
                _ => return false,
            }
        } else {
            i += 1;
        }
    }
    true
}

/// `application/json`, with at most a UTF-8 charset.
fn is_json(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|parameter| {
        let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        name.trim().eq_ignore_ascii_case("charset")
            && value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
    })
}

/// The one request message of a REST call, built once the body has been read.
struct RestSource {
    body: BodyReader,
    limit: usize,
    input: MessageDescriptor,
    route: RestRoute,
    captures: Vec<String>,
    query: Option<String>,
    content_type: Option<String>,
    discard_unknown_query: bool,
    done: bool,
}

impl MessageSource for RestSource {
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let body = match self.body.poll_read_to_end(cx, self.limit) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(error)) => {
                self.done = true;
                return Poll::Ready(Some(Err(error)));
            }
            Poll::Ready(Ok(body)) => body,
        };
        self.done = true;
        let message = bind::request_message(
            &self.input,
            RestInput {
                binding: &self.route.binding,
                captures: &self.captures,
                query: self.query.as_deref(),
                content_type: self.content_type.as_deref(),
                body,
                discard_unknown_query: self.discard_unknown_query,
            },
        );
        Poll::Ready(Some(message.map(|message| {
            let mut buf = BytesMut::with_capacity(prost::Message::encoded_len(&message));
            prost::Message::encode_raw(&message, &mut buf);
            buf.freeze()
        })))
    }

    fn trailers(&self) -> Option<&HeaderMap> {
        None
    }
}

impl RestCall {
    /// The handler's reply as REST: one message rendered, or a stream.
    pub(crate) async fn respond(self, reply: Reply) -> http::Response<Body> {
        let response_body = self.route.binding.response_body.as_deref();
        match reply {
            Reply::Unary(Ok(unary)) => {
                match respond::render(&self.output, response_body, unary.payload.into_message()) {
                    Ok(rendered) => respond::success(rendered, unary.headers, unary.trailers),
                    Err(error) => respond::error_response(&error, Some(&self.pool)),
                }
            }
            Reply::Unary(Err(error)) | Reply::Stream(Err(error)) => {
                respond::error_response(&error, Some(&self.pool))
            }
            Reply::Stream(Ok(stream)) => self.stream(stream.headers, stream.outbound).await,
        }
    }

    /// A streamed reply. Its first message (or its failure) is awaited before the head: a
    /// stream that fails before its first message answers like a unary error.
    ///
    /// Raw messages (`google.api.HttpBody`) are written one after the other, with the first
    /// one's content type. Up to [`RAW_HOLD_BYTES`] are held before the head is sent, so a
    /// short stream that fails is answered with the failure's status (as vanguard, which
    /// holds whole streams, does); a longer one is sent as it comes, and a failure after the
    /// head ends the body with an error (the connection or HTTP/2 stream is reset) — a
    /// download that breaks, never one that looks complete. Other messages are written as
    /// grpc-gateway does: one JSON object per line, `{"result": message}`, and a failure as a
    /// last line `{"error": status}`.
    async fn stream(self, headers: HeaderMap, mut outbound: Outbound) -> http::Response<Body> {
        let response_body = self.route.binding.response_body.clone();
        let mut held: Vec<Rendered> = Vec::new();
        let mut held_bytes = 0;
        let ended = loop {
            let next =
                std::future::poll_fn(|cx| outbound.messages.as_mut().poll_next_encoded(cx)).await;
            let failure = match next {
                None => break true,
                Some(Err(error)) => error,
                Some(Ok(message)) => match respond::render(
                    &self.output,
                    response_body.as_deref(),
                    message.into_message(),
                ) {
                    Err(error) => error,
                    Ok(rendered) => {
                        let raw = matches!(rendered, Rendered::Raw(..));
                        if let Rendered::Raw(_, data) = &rendered {
                            held_bytes += data.len();
                        }
                        held.push(rendered);
                        if !raw || held_bytes >= RAW_HOLD_BYTES {
                            break false;
                        }
                        continue;
                    }
                },
            };
            // Failed before the head: the failure's status, as for a unary call.
            let (error, _) = outbound.ender.end(Some(failure.clone()), None).await;
            return respond::error_response(&error.unwrap_or(failure), Some(&self.pool));
        };
        if ended {
            let (error, _) = outbound.ender.end(None, None).await;
            if let Some(error) = error {
                return respond::error_response(&error, Some(&self.pool));
            }
        }
        let Some(first) = held.first() else {
            // An empty stream: an empty JSON answer.
            return respond::success(Rendered::Json(Vec::new()), headers, HeaderMap::new());
        };
        let raw = matches!(first, Rendered::Raw(..));
        let content_type = match first {
            Rendered::Raw(content_type, _) => content_type.clone(),
            Rendered::Json(_) => HeaderValue::from_static("application/json"),
        };
        let mut lines = RestStream {
            pending: std::collections::VecDeque::new(),
            ending: None,
            outbound,
            output: self.output,
            pool: self.pool,
            response_body,
            raw,
            done: ended,
        };
        let pending: std::collections::VecDeque<Bytes> = held
            .into_iter()
            .map(|rendered| lines.chunk(rendered))
            .collect();
        lines.pending = pending;
        let body = if ended {
            // The whole stream is here: one body, with its length.
            let whole: Vec<u8> = lines
                .pending
                .iter()
                .flat_map(|b| b.iter().copied())
                .collect();
            Body::full(whole)
        } else {
            Body::new(http_body_util::StreamBody::new(lines))
        };
        respond::answer(body, content_type, &headers)
    }
}

/// How many bytes of a raw stream are held before its head is sent.
const RAW_HOLD_BYTES: usize = 64 * 1024;

/// The body of a streamed REST reply.
struct RestStream {
    /// Chunks held before the head, to send first.
    pending: std::collections::VecDeque<Bytes>,
    /// The interceptors' end hooks running, then what to yield after them.
    ending: Option<(crate::interceptor::EndFuture, Option<Frame>)>,
    outbound: Outbound,
    output: MessageDescriptor,
    pool: DescriptorPool,
    response_body: Option<String>,
    raw: bool,
    done: bool,
}

type Frame = http_body::Frame<Bytes>;

impl RestStream {
    fn chunk(&self, rendered: Rendered) -> Bytes {
        match rendered {
            Rendered::Raw(_, data) => data,
            Rendered::Json(json) => {
                let mut line = Vec::with_capacity(json.len() + 12);
                line.extend_from_slice(b"{\"result\":");
                line.extend_from_slice(&json);
                line.extend_from_slice(b"}\n");
                Bytes::from(line)
            }
        }
    }
}

impl Stream for RestStream {
    type Item = Result<Frame, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some((ending, _)) = &mut this.ending {
            let (error, _) = std::task::ready!(Pin::new(ending).poll(cx));
            let last = this.ending.take().and_then(|(_, last)| last);
            this.done = true;
            return Poll::Ready(match (error, last) {
                // A raw stream that failed: only a broken body says the download failed.
                (Some(error), None) if this.raw => Some(Err(error)),
                (_, last) => last.map(Ok),
            });
        }
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(chunk) = this.pending.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        let next = match this.outbound.messages.as_mut().poll_next_encoded(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(next) => next,
        };
        let failure = match next {
            None => None,
            Some(Ok(message)) => match respond::render(
                &this.output,
                this.response_body.as_deref(),
                message.into_message(),
            ) {
                Ok(rendered) => return Poll::Ready(Some(Ok(Frame::data(this.chunk(rendered))))),
                Err(error) => Some(error),
            },
            Some(Err(error)) => Some(error),
        };
        // The end: the interceptors' hooks run before the peer sees it.
        let last = match &failure {
            Some(failure) if !this.raw => {
                let status = respond::status_json(failure, Some(&this.pool));
                let mut line =
                    serde_json::to_vec(&serde_json::json!({ "error": status })).unwrap_or_default();
                line.push(b'\n');
                Some(Frame::data(Bytes::from(line)))
            }
            _ => None,
        };
        this.ending = Some((this.outbound.ender.end(failure, None), last));
        Pin::new(this).poll_next(cx)
    }
}
