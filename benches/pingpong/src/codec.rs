//! The wire formats the driver needs, written by hand: the five-byte envelope shared by gRPC
//! and the Connect streaming protocol, `EchoRequest` encoding and `EchoResponse` decoding.
//!
//! Both messages have a single field, `bytes payload = 1`, so a protobuf library would only
//! add weight (and a dependency some servers under test also use) to the client side.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Length of the envelope prefix: one flags byte, then a four-byte big-endian length.
pub const ENVELOPE_HEADER_LEN: usize = 5;

/// Envelope flag: the message is compressed. The driver never negotiates compression.
pub const FLAG_COMPRESSED: u8 = 0x01;

/// Envelope flag (Connect only): the end-of-stream message, a JSON object.
pub const FLAG_END_STREAM: u8 = 0x02;

/// The largest envelope the driver accepts; anything bigger is surely a broken stream, and
/// buffering it would only hide the failure behind memory growth.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024 * 1024;

/// Tag of field 1 with wire type 2 (length-delimited): `(1 << 3) | 2`.
const PAYLOAD_TAG: u8 = 0x0a;

/// A decoding failure; the driver counts it as an error and reports the first few.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(pub String);

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

fn err(message: impl Into<String>) -> CodecError {
    CodecError(message.into())
}

/// Number of bytes `value` takes as a protobuf varint.
pub fn varint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

fn put_varint(buf: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Reads a varint from the front of `buf`, advancing it.
fn get_varint(buf: &mut &[u8]) -> Result<u64, CodecError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some((&byte, rest)) = buf.split_first() else {
            return Err(err("truncated varint"));
        };
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(err("varint longer than ten bytes"))
}

/// Encoded length of `EchoRequest { payload }` (proto3 omits an empty `bytes` field).
pub fn echo_request_len(payload: &[u8]) -> usize {
    if payload.is_empty() {
        0
    } else {
        1 + varint_len(payload.len() as u64) + payload.len()
    }
}

/// One uncompressed envelope (flags 0) holding `EchoRequest { payload }`, ready to send.
pub fn encode_request_envelope(payload: &[u8]) -> Bytes {
    let message_len = echo_request_len(payload);
    let mut buf = BytesMut::with_capacity(ENVELOPE_HEADER_LEN + message_len);
    buf.put_u8(0);
    buf.put_u32(message_len as u32);
    if !payload.is_empty() {
        buf.put_u8(PAYLOAD_TAG);
        put_varint(&mut buf, payload.len() as u64);
        buf.put_slice(payload);
    }
    buf.freeze()
}

/// Decodes `EchoResponse` and returns its payload.
///
/// Follows protobuf's rules rather than assuming one encoder's output: fields may appear in
/// any order, unknown fields are skipped, and of repeated occurrences of `payload` the last
/// one wins. Returns a slice of `message`, so checking the echo costs no copy.
pub fn decode_echo_response(message: &[u8]) -> Result<&[u8], CodecError> {
    let mut buf = message;
    let mut payload: &[u8] = &[];
    while !buf.is_empty() {
        let key = get_varint(&mut buf)?;
        let field = key >> 3;
        let wire_type = key & 7;
        if field == 0 {
            return Err(err("field number 0"));
        }
        match wire_type {
            // varint
            0 => {
                get_varint(&mut buf)?;
            }
            // fixed64
            1 => buf = skip(buf, 8)?,
            // length-delimited
            2 => {
                let len = get_varint(&mut buf)?;
                let len = usize::try_from(len).map_err(|_| err("length overflows usize"))?;
                if len > buf.len() {
                    return Err(err("length-delimited field runs past the message"));
                }
                let (value, rest) = buf.split_at(len);
                if field == 1 {
                    payload = value;
                }
                buf = rest;
            }
            // fixed32
            5 => buf = skip(buf, 4)?,
            other => return Err(err(format!("unsupported wire type {other}"))),
        }
        if field == 1 && wire_type != 2 {
            return Err(err(format!("payload field with wire type {wire_type}")));
        }
    }
    Ok(payload)
}

fn skip(buf: &[u8], n: usize) -> Result<&[u8], CodecError> {
    buf.get(n..)
        .ok_or_else(|| err("truncated fixed-width field"))
}

/// One received envelope: its flags byte and its message bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The flags byte (`FLAG_COMPRESSED`, `FLAG_END_STREAM`).
    pub flags: u8,
    /// The message, without the five-byte prefix.
    pub message: Bytes,
}

/// Reassembles envelopes from DATA frames, which h2 may split or coalesce anywhere: an
/// envelope can span frames, and one frame can carry several envelopes or parts of them.
#[derive(Debug, Default)]
pub struct EnvelopeReader {
    buf: BytesMut,
}

