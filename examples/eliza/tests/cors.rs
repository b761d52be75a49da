//! The demo answers cross-origin calls from any page, as Connect's public demo does: curl
//! plays the browser, sending the preflight a browser sends before a Connect call from
//! another origin, then the call itself with its `Origin`.

mod common;

use std::process::Command;

use common::start_demo;

fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args(["--silent", "--include"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(output.status.success(), "curl failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).to_lowercase()
}

#[test]
fn a_preflight_from_another_origin_is_answered_with_what_the_protocols_need() {
    let (_demo, addr) = start_demo();
    let url = format!("http://{addr}/connectrpc.eliza.v1.ElizaService/Say");
    let head = curl(&[
        "-X",
        "OPTIONS",
        "-H",
        "Origin: http://localhost:5173",
        "-H",
        "Access-Control-Request-Method: POST",
        "-H",
        "Access-Control-Request-Headers: content-type,connect-protocol-version,connect-timeout-ms",
        &url,
    ]);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    let methods = header(&head, "access-control-allow-methods");
    assert!(
        methods.contains("post") && methods.contains("get"),
        "{head}"
    );
    let allowed = header(&head, "access-control-allow-headers");
    for needed in [
        "content-type",
        "connect-protocol-version",
        "connect-timeout-ms",
        "x-grpc-web",
    ] {
        assert!(allowed.contains(needed), "{needed} not allowed: {head}");
    }
    assert_eq!(header(&head, "access-control-max-age"), "7200", "{head}");
}

#[test]
fn a_cross_origin_call_is_answered_with_its_status_headers_exposed() {
    let (_demo, addr) = start_demo();
    let url = format!("http://{addr}/connectrpc.eliza.v1.ElizaService/Say");
    let response = curl(&[
        "-H",
        "Origin: http://localhost:5173",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"sentence": "I feel happy."}"#,
        &url,
    ]);
    assert!(response.starts_with("http/1.1 200"), "{response}");
    assert!(
        response.contains("access-control-allow-origin: *"),
        "{response}"
    );
    let exposed = header(&response, "access-control-expose-headers");
    assert!(
        exposed.contains("grpc-status") && exposed.contains("grpc-message"),
        "{response}"
    );
    assert!(response.contains("happy"), "{response}");
}

/// The value of `name` in a lower-cased response head.
fn header(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {head}"))
        .trim()
        .to_owned()
}
