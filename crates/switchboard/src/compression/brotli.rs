//! `br`, Brotli (RFC 7932): better ratios than gzip at similar speed.

use std::cell::Cell;
use std::rc::Rc;

use ::brotli::Allocator;
use ::brotli::enc::StandardAlloc;
use bytes::{BufMut, Bytes, BytesMut};

use super::limited::{read_limited, size_hint};
use super::{Compressor, DecompressError};

/// Compression quality: 4-5 is where Brotli is about as fast as gzip while
/// compressing better.
const QUALITY: i32 = 5;
/// Largest window used when compressing (4 MiB), so that peers decoding our
/// messages need at most that much memory.
const MAX_LGWIN: i32 = 22;
/// Smallest window the format allows.
const MIN_LGWIN: i32 = 10;
/// Input buffer of the streaming decoder; the compressed input is small.
const DECODER_BUFFER: usize = 4096;
/// Byte blocks up to this size are always granted to the decoder: its
/// context maps and smallest ring buffers fit.
const MIN_BLOCK: usize = 64 * 1024;
/// Room for what the decoder allocates past a ring buffer's power-of-two size
/// (566 bytes in `brotli-decompressor`).
const BLOCK_SLACK: usize = 4096;

/// The `br` algorithm (Brotli, RFC 7932) at quality 5 with at most a 4 MiB
/// window.
///
/// The window is shrunk to fit small messages, which keeps the decoder's
/// memory small on the other side. When decoding, the ring buffer is capped
/// by the output limit rather than by the window the stream declares (up to
/// 16 MiB), so a bomb costs memory in proportion to the limit only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Brotli;

/// Smallest window (log2) whose usable size, `(1 << lgwin) - 16`, covers
/// `len` bytes, clamped to the supported range.
fn window_for(len: usize) -> i32 {
    let mut lgwin = MIN_LGWIN;
    while lgwin < MAX_LGWIN && (1usize << lgwin) - 16 < len {
        lgwin += 1;
    }
    lgwin
}

impl Compressor for Brotli {
    fn name(&self) -> &'static str {
        "br"
    }

    fn compress(&self, input: &[u8], out: &mut BytesMut) -> std::io::Result<()> {
        let params = ::brotli::enc::BrotliEncoderParams {
            quality: QUALITY,
            lgwin: window_for(input.len()),
            size_hint: input.len(),
            ..Default::default()
        };
        let mut reader = input;
        let mut writer = out.writer();
        ::brotli::BrotliCompress(&mut reader, &mut writer, &params)?;
        Ok(())
    }

    fn decompress(&self, input: &[u8], limit: usize) -> Result<Bytes, DecompressError> {
        if input.is_empty() {
            return Ok(Bytes::new());
        }
        decode(input, limit).0
    }
}

/// The byte allocator of the decoder: refuses any block larger than
/// `max_block`, and records that it did.
///
/// The decoder's big allocation is its ring buffer, sized to hold the output
/// so far plus the declared length of the current metablock (at most the
/// window). For a stream whose output fits the limit that is at most the
/// limit rounded up to a power of two, so anything larger can only serve
/// output beyond the limit; refusing it makes the decoder fail cleanly.
struct CappedAlloc {
    max_block: usize,
    refused: Rc<Cell<bool>>,
}

type ByteBlock = <StandardAlloc as Allocator<u8>>::AllocatedMemory;

impl Allocator<u8> for CappedAlloc {
    type AllocatedMemory = ByteBlock;

    fn alloc_cell(&mut self, len: usize) -> ByteBlock {
        if len > self.max_block {
            self.refused.set(true);
            // An empty block is how an allocator reports failure.
            return ByteBlock::default();
        }
        <StandardAlloc as Allocator<u8>>::alloc_cell(&mut StandardAlloc::default(), len)
    }

    fn free_cell(&mut self, block: ByteBlock) {
        drop(block);
    }
}

/// The largest byte block the decoder may allocate for an output of at most
/// `limit` bytes.
fn max_block(limit: usize) -> usize {
    limit
        .max(MIN_BLOCK)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX)
        .saturating_add(BLOCK_SLACK)
}

