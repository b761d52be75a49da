//! `zstd`, Zstandard (RFC 8878): fast with good ratios.

use bytes::{Bytes, BytesMut};

use super::limited::{corrupt, read_limited, size_hint};
use super::{Compressor, DecompressError};

/// Compression level: zstd's default, a good speed/ratio balance.
const LEVEL: i32 = 3;
/// Largest window (log2) accepted whatever the limit: 8 MiB is what zstd's
/// levels up to 19 and Go's `klauspost/compress/zstd` use by default.
const MIN_WINDOW_LOG_MAX: u32 = 23;
/// Upper bound for the window (log2) accepted on any platform.
const MAX_WINDOW_LOG_MAX: u32 = 30;

/// The `zstd` algorithm (Zstandard, RFC 8878) at level 3.
///
/// Compressed frames record their content size. Decompression streams and
/// never trusts that size: it stops as soon as the output passes the limit.
/// The decoder's window is bounded by the larger of 8 MiB and the limit, so a
/// frame cannot make it reserve more memory than that: a frame asking for a
/// larger window fails with [`DecompressError::TooLarge`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Zstd;

/// The largest window (log2) worth accepting for an output of at most
/// `limit` bytes: back-references never reach further than the output.
fn window_log_max(limit: usize) -> u32 {
    let needed = usize::BITS - limit.saturating_sub(1).leading_zeros();
    needed.clamp(MIN_WINDOW_LOG_MAX, MAX_WINDOW_LOG_MAX)
}

/// The window size declared by the header of the frame `input` starts with,
/// if it has a window descriptor (RFC 8878, section 3.1.1.1.2). Single-segment
/// frames have none: their window is their content size.
fn declared_window(input: &[u8]) -> Option<u64> {
    const MAGIC: [u8; 4] = 0xFD2F_B528u32.to_le_bytes();
    if input.get(..4)? != MAGIC {
        return None;
    }
    let descriptor = *input.get(4)?;
    if descriptor & 0x20 != 0 {
        return None;
    }
    let window = *input.get(5)?;
    let base = 1u64 << (10 + u32::from(window >> 3));
    Some(base + base / 8 * u64::from(window & 7))
}

