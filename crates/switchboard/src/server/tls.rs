//! TLS for the built-in server, with rustls: HTTP/2 and HTTP/1.1 negotiated by ALPN, and
//! optional client-certificate verification (mutual TLS).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// Reads a PEM certificate chain (leaf first).
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::invalid_argument(format!("invalid PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(Error::invalid_argument("no certificate in PEM input"));
    }
    Ok(certs)
}

/// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn private_key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| Error::invalid_argument(format!("invalid PEM private key: {e}")))
}

/// A root store from PEM certificates, to verify peers against.
pub fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in certificates_from_pem(pem)? {
        roots
            .add(cert)
            .map_err(|e| Error::invalid_argument(format!("unusable root certificate: {e}")))?;
    }
    Ok(roots)
}

/// rustls' server configuration, re-exported so users need no direct rustls dependency.
pub type ServerTlsConfig = rustls::ServerConfig;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server TLS configuration from a PEM certificate chain and key, offering `h2` and
/// `http/1.1` by ALPN. With `client_roots`, clients must present a certificate signed by one
/// of them (mutual TLS); the verified chain then reaches handlers through
/// [`crate::Peer::certificates`].
pub fn server_config(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
    client_roots_pem: Option<&[u8]>,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS setup: {e}")))?;
    let builder = match client_roots_pem {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots_from_pem(pem)?),
                provider(),
            )
            .build()
            .map_err(|e| Error::invalid_argument(format!("client verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(
            certificates_from_pem(cert_chain_pem)?,
            private_key_from_pem(key_pem)?,
        )
        .map_err(|e| Error::invalid_argument(format!("certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The QUIC (HTTP/3) server configuration of a TLS configuration: the same certificates and
/// client verification, ALPN `h3`, TLS 1.3 only (QUIC has no other), no 0-RTT.
#[cfg(feature = "http3")]
pub fn quic_server_config(tls: &rustls::ServerConfig) -> Result<quinn::ServerConfig, Error> {
    let mut tls = tls.clone();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    tls.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| {
        Error::invalid_argument(format!("TLS configuration unusable for QUIC: {e}"))
    })?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(quic_transport()));
    Ok(config)
}

/// The QUIC transport settings of the server, bounded like its HTTP/2 ones: as many
/// concurrent request streams ([`super::DEFAULT_MAX_CONCURRENT_STREAMS`]), the same 1 MiB
/// windows per stream and per connection (quinn's connection window is unbounded by
/// default), a few peer-opened unidirectional streams (HTTP/3 uses three: control and QPACK;
/// the rest for grease),
/// 30 s without packets closes a connection, and a ping every 10 s keeps a quiet stream (a
/// long Watch) alive.
#[cfg(feature = "http3")]
fn quic_transport() -> quinn::TransportConfig {
    let window = quinn::VarInt::from_u32(1024 * 1024);
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(
            super::DEFAULT_MAX_CONCURRENT_STREAMS,
        ))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(8))
        .stream_receive_window(window)
        .receive_window(window)
        .send_window(1024 * 1024)
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(std::time::Duration::from_secs(30))
                .unwrap_or(quinn::IdleTimeout::from(quinn::VarInt::from_u32(30_000))),
        ))
        .keep_alive_interval(Some(std::time::Duration::from_secs(10)));
    transport
}

#[cfg(all(test, feature = "http3"))]
mod quic_tests {
    use super::*;

    #[test]
    fn a_tls_configuration_becomes_a_quic_one_with_alpn_h3() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let tls =
            server_config(cert.pem().as_bytes(), key.serialize_pem().as_bytes(), None).unwrap();
        assert!(quic_server_config(&tls).is_ok());
        // The HTTP/1.1 and HTTP/2 configuration keeps its own ALPN.
        assert_eq!(tls.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    }
}
