//! The set of algorithms one side speaks, in preference order, and the
//! negotiation of a response algorithm from the peer's accept list.

use std::sync::Arc;

use http::HeaderValue;

use super::Compressor;

/// One call's compression, settled by [`CompressionRegistry::negotiate_call`]; `None` is
/// identity.
pub(crate) struct CallCompression {
    /// How the request's messages are compressed.
    pub(crate) request: Option<Arc<dyn Compressor>>,
    /// How to compress the response's messages.
    pub(crate) response: Option<Arc<dyn Compressor>>,
}

/// Ordered set of compressors. Registration order is preference order.
///
/// Clients use it to advertise what they can decode (see
/// [`accept_header`](Self::accept_header)) and to look up the algorithm the
/// server answered with; servers use it to decode requests and to
/// [`negotiate`](Self::negotiate) the response algorithm. Cloning is cheap:
/// the compressors are shared.
///
/// ```
/// use switchboard::compression::{CompressionRegistry, Gzip, Zstd};
///
/// let mut registry = CompressionRegistry::empty();
/// registry.register(Zstd).register(Gzip);
/// assert_eq!(registry.names().collect::<Vec<_>>(), ["zstd", "gzip"]);
/// assert_eq!(registry.accept_header().unwrap().to_str().unwrap(), "zstd, gzip");
///
/// // The client's order wins; unknown and refused (q=0) entries are skipped.
/// let chosen = registry.negotiate(["br, zstd;q=0, gzip;q=0.5, identity"]);
/// assert_eq!(chosen.map(|c| c.name()), Some("gzip"));
///
/// // Nothing in common: send the response uncompressed.
/// assert!(registry.negotiate(["identity"]).is_none());
/// ```
#[derive(Clone, Debug)]
pub struct CompressionRegistry {
    compressors: Vec<Arc<dyn Compressor>>,
    /// `compressors`' names joined with ", ", rebuilt on every change so that
    /// sending it costs nothing; `None` when there are no compressors.
    accept: Option<HeaderValue>,
}

impl CompressionRegistry {
    /// A registry with no algorithms: every message travels uncompressed
    /// (`identity`).
    pub fn empty() -> Self {
        CompressionRegistry {
            compressors: Vec::new(),
            accept: None,
        }
    }

    /// All built-in algorithms compiled in (each has a cargo feature, all on by default),
    /// in this preference order: gzip, br, zstd, deflate, snappy. Gzip comes first because
    /// every peer supports it.
    pub fn with_defaults() -> Self {
        #[allow(unused_mut)]
        let mut registry = Self::empty();
        #[cfg(feature = "gzip")]
        registry.register(super::Gzip);
        #[cfg(feature = "brotli")]
        registry.register(super::Brotli);
        #[cfg(feature = "zstd")]
        registry.register(super::Zstd);
        #[cfg(feature = "gzip")]
        registry.register(super::Deflate);
        #[cfg(feature = "snappy")]
        registry.register(super::Snappy);
        registry
    }

    /// Adds an algorithm at the end (lowest preference), or replaces the one
    /// already registered under the same name, keeping its position.
    ///
    /// A compressor whose name is empty, `identity` (in any case) or not a
    /// valid HTTP token is ignored: it could never be named in a header.
    pub fn register(&mut self, c: impl Compressor) -> &mut Self {
        self.register_arc(Arc::new(c))
    }

    /// [`register`](Self::register) for an algorithm already shared, e.g. one taken from
    /// another registry with [`get`](Self::get).
    pub fn register_arc(&mut self, c: Arc<dyn Compressor>) -> &mut Self {
        let name = c.name();
        if !is_valid_name(name) {
            return self;
        }
        match self.compressors.iter_mut().find(|e| e.name() == name) {
            Some(existing) => *existing = c,
            None => self.compressors.push(c),
        }
        self.rebuild_accept();
        self
    }

    /// Builder form of [`register`](Self::register).
    pub fn with(mut self, c: impl Compressor) -> Self {
        self.register(c);
        self
    }

