//! `snappy`, in the framed stream format: very fast, modest ratios.

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};

use super::limited::{read_limited, size_hint};
use super::{Compressor, DecompressError};

/// The `snappy` algorithm in the *framed* stream format (a stream identifier
/// chunk, then checksummed chunks of at most 64 KiB).
///
/// This is the format of Go's `github.com/golang/snappy` `NewReader` and
/// `NewBufferedWriter`, which gRPC-Go and the Connect conformance suite use;
/// it is not the raw block format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Snappy;

impl Compressor for Snappy {
    fn name(&self) -> &'static str {
        "snappy"
    }

    fn compress(&self, input: &[u8], out: &mut BytesMut) -> std::io::Result<()> {
        let mut encoder = snap::write::FrameEncoder::new(out.writer());
        encoder.write_all(input)?;
        encoder.into_inner().map_err(|e| e.into_error())?;
        Ok(())
    }

    fn decompress(&self, input: &[u8], limit: usize) -> Result<Bytes, DecompressError> {
        // An empty stream is valid in the framed format: no chunks, no data.
        let decoder = snap::read::FrameDecoder::new(input);
        read_limited(decoder, limit, size_hint(input.len()), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil;
    use super::*;

    /// The stream identifier chunk every framed stream starts with.
    const STREAM_IDENTIFIER: &[u8] = b"\xff\x06\x00\x00sNaPpY";

    #[test]
    fn round_trips() {
        testutil::check_round_trips(&Snappy);
    }

    #[test]
    fn corrupt_input() {
        testutil::check_corrupt(&Snappy);
    }

    #[test]
    fn bomb_is_too_large() {
        testutil::check_bomb(&Snappy);
    }

    #[test]
    fn exact_limit() {
        testutil::check_exact_limit(&Snappy);
    }

    #[test]
    fn framed_format() {
        for input in [&b"x"[..], b"hello", &testutil::mixed_data(200_000)] {
            let out = testutil::compress(&Snappy, input);
            assert!(out.starts_with(STREAM_IDENTIFIER), "{:x?}", &out[..10]);
        }
    }

    #[test]
    fn decodes_reference_stream() {
        // Stream identifier, then an uncompressed chunk (type 0x01) holding
        // "hello" with its masked CRC-32C, as Go's snappy writer emits it.
        let mut stream = STREAM_IDENTIFIER.to_vec();
        stream.extend_from_slice(&[0x01, 0x09, 0x00, 0x00]);
        stream.extend_from_slice(&masked_crc32c(b"hello").to_le_bytes());
        stream.extend_from_slice(b"hello");
        assert_eq!(&Snappy.decompress(&stream, 5).unwrap()[..], b"hello");
    }

    #[test]
    fn raw_block_format_is_rejected() {
        let raw = snap::raw::Encoder::new()
            .compress_vec(b"hello hello hello")
            .unwrap();
        assert!(matches!(
            Snappy.decompress(&raw, 100),
            Err(DecompressError::Corrupt(_))
        ));
    }

    #[test]
    fn empty_input_is_empty_message() {
        assert!(Snappy.decompress(&[], 0).unwrap().is_empty());
    }

    /// CRC-32C (Castagnoli), masked as the framing format requires.
    fn masked_crc32c(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        let crc = !crc;
        crc.rotate_right(15).wrapping_add(0xa282_ead8)
    }
}
