//! The halves of an HTTP/3 request stream as http-body bodies, for the server (its requests)
//! and the client (its responses) alike: data and trailers read as a body, and a body
//! written to a stream — never ended cleanly when it failed or was abandoned.
//!
//! A QUIC send stream that is dropped sends a clean end (FIN), so a message cut short would
//! look complete to the peer; [`BodySender`] resets the stream instead unless the body
//! ended. Likewise a body dropped before its end tells the peer to stop sending (quinn does).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use h3::error::{Code, StreamError};
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame};

use crate::body::BoxError;

/// The receiving half of an HTTP/3 request stream, server's or client's.
pub(crate) trait Receiving: Unpin {
    /// The next DATA frame's bytes; `None` at the end of the data.
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, StreamError>>;
    /// The trailers, if any, once the data has ended.
    fn poll_trailers(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<HeaderMap>, StreamError>>;
}

/// The sending half of an HTTP/3 request stream, server's or client's.
pub(crate) trait Sending {
    fn send_data(&mut self, data: Bytes) -> impl Future<Output = Result<(), StreamError>> + Send;
    fn send_trailers(
        &mut self,
        trailers: HeaderMap,
    ) -> impl Future<Output = Result<(), StreamError>> + Send;
    fn finish(&mut self) -> impl Future<Output = Result<(), StreamError>> + Send;
    /// Resets the stream.
    fn stop_stream(&mut self, code: Code);
}

/// Implements [`Receiving`] and [`Sending`] for one side's `RequestStream` (the two sides'
/// types have the same methods but no common trait).
macro_rules! stream_halves {
    ($stream:ident) => {
        impl<S> Receiving for h3::$stream::RequestStream<S, Bytes>
        where
            S: h3::quic::RecvStream + Unpin,
        {
            fn poll_data(
                &mut self,
                cx: &mut Context<'_>,
            ) -> Poll<Result<Option<Bytes>, StreamError>> {
                self.poll_recv_data(cx)
                    .map_ok(|data| data.map(|mut data| data.copy_to_bytes(data.remaining())))
            }

            fn poll_trailers(
                &mut self,
                cx: &mut Context<'_>,
            ) -> Poll<Result<Option<HeaderMap>, StreamError>> {
                self.poll_recv_trailers(cx)
            }
        }

        impl<S> Sending for h3::$stream::RequestStream<S, Bytes>
        where
            S: h3::quic::SendStream<Bytes> + Send,
        {
            fn send_data(
                &mut self,
                data: Bytes,
            ) -> impl Future<Output = Result<(), StreamError>> + Send {
                h3::$stream::RequestStream::send_data(self, data)
            }

            fn send_trailers(
                &mut self,
                trailers: HeaderMap,
            ) -> impl Future<Output = Result<(), StreamError>> + Send {
                h3::$stream::RequestStream::send_trailers(self, trailers)
            }

            fn finish(&mut self) -> impl Future<Output = Result<(), StreamError>> + Send {
                h3::$stream::RequestStream::finish(self)
            }

            fn stop_stream(&mut self, code: Code) {
                h3::$stream::RequestStream::stop_stream(self, code);
            }
        }
    };
}

stream_halves!(server);
stream_halves!(client);

/// Where a body being read is.
enum Reading {
    Data,
    Trailers,
    Done,
}

/// A body read from the receiving half of a stream: DATA frames, then the trailers, if any.
/// Dropped before its end, it tells the peer to stop sending: quinn sends STOP_SENDING when a
/// stream that was not read to its end is dropped. (Asking h3-quinn 0.0.10 to stop sending
/// explicitly panics while a read is in flight, which a caller cannot see from outside.)
pub(crate) struct RecvBody<R: Receiving> {
    stream: R,
    reading: Reading,
}

impl<R: Receiving> RecvBody<R> {
    pub(crate) fn new(stream: R) -> Self {
        RecvBody {
            stream,
            reading: Reading::Data,
        }
    }
}

impl<R: Receiving> HttpBody for RecvBody<R> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            match this.reading {
                Reading::Data => match std::task::ready!(this.stream.poll_data(cx)) {
                    Ok(Some(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(None) => this.reading = Reading::Trailers,
                    Err(error) => {
                        this.reading = Reading::Done;
                        return Poll::Ready(Some(Err(error.into())));
                    }
                },
                Reading::Trailers => {
                    let trailers = std::task::ready!(this.stream.poll_trailers(cx));
                    this.reading = Reading::Done;
                    return Poll::Ready(match trailers {
                        Ok(Some(trailers)) => Some(Ok(Frame::trailers(trailers))),
                        Ok(None) => None,
                        Err(error) => Some(Err(error.into())),
                    });
                }
                Reading::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.reading, Reading::Done)
    }
}

/// Writes a body to the sending half of a stream. Dropped before the body has ended (the
/// call abandoned, the connection closing), or on a body error, it resets the stream, so the
/// peer never takes a cut-short message for a whole one.
pub(crate) struct BodySender<S: Sending> {
    stream: S,
    finished: bool,
}

impl<S: Sending> BodySender<S> {
    pub(crate) fn new(stream: S) -> Self {
        BodySender {
            stream,
            finished: false,
        }
    }

    /// The stream, to send a head on before the body.
    pub(crate) fn stream(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Sends every frame of `body`: data as DATA frames, trailers as the trailing HEADERS
    /// frame; then ends the stream. A body error resets it (`H3_INTERNAL_ERROR`).
    pub(crate) async fn send<B>(mut self, body: B) -> Result<(), BoxError>
    where
        B: HttpBody<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let mut body = std::pin::pin!(body);
        let mut trailers: Option<HeaderMap> = None;
        while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            let frame = match frame {
                Ok(frame) => frame,
                Err(error) => {
                    self.stream.stop_stream(Code::H3_INTERNAL_ERROR);
                    self.finished = true;
                    return Err(error.into());
                }
            };
            match frame.into_data() {
                Ok(data) => {
                    if !data.is_empty() {
                        self.stream.send_data(data).await?;
                    }
                }
                Err(frame) => {
                    if let Ok(more) = frame.into_trailers() {
                        trailers.get_or_insert_with(HeaderMap::new).extend(more);
                    }
                }
            }
        }
        if let Some(trailers) = trailers {
            self.stream.send_trailers(trailers).await?;
        }
        self.stream.finish().await?;
        self.finished = true;
        Ok(())
    }
}

impl<S: Sending> Drop for BodySender<S> {
    fn drop(&mut self) {
        if !self.finished {
            self.stream.stop_stream(Code::H3_REQUEST_CANCELLED);
        }
    }
}
