//! Cross-origin calls from browsers: tower-http's [`CorsLayer`] set up with the headers
//! Connect, gRPC-Web and gRPC need.
//!
//! A web page served from one origin (`http://localhost:5173`) that calls an API on another
//! (`http://localhost:8080`) makes the browser ask first, with an `OPTIONS` preflight, whether
//! the API accepts the method and the request headers; then it hides every response header the
//! API did not expose. A Connect call sends `Connect-Protocol-Version` and
//! `Connect-Timeout-Ms`, a gRPC-Web call `X-Grpc-Web` and `Grpc-Timeout`, and the status of a
//! gRPC-Web call comes back in `Grpc-Status` and `Grpc-Message`: without the lists below a
//! browser refuses the call, or sees it fail with no status. The lists are those of
//! connect-go's `connectrpc.com/cors` package.
//!
//! The layer goes around the [`crate::server::Router`] (preflights never reach it) and is
//! served with [`crate::server::Server::from_service`]:
//!
//! ```
//! use switchboard::cors;
//! use switchboard::server::{Router, Server};
//! use tower::Layer as _;
//!
//! let router = Router::new(); // .add_service(...)
//! let origins = cors::AllowOrigin::list([
//!     http::HeaderValue::from_static("https://app.example.com"),
//!     http::HeaderValue::from_static("http://localhost:5173"),
//! ]);
//! let server = Server::from_service(cors::layer(origins).layer(router));
//! # drop(server);
//! ```
//!
//! Your own request headers (`Authorization`, say) and response headers and trailers the page
//! must read are added to the lists: a Connect unary call's trailers arrive as headers named
//! `Trailer-<name>`, so a trailer `x-cost` is exposed as `trailer-x-cost`.
//!
//! ```
//! use http::header::{AUTHORIZATION, HeaderName};
//! use switchboard::cors;
//!
//! let mut allowed = cors::allowed_headers();
//! allowed.push(AUTHORIZATION);
//! let mut exposed = cors::exposed_headers();
//! exposed.push(HeaderName::from_static("x-request-id"));
//! exposed.push(HeaderName::from_static("trailer-x-cost"));
//! let layer = cors::layer(cors::AllowOrigin::exact(
//!     http::HeaderValue::from_static("https://app.example.com"),
//! ))
//! .allow_headers(allowed)
//! .expose_headers(exposed);
//! # drop(layer);
//! ```

use std::time::Duration;

use http::Method;
use http::header::HeaderName;

pub use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight's answer: two hours, the most Chromium honours
/// (Firefox allows a day). Without it a browser sends a preflight before every call.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(2 * 60 * 60);

/// The methods a page may use: `POST` for every protocol, `GET` for Connect's cacheable
/// side-effect-free calls.
pub fn allowed_methods() -> [Method; 2] {
    [Method::GET, Method::POST]
}

/// The request headers the protocols send from a browser.
pub fn allowed_headers() -> Vec<HeaderName> {
    [
        // Every protocol.
        "content-type",
        // Connect.
        "connect-protocol-version",
        "connect-timeout-ms",
        "connect-accept-encoding",
        "connect-content-encoding",
        "accept-encoding",
        "content-encoding",
        // gRPC-Web.
        "grpc-timeout",
        "x-grpc-web",
        "x-user-agent",
    ]
    .into_iter()
    .map(HeaderName::from_static)
    .collect()
}

/// The response headers a page needs to read: the encodings, and the status of a gRPC-Web
/// call that ends without a message (a trailers-only response carries it in headers).
pub fn exposed_headers() -> Vec<HeaderName> {
    [
        "content-encoding",
        "connect-content-encoding",
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
    ]
    .into_iter()
    .map(HeaderName::from_static)
    .collect()
}

/// A [`CorsLayer`] for pages from `origins`, with [`allowed_methods`], [`allowed_headers`],
/// [`exposed_headers`] and [`PREFLIGHT_MAX_AGE`]. Prefer an explicit list of origins; see
/// [`any_origin`] for a public API.
pub fn layer(origins: impl Into<AllowOrigin>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods(allowed_methods())
        .allow_headers(allowed_headers())
        .expose_headers(exposed_headers())
        .max_age(PREFLIGHT_MAX_AGE)
}

/// A [`CorsLayer`] that lets a page from any origin call, as Connect's public demo does: for
/// APIs meant to be called from anywhere, which authenticate with headers rather than cookies
/// (the wildcard origin never carries the browser's credentials).
///
/// ```
/// use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
/// use switchboard::{cors, server::Router};
/// use tower::{Layer as _, ServiceExt as _};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let service = cors::any_origin().layer(Router::new());
/// let preflight = http::Request::options("/acme.v1.Users/Get")
///     .header(ORIGIN, "http://localhost:5173")
///     .header(ACCESS_CONTROL_REQUEST_METHOD, "POST")
///     .body(switchboard::body::Body::empty())
///     .unwrap();
/// let answer = service.oneshot(preflight).await.unwrap();
/// assert_eq!(answer.status(), 200);
/// assert_eq!(answer.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
/// # });
/// ```
pub fn any_origin() -> CorsLayer {
    layer(AllowOrigin::any())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_are_lower_case_and_distinct() {
        for list in [allowed_headers(), exposed_headers()] {
            let mut names: Vec<_> = list.iter().map(|h| h.as_str()).collect();
            let count = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), count);
        }
    }
}
