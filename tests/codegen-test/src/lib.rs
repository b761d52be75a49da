//! End-to-end tests of the code switchboard-build generates; the tests are in `tests/`.

/// `acme.greet.v1`: messages, server and client.
pub mod greet {
    include!(concat!(env!("OUT_DIR"), "/acme.greet.v1.rs"));
}

/// `acme.greet.v1` generated with `generate_messages(false)` and no client: the messages are
/// those of [`greet`], reached through an extern path.
pub mod services_only {
    include!(concat!(env!("OUT_DIR"), "/services_only/acme.greet.v1.rs"));
}
