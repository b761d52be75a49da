//! HTTP `deflate`, which despite its name is the zlib format (RFC 1950), not
//! a raw deflate stream (RFC 1951).

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::Compression;

use super::limited::{read_limited, size_hint};
use super::{Compressor, DecompressError};

/// The `deflate` algorithm as HTTP defines it: a zlib stream (RFC 1950) at
/// the default level (6). This is what Go's `compress/zlib` and the Connect
/// conformance suite produce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Deflate;

impl Compressor for Deflate {
    fn name(&self) -> &'static str {
        "deflate"
    }

    fn compress(&self, input: &[u8], out: &mut BytesMut) -> std::io::Result<()> {
        let mut encoder = flate2::write::ZlibEncoder::new(out.writer(), Compression::default());
        encoder.write_all(input)?;
        encoder.finish()?;
        Ok(())
    }

    fn decompress(&self, input: &[u8], limit: usize) -> Result<Bytes, DecompressError> {
        if input.is_empty() {
            return Ok(Bytes::new());
        }
        let decoder = flate2::bufread::ZlibDecoder::new(input);
        read_limited(decoder, limit, size_hint(input.len()), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil;
    use super::*;

    #[test]
    fn round_trips() {
        testutil::check_round_trips(&Deflate);
    }

    #[test]
    fn corrupt_input() {
        testutil::check_corrupt(&Deflate);
    }

    #[test]
    fn bomb_is_too_large() {
        testutil::check_bomb(&Deflate);
    }

    #[test]
    fn exact_limit() {
        testutil::check_exact_limit(&Deflate);
    }

    #[test]
    fn zlib_header() {
        for input in [&b""[..], b"hello", &testutil::mixed_data(10_000)] {
            let out = testutil::compress(&Deflate, input);
            assert_eq!(out[0], 0x78, "CMF byte: deflate with a 32 KiB window");
            assert_eq!(
                (u16::from(out[0]) << 8 | u16::from(out[1])) % 31,
                0,
                "FCHECK"
            );
        }
    }

    #[test]
    fn raw_deflate_is_rejected() {
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(b"hello, hello, hello").unwrap();
        let raw = raw.finish().unwrap();
        assert!(matches!(
            Deflate.decompress(&raw, 100),
            Err(DecompressError::Corrupt(_))
        ));
    }

    #[test]
    fn empty_input_is_empty_message() {
        assert!(Deflate.decompress(&[], 0).unwrap().is_empty());
    }
}
