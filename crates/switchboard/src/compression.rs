//! Message compression: the algorithms a peer may name in `Content-Encoding`,
//! `connect-content-encoding` or `grpc-encoding`, and the registry that decides
//! which of them this side speaks.
//!
//! Every algorithm implements [`Compressor`]. Decompression is always bounded:
//! callers pass the largest message they are willing to accept and a
//! compression bomb fails with [`DecompressError::TooLarge`] after producing at
//! most that many bytes, instead of exhausting memory.
//!
//! The built-in algorithms are `Gzip` and `Deflate` (cargo feature `gzip`), `Brotli`
//! (`brotli`), `Zstd` (`zstd`) and `Snappy` (`snappy`), all on by default;
//! [`CompressionRegistry::with_defaults`] enables those compiled in.
//! [`CompressionPolicy`] decides whether an outgoing message is worth
//! compressing at all.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use bytes::{Bytes, BytesMut};

#[cfg(feature = "brotli")]
mod brotli;
#[cfg(feature = "gzip")]
mod deflate;
#[cfg(feature = "gzip")]
mod gzip;
// The bounded reader the algorithms share (unused when none is compiled in).
#[cfg_attr(
    not(any(
        feature = "gzip",
        feature = "brotli",
        feature = "zstd",
        feature = "snappy"
    )),
    allow(dead_code)
)]
mod limited;
mod registry;
#[cfg(feature = "snappy")]
mod snappy;
#[cfg(test)]
mod testutil;
#[cfg(feature = "zstd")]
mod zstd;

#[cfg(feature = "brotli")]
pub use self::brotli::Brotli;
#[cfg(feature = "gzip")]
pub use self::deflate::Deflate;
#[cfg(feature = "gzip")]
pub use self::gzip::Gzip;
pub(crate) use self::registry::CallCompression;
pub use self::registry::CompressionRegistry;
#[cfg(feature = "snappy")]
pub use self::snappy::Snappy;
#[cfg(feature = "zstd")]
pub use self::zstd::Zstd;

/// One compression algorithm, identified on the wire by its name (the value of
/// `Content-Encoding` / `grpc-encoding` / `connect-content-encoding`).
///
/// Implement this trait to plug an algorithm that is not built in into a
/// [`CompressionRegistry`]. Implementations are shared between connections and
/// threads, so they must be stateless or internally synchronised.
pub trait Compressor: Send + Sync + fmt::Debug + 'static {
    /// Wire name, lowercase, e.g. `"gzip"`.
    ///
    /// It must be a valid HTTP token and must not be `"identity"`; a
    /// [`CompressionRegistry`] ignores compressors whose name breaks these
    /// rules.
    fn name(&self) -> &'static str;

    /// Appends the compressed form of `input` to `out`.
    ///
    /// Bytes already in `out` are left untouched, so a caller can reserve room
    /// for a frame header before compressing the payload behind it.
    fn compress(&self, input: &[u8], out: &mut BytesMut) -> std::io::Result<()>;

    /// Decompresses `input`, failing with [`DecompressError::TooLarge`] as soon
    /// as the output would exceed `limit` bytes.
    ///
    /// Implementations must never allocate much more than `limit` (plus a
    /// small constant) whatever the input claims, so that a compression bomb
    /// fails fast and cheaply. An output of exactly `limit` bytes succeeds.
    fn decompress(&self, input: &[u8], limit: usize) -> Result<Bytes, DecompressError>;
}

/// Why [`Compressor::decompress`] failed.
///
/// The two cases map to different protocol errors: an oversized message is a
/// resource problem (the data may be perfectly valid), corrupt data is the
/// peer's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecompressError {
    /// The decompressed data would be larger than the limit.
    TooLarge {
        /// The limit, in bytes, that the output would have exceeded.
        limit: usize,
    },
    /// The input is not valid for this algorithm (the message says why).
    Corrupt(String),
}

impl fmt::Display for DecompressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecompressError::TooLarge { limit } => write!(
                f,
                "decompressed message is larger than the limit of {limit} bytes"
            ),
            DecompressError::Corrupt(reason) => {
                write!(f, "corrupt compressed message: {reason}")
            }
        }
    }
}

impl std::error::Error for DecompressError {}