impl Compressor for Zstd {
    fn name(&self) -> &'static str {
        "zstd"
    }

    fn compress(&self, input: &[u8], out: &mut BytesMut) -> std::io::Result<()> {
        // One-shot compression straight into `out`'s memory: the frame gets
        // the content size and a window no larger than the input.
        let start = out.len();
        let bound = ::zstd::zstd_safe::compress_bound(input.len());
        out.resize(start + bound, 0);
        let result = ::zstd::bulk::Compressor::new(LEVEL)
            .and_then(|mut c| c.compress_to_buffer(input, &mut out[start..]));
        match result {
            Ok(written) => {
                out.truncate(start + written);
                Ok(())
            }
            Err(err) => {
                out.truncate(start);
                Err(err)
            }
        }
    }

    fn decompress(&self, input: &[u8], limit: usize) -> Result<Bytes, DecompressError> {
        if input.is_empty() {
            return Ok(Bytes::new());
        }
        // A frame that declares more than the limit can be refused before
        // any work. The declared size is only ever trusted to say no: the
        // streaming read below enforces the limit on the real output.
        if let Ok(Some(declared)) = ::zstd::zstd_safe::get_frame_content_size(input) {
            if declared > u64::try_from(limit).unwrap_or(u64::MAX) {
                return Err(DecompressError::TooLarge { limit });
            }
        }
        // A window beyond what the limit justifies would be refused by the
        // decoder anyway; say why instead of calling the frame corrupt.
        let window_log_max = window_log_max(limit);
        if let Some(window) = declared_window(input) {
            if window > 1u64 << window_log_max {
                return Err(DecompressError::TooLarge { limit });
            }
        }
        let mut decoder =
            ::zstd::stream::read::Decoder::with_buffer(input).map_err(|e| corrupt("zstd", &e))?;
        decoder
            .window_log_max(window_log_max)
            .map_err(|e| corrupt("zstd", &e))?;
        read_limited(decoder, limit, size_hint(input.len()), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil;
    use super::*;

    #[test]
    fn round_trips() {
        testutil::check_round_trips(&Zstd);
    }

    #[test]
    fn corrupt_input() {
        testutil::check_corrupt(&Zstd);
    }

    #[test]
    fn bomb_is_too_large() {
        testutil::check_bomb(&Zstd);
    }

    #[test]
    fn exact_limit() {
        testutil::check_exact_limit(&Zstd);
    }

    #[test]
    fn window_bounds() {
        assert_eq!(window_log_max(0), 23);
        assert_eq!(window_log_max(4 << 20), 23);
        assert_eq!(window_log_max(8 << 20), 23);
        assert_eq!(window_log_max((8 << 20) + 1), 24);
        assert_eq!(window_log_max(usize::MAX), 30);
    }

    #[test]
    fn declared_size_over_limit_fails_early() {
        let input = testutil::mixed_data(100_000);
        let frame = testutil::compress(&Zstd, &input);
        assert!(matches!(
            Zstd.decompress(&frame, 99_999),
            Err(DecompressError::TooLarge { limit: 99_999 })
        ));
    }

    #[test]
    fn understated_content_size_is_not_trusted() {
        // Rewrite the declared size of a frame to 1 byte: the decoder must
        // still stop at the limit (or reject the frame), never overrun.
        let input = vec![0u8; 1 << 20];
        let frame = testutil::compress(&Zstd, &input);
        let fhd = frame[4];
        assert_eq!(fhd >> 6, 2, "4-byte content size field expected");
        let single_segment = fhd & 0x20 != 0;
        let fcs_at = 5 + usize::from(!single_segment);
        let mut lying = frame.to_vec();
        lying[fcs_at..fcs_at + 4].copy_from_slice(&1u32.to_le_bytes());
        match Zstd.decompress(&lying, 1000) {
            Err(DecompressError::TooLarge { limit: 1000 } | DecompressError::Corrupt(_)) => {}
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn streamed_frames_without_content_size() {
        // What a streaming encoder (e.g. Go's) produces: no content size.
        let input = testutil::mixed_data(300_000);
        let frame = ::zstd::stream::encode_all(&input[..], 3).unwrap();
        assert_eq!(
            &Zstd.decompress(&frame, input.len()).unwrap()[..],
            &input[..]
        );
        assert!(matches!(
            Zstd.decompress(&frame, input.len() - 1),
            Err(DecompressError::TooLarge { .. })
        ));
    }

    #[test]
    fn huge_window_is_refused() {
        // A frame that asks for a 128 MiB window must not get it.
        let frame = streamed_with_window(b"hello", 27);
        assert_eq!(declared_window(&frame), Some(1 << 27));
        assert_eq!(
            Zstd.decompress(&frame, 1 << 20),
            Err(DecompressError::TooLarge { limit: 1 << 20 })
        );
        // Unless the limit itself is that large.
        assert_eq!(&Zstd.decompress(&frame, 1 << 27).unwrap()[..], b"hello");
    }

    #[test]
    fn window_of_8_mib_is_always_accepted() {
        let frame = streamed_with_window(b"hello", 23);
        assert_eq!(declared_window(&frame), Some(8 << 20));
        assert_eq!(&Zstd.decompress(&frame, 5).unwrap()[..], b"hello");
    }

    #[test]
    fn declared_windows() {
        let header = |descriptor: u8, window: u8| {
            let mut h = 0xFD2F_B528u32.to_le_bytes().to_vec();
            h.extend_from_slice(&[descriptor, window]);
            h
        };
        assert_eq!(declared_window(&header(0, 0)), Some(1024));
        assert_eq!(declared_window(&header(0, 0x01)), Some(1024 + 128));
        assert_eq!(
            declared_window(&header(0, 0xff)),
            Some((1 << 41) + (7 << 38))
        );
        assert_eq!(declared_window(&header(0x20, 0xff)), None);
        assert_eq!(declared_window(&header(0, 0)[..5]), None);
        assert_eq!(declared_window(b"not zstd"), None);
        assert_eq!(declared_window(&[]), None);
    }

    /// A frame from a streaming encoder (no content size) with the given
    /// window.
    fn streamed_with_window(data: &[u8], window_log: u32) -> Vec<u8> {
        let mut encoder = ::zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        encoder.include_contentsize(false).unwrap();
        encoder.long_distance_matching(true).unwrap();
        encoder.window_log(window_log).unwrap();
        std::io::Write::write_all(&mut encoder, data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn concatenated_frames() {
        let mut out = BytesMut::new();
        Zstd.compress(b"hello, ", &mut out).unwrap();
        Zstd.compress(b"world", &mut out).unwrap();
        assert_eq!(&Zstd.decompress(&out, 100).unwrap()[..], b"hello, world");
    }

    #[test]
    fn empty_input_is_empty_message() {
        assert!(Zstd.decompress(&[], 0).unwrap().is_empty());
    }
}
