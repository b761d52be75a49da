//! Error details on every protocol: the standard `google.rpc` types and the service's own
//! generated messages (which implement `prost::Name`), attached on the server and read back
//! with one call on the client.

use std::time::Duration;

use switchboard::client::{Client, ClientConfig};
use switchboard::error_details::{BadRequest, ErrorInfo, RetryInfo, bad_request::FieldViolation};
use switchboard::server::Router;
use switchboard::{Code, Error, ErrorDetail, Protocol, Request, Response};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::start_router;

/// Fails every Echo with three details: two standard ones and one of the service's own types.
struct Refusing;

impl TestService for Refusing {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Error> {
        Err(Error::new(Code::FailedPrecondition, "not now")
            .with_detail(ErrorDetail::new(&BadRequest {
                field_violations: vec![FieldViolation {
                    field: "text".into(),
                    description: "too polite".into(),
                    ..Default::default()
                }],
            }))
            .with_detail(ErrorDetail::new(&RetryInfo {
                retry_delay: Some(prost_types::Duration {
                    seconds: 3,
                    nanos: 0,
                }),
            }))
            .with_detail(ErrorDetail::new(&EchoResponse {
                text: request.into_message().text,
                ..Default::default()
            })))
    }
}

#[tokio::test]
async fn standard_and_generated_details_round_trip_on_every_protocol() {
    assert_eq!(
        <EchoResponse as prost::Name>::type_url(),
        "type.googleapis.com/switchboard.test.v1.EchoResponse"
    );
    let router = Router::new().add_service(TestServiceServer::new(Refusing));
    let server = start_router(router).await;
    for protocol in [Protocol::Connect, Protocol::Grpc, Protocol::GrpcWeb] {
        let what = format!("{protocol:?}");
        let client = TestServiceClient::new(
            Client::h2c(&server.url())
                .unwrap()
                .with_config(ClientConfig::default().protocol(protocol)),
        );
        let error = client
            .echo(EchoRequest {
                text: "please".into(),
                ..Default::default()
            })
            .await
            .expect_err(&what);
        assert_eq!(error.code(), Code::FailedPrecondition, "{what}");
        let bad = error.detail::<BadRequest>().expect("a BadRequest detail");
        assert_eq!(bad.field_violations[0].field, "text", "{what}");
        let retry = error.detail::<RetryInfo>().expect("a RetryInfo detail");
        let delay = retry.retry_delay.expect("a delay");
        assert_eq!(
            Duration::from_secs(delay.seconds as u64),
            Duration::from_secs(3)
        );
        let own = error
            .detail::<EchoResponse>()
            .expect("the service's own detail");
        assert_eq!(own.text, "please", "{what}");
        assert!(error.detail::<ErrorInfo>().is_none(), "{what}");
        assert_eq!(error.details_of::<BadRequest>().count(), 1, "{what}");
    }
    server.stop().await;
}
