//! Dynamic (descriptor-driven) messages through the normal client and router: what a gateway
//! needs to call and serve methods it was not compiled with.

use prost_reflect::{DynamicMessage, Value};
use switchboard::client::{Client, ClientConfig};
use switchboard::codec::{Codec, Dynamic};
use switchboard::server::{Router, Routes, RpcService, ServerConfig};
use switchboard::{Request, Response, Spec};
use switchboard_integration_tests::proto::descriptor_pool;
use switchboard_integration_tests::{start, start_router};

fn echo_spec() -> Spec {
    let method = descriptor_pool()
        .get_service_by_name("switchboard.test.v1.TestService")
        .and_then(|s| s.methods().find(|m| m.name() == "Echo"))
        .unwrap();
    Spec::from_descriptor(method)
}

fn request(text: &str) -> Dynamic {
    let spec = echo_spec();
    let mut message = DynamicMessage::new(spec.method().unwrap().input());
    message.set_field_by_name("text", Value::String(text.into()));
    Dynamic(message)
}

fn text_of(message: &Dynamic) -> String {
    message
        .0
        .get_field_by_name("text")
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_dynamic_client_calls_a_generated_server() {
    let server = start(ServerConfig::default()).await;
    for codec in [Codec::Proto, Codec::Json] {
        let client = Client::h2c(&server.url())
            .unwrap()
            .with_config(ClientConfig::default().codec(codec));
        let response: Response<Dynamic> = client
            .unary(echo_spec(), Request::new(request("dynamic")))
            .await
            .unwrap();
        assert_eq!(text_of(response.message()), "dynamic", "{codec:?}");
    }
    server.stop().await;
}

/// A service registered by hand from descriptors, answering with upper-cased text.
struct Gateway;

impl RpcService for Gateway {
    fn name(&self) -> &'static str {
        "switchboard.test.v1.TestService"
    }

    fn register(self, routes: &mut Routes) {
        routes.unary(echo_spec(), |request: Request<Dynamic>| async move {
            let text = text_of(request.message()).to_uppercase();
            let mut reply = DynamicMessage::new(echo_spec().method().unwrap().output());
            reply.set_field_by_name("text", Value::String(text));
            Ok(Response::new(Dynamic(reply)))
        });
    }
}

#[tokio::test]
async fn a_dynamic_route_serves_a_generated_client() {
    let server = start_router(Router::new().add_service(Gateway)).await;
    for codec in [Codec::Proto, Codec::Json] {
        let client = switchboard_integration_tests::proto::TestServiceClient::new(
            Client::http1(&server.url())
                .unwrap()
                .with_config(ClientConfig::default().codec(codec)),
        );
        let reply = client
            .echo(switchboard_integration_tests::proto::EchoRequest {
                text: "quiet".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(reply.message().text, "QUIET", "{codec:?}");
    }
    server.stop().await;
}
