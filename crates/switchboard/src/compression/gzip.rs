//! `gzip` (RFC 1952), the one algorithm every Connect and gRPC peer supports.

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::Compression;

use super::limited::{read_limited, size_hint};
use super::{Compressor, DecompressError};

/// The `gzip` algorithm (RFC 1952) at the default level (6), the most widely
/// supported compression in Connect and gRPC.
///
/// Decompression accepts concatenated gzip members, as Go's `compress/gzip`
/// does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Gzip;

impl Compressor for Gzip {
    fn name(&self) -> &'static str {
        "gzip"
    }

    fn compress(&self, input: &[u8], out: &mut BytesMut) -> std::io::Result<()> {
        let mut encoder = flate2::write::GzEncoder::new(out.writer(), Compression::default());
        encoder.write_all(input)?;
        encoder.finish()?;
        Ok(())
    }

    fn decompress(&self, input: &[u8], limit: usize) -> Result<Bytes, DecompressError> {
        if input.is_empty() {
            return Ok(Bytes::new());
        }
        // The `bufread` decoder reads the slice in place, without an extra
        // buffer copy.
        let decoder = flate2::bufread::MultiGzDecoder::new(input);
        read_limited(decoder, limit, size_hint(input.len()), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil;
    use super::*;

    #[test]
    fn round_trips() {
        testutil::check_round_trips(&Gzip);
    }

    #[test]
    fn corrupt_input() {
        testutil::check_corrupt(&Gzip);
    }

    #[test]
    fn bomb_is_too_large() {
        testutil::check_bomb(&Gzip);
    }

    #[test]
    fn exact_limit() {
        testutil::check_exact_limit(&Gzip);
    }

    #[test]
    fn gzip_header() {
        let out = testutil::compress(&Gzip, b"hello");
        assert_eq!(&out[..2], &[0x1f, 0x8b]);
    }

    #[test]
    fn concatenated_members() {
        let mut out = BytesMut::new();
        Gzip.compress(b"hello, ", &mut out).unwrap();
        Gzip.compress(b"world", &mut out).unwrap();
        assert_eq!(&Gzip.decompress(&out, 100).unwrap()[..], b"hello, world");
    }

    #[test]
    fn trailing_garbage_is_corrupt() {
        let mut out = BytesMut::new();
        Gzip.compress(b"hello", &mut out).unwrap();
        out.extend_from_slice(b"garbage!");
        assert!(matches!(
            Gzip.decompress(&out, 100),
            Err(DecompressError::Corrupt(_))
        ));
    }

    #[test]
    fn empty_input_is_empty_message() {
        assert!(Gzip.decompress(&[], 0).unwrap().is_empty());
    }
}
