//! Given a certificate, the demo serves HTTP/3 on its port number too, and its TCP
//! responses say so with Alt-Svc.

mod common;

use common::start_demo_with;
use eliza::proto::{ElizaServiceClient, SayRequest};
use switchboard::client::{Client, Http3Transport, HttpTransport};

#[tokio::test]
async fn with_a_certificate_the_demo_answers_over_http3_and_advertises_it() {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("eliza-http3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let (_demo, addr) = start_demo_with(&[
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let url = format!("https://localhost:{port}");
    let roots = switchboard::client::tls::client_config(Some(cert.pem().as_bytes()), None).unwrap();

    let quic = ElizaServiceClient::new(
        Client::new(&url, Http3Transport::new(roots.clone()).unwrap()).unwrap(),
    );
    let said = quic
        .say(SayRequest {
            sentence: "Hello over QUIC".into(),
        })
        .await
        .unwrap();
    assert!(!said.message().sentence.is_empty());

    let tcp = ElizaServiceClient::new(Client::new(&url, HttpTransport::tls(roots)).unwrap());
    let said = tcp
        .say(SayRequest {
            sentence: "Hello over TCP".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        said.headers().get("alt-svc").unwrap(),
        &format!("h3=\":{port}\"; ma=86400")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
