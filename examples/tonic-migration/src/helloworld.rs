//! tonic's helloworld, before and after: the first service most tonic users wrote.
//!
//! What changed: no `#[tonic::async_trait]`, `Status` is `switchboard::Error`, and
//! `request.into_inner()` is `request.into_message()` (or `request.message()` to borrow it,
//! keeping the headers and peer at hand).

/// The messages and tonic's server and client (tonic-prost-build).
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod proto {
    tonic::include_proto!("helloworld.v1");
}

/// switchboard's service trait, server and client, over the messages in [`proto`].
#[allow(missing_docs, missing_debug_implementations)]
pub mod sb {
    include!(concat!(env!("OUT_DIR"), "/switchboard/helloworld.v1.rs"));
}

use proto::{HelloReply, HelloRequest};

fn greeting(name: &str) -> HelloReply {
    HelloReply {
        message: format!("Hello {name}!"),
    }
}

/// Before: tonic's `MyGreeter`.
#[derive(Debug, Default)]
pub struct TonicGreeter;

#[tonic::async_trait]
impl proto::greeter_server::Greeter for TonicGreeter {
    async fn say_hello(
        &self,
        request: tonic::Request<HelloRequest>,
    ) -> Result<tonic::Response<HelloReply>, tonic::Status> {
        Ok(tonic::Response::new(greeting(&request.into_inner().name)))
    }
}

/// After: the same on switchboard.
#[derive(Debug, Default)]
pub struct SwitchboardGreeter;

impl sb::Greeter for SwitchboardGreeter {
    async fn say_hello(
        &self,
        request: switchboard::Request<HelloRequest>,
    ) -> Result<switchboard::Response<HelloReply>, switchboard::Error> {
        Ok(switchboard::Response::new(greeting(
            &request.message().name,
        )))
    }
}

/// tonic's client says hello to a gRPC server at `addr`.
pub async fn hello_from_tonic(
    addr: std::net::SocketAddr,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut client =
        proto::greeter_client::GreeterClient::connect(format!("http://{addr}")).await?;
    let reply = client
        .say_hello(HelloRequest {
            name: "Tonic".into(),
        })
        .await?;
    Ok(reply.into_inner().message)
}

/// switchboard's client says hello over `protocol`.
pub async fn hello_from_switchboard(
    addr: std::net::SocketAddr,
    protocol: switchboard::Protocol,
) -> Result<String, Box<dyn std::error::Error>> {
    let client = sb::GreeterClient::new(
        switchboard::client::Client::h2c(&format!("http://{addr}"))?
            .with_config(switchboard::client::ClientConfig::default().protocol(protocol)),
    );
    let reply = client
        .say_hello(HelloRequest {
            name: "Tonic".into(),
        })
        .await?;
    Ok(reply.into_message().message)
}
