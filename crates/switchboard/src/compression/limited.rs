//! Bounded reading of a decoder's output, shared by every algorithm.
//!
//! Decoders are driven through [`read_limited`], which never lets the output
//! buffer grow past `limit + 1` bytes: reading one byte more than the limit is
//! how an oversized message is detected without trusting any size the
//! compressed data claims.

use std::io::{self, Read};

use bytes::Bytes;

use super::DecompressError;

/// Size of the first output buffer when the caller's hint is smaller.
const MIN_INITIAL: usize = 4 * 1024;

/// Reads `reader` to its end into a fresh buffer, failing with
/// [`DecompressError::TooLarge`] as soon as more than `limit` bytes come out.
///
/// `size_hint` is a guess of the output size used for the first allocation;
/// the buffer then doubles, but never beyond `limit + 1` bytes. Read errors
/// become [`DecompressError::Corrupt`] prefixed with `algorithm`.
pub(super) fn read_limited<R: Read>(
    mut reader: R,
    limit: usize,
    size_hint: usize,
    algorithm: &str,
) -> Result<Bytes, DecompressError> {
    // One byte of room beyond the limit: if it gets filled, the output is too
    // large. Reading into it also lets the decoder reach (and verify) the end
    // of a stream that is exactly `limit` bytes long.
    let cap = limit.saturating_add(1);
    let mut buf: Vec<u8> = Vec::new();
    let mut filled = 0usize;
    loop {
        if filled == buf.len() {
            if buf.len() >= cap {
                return Err(DecompressError::TooLarge { limit });
            }
            let new_len = if buf.is_empty() {
                size_hint.max(MIN_INITIAL)
            } else {
                buf.len().saturating_mul(2)
            }
            .min(cap);
            buf.resize(new_len, 0);
        }
        let Some(free) = buf.get_mut(filled..) else {
            // Unreachable: `filled` never exceeds `buf.len()`.
            break;
        };
        match reader.read(free) {
            Ok(0) => break,
            // Clamp in case a reader reports more than it was given.
            Ok(n) => filled += n.min(free.len()),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(corrupt(algorithm, &err)),
        }
    }
    buf.truncate(filled);
    // A hint far above the real size would otherwise pin that memory for the
    // lifetime of the message.
    if buf.capacity() - filled > filled.max(MIN_INITIAL) {
        buf.shrink_to_fit();
    }
    Ok(Bytes::from(buf))
}

/// Builds the error for data `algorithm` cannot decode.
pub(super) fn corrupt(algorithm: &str, err: &dyn std::fmt::Display) -> DecompressError {
    DecompressError::Corrupt(format!("invalid {algorithm} data: {err}"))
}

/// The first-buffer guess for a compressed input of `input_len` bytes:
/// typical RPC payloads shrink 3-5x, so 4x the input avoids most regrowth.
pub(super) fn size_hint(input_len: usize) -> usize {
    input_len.saturating_mul(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_everything_under_the_limit() {
        let data = vec![7u8; 10_000];
        let out = read_limited(&data[..], 10_000, 0, "test").unwrap();
        assert_eq!(&out[..], &data[..]);
        let out = read_limited(&data[..], 1 << 20, 0, "test").unwrap();
        assert_eq!(&out[..], &data[..]);
    }

    #[test]
    fn one_byte_over_the_limit_fails() {
        let data = vec![7u8; 10_001];
        let err = read_limited(&data[..], 10_000, 0, "test").unwrap_err();
        assert_eq!(err, DecompressError::TooLarge { limit: 10_000 });
    }

    #[test]
    fn zero_limit() {
        assert!(read_limited(&[][..], 0, 0, "test").unwrap().is_empty());
        let err = read_limited(&[1u8][..], 0, 0, "test").unwrap_err();
        assert_eq!(err, DecompressError::TooLarge { limit: 0 });
    }

    #[test]
    fn endless_reader_stops_at_limit() {
        let err = read_limited(io::repeat(0), 3 << 20, 1 << 30, "test").unwrap_err();
        assert_eq!(err, DecompressError::TooLarge { limit: 3 << 20 });
    }

    #[test]
    fn huge_limit_does_not_overflow() {
        let out = read_limited(&b"abc"[..], usize::MAX, 0, "test").unwrap();
        assert_eq!(&out[..], b"abc");
    }

    #[test]
    fn oversized_hint_is_released() {
        let out = read_limited(&b"abc"[..], 1 << 30, 1 << 20, "test").unwrap();
        assert_eq!(&out[..], b"abc");
    }

    #[test]
    fn errors_become_corrupt() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::InvalidData, "boom"))
            }
        }
        let err = read_limited(Failing, 100, 0, "test").unwrap_err();
        assert_eq!(
            err,
            DecompressError::Corrupt("invalid test data: boom".to_owned())
        );
    }

    #[test]
    fn interrupted_is_retried() {
        struct Flaky(bool);
        impl Read for Flaky {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0 = !self.0;
                if self.0 {
                    return Err(io::ErrorKind::Interrupted.into());
                }
                buf[0] = 1;
                Ok(1)
            }
        }
        let err = read_limited(Flaky(false), 10, 0, "test").unwrap_err();
        assert_eq!(err, DecompressError::TooLarge { limit: 10 });
    }
}