/// When to compress an outgoing message.
///
/// Compressing tiny messages costs CPU and often makes them larger (every
/// format has a header), so messages shorter than
/// [`min_bytes`](CompressionPolicy::min_bytes) are sent uncompressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompressionPolicy {
    /// Messages of at least this many bytes are compressed; shorter ones are
    /// sent as they are. `0` compresses everything, `usize::MAX` nothing.
    pub min_bytes: usize,
}

impl CompressionPolicy {
    /// The default threshold: messages of 1 KiB or more are compressed.
    pub const DEFAULT_MIN_BYTES: usize = 1024;

    /// Whether a message of `len` bytes should be compressed.
    pub fn should_compress(&self, len: usize) -> bool {
        len >= self.min_bytes
    }
}

impl Default for CompressionPolicy {
    fn default() -> Self {
        CompressionPolicy {
            min_bytes: Self::DEFAULT_MIN_BYTES,
        }
    }
}

/// Per-call control over which of the messages this side sends are compressed, overriding
/// the [`CompressionPolicy`] message by message (as gRPC's `setMessageCompression` does).
///
/// Every call has one: [`crate::Request::message_compression`] returns it, on the server for
/// the response messages, on the client for the request messages. Clones share the setting.
/// It is read as each message is framed, so a setting applies to the messages produced after
/// it; a stream that sets it just before yielding a message controls that very message.
/// Compression still needs an algorithm for the call (negotiated, or configured on the
/// client): without one, every message goes out uncompressed.
#[derive(Clone, Debug, Default)]
pub struct MessageCompression {
    /// 0: the policy decides; 1: compress; 2: do not compress.
    state: Arc<AtomicU8>,
}

impl MessageCompression {
    /// A switch left to the policy.
    pub fn new() -> Self {
        MessageCompression::default()
    }

    /// `Some(true)` compresses the messages sent from now on whatever their size,
    /// `Some(false)` sends them uncompressed, `None` hands the choice back to the policy.
    pub fn set(&self, compress: Option<bool>) {
        let state = match compress {
            None => 0,
            Some(true) => 1,
            Some(false) => 2,
        };
        self.state.store(state, Ordering::Release);
    }

    /// The current setting, as given to [`MessageCompression::set`].
    pub fn get(&self) -> Option<bool> {
        match self.state.load(Ordering::Acquire) {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        }
    }

    /// Whether a message of `len` bytes is compressed, under `policy` unless overridden.
    pub(crate) fn should_compress(&self, policy: CompressionPolicy, len: usize) -> bool {
        self.get().unwrap_or_else(|| policy.should_compress(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_threshold() {
        let policy = CompressionPolicy::default();
        assert_eq!(policy.min_bytes, 1024);
        assert!(!policy.should_compress(0));
        assert!(!policy.should_compress(1023));
        assert!(policy.should_compress(1024));
        assert!(policy.should_compress(usize::MAX));

        let always = CompressionPolicy { min_bytes: 0 };
        assert!(always.should_compress(0));
    }

    #[test]
    fn message_compression_overrides_the_policy() {
        let policy = CompressionPolicy::default();
        let switch = MessageCompression::new();
        assert_eq!(switch.get(), None);
        assert!(!switch.should_compress(policy, 10));
        assert!(switch.should_compress(policy, 4096));
        let shared = switch.clone();
        shared.set(Some(true));
        assert_eq!(switch.get(), Some(true));
        assert!(switch.should_compress(policy, 10));
        shared.set(Some(false));
        assert!(!switch.should_compress(policy, 4096));
        shared.set(None);
        assert!(switch.should_compress(policy, 4096));
    }

    #[test]
    fn error_display() {
        let too_large = DecompressError::TooLarge { limit: 42 };
        assert_eq!(
            too_large.to_string(),
            "decompressed message is larger than the limit of 42 bytes"
        );
        let corrupt = DecompressError::Corrupt("bad header".to_owned());
        assert_eq!(
            corrupt.to_string(),
            "corrupt compressed message: bad header"
        );
        let _: &dyn std::error::Error = &corrupt;
    }

    #[test]
    fn builtin_names() {
        assert_eq!(Gzip.name(), "gzip");
        assert_eq!(Deflate.name(), "deflate");
        assert_eq!(Brotli.name(), "br");
        assert_eq!(Zstd.name(), "zstd");
        assert_eq!(Snappy.name(), "snappy");
    }
}
