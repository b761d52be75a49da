//! REST from the same handlers: `google.api.http` transcoding in process.
//!
//! A method annotated with `option (google.api.http) = {get: "/v1/{name=shelves/*}"}` is
//! served at that path too, by the same handler, router and interceptors as its RPC routes
//! (which keep priority). See [`Rest`] and the guide's "REST" page for the rules.

mod bind;
mod respond;
pub(crate) mod rpc_types;
mod rule;
mod serve;
mod template;
mod values;

use std::sync::Arc;

use http::StatusCode;

pub(crate) use respond::plain;
pub(crate) use serve::{dispatch, is_rest_request};

use crate::spec::Spec;
use rule::Binding;
use template::{Part, split_path};

/// REST transcoding settings: give them to [`Router::rest`](crate::server::Router::rest) to
/// serve every method's `google.api.http` bindings next to its RPC routes.
///
/// ```
/// use switchboard::server::{Rest, Router};
/// let router = Router::new().rest(Rest::default().discard_unknown_query_parameters(true));
/// # let _ = router;
/// ```
#[derive(Clone, Debug, Default)]
pub struct Rest {
    discard_unknown_query: bool,
}

impl Rest {
    /// Ignores query parameters that name no field of the request, instead of answering
    /// `400 Bad Request` (`invalid_argument`): for clients that add their own parameters
    /// (cache busters, tracking).
    pub fn discard_unknown_query_parameters(mut self, discard: bool) -> Self {
        self.discard_unknown_query = discard;
        self
    }
}

/// One REST route: a binding of a method.
#[derive(Clone, Debug)]
pub(crate) struct RestRoute {
    /// The RPC route it serves (`/package.Service/Method`).
    pub(crate) procedure: Arc<str>,
    pub(crate) spec: Spec,
    pub(crate) binding: Arc<Binding>,
}

/// Every REST route of a router.
#[derive(Clone, Debug, Default)]
pub(crate) struct RestTable {
    pub(crate) settings: Rest,
    routes: Vec<RestRoute>,
}

/// What a request path and method found.
pub(crate) enum Found<'t> {
    /// A route, with each path variable's value.
    Route(&'t RestRoute, Vec<String>),
    /// The path matches routes of other HTTP methods only.
    OtherMethods(Vec<String>),
    /// No route matches the path.
    Nothing,
}

impl RestTable {
    pub(crate) fn new(settings: Rest) -> Self {
        RestTable {
            settings,
            routes: Vec::new(),
        }
    }

    /// Adds the bindings of a method (none when it has no `google.api.http` option or no
    /// descriptor). Panics — at start-up, like axum's overlapping routes — when a binding is
    /// invalid or matches exactly the paths and HTTP method of another.
    pub(crate) fn add(&mut self, procedure: &str, spec: &Spec) {
        let Some(method) = spec.method() else {
            return;
        };
        let bindings = match rule::bindings(method) {
            Ok(bindings) => bindings,
            Err(error) => panic!("google.api.http: {}", error.0),
        };
        let procedure: Arc<str> = procedure.into();
        for binding in bindings {
            let shape = binding.template.shape();
            if let Some(other) = self.routes.iter().find(|route| {
                route.binding.method == binding.method && route.binding.template.shape() == shape
            }) {
                // The same method re-registered (a service added again) replaces itself.
                if other.procedure != procedure {
                    panic!(
                        "google.api.http: {} {} of {} matches the same requests as {} {} of {}",
                        binding.method,
                        binding.template.text,
                        &procedure[1..],
                        other.binding.method,
                        other.binding.template.text,
                        &other.procedure[1..],
                    );
                }
                continue;
            }
            self.routes.push(RestRoute {
                procedure: procedure.clone(),
                spec: spec.clone(),
                binding: Arc::new(binding),
            });
        }
    }

    /// Finds the route of a request: among the templates the path matches, those of the
    /// request's HTTP method, the most specific first (at the first segment where two differ,
    /// a literal beats `*`, which beats `**`).
    pub(crate) fn find(&self, method: &http::Method, path: &str) -> Found<'_> {
        let Some((segments, verb)) = split_path(path) else {
            return Found::Nothing;
        };
        let mut best: Option<(&RestRoute, Vec<String>)> = None;
        let mut others: Vec<String> = Vec::new();
        for route in &self.routes {
            let Some(values) = route.binding.template.matches(&segments, verb) else {
                continue;
            };
            let binding = &route.binding;
            if binding.method != method.as_str() && binding.method != "*" {
                if !others.contains(&binding.method) {
                    others.push(binding.method.clone());
                }
                continue;
            }
            let better = match &best {
                None => true,
                Some((current, _)) => {
                    specificity(&binding.template.parts)
                        < specificity(&current.binding.template.parts)
                }
            };
            if better {
                best = Some((route, values));
            }
        }
        match best {
            Some((route, values)) => Found::Route(route, values),
            None if !others.is_empty() => {
                others.sort();
                Found::OtherMethods(others)
            }
            None => Found::Nothing,
        }
    }
}

/// Orders templates from the most specific: literals first, then `*`, then `**`.
fn specificity(parts: &[Part]) -> Vec<u8> {
    parts
        .iter()
        .map(|part| match part {
            Part::Literal(_) => 0,
            Part::One => 1,
            Part::Rest => 2,
        })
        .collect()
}

/// The transcoder's answer to a path no route matches.
pub(crate) fn not_found() -> http::Response<crate::body::Body> {
    plain(StatusCode::NOT_FOUND, "Not Found")
}
