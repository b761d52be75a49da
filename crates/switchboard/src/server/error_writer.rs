//! Protocol-correct errors from outside a handler: a tower layer or a plain HTTP handler
//! that rejects a request (authentication, rate limits, maintenance) answers so that every
//! client reads an RPC error, as connect-go's `ErrorWriter` does.

use crate::Error;
use crate::body::Body;
use crate::protocol::classify_headers;

/// The response that tells `error` to the client of `request`, in the request's protocol:
///
/// - Connect unary (and GET): the JSON error body with the code's HTTP status;
/// - Connect streaming: HTTP 200 and an end-of-stream message carrying the error;
/// - gRPC and gRPC-Web: a trailers-only response (HTTP 200, `grpc-status`, `grpc-message`
///   and the details in the headers).
///
/// The error's metadata goes out as headers. Only the request's method and headers are
/// read, so it works before the body has been looked at.
///
/// ```
/// use switchboard::{Code, Error};
/// let request = http::Request::builder()
///     .header("content-type", "application/grpc")
///     .body(())
///     .unwrap();
/// let response = switchboard::server::error_response(
///     &request,
///     &Error::new(Code::Unauthenticated, "no token"),
/// );
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.headers()["grpc-status"], "16");
/// ```
pub fn error_response<B>(request: &http::Request<B>, error: &Error) -> http::Response<Body> {
    error_response_to(request.headers(), error)
}

/// [`error_response`] from the request headers alone (e.g. from `http::request::Parts`).
pub fn error_response_to(request_headers: &http::HeaderMap, error: &Error) -> http::Response<Body> {
    classify_headers(request_headers).error_response(request_headers, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;
    use http_body_util::BodyExt as _;

    fn request(content_type: &str) -> http::Request<()> {
        http::Request::builder()
            .header("content-type", content_type)
            .body(())
            .unwrap()
    }

    async fn body(response: http::Response<Body>) -> bytes::Bytes {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn each_protocol_gets_its_own_form() {
        let error = Error::new(Code::PermissionDenied, "no").with_metadata(
            http::HeaderName::from_static("x-why"),
            "policy".parse().unwrap(),
        );

        let unary = error_response(&request("application/json"), &error);
        assert_eq!(unary.status(), 403);
        assert_eq!(unary.headers()["x-why"], "policy");
        let text = body(unary).await;
        assert!(
            text.starts_with(br#"{"code":"permission_denied""#),
            "{text:?}"
        );

        let stream = error_response(&request("application/connect+proto"), &error);
        assert_eq!(stream.status(), 200);
        assert_eq!(
            stream.headers()["content-type"],
            "application/connect+proto"
        );
        let frame = body(stream).await;
        assert_eq!(frame[0], 0b10, "an end-of-stream envelope");
        assert!(frame[5..].starts_with(br#"{"error":{"code":"permission_denied""#));

        for content_type in ["application/grpc", "application/grpc-web+proto"] {
            let trailers_only = error_response(&request(content_type), &error);
            assert_eq!(trailers_only.status(), 200);
            assert_eq!(trailers_only.headers()["grpc-status"], "7");
            assert_eq!(trailers_only.headers()["grpc-message"], "no");
            assert_eq!(trailers_only.headers()["content-type"], content_type);
            assert!(body(trailers_only).await.is_empty());
        }
    }
}
