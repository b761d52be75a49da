//! Settings per service: Eliza behind an interceptor that requires a token and a small
//! message limit, while the health service on the same router stays open and unlimited.

use eliza::proto::{ElizaServiceClient, ElizaServiceServer, SayRequest};
use switchboard::client::{Client, ClientConfig};
use switchboard::interceptor::{Call, Interceptor, Next, Reply};
use switchboard::server::{Router, Server, ServerConfig};
use switchboard::{Code, Error};
use switchboard_health::{HealthCheckRequest, HealthClient, ServingStatus};

/// Refuses calls without `authorization: Bearer demo-token`.
struct RequireToken;

impl Interceptor for RequireToken {
    async fn intercept(&self, call: Call, next: Next) -> Result<Reply, Error> {
        let ok = call
            .headers()
            .get(http::header::AUTHORIZATION)
            .is_some_and(|v| v == "Bearer demo-token");
        if !ok {
            return Err(Error::new(Code::Unauthenticated, "a token is required"));
        }
        next.run(call).await
    }
}

#[tokio::test]
async fn the_api_requires_a_token_and_health_stays_open() {
    let (health_reporter, health) = switchboard_health::health();
    health_reporter.set_serving("");
    let router = Router::new()
        .add_service_with(
            ElizaServiceServer::new(eliza::Eliza),
            ServerConfig::default()
                .interceptor(RequireToken)
                .read_max_bytes(64),
        )
        .add_service(health);
    let (listener, addr) = switchboard::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(Server::new(router).serve_with_shutdown(listener, async {
        let _ = stopped.await;
    }));
    let url = format!("http://{addr}");

    let anonymous = ElizaServiceClient::new(Client::h2c(&url).unwrap());
    let say = |sentence: &str| SayRequest {
        sentence: sentence.into(),
    };
    let error = anonymous.say(say("Hello")).await.unwrap_err();
    assert_eq!(error.code(), Code::Unauthenticated, "{error}");

    let member = ElizaServiceClient::new(Client::h2c(&url).unwrap().with_config(
        ClientConfig::default().header(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer demo-token"),
        ),
    ));
    assert!(
        !member
            .say(say("Hello"))
            .await
            .unwrap()
            .message()
            .sentence
            .is_empty()
    );
    let error = member.say(say(&"long ".repeat(20))).await.unwrap_err();
    assert_eq!(error.code(), Code::ResourceExhausted, "{error}");

    let health = HealthClient::new(Client::h2c(&url).unwrap());
    let status = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health needs no token");
    assert_eq!(status.message().status(), ServingStatus::Serving);

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
