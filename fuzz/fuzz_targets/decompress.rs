//! Any bytes through each decompressor, bounded at 1 MiB: an error or a result within the
//! limit, never a panic or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::compression::{Brotli, Compressor, Deflate, Gzip, Snappy, Zstd};

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((choice, payload)) = data.split_first() else {
        return;
    };
    let result = match choice % 5 {
        0 => Gzip.decompress(payload, LIMIT),
        1 => Brotli.decompress(payload, LIMIT),
        2 => Zstd.decompress(payload, LIMIT),
        3 => Deflate.decompress(payload, LIMIT),
        _ => Snappy.decompress(payload, LIMIT),
    };
    if let Ok(out) = result {
        assert!(
            out.len() <= LIMIT,
            "decompressed {} bytes past the limit",
            out.len()
        );
    }
});
