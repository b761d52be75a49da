//! Errors with details, over real sockets, in each protocol: `cargo run -p eliza --example
//! errors`.
//!
//! A strict Eliza refuses long sentences with `invalid_argument` and a `google.rpc.BadRequest`
//! naming the field, and refuses when busy with `unavailable` and a `google.rpc.RetryInfo`
//! saying when to come back, plus an `x-retry-after` header. The same errors are read back by
//! the generated client over Connect (JSON and binary), gRPC and gRPC-Web: code, message,
//! details and metadata survive each protocol's way of carrying them. The demo's own `Say`
//! answers an empty sentence the same way; grpcurl and every Connect client decode the
//! details too.

use eliza::proto::*;
use switchboard::client::{Client, ClientConfig};
use switchboard::codec::Codec;
use switchboard::error_details::{BadRequest, RetryInfo, bad_request::FieldViolation};
use switchboard::server::{Router, Server};
use switchboard::{Code, Error, ErrorDetail, Protocol, Request, Response};

const MAX_LEN: usize = 40;

struct Strict;

impl ElizaService for Strict {
    async fn say(&self, request: Request<SayRequest>) -> Result<Response<SayResponse>, Error> {
        let sentence = &request.message().sentence;
        if sentence.len() > MAX_LEN {
            return Err(
                Error::invalid_argument(format!("a sentence has at most {MAX_LEN} bytes"))
                    .with_detail(ErrorDetail::new(&BadRequest {
                        field_violations: vec![FieldViolation {
                            field: "sentence".into(),
                            description: format!("{} bytes, at most {MAX_LEN}", sentence.len()),
                            ..Default::default()
                        }],
                    })),
            );
        }
        if sentence.contains("urgent") {
            return Err(
                Error::new(Code::Unavailable, "Eliza is busy; try again shortly")
                    .with_detail(ErrorDetail::new(&RetryInfo {
                        retry_delay: Some(switchboard::prost_types::Duration {
                            seconds: 2,
                            nanos: 0,
                        }),
                    }))
                    .with_metadata(
                        http::HeaderName::from_static("x-retry-after"),
                        http::HeaderValue::from_static("2"),
                    ),
            );
        }
        let (sentence, _) = eliza::doctor::reply(sentence);
        Ok(Response::new(SayResponse { sentence }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let router = Router::new().add_service(ElizaServiceServer::new(Strict));
    let (listener, addr) = switchboard::server::bind("127.0.0.1:0".parse()?).await?;
    tokio::spawn(Server::new(router).serve_with_shutdown(listener, std::future::pending()));
    let url = format!("http://{addr}");

    let configs = [
        ("Connect JSON", ClientConfig::default().codec(Codec::Json)),
        ("Connect binary", ClientConfig::default()),
        ("gRPC", ClientConfig::default().protocol(Protocol::Grpc)),
        (
            "gRPC-Web",
            ClientConfig::default().protocol(Protocol::GrpcWeb),
        ),
    ];
    for (name, config) in configs {
        let client = ElizaServiceClient::new(Client::h2c(&url)?.with_config(config));

        let too_long = "I have been thinking about this for a very long time indeed.";
        let error = client
            .say(SayRequest {
                sentence: too_long.into(),
            })
            .await
            .expect_err("a long sentence is refused");
        assert_eq!(error.code(), Code::InvalidArgument);
        let violation = error
            .detail::<BadRequest>()
            .ok_or("no BadRequest detail")?
            .field_violations
            .remove(0);
        assert_eq!(violation.field, "sentence");
        println!(
            "{name:<15} {:?}: {} ({}: {})",
            error.code(),
            error.message(),
            violation.field,
            violation.description
        );

        let error = client
            .say(SayRequest {
                sentence: "this is urgent".into(),
            })
            .await
            .expect_err("Eliza is busy");
        assert_eq!(error.code(), Code::Unavailable);
        let retry = error.detail::<RetryInfo>().ok_or("no RetryInfo detail")?;
        let delay = retry.retry_delay.ok_or("no delay")?.seconds;
        assert_eq!(delay, 2);
        assert_eq!(error.metadata()["x-retry-after"], "2");
        println!(
            "{name:<15} {:?}: {} (retry in {delay} s)",
            error.code(),
            error.message()
        );
    }
    println!("errors: code, message, details and metadata arrived in every protocol");
    Ok(())
}
