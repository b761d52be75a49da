//! Typed handlers behind one erased interface: decode requests, run interceptors and the
//! user's function under the deadline, encode replies. Protocol-free: it only sees payloads.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;
use http::{Extensions, HeaderMap};
use prost_reflect::MessageDescriptor;

use crate::codec::{Codec, Message};
use crate::compression::MessageCompression;
use crate::envelope::Encoded;
use crate::interceptor::{BoxFuture, CallEnder, CallObserver, Direction, Interceptors, Side};
use crate::protocol::{Outbound, Reply, StreamReply, UnaryReply};
use crate::request::{Request, Response, ServerContext};
use crate::spec::{Descriptors, Peer, Spec};
use crate::stream::{MessageSource, ResponseStream, Streaming, WireStream};
use crate::{Code, Error};

/// Everything a handler needs about one incoming call.
pub(crate) struct ServerCall {
    pub(crate) spec: Spec,
    pub(crate) method: http::Method,
    pub(crate) uri: http::Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) extensions: Extensions,
    pub(crate) peer: Peer,
    pub(crate) deadline: Option<Instant>,
    pub(crate) codec: Codec,
    pub(crate) source: Box<dyn MessageSource>,
    pub(crate) interceptors: Interceptors,
    pub(crate) message_compression: MessageCompression,
}

/// A method's handler with its types erased.
pub(crate) trait ErasedHandler: Send + Sync + 'static {
    fn call(&self, call: ServerCall) -> BoxFuture<'static, Reply>;
}

/// The part of a call common to all four kinds, before the user's function runs.
struct Started {
    observer: Option<Arc<CallObserver>>,
    request_stream: WireStream,
    headers: HeaderMap,
    extensions: Extensions,
    context: ServerContext,
    deadline: Option<Instant>,
    message_compression: MessageCompression,
}

async fn start(
    call: ServerCall,
    descriptors: &Descriptors,
) -> Result<Started, (Error, Option<Arc<CallObserver>>)> {
    let ServerCall {
        spec,
        method,
        uri,
        mut headers,
        extensions,
        peer,
        deadline,
        codec,
        source,
        interceptors,
        message_compression,
    } = call;
    let observer = interceptors
        .start(&spec, Some(peer.clone()), Side::Server, &mut headers)
        .await?;
    Ok(Started {
        request_stream: WireStream {
            source,
            codec,
            descriptor: descriptors.input.clone(),
            observer: observer.clone().map(|o| (o, Direction::Request)),
            failed: false,
        },
        observer,
        headers,
        extensions,
        context: ServerContext {
            spec,
            peer,
            deadline,
            method,
            uri,
            request_compressed: None,
        },
        deadline,
        message_compression,
    })
}

/// Reads exactly one request message; with it, whether it arrived compressed.
async fn single<Req: Message>(stream: WireStream) -> Result<(Req, Option<bool>), Error> {
    let mut stream: Streaming<Req> = Streaming::from_wire(stream);
    let first = stream
        .message()
        .await?
        .ok_or_else(|| Error::unimplemented("protocol error: missing request message"))?;
    let compressed = stream.last_compressed();
    if stream.message().await?.is_some() {
        // connect-go answers `unimplemented` here too: the peer is not speaking this method's
        // stream type.
        return Err(Error::unimplemented(
            "protocol error: received more than one request message for a method that takes one",
        ));
    }
    Ok((first, compressed))
}

fn encode<Res: Message>(
    codec: Codec,
    descriptor: Option<&MessageDescriptor>,
    message: &Res,
) -> Result<Encoded, Error> {
    let mut encoded = Encoded::with_capacity(match codec {
        Codec::Proto => message.binary_len(),
        Codec::Json => 0,
    });
    codec.encode(message, descriptor, encoded.buf_mut())?;
    Ok(encoded)
}

async fn with_deadline<T>(
    deadline: Option<Instant>,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match deadline {
        None => work.await,
        Some(deadline) => tokio::time::timeout_at(deadline.into(), work)
            .await
            .unwrap_or_else(|_| {
                Err(Error::new(
                    Code::DeadlineExceeded,
                    "the call's deadline passed",
                ))
            }),
    }
}

async fn finish_unary<Res: Message>(
    result: Result<Response<Res>, Error>,
    codec: Codec,
    descriptors: &Descriptors,
    observer: Option<Arc<CallObserver>>,
    mut ender: CallEnder,
) -> Reply {
    let result = result.and_then(|response| {
        let (headers, message, trailers) = response.into_parts();
        if let Some(observer) = &observer {
            observer.message(Direction::Response, &message)?;
        }
        let payload = encode(codec, descriptors.output.as_ref(), &message)?;
        Ok(UnaryReply {
            headers,
            payload,
            trailers,
        })
    });
    ender.finish(result.as_ref().err()).await;
    Reply::Unary(result)
}

async fn finish_stream<Res: Message>(
    result: Result<Response<ResponseStream<Res>>, Error>,
    codec: Codec,
    descriptors: &Descriptors,
    observer: Option<Arc<CallObserver>>,
    mut ender: CallEnder,
    deadline: Option<Instant>,
) -> Reply {
    match result {
        Ok(mut response) => {
            let stream_trailers = response.take_stream_trailers();
            let (headers, stream, trailers) = response.into_parts();
            Reply::Stream(Ok(StreamReply {
                headers,
                outbound: Outbound {
                    messages: Box::pin(EncodeStream {
                        inner: stream,
                        codec,
                        descriptor: descriptors.output.clone(),
                        observer,
                    }),
                    trailers,
                    stream_trailers,
                    deadline,
                    ender,
                },
            }))
        }
        Err(error) => {
            ender.finish(Some(&error)).await;
            Reply::Stream(Err(error))
        }
    }
}

