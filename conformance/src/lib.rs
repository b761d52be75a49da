//! Shared pieces of the conformance client and server: the generated conformance protocol
//! and the runner's size-delimited stdin/stdout framing.

/// Generated from `connectrpc/conformance/v1/*.proto`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    switchboard::include_proto!("connectrpc.conformance.v1");
}

use std::io::{Read, Write};

use prost::Message;

/// Reads one size-delimited message (a big-endian `u32` length, then the bytes); `None` at a
/// clean end of input.
pub fn read_message<M: Message + Default>(input: &mut impl Read) -> anyhow::Result<Option<M>> {
    let mut prefix = [0u8; 4];
    match input.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(prefix) as usize;
    let mut buf = vec![0u8; len];
    input.read_exact(&mut buf)?;
    Ok(Some(M::decode(&buf[..])?))
}

/// Writes one size-delimited message and flushes.
pub fn write_message<M: Message>(output: &mut impl Write, message: &M) -> anyhow::Result<()> {
    let bytes = message.encode_to_vec();
    output.write_all(&(bytes.len() as u32).to_be_bytes())?;
    output.write_all(&bytes)?;
    output.flush()?;
    Ok(())
}
