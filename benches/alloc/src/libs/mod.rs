//! One module per library: its generated code, a minimal Echo implementation, and the
//! `tower::Service` it is measured through.
//!
//! Each Echo handler answers the way that library's users naturally would: switchboard and
//! tonic hand over the owned request's payload `Vec` (prost messages are owned), connectrpc
//! copies the payload out of the borrowed request view into its owned response message.

mod with_connectrpc;
mod with_switchboard;
mod with_tonic;

use crate::counting::Snapshot;
use crate::harness::Plan;
use crate::wire::Protocol;

/// Measures `library` speaking `protocol`.
pub async fn measure(library: &str, protocol: Protocol, plan: Plan) -> Result<Snapshot, String> {
    match library {
        "switchboard" => with_switchboard::measure(protocol, plan).await,
        "tonic" if protocol == Protocol::Grpc => with_tonic::measure(plan).await,
        "connectrpc" => with_connectrpc::measure(protocol, plan).await,
        _ => Err(format!("no case for {library} over {protocol}")),
    }
}
