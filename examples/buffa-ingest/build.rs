//! Generates `acme.logs.v1` with the buffa message backend.

fn main() -> anyhow::Result<()> {
    switchboard_build::Builder::new()
        .include("proto")
        .message_backend(switchboard_build::MessageBackend::Buffa)
        .compile(&["proto/acme/logs/v1/logs.proto"])
}
