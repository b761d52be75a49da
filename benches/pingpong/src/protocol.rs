//! What differs between gRPC and the Connect streaming protocol for one bidi call: the
//! request headers, which response headers are acceptable, and how the server reports the
//! outcome (HTTP trailers for gRPC, an end-of-stream envelope for Connect).

use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};

use crate::args::Protocol;

/// The method under test.
pub const BIDI_PATH: &str = "/bench.v1.EchoService/Bidi";

/// The request URI for `addr`; h2 takes `:scheme` and `:authority` from it.
pub fn bidi_uri(addr: std::net::SocketAddr) -> Uri {
    format!("http://{addr}{BIDI_PATH}")
        .parse()
        .expect("a socket address always forms a valid URI")
}

/// The request head that opens one bidi call.
pub fn request(protocol: Protocol, uri: &Uri) -> Request<()> {
    let builder = Request::builder().method(Method::POST).uri(uri.clone());
    let builder = match protocol {
        Protocol::Grpc => builder
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc+proto"),
            )
            .header(header::TE, HeaderValue::from_static("trailers")),
        Protocol::Connect => builder
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/connect+proto"),
            )
            .header("connect-protocol-version", HeaderValue::from_static("1")),
    };
    builder
        .body(())
        .expect("static headers always form a valid request")
}

/// Checks the response head: status 200, the protocol's content type, and for gRPC that it
/// is not a trailers-only response (which carries `grpc-status` in the headers and means the
/// call failed before producing any message).
pub fn check_response_head(
    protocol: Protocol,
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<(), String> {
    if status != StatusCode::OK {
        return Err(format!("HTTP status {status}"));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let type_ok = match protocol {
        Protocol::Grpc => matches!(content_type, "application/grpc" | "application/grpc+proto"),
        Protocol::Connect => content_type == "application/connect+proto",
    };
    if !type_ok {
        return Err(format!("unexpected content-type {content_type:?}"));
    }
    if protocol == Protocol::Grpc && headers.contains_key("grpc-status") {
        return Err(format!(
            "trailers-only response: {}",
            describe_grpc_status(headers)
        ));
    }
    Ok(())
}

/// Checks gRPC trailers: `grpc-status` must be present and `0`.
pub fn check_grpc_trailers(trailers: &HeaderMap) -> Result<(), String> {
    match trailers.get("grpc-status").map(HeaderValue::as_bytes) {
        Some(b"0") => Ok(()),
        Some(_) => Err(describe_grpc_status(trailers)),
        None => Err("trailers without grpc-status".into()),
    }
}

fn describe_grpc_status(headers: &HeaderMap) -> String {
    let text = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default()
    };
    format!(
        "grpc-status {:?} grpc-message {:?}",
        text("grpc-status"),
        text("grpc-message")
    )
}

/// Checks a Connect end-of-stream message: a JSON object with no `error` member.
pub fn check_connect_end(message: &[u8]) -> Result<(), String> {
    let value: serde_json::Value = serde_json::from_slice(message)
        .map_err(|e| format!("end-of-stream message is not JSON: {e}"))?;
    let object = value
        .as_object()
        .ok_or("end-of-stream message is not a JSON object")?;
    match object.get("error") {
        None => Ok(()),
        Some(error) => Err(format!("connect error {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn request_heads() {
        let uri = bidi_uri("127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            uri.to_string(),
            "http://127.0.0.1:8080/bench.v1.EchoService/Bidi"
        );
        let grpc = request(Protocol::Grpc, &uri);
        assert_eq!(grpc.method(), Method::POST);
        assert_eq!(grpc.headers()["content-type"], "application/grpc+proto");
        assert_eq!(grpc.headers()["te"], "trailers");
        let connect = request(Protocol::Connect, &uri);
        assert_eq!(
            connect.headers()["content-type"],
            "application/connect+proto"
        );
        assert_eq!(connect.headers()["connect-protocol-version"], "1");
        assert!(!connect.headers().contains_key("te"));
    }

    #[test]
    fn response_heads() {
        let grpc = headers(&[("content-type", "application/grpc")]);
        assert!(check_response_head(Protocol::Grpc, StatusCode::OK, &grpc).is_ok());
        let grpc_proto = headers(&[("content-type", "application/grpc+proto")]);
        assert!(check_response_head(Protocol::Grpc, StatusCode::OK, &grpc_proto).is_ok());
        assert!(check_response_head(Protocol::Grpc, StatusCode::NOT_FOUND, &grpc).is_err());
        assert!(check_response_head(Protocol::Connect, StatusCode::OK, &grpc).is_err());
        let trailers_only = headers(&[
            ("content-type", "application/grpc"),
            ("grpc-status", "12"),
            ("grpc-message", "nope"),
        ]);
        let error =
            check_response_head(Protocol::Grpc, StatusCode::OK, &trailers_only).unwrap_err();
        assert!(
            error.contains("trailers-only") && error.contains("12"),
            "{error}"
        );
        let connect = headers(&[("content-type", "application/connect+proto")]);
        assert!(check_response_head(Protocol::Connect, StatusCode::OK, &connect).is_ok());
    }

    #[test]
    fn grpc_trailers() {
        assert!(check_grpc_trailers(&headers(&[("grpc-status", "0")])).is_ok());
        assert!(check_grpc_trailers(&headers(&[("grpc-status", "2")])).is_err());
        assert!(check_grpc_trailers(&headers(&[])).is_err());
    }

    #[test]
    fn connect_end() {
        assert!(check_connect_end(b"{}").is_ok());
        assert!(check_connect_end(b" {\"metadata\":{\"x\":[\"error\"]}} ").is_ok());
        let error =
            check_connect_end(br#"{"error":{"code":"internal","message":"boom"}}"#).unwrap_err();
        assert!(error.contains("boom"), "{error}");
        assert!(check_connect_end(b"").is_err());
        assert!(check_connect_end(b"[]").is_err());
    }
}
