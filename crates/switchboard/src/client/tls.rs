//! TLS for the default transport, with rustls.

use std::sync::Arc;

use rustls::RootCertStore;

use crate::Error;
use crate::server::tls::{certificates_from_pem, private_key_from_pem, roots_from_pem};

/// rustls' client configuration, re-exported so users need no direct rustls dependency.
pub type ClientTlsConfig = rustls::ClientConfig;

/// A client TLS configuration trusting the PEM roots given (none: trust nothing, so only
/// plain `http://` works), optionally presenting a client certificate chain and key (PEM) for
/// mutual TLS. For the platform's roots, see [`platform_client_config`].
pub fn client_config(
    roots_pem: Option<&[u8]>,
    identity_pem: Option<(&[u8], &[u8])>,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let roots = match roots_pem {
        Some(pem) => roots_from_pem(pem)?,
        None => RootCertStore::empty(),
    };
    config_with_roots(roots, identity_pem)
}

/// A client TLS configuration trusting the platform's root certificates (the system store,
/// read once with `rustls-native-certs`, which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`;
/// plus Mozilla's roots compiled in with the `webpki-roots` feature), optionally presenting a
/// client identity (PEM chain and key). This is what [`crate::client::Client::http1`] and
/// [`crate::client::Client::h2c`] use, so `https://` URLs work with no configuration.
///
/// ```
/// let config = switchboard::client::tls::platform_client_config(None).unwrap();
/// assert!(config.alpn_protocols.is_empty());
/// ```
pub fn platform_client_config(
    identity_pem: Option<(&[u8], &[u8])>,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    config_with_roots(platform_roots().clone(), identity_pem)
}

/// The platform's roots, loaded once per process: reading and parsing the system store costs
/// milliseconds, too much for every client built.
fn platform_roots() -> &'static RootCertStore {
    static ROOTS: std::sync::OnceLock<RootCertStore> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::debug!(%error, "reading the platform's root certificates");
        }
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "platform root certificates");
        #[cfg(feature = "webpki-roots")]
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        roots
    })
}

fn config_with_roots(
    roots: RootCertStore,
    identity_pem: Option<(&[u8], &[u8])>,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::internal(format!("TLS setup: {e}")))?
    .with_root_certificates(roots);
    let config = match identity_pem {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder
            .with_client_auth_cert(certificates_from_pem(chain)?, private_key_from_pem(key)?)
            .map_err(|e| Error::invalid_argument(format!("client certificate and key: {e}")))?,
    };
    Ok(Arc::new(config))
}