/// Encodes a handler's response stream as the body pulls it.
struct EncodeStream<Res> {
    inner: ResponseStream<Res>,
    codec: Codec,
    descriptor: Option<MessageDescriptor>,
    observer: Option<Arc<CallObserver>>,
}

impl<Res: Message> Stream for EncodeStream<Res> {
    type Item = Result<Encoded, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Some(Ok(message))) => {
                if let Some(observer) = &this.observer {
                    if let Err(e) = observer.message(Direction::Response, &message) {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Poll::Ready(Some(encode(this.codec, this.descriptor.as_ref(), &message)))
            }
        }
    }
}

/// How a method receives its request: one message, or a stream.
pub(crate) trait RequestShape<Req>: 'static {
    /// What the user's function gets inside its [`Request`].
    type Input: Send + 'static;
    /// The input, and whether a single request message arrived compressed.
    fn input(
        stream: WireStream,
    ) -> impl Future<Output = Result<(Self::Input, Option<bool>), Error>> + Send;
}

/// How a method replies: one message, or a stream.
pub(crate) trait ReplyShape<Res>: 'static {
    /// What the user's function returns inside its [`Response`].
    type Output: Send + 'static;
    fn finish(
        result: Result<Response<Self::Output>, Error>,
        codec: Codec,
        descriptors: &Descriptors,
        observer: Option<Arc<CallObserver>>,
        ender: CallEnder,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Reply> + Send;
    fn fail(error: Error) -> Reply;
}

/// One request message (unary and server-streaming methods).
pub(crate) struct One;
/// A stream of request or reply messages.
pub(crate) struct Many;

impl<Req: Message> RequestShape<Req> for One {
    type Input = Req;
    fn input(
        stream: WireStream,
    ) -> impl Future<Output = Result<(Req, Option<bool>), Error>> + Send {
        single::<Req>(stream)
    }
}

impl<Req: Message> RequestShape<Req> for Many {
    type Input = Streaming<Req>;
    fn input(
        stream: WireStream,
    ) -> impl Future<Output = Result<(Streaming<Req>, Option<bool>), Error>> + Send {
        std::future::ready(Ok((Streaming::from_wire(stream), None)))
    }
}

impl<Res: Message> ReplyShape<Res> for One {
    type Output = Res;
    fn finish(
        result: Result<Response<Res>, Error>,
        codec: Codec,
        descriptors: &Descriptors,
        observer: Option<Arc<CallObserver>>,
        ender: CallEnder,
        _deadline: Option<Instant>,
    ) -> impl Future<Output = Reply> + Send {
        finish_unary(result, codec, descriptors, observer, ender)
    }
    fn fail(error: Error) -> Reply {
        Reply::Unary(Err(error))
    }
}

impl<Res: Message> ReplyShape<Res> for Many {
    type Output = ResponseStream<Res>;
    fn finish(
        result: Result<Response<ResponseStream<Res>>, Error>,
        codec: Codec,
        descriptors: &Descriptors,
        observer: Option<Arc<CallObserver>>,
        ender: CallEnder,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Reply> + Send {
        finish_stream(result, codec, descriptors, observer, ender, deadline)
    }
    fn fail(error: Error) -> Reply {
        Reply::Stream(Err(error))
    }
}

/// A user's function for one method, with its request shape `I` and reply shape `O`:
/// `(One, One)` unary, `(One, Many)` server streaming, `(Many, One)` client streaming,
/// `(Many, Many)` bidi.
pub(crate) struct Handler<I, O, Req, Res, F> {
    f: Arc<F>,
    descriptors: Descriptors,
    _shape: PhantomData<fn(I, O, Req) -> Res>,
}

impl<I, O, Req, Res, F> Handler<I, O, Req, Res, F> {
    pub(crate) fn new(spec: &Spec, f: F) -> Self {
        Handler {
            f: Arc::new(f),
            descriptors: Descriptors::of(spec),
            _shape: PhantomData,
        }
    }
}

impl<I, O, Req, Res, F, Fut> ErasedHandler for Handler<I, O, Req, Res, F>
where
    I: RequestShape<Req>,
    O: ReplyShape<Res>,
    Req: Message,
    Res: Message,
    F: Fn(Request<I::Input>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<O::Output>, Error>> + Send + 'static,
{
    fn call(&self, call: ServerCall) -> BoxFuture<'static, Reply> {
        let f = self.f.clone();
        let descriptors = self.descriptors.clone();
        let codec = call.codec;
        Box::pin(async move {
            let started = match start(call, &descriptors).await {
                Ok(started) => started,
                Err((error, observer)) => {
                    CallEnder::new(observer).finish(Some(&error)).await;
                    return O::fail(error);
                }
            };
            let observer = started.observer.clone();
            // Owns the call's end from here: dropped with this future (the client went away),
            // it ends the call as cancelled.
            let ender = CallEnder::new(observer.clone());
            let deadline = started.deadline;
            let result = with_deadline(deadline, async move {
                let (input, compressed) = I::input(started.request_stream).await?;
                let mut context = started.context;
                context.request_compressed = compressed;
                let request = Request::from_server(
                    input,
                    started.headers,
                    started.extensions,
                    context,
                    started.message_compression,
                );
                f(request).await
            })
            .await;
            O::finish(result, codec, &descriptors, observer, ender, deadline).await
        })
    }
}
