//! buffa as a second message backend: messages a peer sends are decoded as zero-copy views.
//!
//! prost, the default backend, decodes every `string` into a new `String`, every `bytes`
//! into a new `Vec<u8>` and every map into a new `HashMap`. A handler that reads a large
//! message and keeps none of it (log and metric ingest, search requests, proxies that look
//! at a few fields) pays for an allocation per field. [buffa] generates, next to each owned
//! message `Foo`, a view `FooView<'a>` whose strings and bytes borrow from the request
//! buffer; decoding a view allocates only for repeated and map fields.
//!
//! With the backend chosen in `switchboard-build` (`Builder::message_backend`), the rule
//! is: **what you receive is a [`View`], what you send is owned.** A server method takes
//! `Request<View<LogBatch>>` and returns `Response<IngestAck>`; a client sends an owned
//! `LogBatch` and reads a `View<IngestAck>`. JSON still works: it is transcoded through the
//! method's descriptors, as for prost messages.
//!
//! `examples/buffa-ingest` is a compiled example: a log-ingest service generated with this
//! backend, its handler reading `&str` fields out of the request body.
//!
//! Trade-offs, measured in `benches/RESULTS.md` and written down in the guide
//! (`docs/guide/buffa.md`):
//! - a view keeps the whole request buffer alive while any part of it is held;
//! - views are read-only: interceptors see them through `&mut`, but can only replace them;
//! - error details (`ErrorDetail`, `google.protobuf.Any`) stay prost types.
//!
//! [buffa]: https://docs.rs/buffa

use std::fmt;
use std::ops::Deref;

use buffa::view::{HasMessageView, OwnedView};
use bytes::{Bytes, BytesMut};
use prost_reflect::MessageDescriptor;

use crate::codec::Message;
use crate::{Code, Error};

/// A received message as a buffa view over the buffer it arrived in.
///
/// Derefs to the generated owned-view handle (`FooOwnedView`), whose `view()` gives the
/// `FooView<'_>` with borrowed fields, and whose field methods read one field.
/// [`View::to_owned_message`] copies it into the owned `Foo` when it must outlive the call or
/// be changed.
///
/// Sending a `View` (a proxy forwarding what it received) writes its original bytes back
/// unchanged.
pub struct View<M: HasMessageView>(M::ViewHandle);

impl<M: HasMessageView> View<M> {
    /// Decodes a view over `bytes` (binary protobuf), with buffa's default limits on nesting
    /// depth and unknown fields.
    pub fn decode(bytes: Bytes) -> Result<Self, Error> {
        OwnedView::<M::View<'static>>::decode(bytes)
            .map(|view| View(view.into()))
            .map_err(unmarshal_error)
    }

    /// A view of an owned message, by encoding it: for tests and for handing an owned message
    /// to code that takes views.
    pub fn from_message(message: &M) -> Self {
        let mut buf = BytesMut::new();
        encode(message, &mut buf);
        Self::decode(buf.freeze()).expect("buffa decodes what it encoded")
    }

    /// The buffer the view borrows from: the message's binary encoding as received.
    pub fn bytes(&self) -> &Bytes {
        self.0.as_ref().bytes()
    }

    /// Copies the view into the owned message.
    pub fn to_owned_message(&self) -> M {
        self.0.as_ref().to_owned_message()
    }

    /// The generated owned-view handle.
    pub fn into_inner(self) -> M::ViewHandle {
        self.0
    }
}

impl<M: HasMessageView> Deref for View<M> {
    type Target = M::ViewHandle;

    fn deref(&self) -> &M::ViewHandle {
        &self.0
    }
}

impl<M: HasMessageView> Clone for View<M>
where
    M::ViewHandle: Clone,
{
    fn clone(&self) -> Self {
        View(self.0.clone())
    }
}

impl<M: HasMessageView> fmt::Debug for View<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View")
            .field("message", &std::any::type_name::<M>())
            .field("bytes", &self.bytes().len())
            .finish()
    }
}

impl<M: HasMessageView> Message for View<M> {
    fn encode_binary(&self, buf: &mut BytesMut) {
        buf.extend_from_slice(self.bytes());
    }

    fn binary_len(&self) -> usize {
        self.bytes().len()
    }

    fn decode_binary(buf: Bytes, _descriptor: Option<&MessageDescriptor>) -> Result<Self, Error> {
        Self::decode(buf)
    }
}

/// Appends the binary encoding of an owned buffa message: the body of a generated
/// [`Message`] impl (see [`impl_owned_messages!`](crate::impl_owned_messages)).
pub fn encode<M: buffa::Message>(message: &M, buf: &mut BytesMut) {
    message.encode(buf);
}

/// The length of the binary encoding of an owned buffa message.
pub fn encoded_len<M: buffa::Message>(message: &M) -> usize {
    message.encoded_len() as usize
}

/// Decodes an owned buffa message: every field copied out of `buf`.
pub fn decode<M: buffa::Message>(buf: &Bytes) -> Result<M, Error> {
    M::decode_from_slice(buf).map_err(unmarshal_error)
}

fn unmarshal_error(error: buffa::DecodeError) -> Error {
    Error::new(
        Code::InvalidArgument,
        format!("unmarshal protobuf: {error}"),
    )
}

/// Implements [`Message`] for owned buffa message types, so they can be sent.
///
/// A blanket impl over every `buffa::Message` would overlap the one over prost messages, so
/// `switchboard-build` writes this line for the messages of each package it generates with
/// the buffa backend. Hand-written buffa types use it the same way.
#[macro_export]
macro_rules! impl_owned_messages {
    ($($message:ty),* $(,)?) => {
        $(
            impl $crate::codec::Message for $message {
                fn encode_binary(&self, buf: &mut $crate::codegen::BytesMut) {
                    $crate::buffa::encode(self, buf)
                }

                fn binary_len(&self) -> usize {
                    $crate::buffa::encoded_len(self)
                }

                fn decode_binary(
                    buf: $crate::codegen::Bytes,
                    _descriptor: ::core::option::Option<&$crate::prost_reflect::MessageDescriptor>,
                ) -> ::core::result::Result<Self, $crate::Error> {
                    $crate::buffa::decode(&buf)
                }
            }
        )*
    };
}
