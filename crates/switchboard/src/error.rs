//! The error value every call returns on failure.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::HeaderMap;

use crate::Code;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
type SharedError = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// The longest error message sent (bytes of text, before any encoding); longer ones are cut
/// and end with [`TRUNCATED`]. Percent-encoded in `grpc-message` it stays under 7 KiB, below
/// the 8-16 KiB header-list limits clients set.
pub(crate) const MAX_WIRE_MESSAGE_BYTES: usize = 2048;

/// What ends a cut error message.
pub(crate) const TRUNCATED: &str = "... [truncated]";

/// A failed call: a [`Code`], a message, optional typed details and metadata.
///
/// The whole value is one pointer wide (everything lives behind a `Box`), so
/// `Result<T, Error>` stays as small as `T` allows and the happy path pays nothing for the
/// rare parts.
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    code: Code,
    message: Cow<'static, str>,
    details: Vec<ErrorDetail>,
    metadata: HeaderMap,
    wire: bool,
    /// A conditional Connect GET whose resource has not changed (HTTP 304).
    not_modified: bool,
    source: Option<SharedError>,
}

impl Error {
    /// A new error with a code and a message, raised locally.
    pub fn new(code: Code, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            inner: Box::new(Inner {
                code,
                message: message.into(),
                details: Vec::new(),
                metadata: HeaderMap::new(),
                wire: false,
                not_modified: false,
                source: None,
            }),
        }
    }

    /// An error as if it had been read from the wire.
    ///
    /// Proxies and gateways use this to pass a peer's error on unchanged; the only difference
    /// from [`Error::new`] is [`Error::is_wire`], which lets callers tell errors a peer sent
    /// from errors raised by this process.
    pub fn wire(code: Code, message: impl Into<Cow<'static, str>>) -> Self {
        let mut error = Error::new(code, message);
        error.inner.wire = true;
        error
    }

    /// Wraps another error as the cause, using its `Display` text as the message.
    pub fn from_source(code: Code, source: impl Into<BoxError>) -> Self {
        let source = source.into();
        let mut error = Error::new(code, source.to_string());
        error.inner.source = Some(SharedError::from(source));
        error
    }

    /// Shorthand for an [`Code::Internal`] error.
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(Code::Internal, message)
    }

    /// Shorthand for an [`Code::InvalidArgument`] error.
    pub fn invalid_argument(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(Code::InvalidArgument, message)
    }

    /// Shorthand for an [`Code::Unimplemented`] error.
    pub fn unimplemented(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(Code::Unimplemented, message)
    }

    /// Shorthand for a [`Code::ResourceExhausted`] error.
    pub fn resource_exhausted(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(Code::ResourceExhausted, message)
    }

    /// The message as it goes on the wire: at most [`MAX_WIRE_MESSAGE_BYTES`] of it (cut at a
    /// character boundary, marked as cut), so an error quoting a peer's request cannot turn
    /// into a megabyte `grpc-message` trailer or error body.
    pub(crate) fn wire_message(&self) -> Cow<'_, str> {
        let message = self.message();
        if message.len() <= MAX_WIRE_MESSAGE_BYTES {
            return Cow::Borrowed(message);
        }
        let mut end = MAX_WIRE_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        Cow::Owned(format!("{}{TRUNCATED}", &message[..end]))
    }

    /// The error of a call whose deadline passed, the same on both sides and for every
    /// shape (the handler or interceptors still running, a stream still flowing, a client
    /// still waiting).
    pub(crate) fn deadline_exceeded() -> Self {
        Error::new(Code::DeadlineExceeded, "the call's deadline passed")
    }

    /// The status code.
    pub fn code(&self) -> Code {
        self.inner.code
    }

    /// The human-readable message (may be empty).
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// Typed details attached to the error, in order.
    pub fn details(&self) -> &[ErrorDetail] {
        &self.inner.details
    }

    /// Adds a detail.
    pub fn add_detail(&mut self, detail: ErrorDetail) -> &mut Self {
        self.inner.details.push(detail);
        self
    }

    /// Builder form of [`Error::add_detail`].
    pub fn with_detail(mut self, detail: ErrorDetail) -> Self {
        self.inner.details.push(detail);
        self
    }

    /// The first detail of type `M` that decodes, e.g.
    /// `error.detail::<switchboard::error_details::BadRequest>()`; `None` when there is none.
    /// Generated messages implement [`prost::Name`], so they work here too.
    pub fn detail<M: prost::Message + prost::Name + Default>(&self) -> Option<M> {
        self.details_of::<M>().next()
    }

    /// Every detail of type `M` that decodes, in order.
    pub fn details_of<M: prost::Message + prost::Name + Default>(
        &self,
    ) -> impl Iterator<Item = M> + '_ {
        self.details()
            .iter()
            .filter_map(|detail| detail.to_message::<M>()?.ok())
    }

    /// Metadata sent with the error: response headers and trailers of the failed call.
    pub fn metadata(&self) -> &HeaderMap {
        &self.inner.metadata
    }

    /// Mutable access to the error's metadata.
    pub fn metadata_mut(&mut self) -> &mut HeaderMap {
        &mut self.inner.metadata
    }

    /// Builder form: adds one metadata entry.
    pub fn with_metadata(mut self, name: http::HeaderName, value: http::HeaderValue) -> Self {
        self.inner.metadata.append(name, value);
        self
    }

    /// Marks the error as read from the wire.
    pub(crate) fn mark_wire(&mut self) {
        self.inner.wire = true;
    }

    /// Whether the error came from (or is meant to look as if it came from) a peer.
    pub fn is_wire(&self) -> bool {
        self.inner.wire
    }

    /// The answer to a conditional request whose resource has not changed: a handler of a
    /// `NO_SIDE_EFFECTS` method returns it when the request's `If-None-Match` (or
    /// `If-Modified-Since`) still matches, and a Connect GET then gets an empty
    /// `304 Not Modified` with `headers` (typically the `ETag`), so browsers and CDNs can
    /// serve their cached copy. Other requests (POST, gRPC) get it as an `unknown` error, as
    /// connect-go does. A client sees a 304 as an error for which
    /// [`Error::is_not_modified`] is true.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, header::ETAG};
    /// let mut headers = HeaderMap::new();
    /// headers.insert(ETAG, HeaderValue::from_static("\"v1\""));
    /// let error = switchboard::Error::not_modified(headers);
    /// assert!(error.is_not_modified());
    /// assert_eq!(error.metadata()[ETAG], "\"v1\"");
    /// ```
    pub fn not_modified(headers: HeaderMap) -> Self {
        let mut error = Error::new(Code::Unknown, "not modified");
        error.inner.metadata = headers;
        error.inner.not_modified = true;
        error
    }

    /// Whether this is a [`Error::not_modified`] answer (on a client: the server answered a
    /// conditional GET with `304 Not Modified`).
    pub fn is_not_modified(&self) -> bool {
        self.inner.not_modified
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Error");
        s.field("code", &self.inner.code)
            .field("message", &self.inner.message);
        if !self.inner.details.is_empty() {
            s.field("details", &self.inner.details);
        }
        if !self.inner.metadata.is_empty() {
            s.field("metadata", &self.inner.metadata);
        }
        if self.inner.wire {
            s.field("wire", &true);
        }
        if let Some(source) = &self.inner.source {
            s.field("source", source);
        }
        s.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inner.message.is_empty() {
            f.write_str(self.inner.code.as_str())
        } else {
            write!(f, "{}: {}", self.inner.code, self.inner.message)
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<Code> for Error {
    fn from(code: Code) -> Self {
        Error::new(code, "")
    }
}

/// One typed detail of an [`Error`]: a protobuf message packed like `google.protobuf.Any`.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorDetail {
    type_name: String,
    value: Bytes,
    debug: Option<serde_json::Value>,
}

impl ErrorDetail {
    /// Packs a prost message; the type name comes from [`prost::Name`].
    pub fn new<M: prost::Message + prost::Name>(message: &M) -> Self {
        ErrorDetail {
            type_name: M::full_name(),
            value: Bytes::from(message.encode_to_vec()),
            debug: None,
        }
    }

    /// A detail from its fully-qualified type name and binary protobuf value.
    pub fn from_parts(type_name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        ErrorDetail {
            type_name: strip_type_url(type_name.into()),
            value: value.into(),
            debug: None,
        }
    }

    /// Attaches a JSON rendering sent under `"debug"` for humans reading the wire.
    pub fn with_debug(mut self, debug: serde_json::Value) -> Self {
        self.debug = Some(debug);
        self
    }

    /// Fully-qualified protobuf type name, e.g. `google.rpc.RetryInfo`.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The binary protobuf encoding of the detail.
    pub fn value(&self) -> &Bytes {
        &self.value
    }

    /// The JSON debug rendering, if the sender attached one.
    pub fn debug(&self) -> Option<&serde_json::Value> {
        self.debug.as_ref()
    }

    /// Decodes the detail as `M`, or `None` when the type name is not `M`'s.
    pub fn to_message<M: prost::Message + prost::Name + Default>(
        &self,
    ) -> Option<Result<M, prost::DecodeError>> {
        (self.type_name == M::full_name()).then(|| M::decode(self.value.clone()))
    }

    /// The detail as a `google.protobuf.Any`.
    pub fn to_any(&self) -> prost_types::Any {
        prost_types::Any {
            type_url: format!("type.googleapis.com/{}", self.type_name),
            value: self.value.to_vec(),
        }
    }

    /// A detail from a `google.protobuf.Any`.
    pub fn from_any(any: prost_types::Any) -> Self {
        ErrorDetail::from_parts(any.type_url, any.value)
    }
}

fn strip_type_url(type_name: String) -> String {
    match type_name.rfind('/') {
        Some(slash) => type_name[slash + 1..].to_owned(),
        None => type_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_the_wire_at_a_character_boundary() {
        let short = Error::internal("short");
        assert_eq!(short.wire_message(), "short");
        let long = Error::internal("é".repeat(MAX_WIRE_MESSAGE_BYTES));
        let wire = long.wire_message();
        assert!(wire.ends_with(TRUNCATED));
        assert!(wire.len() <= MAX_WIRE_MESSAGE_BYTES + TRUNCATED.len());
        assert!(wire.starts_with("éé"));
        // The error itself keeps the whole message for local use.
        assert_eq!(long.message().len(), 2 * MAX_WIRE_MESSAGE_BYTES);
    }

    #[test]
    fn error_is_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn details_round_trip_through_any() {
        let duration = prost_types::Duration {
            seconds: 30,
            nanos: 0,
        };
        let detail = ErrorDetail::new(&duration);
        assert_eq!(detail.type_name(), "google.protobuf.Duration");
        let any = detail.to_any();
        assert_eq!(any.type_url, "type.googleapis.com/google.protobuf.Duration");
        let back = ErrorDetail::from_any(any);
        assert_eq!(back, detail);
        let decoded: prost_types::Duration = back.to_message().unwrap().unwrap();
        assert_eq!(decoded, duration);
        assert!(back.to_message::<prost_types::Timestamp>().is_none());
    }

    #[test]
    fn wire_flag_and_display() {
        let local = Error::new(Code::NotFound, "no such user");
        assert!(!local.is_wire());
        assert_eq!(local.to_string(), "not_found: no such user");
        let wire = Error::wire(Code::Unavailable, "");
        assert!(wire.is_wire());
        assert_eq!(wire.to_string(), "unavailable");
    }
}
