//! Checks every built-in algorithm must pass; each algorithm's tests call them.

use bytes::{Bytes, BytesMut};

use super::{Compressor, DecompressError};

/// Deterministic test data: runs of pseudo-random bytes interleaved with
/// repeated text, so it is neither trivially compressible nor incompressible.
pub(super) fn mixed_data(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let phrase = b"switchboard speaks connect, grpc and grpc-web; ";
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if state % 3 == 0 {
            out.extend_from_slice(phrase);
        } else {
            out.extend_from_slice(&state.to_le_bytes());
        }
    }
    out.truncate(len);
    out
}

/// Compresses `input` with `c`, panicking on failure.
pub(super) fn compress(c: &dyn Compressor, input: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    c.compress(input, &mut out).expect("compress");
    out.freeze()
}

/// Compression appends to (and does not clobber) what `out` already holds,
/// and decompression restores the input.
pub(super) fn check_round_trips(c: &dyn Compressor) {
    for input in [Vec::new(), b"hello, world".to_vec(), mixed_data(1 << 20)] {
        let mut out = BytesMut::from(&b"prefix"[..]);
        c.compress(&input, &mut out).expect("compress");
        assert_eq!(&out[..6], b"prefix", "{}: prefix clobbered", c.name());
        let decoded = c
            .decompress(&out[6..], input.len())
            .unwrap_or_else(|e| panic!("{}: {e}", c.name()));
        assert_eq!(decoded, input, "{}: round trip", c.name());
    }
    // Repetitive data really is compressed.
    let zeros = vec![0u8; 100_000];
    assert!(compress(c, &zeros).len() < 10_000, "{}: ratio", c.name());
}

/// Garbage and truncated streams are reported as corrupt, never a panic.
pub(super) fn check_corrupt(c: &dyn Compressor) {
    let expect_corrupt = |input: &[u8], what: &str| match c.decompress(input, 1 << 20) {
        Err(DecompressError::Corrupt(msg)) => assert!(!msg.is_empty()),
        other => panic!("{}: {what}: expected Corrupt, got {other:?}", c.name()),
    };
    expect_corrupt(b"this is definitely not compressed data!", "garbage");
    expect_corrupt(&[0xff; 64], "0xff bytes");

    let valid = compress(c, &mixed_data(100_000));
    expect_corrupt(&valid[..valid.len() / 2], "truncated");

    // Flipping bytes in the middle must not panic, whatever it returns.
    let mut flipped = valid.to_vec();
    let mid = flipped.len() / 2;
    for b in &mut flipped[mid..mid + 16] {
        *b ^= 0x5a;
    }
    let _ = c.decompress(&flipped, 1 << 20);

    // No arbitrary prefix of a valid stream may panic either.
    for len in 0..valid.len().min(64) {
        let _ = c.decompress(&valid[..len], 1 << 20);
    }
}

/// A small input that inflates to far more than the limit fails quickly with
/// `TooLarge`.
pub(super) fn check_bomb(c: &dyn Compressor) {
    let bomb_len = 64 << 20;
    let mut bomb = BytesMut::new();
    c.compress(&vec![0u8; bomb_len], &mut bomb)
        .expect("compress");
    assert!(bomb.len() < bomb_len / 16, "{}: bomb too big", c.name());
    let limit = 1 << 20;
    match c.decompress(&bomb, limit) {
        Err(DecompressError::TooLarge { limit: l }) => assert_eq!(l, limit),
        other => panic!("{}: expected TooLarge, got {other:?}", c.name()),
    }
}

/// An output of exactly `limit` bytes succeeds, one byte more fails.
pub(super) fn check_exact_limit(c: &dyn Compressor) {
    for len in [0usize, 1, 4096, 100_000, 200_003] {
        let input = mixed_data(len);
        let compressed = compress(c, &input);
        let decoded = c
            .decompress(&compressed, len)
            .unwrap_or_else(|e| panic!("{}: len {len}: {e}", c.name()));
        assert_eq!(decoded, input);
        if len > 0 {
            match c.decompress(&compressed, len - 1) {
                Err(DecompressError::TooLarge { limit }) => assert_eq!(limit, len - 1),
                other => panic!("{}: len {len}: expected TooLarge, got {other:?}", c.name()),
            }
        }
    }
}
