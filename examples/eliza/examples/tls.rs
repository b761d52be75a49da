//! Mutual TLS: `cargo run -p eliza --example tls`.
//!
//! Makes a throwaway certificate authority, a server certificate for `localhost` and a client
//! certificate (with rcgen, in memory), serves Eliza over TLS requiring client certificates,
//! and calls it: with the client certificate the call succeeds and the handler sees the
//! client's verified chain on `request.peer()`; without one the handshake is refused. Every
//! protocol runs over the same TLS port; ALPN picks HTTP/2 or HTTP/1.1.

use eliza::proto::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use switchboard::client::{Client, ClientConfig, HttpTransport, tls as client_tls};
use switchboard::server::{Router, Server, tls as server_tls};
use switchboard::{Code, Error, Protocol, Request, Response};

/// Answers with what it knows of the caller's certificate.
struct WhoAmI;

impl ElizaService for WhoAmI {
    async fn say(&self, request: Request<SayRequest>) -> Result<Response<SayResponse>, Error> {
        let peer = request.peer().ok_or_else(|| Error::internal("no peer"))?;
        let chain = peer
            .certificates()
            .ok_or_else(|| Error::new(Code::Unauthenticated, "no client certificate"))?;
        Ok(Response::new(SayResponse {
            sentence: format!(
                "hello over {:?}: your chain has {} certificate(s), the leaf {} bytes",
                peer.protocol(),
                chain.len(),
                chain[0].len()
            ),
        }))
    }
}

/// A CA, and certificates it signed for the server and the client (all PEM).
struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Result<Pki, rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>| -> Result<(String, String), rcgen::Error> {
        let key = KeyPair::generate()?;
        let cert = CertificateParams::new(names)?.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    };
    Ok(Pki {
        ca: ca.pem(),
        server: leaf(vec!["localhost".into()])?,
        client: leaf(vec!["eliza-client".into()])?,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pki = pki()?;
    let server_config = server_tls::server_config(
        pki.server.0.as_bytes(),
        pki.server.1.as_bytes(),
        Some(pki.ca.as_bytes()), // client certificates required, signed by this CA
    )?;
    let router = Router::new().add_service(ElizaServiceServer::new(WhoAmI));
    let (listener, addr) = switchboard::server::bind("127.0.0.1:0".parse()?).await?;
    tokio::spawn(
        Server::new(router)
            .with_tls(server_config)
            .serve_with_shutdown(listener, std::future::pending()),
    );
    let url = format!("https://localhost:{}", addr.port());

    // With the client certificate: every protocol works.
    let with_identity = client_tls::client_config(
        Some(pki.ca.as_bytes()),
        Some((pki.client.0.as_bytes(), pki.client.1.as_bytes())),
    )?;
    for protocol in [Protocol::Connect, Protocol::Grpc, Protocol::GrpcWeb] {
        let client = ElizaServiceClient::new(
            Client::new(&url, HttpTransport::tls(with_identity.clone()))?
                .with_config(ClientConfig::default().protocol(protocol)),
        );
        let reply = client.say(SayRequest::default()).await?;
        assert!(reply.message().sentence.contains("1 certificate"));
        println!("{}", reply.message().sentence);
    }

    // Without one: the server refuses the handshake.
    let anonymous = client_tls::client_config(Some(pki.ca.as_bytes()), None)?;
    let client = ElizaServiceClient::new(Client::new(&url, HttpTransport::tls(anonymous))?);
    let error = client
        .say(SayRequest::default())
        .await
        .expect_err("no client certificate, no call");
    println!("without a client certificate: {:?}", error.code());
    assert_eq!(error.code(), Code::Unavailable);
    println!("tls: mutual TLS required and verified");
    Ok(())
}
