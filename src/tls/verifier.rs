//! Certificate verifiers that add fixcurve's policy on top of webpki: mandatory clientAuth
//! EKU (webpki only rejects a *wrong* EKU, not a missing one), SHA-256 leaf pins in addition
//! to or instead of a CA chain, and validity dates when only pins are configured.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use x509_parser::prelude::*;

use super::identity::Fingerprint;

fn bad_encoding() -> Error {
    Error::InvalidCertificate(CertificateError::BadEncoding)
}

/// Validity dates, for the pins-only mode where webpki does not run.
fn check_dates(cert: &X509Certificate<'_>, now: UnixTime) -> Result<(), Error> {
    let now = now.as_secs() as i64;
    if now < cert.validity().not_before.timestamp() {
        return Err(Error::InvalidCertificate(CertificateError::NotValidYet));
    }
    if now > cert.validity().not_after.timestamp() {
        return Err(Error::InvalidCertificate(CertificateError::Expired));
    }
    Ok(())
}

/// Every TLS suite we allow authenticates the peer by a signature, so a leaf whose Key Usage
/// extension is present but lacks digitalSignature may not be used (RFC 5280 4.2.1.3; an
/// absent extension places no restriction). webpki does not check Key Usage.
fn check_key_usage(cert: &X509Certificate<'_>) -> Result<(), Error> {
    match cert.key_usage() {
        Ok(Some(ku)) if !ku.value.digital_signature() => Err(Error::InvalidCertificate(
            CertificateError::Other(rustls::OtherError(Arc::new(KeyUsageError))),
        )),
        Ok(_) => Ok(()),
        Err(_) => Err(bad_encoding()),
    }
}

struct KeyUsageError;

impl std::fmt::Display for KeyUsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("certificate Key Usage does not allow digitalSignature")
    }
}

/// rustls shows `Other` errors with Debug: make that the readable text too (audit lines).
impl std::fmt::Debug for KeyUsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for KeyUsageError {}

fn check_pins(pins: &[Fingerprint], der: &[u8]) -> Result<(), Error> {
    if pins.is_empty() || pins.contains(&Fingerprint::of(der)) {
        Ok(())
    } else {
        Err(Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }
}

#[derive(Debug)]
pub(crate) struct ClientPolicy {
    pub chain: Option<Arc<dyn ClientCertVerifier>>,
    pub pins: Vec<Fingerprint>,
    pub provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for ClientPolicy {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        match &self.chain {
            Some(c) => c.root_hint_subjects(),
            None => &[],
        }
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let (_, cert) = X509Certificate::from_der(end_entity).map_err(|_| bad_encoding())?;
        match &self.chain {
            Some(chain) => {
                chain.verify_client_cert(end_entity, intermediates, now)?;
            }
            None => check_dates(&cert, now)?,
        }
        let has_client_auth = match cert.extended_key_usage() {
            Ok(Some(eku)) => eku.value.client_auth || eku.value.any,
            Ok(None) => false,
            Err(_) => return Err(bad_encoding()),
        };
        if !has_client_auth {
            return Err(Error::InvalidCertificate(
                CertificateError::InvalidPurposeContext {
                    required: rustls::ExtendedKeyPurpose::ClientAuth,
                    presented: Vec::new(),
                },
            ));
        }
        check_key_usage(&cert)?;

        check_pins(&self.pins, end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[derive(Debug)]
pub(crate) struct ServerPolicy {
    pub chain: Option<Arc<dyn ServerCertVerifier>>,
    pub pins: Vec<Fingerprint>,
    pub provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ServerPolicy {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match &self.chain {
            Some(chain) => {
                chain.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                )?;
            }
            None => {
                // Pins only: the pin names the exact certificate, so no name check (as
                // stunnel's verifyPeer); dates still apply.
                let (_, cert) =
                    X509Certificate::from_der(end_entity).map_err(|_| bad_encoding())?;
                check_dates(&cert, now)?;
                if self.pins.is_empty() {
                    return Err(Error::InvalidCertificate(
                        CertificateError::ApplicationVerificationFailure,
                    ));
                }
            }
        }
        let (_, cert) = X509Certificate::from_der(end_entity).map_err(|_| bad_encoding())?;
        check_key_usage(&cert)?;
        check_pins(&self.pins, end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
