//! TLS for the default transport, with rustls.

use std::sync::Arc;

use rustls::RootCertStore;

use crate::Error;
use crate::server::tls::{certificates_from_pem, private_key_from_pem, roots_from_pem};

/// rustls' client configuration, re-exported so users need no direct rustls dependency.
pub type ClientTlsConfig = rustls::ClientConfig;

/// A client TLS configuration trusting the PEM roots given (none: trust nothing, so only
/// plain `http://` works), optionally presenting a client certificate chain and key (PEM) for
/// mutual TLS.
pub fn client_config(
    roots_pem: Option<&[u8]>,
    identity_pem: Option<(&[u8], &[u8])>,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let roots = match roots_pem {
        Some(pem) => roots_from_pem(pem)?,
        None => RootCertStore::empty(),
    };
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