/// Decodes `input`; also tells whether an allocation was refused (for tests).
fn decode(input: &[u8], limit: usize) -> (Result<Bytes, DecompressError>, bool) {
    let refused = Rc::new(Cell::new(false));
    let alloc = CappedAlloc {
        max_block: max_block(limit),
        refused: Rc::clone(&refused),
    };
    let buffer =
        <StandardAlloc as Allocator<u8>>::alloc_cell(&mut StandardAlloc::default(), DECODER_BUFFER);
    let decoder = ::brotli::reader::DecompressorCustomAlloc::new(
        input,
        buffer,
        alloc,
        StandardAlloc::default(),
        StandardAlloc::default(),
    );
    let result = read_limited(decoder, limit, size_hint(input.len()), "br");
    let refused = refused.get();
    match result {
        // The stream needed more memory than its output may use: it decodes
        // to more than the limit.
        Err(DecompressError::Corrupt(_)) if refused => {
            (Err(DecompressError::TooLarge { limit }), refused)
        }
        other => (other, refused),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil;
    use super::*;

    #[test]
    fn round_trips() {
        testutil::check_round_trips(&Brotli);
    }

    #[test]
    fn corrupt_input() {
        testutil::check_corrupt(&Brotli);
    }

    #[test]
    fn bomb_is_too_large() {
        testutil::check_bomb(&Brotli);
    }

    #[test]
    fn exact_limit() {
        testutil::check_exact_limit(&Brotli);
    }

    #[test]
    fn bomb_ring_buffer_is_refused() {
        // 16 MiB metablocks of zeros (window 24), as `brotli` itself writes.
        let mut bomb = BytesMut::new();
        let params = ::brotli::enc::BrotliEncoderParams {
            quality: 5,
            lgwin: 24,
            ..Default::default()
        };
        let zeros = vec![0u8; 32 << 20];
        ::brotli::BrotliCompress(&mut &zeros[..], &mut (&mut bomb).writer(), &params).unwrap();
        let (result, refused) = decode(&bomb, 1 << 20);
        assert_eq!(result, Err(DecompressError::TooLarge { limit: 1 << 20 }));
        assert!(refused, "the 16 MiB ring buffer must not be allocated");

        // The same stream fits a large enough limit.
        let (result, refused) = decode(&bomb, 32 << 20);
        assert_eq!(result.unwrap().len(), 32 << 20);
        assert!(!refused);
    }

    #[test]
    fn large_window_stream_under_limit_is_not_refused() {
        // A big window does not matter when the message is small.
        let input = testutil::mixed_data(300_000);
        let mut out = BytesMut::new();
        let params = ::brotli::enc::BrotliEncoderParams {
            quality: 5,
            lgwin: 24,
            ..Default::default()
        };
        ::brotli::BrotliCompress(&mut &input[..], &mut (&mut out).writer(), &params).unwrap();
        let (result, refused) = decode(&out, input.len());
        assert_eq!(result.unwrap(), input);
        assert!(!refused);
    }

    #[test]
    fn block_caps() {
        assert_eq!(max_block(0), MIN_BLOCK + BLOCK_SLACK);
        assert_eq!(max_block(1 << 20), (1 << 20) + BLOCK_SLACK);
        assert_eq!(max_block((1 << 20) + 1), (2 << 20) + BLOCK_SLACK);
        assert_eq!(max_block(usize::MAX), usize::MAX);
    }

    #[test]
    fn window_sizes() {
        assert_eq!(window_for(0), 10);
        assert_eq!(window_for(1008), 10);
        assert_eq!(window_for(1009), 11);
        assert_eq!(window_for(1 << 30), 22);
    }

    #[test]
    fn decodes_reference_stream() {
        // `printf 'hello' | brotli -c` (quality 11, window 22)
        let stream = [0x0b, 0x02, 0x80, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x03];
        assert_eq!(&Brotli.decompress(&stream, 5).unwrap()[..], b"hello");
    }

    #[test]
    fn empty_input_is_empty_message() {
        assert!(Brotli.decompress(&[], 0).unwrap().is_empty());
    }
}