impl EnvelopeReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one received chunk.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Bytes received but not yet returned as envelopes.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete envelope, or `None` until more bytes arrive.
    pub fn next_envelope(&mut self) -> Result<Option<Envelope>, CodecError> {
        if self.buf.len() < ENVELOPE_HEADER_LEN {
            return Ok(None);
        }
        let flags = self.buf[0];
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_MESSAGE_LEN {
            return Err(err(format!(
                "envelope of {len} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit"
            )));
        }
        if self.buf.len() < ENVELOPE_HEADER_LEN + len {
            // Reserve once for the whole envelope rather than growing chunk by chunk.
            self.buf.reserve(ENVELOPE_HEADER_LEN + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(ENVELOPE_HEADER_LEN);
        let message = self.buf.split_to(len).freeze();
        Ok(Some(Envelope { flags, message }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(16_383), 2);
        assert_eq!(varint_len(16_384), 3);
        assert_eq!(varint_len(u64::MAX), 10);
        for value in [0u64, 1, 127, 128, 300, 16_384, u32::MAX as u64, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            assert_eq!(buf.len(), varint_len(value));
            let mut slice = buf.as_slice();
            assert_eq!(get_varint(&mut slice).unwrap(), value);
            assert!(slice.is_empty());
        }
    }

    #[test]
    fn request_envelope_bytes() {
        assert_eq!(
            &encode_request_envelope(b"hi")[..],
            &[0, 0, 0, 0, 4, 0x0a, 2, b'h', b'i']
        );
        // An empty payload is the empty message.
        assert_eq!(&encode_request_envelope(b"")[..], &[0, 0, 0, 0, 0]);
        // 300 bytes: a two-byte varint length (0xac 0x02).
        let payload = vec![7u8; 300];
        let env = encode_request_envelope(&payload);
        assert_eq!(env.len(), 5 + 1 + 2 + 300);
        assert_eq!(&env[..8], &[0, 0, 0, 1, 47, 0x0a, 0xac, 0x02]);
        assert_eq!(&env[8..], &payload[..]);
    }

    #[test]
    fn request_decodes_as_response() {
        // EchoRequest and EchoResponse share their layout, so what we send must decode.
        for len in [0usize, 1, 64, 127, 128, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let env = encode_request_envelope(&payload);
            assert_eq!(decode_echo_response(&env[5..]).unwrap(), &payload[..]);
        }
    }

    #[test]
    fn response_skips_unknown_fields_and_last_payload_wins() {
        let mut msg = Vec::new();
        msg.extend_from_slice(&[0x10, 0x96, 0x01]); // field 2 varint 150
        msg.extend_from_slice(&[0x0a, 1, b'a']); // payload "a"
        msg.extend_from_slice(&[0x19, 1, 2, 3, 4, 5, 6, 7, 8]); // field 3 fixed64
        msg.extend_from_slice(&[0x25, 1, 2, 3, 4]); // field 4 fixed32
        msg.extend_from_slice(&[0x2a, 2, b'x', b'y']); // field 5 bytes
        msg.extend_from_slice(&[0x0a, 2, b'b', b'c']); // payload "bc"
        assert_eq!(decode_echo_response(&msg).unwrap(), b"bc");
        assert_eq!(decode_echo_response(&[]).unwrap(), b"");
    }

    #[test]
    fn response_rejects_malformed() {
        assert!(decode_echo_response(&[0x0a, 5, b'a']).is_err()); // runs past the end
        assert!(decode_echo_response(&[0x0a]).is_err()); // missing length
        assert!(decode_echo_response(&[0x08, 1]).is_err()); // payload as varint
        assert!(decode_echo_response(&[0x0b]).is_err()); // wire type 3 (groups)
        assert!(decode_echo_response(&[0x02, 0]).is_err()); // field 0
        assert!(decode_echo_response(&[0x19, 1, 2]).is_err()); // truncated fixed64
        assert!(decode_echo_response(&[0x10, 0xff]).is_err()); // truncated varint
    }

    fn envelope(flags: u8, message: &[u8]) -> Vec<u8> {
        let mut buf = vec![flags];
        buf.extend_from_slice(&(message.len() as u32).to_be_bytes());
        buf.extend_from_slice(message);
        buf
    }

    fn drain(reader: &mut EnvelopeReader) -> Vec<Envelope> {
        let mut out = Vec::new();
        while let Some(env) = reader.next_envelope().unwrap() {
            out.push(env);
        }
        out
    }

    #[test]
    fn reader_handles_every_split_of_a_stream() {
        // Three envelopes (one empty, one end-of-stream) split into two chunks at every
        // position, and fed one byte at a time: the same envelopes must come out.
        let mut wire = envelope(0, b"first message");
        wire.extend(envelope(0, b""));
        wire.extend(envelope(FLAG_END_STREAM, b"{}"));
        let expected = vec![
            Envelope {
                flags: 0,
                message: Bytes::from_static(b"first message"),
            },
            Envelope {
                flags: 0,
                message: Bytes::new(),
            },
            Envelope {
                flags: FLAG_END_STREAM,
                message: Bytes::from_static(b"{}"),
            },
        ];
        for cut in 0..=wire.len() {
            let mut reader = EnvelopeReader::new();
            reader.push(&wire[..cut]);
            let mut got = drain(&mut reader);
            reader.push(&wire[cut..]);
            got.extend(drain(&mut reader));
            assert_eq!(got, expected, "cut at {cut}");
            assert_eq!(reader.buffered(), 0);
        }
        let mut reader = EnvelopeReader::new();
        let mut got = Vec::new();
        for byte in &wire {
            reader.push(std::slice::from_ref(byte));
            got.extend(drain(&mut reader));
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn reader_waits_for_a_partial_envelope() {
        let wire = envelope(0, b"abcdef");
        let mut reader = EnvelopeReader::new();
        reader.push(&wire[..7]);
        assert_eq!(reader.next_envelope().unwrap(), None);
        assert_eq!(reader.buffered(), 7);
        reader.push(&wire[7..]);
        assert_eq!(
            reader.next_envelope().unwrap().unwrap().message,
            Bytes::from_static(b"abcdef")
        );
        assert_eq!(reader.next_envelope().unwrap(), None);
    }

    #[test]
    fn reader_rejects_oversized_envelope() {
        let mut reader = EnvelopeReader::new();
        reader.push(&[0, 0xff, 0xff, 0xff, 0xff]);
        assert!(reader.next_envelope().is_err());
    }
}
