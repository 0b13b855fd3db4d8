//! TLS for registries with a custom CA. The CA file's certificates are trusted as roots beside the
//! system's; a self-signed server certificate given as the "CA" (what Docker's certs.d and skopeo
//! accept) is trusted as exactly that certificate, which webpki alone refuses
//! (`CaUsedAsEndEntity`).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

#[derive(Debug)]
struct PinnedOrWebPki {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(verified) => Ok(verified),
            Err(_) if self.pinned.iter().any(|p| p.as_ref() == end_entity.as_ref()) => {
                Ok(ServerCertVerified::assertion())
            }
            Err(err) => Err(err),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// A client TLS config trusting the system roots plus the PEM certificates in `pem`.
pub fn config_with_ca(pem: &[u8], what: &str) -> Result<rustls::ClientConfig, String> {
    use rustls_pki_types::pem::PemObject;
    let extra: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what}: not a PEM certificate file: {e}"))?;
    if extra.is_empty() {
        return Err(format!("{what}: no certificate in the file"));
    }
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped; the CA file is what matters here.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    for cert in &extra {
        roots.add(cert.clone()).map_err(|e| format!("{what}: {e}"))?;
    }
    let webpki = WebPkiServerVerifier::builder(Arc::new(roots)).build().map_err(|e| format!("{what}: {e}"))?;
    let verifier = Arc::new(PinnedOrWebPki { webpki, pinned: extra });
    Ok(rustls::ClientConfig::builder().dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth())
}
