//! Server settings: shared by the router, which owns them, and the protocols, which apply
//! them to each call (here, so that neither imports the other).

use crate::compression::{CompressionPolicy, CompressionRegistry};
use crate::envelope::MinRate;
use crate::interceptor::{Hooks, Interceptor, Interceptors};

/// Default cap on one received message: 4 MiB, as in gRPC.
pub const DEFAULT_READ_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Settings every call on a [`crate::server::Router`] shares.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub(crate) read_max_bytes: usize,
    pub(crate) send_max_bytes: usize,
    pub(crate) compression: CompressionRegistry,
    pub(crate) compression_policy: CompressionPolicy,
    pub(crate) require_connect_protocol_header: bool,
    pub(crate) interceptors: Interceptors,
    pub(crate) min_request_rate: Option<MinRate>,
}

/// How long a request message that has started arriving may wait for its bytes before the
/// minimum rate applies (see [`ServerConfig::min_request_rate`]).
pub const DEFAULT_REQUEST_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
/// The slowest average rate, in bytes per second, at which a request message may keep
/// arriving once [`DEFAULT_REQUEST_GRACE`] is spent.
pub const DEFAULT_MIN_REQUEST_RATE: u64 = 1024;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            read_max_bytes: DEFAULT_READ_MAX_BYTES,
            send_max_bytes: usize::MAX,
            compression: CompressionRegistry::with_defaults(),
            compression_policy: CompressionPolicy::default(),
            require_connect_protocol_header: false,
            interceptors: Interceptors::default(),
            min_request_rate: Some(MinRate {
                grace: DEFAULT_REQUEST_GRACE,
                bytes_per_second: DEFAULT_MIN_REQUEST_RATE,
            }),
        }
    }
}

impl ServerConfig {
    /// Largest message accepted (after decompression); larger ones fail with
    /// `resource_exhausted` before they are buffered.
    pub fn read_max_bytes(mut self, limit: usize) -> Self {
        self.read_max_bytes = limit;
        self
    }

    /// Largest message sent; a handler producing a larger one fails with
    /// `resource_exhausted` instead.
    pub fn send_max_bytes(mut self, limit: usize) -> Self {
        self.send_max_bytes = limit;
        self
    }

    /// The compression algorithms offered, in the server's order of preference.
    pub fn compression(mut self, registry: CompressionRegistry) -> Self {
        self.compression = registry;
        self
    }

    /// When responses are compressed (by default, from 1 KiB).
    pub fn compression_policy(mut self, policy: CompressionPolicy) -> Self {
        self.compression_policy = policy;
        self
    }

    /// Refuse Connect requests without `Connect-Protocol-Version: 1` (or `connect=v1` on GET),
    /// which tells Connect traffic apart from other HTTP clients posting the same content types.
    pub fn require_connect_protocol_header(mut self, require: bool) -> Self {
        self.require_connect_protocol_header = require;
        self
    }

    /// The slowest a request message may arrive once its first bytes are in: after `grace`
    /// spent waiting for its bytes, at least `bytes_per_second` on average (default 10 s,
    /// then 1 KiB/s), or the call fails with `deadline_exceeded`. Only time spent waiting
    /// for the message counts, not time between messages of a stream, nor time the handler
    /// spends elsewhere. A peer trickling a body a byte every few seconds otherwise holds
    /// the call and its buffers open without limit. `bytes_per_second = 0` turns it off.
    pub fn min_request_rate(mut self, grace: std::time::Duration, bytes_per_second: u64) -> Self {
        self.min_request_rate = (bytes_per_second > 0).then_some(MinRate {
            grace,
            bytes_per_second,
        });
        self
    }

    /// Adds an interceptor inside those added before (the first added is outermost). On a
    /// service added with [`crate::server::Router::add_service_with`], its own interceptors
    /// run inside the router's.
    pub fn interceptor(mut self, interceptor: impl Interceptor) -> Self {
        self.interceptors.push(interceptor);
        self
    }

    /// Adds [`Hooks`] (start, each message, end) as an interceptor, in the same order.
    pub fn hooks(mut self, hooks: impl Hooks) -> Self {
        self.interceptors.push_hooks(hooks);
        self
    }
}
