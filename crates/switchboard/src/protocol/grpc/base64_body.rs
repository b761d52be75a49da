//! The base64 layer of gRPC-Web text (`application/grpc-web-text`): the whole body, frames and
//! trailers envelope alike, travels as base64. Senders may encode chunk by chunk, each chunk
//! padded, so a decoder must accept padding in the middle of the stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

use crate::body::{BoxError, MalformedBody};
use crate::protocol::DynBody;

/// Standard alphabet, padding optional: each padded chunk is decoded on its own.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encodes every data frame of the inner body as padded base64.
pub(crate) struct EncodeBody<B> {
    inner: B,
}

impl<B> EncodeBody<B> {
    pub(crate) fn new(inner: B) -> Self {
        EncodeBody { inner }
    }
}

impl<B> Body for EncodeBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(
                frame.map_data(|data| Bytes::from(STANDARD.encode(&data)))
            ))),
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Decodes a base64 body whose chunks may each be padded.
pub(crate) struct DecodeBody {
    inner: DynBody,
    /// Up to three characters of an incomplete group.
    pending: Vec<u8>,
    done: bool,
}

impl DecodeBody {
    pub(crate) fn new(inner: DynBody) -> Self {
        DecodeBody {
            inner,
            pending: Vec::new(),
            done: false,
        }
    }
}

/// Decodes complete 4-character groups, restarting after every group that carries padding.
fn decode_groups(input: &[u8], out: &mut BytesMut) -> Result<(), BoxError> {
    let mut start = 0;
    for (index, group) in input.chunks(4).enumerate() {
        if group.contains(&b'=') {
            let end = (index + 1) * 4;
            decode_into(&input[start..end], out)?;
            start = end;
        }
    }
    decode_into(&input[start..], out)
}

fn decode_into(input: &[u8], out: &mut BytesMut) -> Result<(), BoxError> {
    if input.is_empty() {
        return Ok(());
    }
    let decoded = LENIENT
        .decode(input)
        .map_err(|e| MalformedBody(format!("invalid base64 in grpc-web-text body: {e}")))?;
    out.extend_from_slice(&decoded);
    Ok(())
}

impl Body for DecodeBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match this.inner.as_mut().poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    this.done = true;
                    if this.pending.is_empty() {
                        return Poll::Ready(None);
                    }
                    let mut out = BytesMut::new();
                    let rest = std::mem::take(&mut this.pending);
                    if let Err(e) = decode_into(&rest, &mut out) {
                        return Poll::Ready(Some(Err(e)));
                    }
                    return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let data = match frame.into_data() {
                        Ok(data) => data,
                        Err(frame) => return Poll::Ready(Some(Ok(frame))),
                    };
                    this.pending
                        .extend(data.iter().copied().filter(|b| !b.is_ascii_whitespace()));
                    let whole = this.pending.len() / 4 * 4;
                    if whole == 0 {
                        continue;
                    }
                    let mut out = BytesMut::with_capacity(whole / 4 * 3);
                    let result = decode_groups(&this.pending[..whole], &mut out);
                    this.pending.drain(..whole);
                    if let Err(e) = result {
                        return Poll::Ready(Some(Err(e)));
                    }
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt as _, StreamBody};

    async fn decode(chunks: Vec<&'static str>) -> Result<Vec<u8>, BoxError> {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, BoxError>(Frame::data(Bytes::from_static(c.as_bytes()))));
        let body = crate::body::box_body(StreamBody::new(futures_util::stream::iter(frames)));
        let collected = DecodeBody::new(body).collect().await?;
        Ok(collected.to_bytes().to_vec())
    }

    #[tokio::test]
    async fn decodes_split_and_individually_padded_chunks() {
        // "hello" = aGVsbG8= ; "world!" = d29ybGQh ; "a" = YQ==
        assert_eq!(
            decode(vec!["aGVs", "bG8=d29y", "bGQhYQ=="]).await.unwrap(),
            b"helloworld!a"
        );
        assert_eq!(decode(vec!["aG", "VsbG8", "="]).await.unwrap(), b"hello");
        assert_eq!(decode(vec!["aGVsbG8"]).await.unwrap(), b"hello");
        assert!(decode(vec!["a*b="]).await.is_err());
    }
}
