//! Code generated with `generate_messages(false)`: a service over messages from elsewhere
//! (an extern path), served through the router with no client involved.

use http_body_util::BodyExt as _;
use switchboard::server::{Router, RpcService as _};
use switchboard::{Error, Request, Response};
use switchboard_codegen_test::greet::{GreetRequest, GreetResponse};
use switchboard_codegen_test::services_only::{self, GreetService, GreetServiceServer};

struct Greeter;

impl GreetService for Greeter {
    async fn greet(
        &self,
        request: Request<GreetRequest>,
    ) -> Result<Response<GreetResponse>, Error> {
        Ok(Response::new(GreetResponse {
            greeting: format!("Hello, {}!", request.message().name),
            greeted_at: request.into_message().sent_at,
        }))
    }
}

async fn post(router: &Router, path: &str, body: &'static str) -> (http::StatusCode, String) {
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .body(switchboard::Body::from(body))
        .unwrap();
    let response = router.handle(request).await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn serves_extern_messages_over_connect_json() {
    let server = GreetServiceServer::new(Greeter);
    assert_eq!(server.name(), services_only::GREET_SERVICE_NAME);
    let router = Router::new().add_service(server);

    let (status, body) = post(
        &router,
        services_only::GREET_SERVICE_GREET_PROCEDURE,
        r#"{"name":"Ada","sentAt":"2023-11-14T22:13:20Z"}"#,
    )
    .await;
    assert_eq!(status, http::StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["greeting"], "Hello, Ada!");
    assert_eq!(json["greetedAt"], "2023-11-14T22:13:20Z");

    // Not implemented: the generated default.
    let (status, body) = post(&router, services_only::GREET_SERVICE_TYPE_PROCEDURE, "{}").await;
    assert_eq!(status, http::StatusCode::NOT_IMPLEMENTED, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["code"], "unimplemented");
    assert_eq!(
        json["message"],
        "acme.greet.v1.GreetService.Type is not implemented"
    );
}

#[test]
fn own_descriptor_set_and_specs() {
    let spec = services_only::greet_service_specs::greet();
    assert_eq!(spec.procedure(), "/acme.greet.v1.GreetService/Greet");
    assert!(
        services_only::descriptor_pool()
            .get_message_by_name("google.protobuf.Timestamp")
            .is_some()
    );
    assert_eq!(
        services_only::FILE_DESCRIPTOR_SET,
        switchboard_codegen_test::greet::FILE_DESCRIPTOR_SET
    );
}
