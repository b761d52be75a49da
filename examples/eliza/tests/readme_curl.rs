//! Starts the demo binary and runs the README's curl example against it, word for word
//! (only the port changes), checking the answer.

mod common;

use std::process::Command;

use common::start_demo;

/// The shell command between the README's curl markers.
fn readme_curl() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let start = readme
        .find("<!-- readme-curl-start -->")
        .expect("start marker");
    let end = readme.find("<!-- readme-curl-end -->").expect("end marker");
    let block = &readme[start..end];
    let code = block
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a sh code block between the markers");
    code.trim().to_owned()
}

#[test]
fn the_readme_curl_example_works_against_the_demo() {
    let (demo, addr) = start_demo();

    let command = readme_curl().replace("127.0.0.1:8080", &addr);
    let output = Command::new("sh")
        .args(["-c", &command])
        .output()
        .expect("run curl");
    assert!(output.status.success(), "curl failed: {output:?}");
    let body = String::from_utf8(output.stdout).unwrap();
    let answer: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let sentence = answer["sentence"].as_str().expect("a sentence");
    assert!(sentence.to_lowercase().contains("feel"), "{sentence}");
    drop(demo);
}

#[test]
fn curl_revalidates_a_cached_say_with_a_conditional_get() {
    let (_demo, addr) = start_demo();
    let url = format!(
        "http://{addr}/connectrpc.eliza.v1.ElizaService/Say?encoding=json&message=%7B%22sentence%22%3A%22Hello%22%7D"
    );
    // A first GET: the answer and its ETag.
    let first = Command::new("curl")
        .args(["--silent", "--include", &url])
        .output()
        .expect("run curl");
    let head = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let etag = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("etag")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no ETag in {head}"));
    // Revalidation with that ETag: 304 and no body.
    let second = Command::new("curl")
        .args(["--silent", "--include", "--header"])
        .arg(format!("If-None-Match: {etag}"))
        .arg(&url)
        .output()
        .expect("run curl");
    let head = String::from_utf8_lossy(&second.stdout).to_string();
    assert!(head.starts_with("HTTP/1.1 304"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("etag: {}", etag.to_ascii_lowercase())),
        "{head}"
    );
}