    /// Removes the algorithm registered under `name`, if any.
    pub fn remove(&mut self, name: &str) -> &mut Self {
        let before = self.compressors.len();
        self.compressors.retain(|c| c.name() != name);
        if self.compressors.len() != before {
            self.rebuild_accept();
        }
        self
    }

    /// Looks up an algorithm by its exact wire name, e.g. the value of a
    /// received `Content-Encoding`.
    ///
    /// `"identity"` and `""` are never registered, so they return `None`;
    /// callers treat them as "not compressed".
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Compressor>> {
        self.compressors.iter().find(|c| c.name() == name)
    }

    /// The registered names, most preferred first.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.compressors.iter().map(|c| c.name())
    }

    /// The value to send in `Accept-Encoding`-like headers
    /// (`connect-accept-encoding`, `grpc-accept-encoding`), e.g.
    /// `"gzip, br, zstd, deflate, snappy"`; `None` when the registry is empty.
    ///
    /// Precomputed when the registry changes, so this never allocates.
    pub fn accept_header(&self) -> Option<&HeaderValue> {
        self.accept.as_ref()
    }

    /// Settles one call's compression, the same way for every protocol: the algorithm the
    /// request was `sent` with must be registered (otherwise `unimplemented`, naming the
    /// ones that are, as the gRPC and Connect specifications ask); the response uses the
    /// first algorithm of the peer's `accept` list this registry has (see
    /// [`negotiate`](Self::negotiate)) when the peer sent such a list, and otherwise the
    /// request's. `None` is identity.
    pub(crate) fn negotiate_call<'a>(
        &self,
        sent: Option<&str>,
        accept: impl Iterator<Item = &'a str>,
    ) -> Result<CallCompression, crate::Error> {
        let sent = sent
            .map(str::trim)
            .filter(|n| !n.is_empty() && *n != "identity");
        let request = match sent {
            None => None,
            Some(name) => Some(self.get(name).cloned().ok_or_else(|| {
                let supported: Vec<&str> = self.names().collect();
                crate::Error::unimplemented(format!(
                    "unknown compression {name:?}: supported encodings are {}",
                    if supported.is_empty() {
                        "identity".to_owned()
                    } else {
                        supported.join(", ")
                    }
                ))
            })?),
        };
        let mut accept = accept.peekable();
        let response = if accept.peek().is_none() {
            request.clone()
        } else {
            self.negotiate(accept).cloned()
        };
        Ok(CallCompression { request, response })
    }

    /// Chooses the algorithm for a response, given the values of the peer's
    /// accept header (HTTP may split one list across repeated headers, so
    /// several values can be passed).
    ///
    /// Entries are comma separated, whitespace is tolerated and names match
    /// case-insensitively. The peer's order is honoured: the first entry this
    /// registry supports wins. `;q=` parameters are ignored except `q=0`,
    /// which marks an entry as not acceptable. A `*` entry accepts the most
    /// preferred registered algorithm not refused with `q=0`, when no entry
    /// names a supported algorithm. `None` means: respond uncompressed
    /// (`identity`).
    pub fn negotiate<'a>(
        &self,
        client_accept: impl IntoIterator<Item = &'a str>,
    ) -> Option<&Arc<dyn Compressor>> {
        if self.compressors.is_empty() {
            return None;
        }
        // Registry positions (below 64) the peer refused with q=0; only
        // consulted for a `*` entry.
        let mut refused: u64 = 0;
        let mut wildcard = false;
        for value in client_accept {
            for entry in value.split(',') {
                let (name, params) = entry.split_once(';').unwrap_or((entry, ""));
                let name = name.trim();
                if name.is_empty() {
                    continue;
                }
                let acceptable = !has_zero_q(params);
                if name == "*" {
                    wildcard |= acceptable;
                    continue;
                }
                let found = self
                    .compressors
                    .iter()
                    .enumerate()
                    .find(|(_, c)| c.name().eq_ignore_ascii_case(name));
                if let Some((index, c)) = found {
                    if acceptable {
                        return Some(c);
                    }
                    if index < 64 {
                        refused |= 1 << index;
                    }
                }
            }
        }
        if !wildcard {
            return None;
        }
        self.compressors
            .iter()
            .enumerate()
            .find(|(index, _)| *index < 64 && refused & (1 << index) == 0)
            .map(|(_, c)| c)
    }

    /// Whether no algorithm is registered (only `identity` is spoken).
    pub fn is_empty(&self) -> bool {
        self.compressors.is_empty()
    }

    fn rebuild_accept(&mut self) {
        if self.compressors.is_empty() {
            self.accept = None;
            return;
        }
        let mut value = String::new();
        for name in self.names() {
            if !value.is_empty() {
                value.push_str(", ");
            }
            value.push_str(name);
        }
        // Names are validated tokens, so this cannot fail; stay panic-free
        // regardless.
        self.accept = HeaderValue::from_str(&value).ok();
    }
}

