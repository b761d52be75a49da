//! tonic services migrated to switchboard, both in one binary: `cargo run -p tonic-migration`.
//!
//! `helloworld.rs` is tonic's helloworld (one unary method) before and after. `before_tonic.rs`
//! is the route guide (tonic's example shape: unary, server stream, client
//! stream, bidi) as a tonic service; `after_switchboard.rs` is the same service on switchboard,
//! sharing the logic (`atlas.rs`) and the very prost message types tonic's build generated.
//! The binary serves both side by side, on two ports, and checks that they agree: tonic's
//! client calls the switchboard server and switchboard's client calls the tonic server (both
//! over gRPC), and switchboard's client also calls its own server over Connect. Every method
//! must give the same answers whoever serves and whoever calls.
//!
//! See docs/guide/migrating-from-tonic.md for the table and the steps.

mod after_switchboard;
mod atlas;
mod before_tonic;
mod helloworld;

/// The messages and tonic's server and client (tonic-prost-build).
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod proto {
    tonic::include_proto!("routeguide.v1");
}

/// switchboard's service trait, server and client, over the messages in [`proto`].
#[allow(missing_docs, missing_debug_implementations)]
pub mod sb {
    include!(concat!(env!("OUT_DIR"), "/switchboard/routeguide.v1.rs"));
}

use std::net::SocketAddr;

use futures_util::StreamExt as _;
use proto::{Feature, Point, Rectangle, RouteNote, RouteSummary};
use switchboard::client::{Client, ClientConfig};
use switchboard::{Protocol, Request};

/// What one client saw from one server, method by method.
#[derive(Debug, PartialEq)]
struct Answers {
    feature: Feature,
    listed: Vec<String>,
    summary: RouteSummary,
    chat: Vec<String>,
}

fn point(latitude: i32, longitude: i32) -> Point {
    Point {
        latitude,
        longitude,
    }
}

fn route() -> Vec<Point> {
    vec![point(511788, -18262), point(1, 1), point(384824, 224991)]
}

fn notes() -> Vec<RouteNote> {
    ["first", "second", "third"]
        .into_iter()
        .enumerate()
        .map(|(i, message)| RouteNote {
            location: Some(point(0, (i % 2) as i32)),
            message: message.into(),
        })
        .collect()
}

fn everywhere() -> Rectangle {
    Rectangle {
        lo: Some(point(0, -100_000)),
        hi: Some(point(600_000, 300_000)),
    }
}

/// tonic's client, against any gRPC server.
async fn with_tonic_client(addr: SocketAddr) -> Result<Answers, Box<dyn std::error::Error>> {
    let mut client =
        proto::route_guide_client::RouteGuideClient::connect(format!("http://{addr}")).await?;
    let feature = client
        .get_feature(point(486361, -15115))
        .await?
        .into_inner();
    let mut listed = Vec::new();
    let mut stream = client.list_features(everywhere()).await?.into_inner();
    while let Some(feature) = stream.message().await? {
        listed.push(feature.name);
    }
    let summary = client
        .record_route(futures_util::stream::iter(route()))
        .await?
        .into_inner();
    let mut chat = Vec::new();
    let mut replies = client
        .route_chat(futures_util::stream::iter(notes()))
        .await?
        .into_inner();
    while let Some(note) = replies.message().await? {
        chat.push(note.message);
    }
    Ok(Answers {
        feature,
        listed,
        summary,
        chat,
    })
}

/// switchboard's client, over gRPC or Connect.
async fn with_switchboard_client(
    addr: SocketAddr,
    protocol: Protocol,
) -> Result<Answers, Box<dyn std::error::Error>> {
    let client = sb::RouteGuideClient::new(
        Client::h2c(&format!("http://{addr}"))?
            .with_config(ClientConfig::default().protocol(protocol)),
    );
    let feature = client
        .get_feature(point(486361, -15115))
        .await?
        .into_message();
    let mut listed = Vec::new();
    let mut stream = client.list_features(everywhere()).await?.into_message();
    while let Some(feature) = stream.message().await? {
        listed.push(feature.name);
    }
    let summary = client
        .record_route(Request::new(futures_util::stream::iter(route())))
        .await?
        .into_message();
    let mut chat = Vec::new();
    let mut replies = client
        .route_chat(Request::new(futures_util::stream::iter(notes())))
        .await?
        .into_message();
    while let Some(note) = replies.next().await {
        chat.push(note?.message);
    }
    Ok(Answers {
        feature,
        listed,
        summary,
        chat,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Before: tonic's server.
    let tonic_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let tonic_addr = tonic_listener.local_addr()?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(proto::route_guide_server::RouteGuideServer::new(
                before_tonic::TonicRouteGuide,
            ))
            .add_service(helloworld::proto::greeter_server::GreeterServer::new(
                helloworld::TonicGreeter,
            ))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(
                tonic_listener,
            )),
    );
    // After: switchboard's server.
    let router = switchboard::server::Router::new()
        .add_service(sb::RouteGuideServer::new(
            after_switchboard::SwitchboardRouteGuide,
        ))
        .add_service(helloworld::sb::GreeterServer::new(
            helloworld::SwitchboardGreeter,
        ));
    let (listener, switchboard_addr) = switchboard::server::bind("127.0.0.1:0".parse()?).await?;
    tokio::spawn(
        switchboard::server::Server::new(router)
            .serve_with_shutdown(listener, std::future::pending()),
    );

    use switchboard::Protocol::{Connect, Grpc};
    let hellos = [
        (
            "tonic -> tonic",
            helloworld::hello_from_tonic(tonic_addr).await?,
        ),
        (
            "tonic -> switchboard",
            helloworld::hello_from_tonic(switchboard_addr).await?,
        ),
        (
            "switchboard (gRPC) -> tonic",
            helloworld::hello_from_switchboard(tonic_addr, Grpc).await?,
        ),
        (
            "switchboard (Connect) -> switchboard",
            helloworld::hello_from_switchboard(switchboard_addr, Connect).await?,
        ),
    ];
    for (label, hello) in hellos {
        assert_eq!(hello, "Hello Tonic!", "{label}");
        println!("helloworld, {label}: {hello:?}");
    }

    let reference = with_tonic_client(tonic_addr).await?;
    println!("tonic client       -> tonic server:       {reference:?}");
    let runs = [
        (
            "tonic client       -> switchboard server",
            with_tonic_client(switchboard_addr).await?,
        ),
        (
            "switchboard (gRPC) -> tonic server",
            with_switchboard_client(tonic_addr, Protocol::Grpc).await?,
        ),
        (
            "switchboard (gRPC) -> switchboard server",
            with_switchboard_client(switchboard_addr, Protocol::Grpc).await?,
        ),
        (
            "switchboard (Connect) -> switchboard server",
            with_switchboard_client(switchboard_addr, Protocol::Connect).await?,
        ),
    ];
    assert_eq!(reference.feature.name, "Mont Saint-Michel");
    assert_eq!(reference.listed.len(), 3);
    assert_eq!(reference.summary.point_count, 3);
    assert_eq!(reference.summary.feature_count, 2);
    assert_eq!(reference.chat, ["first", "second", "first", "third"]);
    for (label, answers) in runs {
        assert_eq!(answers, reference, "{label}");
        println!("{label}: the same answers");
    }
    println!(
        "tonic-migration: tonic and switchboard agree on helloworld and on the route guide's four methods, both ways"
    );
    Ok(())
}
