//! `https://` works with no TLS configuration: `Client::http1` and `Client::h2c` verify
//! servers against the platform's root certificates. The platform store is pointed at a
//! throwaway CA with `SSL_CERT_FILE` (which rustls-native-certs honours): the test runs
//! itself again as a child process with that variable set, since the roots are read once per
//! process and changing the environment of a running test process is not safe. A server
//! whose certificate that CA did not sign is refused.

use switchboard::client::Client;
use switchboard::server::tls::server_config;
use switchboard::{Code, Request};
use switchboard_integration_tests::proto::*;
use switchboard_integration_tests::start_tls;

/// A self-signed CA and a certificate it signed for `localhost`, PEM.
fn ca_and_leaf() -> (String, (String, String)) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca.pem(), (leaf.pem(), key.serialize_pem()))
}

/// Set in the child process: the PEM files of the trusted CA's leaf certificate and key.
const CHILD: &str = "SWITCHBOARD_PLATFORM_ROOTS_LEAF";

#[test]
fn https_urls_are_verified_against_the_platform_roots() {
    if let Some(leaf) = std::env::var_os(CHILD) {
        return child(std::path::Path::new(&leaf));
    }
    let (ca, (cert, key)) = ca_and_leaf();
    let dir =
        std::env::temp_dir().join(format!("switchboard-platform-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("roots.pem"), &ca).unwrap();
    std::fs::write(dir.join("leaf.pem"), &cert).unwrap();
    std::fs::write(dir.join("leaf.key"), &key).unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "https_urls_are_verified_against_the_platform_roots",
            "--nocapture",
        ])
        .env("SSL_CERT_FILE", dir.join("roots.pem"))
        .env(CHILD, &dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::main]
async fn child(dir: &std::path::Path) {
    let cert = std::fs::read(dir.join("leaf.pem")).unwrap();
    let key = std::fs::read(dir.join("leaf.key")).unwrap();
    let trusted = start_tls(server_config(&cert, &key, None).unwrap()).await;
    let (_, (stranger_cert, stranger_key)) = ca_and_leaf();
    let stranger =
        start_tls(server_config(stranger_cert.as_bytes(), stranger_key.as_bytes(), None).unwrap())
            .await;

    type Make = fn(&str) -> Result<Client, switchboard::Error>;
    let makers: [(&str, Make); 2] = [("http1", Client::http1), ("h2c", Client::h2c)];
    for (name, make) in makers {
        let url = format!("https://localhost:{}", trusted.addr.port());
        let client = TestServiceClient::new(make(&url).unwrap());
        let reply = client
            .echo(Request::new(EchoRequest {
                text: "secure".into(),
                ..Default::default()
            }))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(reply.message().text, "secure", "{name}");

        let url = format!("https://localhost:{}", stranger.addr.port());
        let client = TestServiceClient::new(make(&url).unwrap());
        let error = client
            .echo(Request::new(EchoRequest::default()))
            .await
            .expect_err("a certificate no platform root signed is refused");
        assert_eq!(error.code(), Code::Unavailable, "{name}: {error}");
    }
    trusted.stop().await;
    stranger.stop().await;
}
