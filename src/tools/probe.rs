//! `fixcurve certs probe HOST:PORT`: handshake like `openssl s_client` and report the
//! protocol, suite, the peer's chain and whether it verified. Verification is *recorded*,
//! not enforced, so a misconfigured server can still be inspected; nothing is sent after
//! the handshake.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error, SignatureScheme};
use tokio::io::AsyncReadExt;
use x509_parser::prelude::*;

use crate::tls::config::ClientTlsSettings;
use crate::tls::identity::Fingerprint;

/// What the probe saw.
#[derive(Debug, Default)]
pub struct ProbeReport {
    pub protocol: Option<String>,
    pub suite: Option<String>,
    pub chain: Vec<String>,
    /// `Some(Ok)` verified, `Some(Err(reason))` failed, `None` not checked (no CA given).
    pub verification: Option<Result<(), String>>,
    /// Set when the server ended the connection after the handshake (e.g. it refused our
    /// client certificate, which TLS 1.3 reports only after the client finished).
    pub refused_after_handshake: Option<String>,
}

impl ProbeReport {
    pub fn ok(&self) -> bool {
        self.protocol.is_some()
            && !matches!(self.verification, Some(Err(_)))
            && self.refused_after_handshake.is_none()
    }
}

/// The peer chain as described lines, and the verification outcome.
type Seen = (Vec<String>, Option<Result<(), String>>);

#[derive(Debug)]
struct Recording {
    inner: Option<Arc<dyn ServerCertVerifier>>,
    seen: Mutex<Seen>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

fn describe(i: usize, der: &CertificateDer<'_>) -> String {
    let fp = Fingerprint::of(der);
    match X509Certificate::from_der(der) {
        Ok((_, c)) => format!(
            "#{i} subject: {}\n     issuer: {}\n     not after: {}\n     {fp}",
            c.subject(),
            c.issuer(),
            c.validity().not_after
        ),
        Err(_) => format!("#{i} (unparsable certificate) {fp}"),
    }
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let mut chain = vec![describe(0, end_entity)];
        chain.extend(
            intermediates
                .iter()
                .enumerate()
                .map(|(i, c)| describe(i + 1, c)),
        );
        let verdict = self.inner.as_ref().map(|v| {
            v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        if let Ok(mut g) = self.seen.lock() {
            *g = (chain, verdict);
        }
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Connects to `target` (`host:port`) and handshakes.
pub async fn probe(target: &str, s: &ClientTlsSettings) -> anyhow::Result<ProbeReport> {
    let provider = crate::tls::provider();
    let inner: Option<Arc<dyn ServerCertVerifier>> = match &s.ca {
        Some(ca) => Some(
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(crate::tls::pem::roots(ca)?),
                provider.clone(),
            )
            .build()?,
        ),
        None => None,
    };
    let rec = Arc::new(Recording {
        inner,
        seen: Mutex::new((Vec::new(), None)),
        provider: provider.clone(),
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(crate::tls::versions(s.tls13_only))?
        .dangerous()
        .with_custom_certificate_verifier(rec.clone());
    let cfg = match &s.cert {
        Some(cert) => builder.with_client_auth_cert(
            crate::tls::pem::certs(cert)?,
            crate::tls::pem::key(s.key.as_deref().unwrap_or(cert))?,
        )?,
        None => builder.with_no_client_auth(),
    };
    let name = crate::tls::client::server_name(s, target)?;
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(target),
    )
    .await
    .map_err(|_| anyhow::anyhow!("{target}: connect timed out"))??;
    tcp.set_nodelay(true)?;
    let mut report = ProbeReport::default();
    let conn = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp),
    )
    .await
    .map_err(|_| anyhow::anyhow!("{target}: TLS handshake timed out"))?;
    if let Ok(g) = rec.seen.lock() {
        report.chain = g.0.clone();
        report.verification = g.1.clone();
    }
    let mut tls = match conn {
        Ok(t) => t,
        Err(e) => {
            report.refused_after_handshake = Some(format!("handshake failed: {e}"));
            return Ok(report);
        }
    };
    {
        let (_, c) = tls.get_ref();
        report.protocol = c.protocol_version().map(|v| format!("{v:?}"));
        report.suite = c
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()));
    }
    // A server that rejects our certificate says so right after the handshake; a FIX
    // acceptor otherwise stays silent until our Logon.
    let mut buf = [0u8; 1];
    match tokio::time::timeout(Duration::from_millis(500), tls.read(&mut buf)).await {
        Ok(Err(e)) => report.refused_after_handshake = Some(e.to_string()),
        Ok(Ok(0)) => report.refused_after_handshake = Some("server closed the connection".into()),
        _ => {}
    }
    Ok(report)
}