impl Default for CompressionRegistry {
    /// Same as [`CompressionRegistry::with_defaults`].
    fn default() -> Self {
        Self::with_defaults()
    }
}

/// Whether `name` can be registered: a non-empty HTTP token (RFC 9110
/// `tchar`s) other than `identity`.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.eq_ignore_ascii_case("identity")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether a `;`-separated parameter list holds `q=0` (or `q=0.0`, ...),
/// which marks the entry as not acceptable.
fn has_zero_q(params: &str) -> bool {
    params.split(';').any(|param| match param.split_once('=') {
        Some((key, value)) if key.trim().eq_ignore_ascii_case("q") => {
            match value.trim().strip_prefix('0') {
                Some(rest) => {
                    rest.is_empty()
                        || rest
                            .strip_prefix('.')
                            .is_some_and(|fraction| fraction.bytes().all(|b| b == b'0'))
                }
                None => false,
            }
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Brotli, Gzip, Snappy, Zstd};
    use bytes::{Bytes, BytesMut};

    use super::super::DecompressError;
    use super::*;

    /// One rule for every protocol: the request's algorithm must be known; the response
    /// follows the peer's accept list when there is one, else the request's algorithm.
    #[test]
    fn a_call_negotiates_request_and_response_compression() {
        let registry = CompressionRegistry::with_defaults();
        let names =
            |c: CallCompression| (c.request.map(|c| c.name()), c.response.map(|c| c.name()));
        let none = std::iter::empty::<&str>;
        assert_eq!(
            names(registry.negotiate_call(None, none()).unwrap()),
            (None, None)
        );
        assert_eq!(
            names(registry.negotiate_call(Some(" identity "), none()).unwrap()),
            (None, None)
        );
        assert_eq!(
            names(registry.negotiate_call(Some("gzip"), none()).unwrap()),
            (Some("gzip"), Some("gzip"))
        );
        assert_eq!(
            names(
                registry
                    .negotiate_call(Some("gzip"), ["zstd, gzip"].into_iter())
                    .unwrap()
            ),
            (Some("gzip"), Some("zstd"))
        );
        assert_eq!(
            names(
                registry
                    .negotiate_call(None, ["identity"].into_iter())
                    .unwrap()
            ),
            (None, None)
        );
        let error = registry.negotiate_call(Some("lz4"), none()).err().unwrap();
        assert_eq!(error.code(), crate::Code::Unimplemented);
        assert!(error.message().contains("\"lz4\""), "{error}");
        assert!(error.message().contains("gzip, br, zstd"), "{error}");
        let error = CompressionRegistry::empty()
            .negotiate_call(Some("gzip"), none())
            .err()
            .unwrap();
        assert!(error.message().ends_with("identity"), "{error}");
    }

    /// A stand-in algorithm with a configurable name.
    #[derive(Debug)]
    struct Fake(&'static str);

    impl Compressor for Fake {
        fn name(&self) -> &'static str {
            self.0
        }
        fn compress(&self, input: &[u8], out: &mut BytesMut) -> std::io::Result<()> {
            out.extend_from_slice(input);
            Ok(())
        }
        fn decompress(&self, input: &[u8], _limit: usize) -> Result<Bytes, DecompressError> {
            Ok(Bytes::copy_from_slice(input))
        }
    }

    fn names(registry: &CompressionRegistry) -> Vec<&'static str> {
        registry.names().collect()
    }

    fn accept(registry: &CompressionRegistry) -> Option<&str> {
        registry.accept_header().map(|v| v.to_str().unwrap())
    }

    fn pick<'a>(
        registry: &CompressionRegistry,
        values: impl IntoIterator<Item = &'a str>,
    ) -> Option<&'static str> {
        registry.negotiate(values).map(|c| c.name())
    }

    #[test]
    fn defaults() {
        let registry = CompressionRegistry::with_defaults();
        assert_eq!(
            names(&registry),
            ["gzip", "br", "zstd", "deflate", "snappy"]
        );
        assert_eq!(accept(&registry), Some("gzip, br, zstd, deflate, snappy"));
        assert!(!registry.is_empty());
        assert_eq!(
            names(&CompressionRegistry::default()),
            names(&CompressionRegistry::with_defaults())
        );
    }

    #[test]
    fn empty() {
        let registry = CompressionRegistry::empty();
        assert!(registry.is_empty());
        assert_eq!(registry.names().count(), 0);
        assert_eq!(accept(&registry), None);
        assert!(registry.get("gzip").is_none());
        assert_eq!(pick(&registry, ["gzip, *"]), None);
    }

    #[test]
    fn get() {
        let registry = CompressionRegistry::with_defaults();
        assert_eq!(registry.get("br").unwrap().name(), "br");
        assert_eq!(registry.get("snappy").unwrap().name(), "snappy");
        assert!(registry.get("identity").is_none());
        assert!(registry.get("").is_none());
        assert!(registry.get("lz4").is_none());
    }

    #[test]
    fn register_appends_and_replace_keeps_position() {
        let mut registry = CompressionRegistry::empty();
        registry.register(Zstd).register(Gzip).register(Fake("lz4"));
        assert_eq!(names(&registry), ["zstd", "gzip", "lz4"]);

        // Replacing "zstd" keeps it first, and the new one is used.
        registry.register(Fake("zstd"));
        assert_eq!(names(&registry), ["zstd", "gzip", "lz4"]);
        let mut out = BytesMut::new();
        registry
            .get("zstd")
            .unwrap()
            .compress(b"abc", &mut out)
            .unwrap();
        assert_eq!(&out[..], b"abc", "the replacement is the fake");
        assert_eq!(accept(&registry), Some("zstd, gzip, lz4"));
    }

    #[test]
    fn builder() {
        let registry = CompressionRegistry::empty().with(Snappy).with(Brotli);
        assert_eq!(names(&registry), ["snappy", "br"]);
        assert_eq!(accept(&registry), Some("snappy, br"));
    }

    #[test]
    fn invalid_names_are_ignored() {
        let mut registry = CompressionRegistry::empty();
        registry
            .register(Fake(""))
            .register(Fake("identity"))
            .register(Fake("IDENTITY"))
            .register(Fake("two words"))
            .register(Fake("comma,separated"))
            .register(Fake("new\nline"));
        assert!(registry.is_empty());
        assert_eq!(accept(&registry), None);
        assert!(registry.get("identity").is_none());
        assert!(registry.get("").is_none());
    }

    #[test]
    fn remove() {
        let mut registry = CompressionRegistry::with_defaults();
        registry.remove("br").remove("nonexistent");
        assert_eq!(names(&registry), ["gzip", "zstd", "deflate", "snappy"]);
        assert_eq!(accept(&registry), Some("gzip, zstd, deflate, snappy"));
        assert!(registry.get("br").is_none());
        for name in ["gzip", "zstd", "deflate", "snappy"] {
            registry.remove(name);
        }
        assert!(registry.is_empty());
        assert_eq!(accept(&registry), None);
    }

    #[test]
    fn clones_are_independent() {
        let registry = CompressionRegistry::with_defaults();
        let mut clone = registry.clone();
        clone.remove("gzip");
        assert_eq!(registry.names().count(), 5);
        assert_eq!(clone.names().count(), 4);
    }

    #[test]
    fn negotiate_honours_client_order() {
        let registry = CompressionRegistry::with_defaults();
        assert_eq!(pick(&registry, ["br, gzip"]), Some("br"));
        assert_eq!(pick(&registry, ["gzip, br"]), Some("gzip"));
        assert_eq!(pick(&registry, ["snappy, gzip"]), Some("snappy"));
    }

    #[test]
    fn negotiate_skips_unknown_and_refused() {
        let registry = CompressionRegistry::with_defaults();
        assert_eq!(pick(&registry, ["lz4, compress, zstd"]), Some("zstd"));
        assert_eq!(pick(&registry, ["br;q=0, gzip"]), Some("gzip"));
        assert_eq!(pick(&registry, ["br;q=0.000, gzip;q=0.5"]), Some("gzip"));
        assert_eq!(pick(&registry, ["br; q = 0 , deflate"]), Some("deflate"));
        assert_eq!(pick(&registry, ["br;Q=0, deflate"]), Some("deflate"));
        assert_eq!(
            pick(&registry, ["br;level=1;q=0, deflate"]),
            Some("deflate")
        );
        assert_eq!(pick(&registry, ["br;q=0.001, gzip"]), Some("br"));
        assert_eq!(pick(&registry, ["br;q=1, gzip"]), Some("br"));
        assert_eq!(pick(&registry, ["br;q=0, gzip;q=0"]), None);
        assert_eq!(pick(&registry, ["br;q=nonsense, gzip"]), Some("br"));
    }

    #[test]
    fn negotiate_tolerates_whitespace_and_case() {
        let registry = CompressionRegistry::with_defaults();
        assert_eq!(pick(&registry, ["  ,, \t br  ,gzip"]), Some("br"));
        assert_eq!(pick(&registry, [" identity , GZIP "]), Some("gzip"));
        assert_eq!(pick(&registry, ["zstd;q=0.5"]), Some("zstd"));
    }

    #[test]
    fn negotiate_across_header_values() {
        let registry = CompressionRegistry::with_defaults();
        assert_eq!(
            pick(&registry, ["identity", "lz4", "deflate, gzip"]),
            Some("deflate")
        );
        assert_eq!(pick(&registry, ["", "snappy"]), Some("snappy"));
        let values = [String::from("lz4"), String::from("br")];
        assert_eq!(
            pick(&registry, values.iter().map(String::as_str)),
            Some("br")
        );
    }

    #[test]
    fn negotiate_identity_or_nothing() {
        let registry = CompressionRegistry::with_defaults();
        assert_eq!(pick(&registry, ["identity"]), None);
        assert_eq!(pick(&registry, [""]), None);
        assert_eq!(pick(&registry, std::iter::empty()), None);
        assert_eq!(pick(&registry, ["lz4, compress"]), None);
    }

    #[test]
    fn negotiate_wildcard() {
        let registry = CompressionRegistry::with_defaults();
        assert_eq!(pick(&registry, ["*"]), Some("gzip"));
        assert_eq!(pick(&registry, ["*, zstd"]), Some("zstd"));
        assert_eq!(pick(&registry, ["gzip;q=0, *"]), Some("br"));
        assert_eq!(pick(&registry, ["*", "gzip;q=0"]), Some("br"));
        assert_eq!(pick(&registry, ["*;q=0"]), None);
    }

    #[test]
    fn names_are_validated() {
        assert!(is_valid_name("gzip"));
        assert!(is_valid_name("x-custom.v2"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("Identity"));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("a;b"));
        assert!(!is_valid_name("é"));
    }
}
