//! TLS settings as they appear in the configuration file. Paths are resolved against the
//! configuration file's folder by [`ServerTlsSettings::resolve`] / [`ClientTlsSettings::resolve`].

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::identity::Fingerprint;
use super::TlsError;

/// TLS on an acceptor (we are the TLS server, the counterparty presents a certificate).
///
/// Modes, from strictest: `client_ca` (+ optional `pinned_sha256`, both must pass: stunnel
/// `verifyChain` + `verifyPeer`); `pinned_sha256` alone (the certificate must be one of the
/// pins, chain not checked: stunnel `verifyPeer` only); neither (one-way TLS: no client
/// certificate is asked for, and sessions must authenticate with Logon Username/Password).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ServerTlsSettings {
    /// PEM certificate chain, leaf first. May also hold the private key.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1); defaults to the key inside `cert`.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// PEM bundle of CAs that client certificates must chain to.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// PEM or DER CRLs issued by the client CAs; a revoked client certificate is refused.
    #[serde(default)]
    pub crl: Vec<PathBuf>,
    /// SHA-256 fingerprints (hex, colons allowed, optional `sha256:` prefix) of accepted
    /// client leaf certificates.
    #[serde(default)]
    pub pinned_sha256: Vec<String>,
    /// Offer TLS 1.3 only.
    #[serde(default)]
    pub tls13_only: bool,
}

/// TLS on an initiator (we connect out, usually presenting a venue-issued certificate).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ClientTlsSettings {
    /// Our certificate chain (PEM); may be the combined certificate + key file venues hand
    /// out. Omit for one-way TLS.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Our private key, if not inside `cert`.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// PEM bundle of CAs the server must chain to.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Name checked against the server certificate (DNS name or IP); defaults to the host
    /// part of `connect`.
    #[serde(default)]
    pub server_name: Option<String>,
    /// SHA-256 fingerprints of accepted server leaf certificates (instead of, or in addition
    /// to, `ca`).
    #[serde(default)]
    pub pinned_sha256: Vec<String>,
    /// Offer TLS 1.3 only.
    #[serde(default)]
    pub tls13_only: bool,
}

fn join(base: &Path, p: &mut PathBuf) {
    if p.is_relative() {
        *p = base.join(&*p);
    }
}

impl ServerTlsSettings {
    /// Makes relative paths relative to `base` (the configuration file's folder).
    pub fn resolve(&mut self, base: &Path) {
        join(base, &mut self.cert);
        if let Some(k) = self.key.as_mut() {
            join(base, k);
        }
        if let Some(c) = self.client_ca.as_mut() {
            join(base, c);
        }
        for c in &mut self.crl {
            join(base, c);
        }
    }

    /// Whether client certificates are requested at all (else one-way TLS).
    pub fn mutual(&self) -> bool {
        self.client_ca.is_some() || !self.pinned_sha256.is_empty()
    }

    /// Parsed pins; a malformed pin is a configuration error naming it.
    pub fn pins(&self) -> Result<Vec<Fingerprint>, TlsError> {
        parse_pins(&self.pinned_sha256)
    }

    /// Every file whose change should trigger a reload.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let mut v = vec![self.cert.clone()];
        v.extend(self.key.clone());
        v.extend(self.client_ca.clone());
        v.extend(self.crl.iter().cloned());
        v
    }

    /// Static checks that need no file access.
    pub fn validate(&self) -> Result<(), TlsError> {
        self.pins()?;
        if !self.crl.is_empty() && self.client_ca.is_none() {
            return Err(TlsError::Settings(
                "`crl` needs `client_ca`: revocation is checked along a verified chain".into(),
            ));
        }
        Ok(())
    }
}

impl ClientTlsSettings {
    /// Makes relative paths relative to `base` (the configuration file's folder).
    pub fn resolve(&mut self, base: &Path) {
        for p in [&mut self.cert, &mut self.key, &mut self.ca]
            .into_iter()
            .flatten()
        {
            join(base, p);
        }
    }

    pub fn pins(&self) -> Result<Vec<Fingerprint>, TlsError> {
        parse_pins(&self.pinned_sha256)
    }

    pub fn watched_files(&self) -> Vec<PathBuf> {
        [&self.cert, &self.key, &self.ca]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    pub fn validate(&self) -> Result<(), TlsError> {
        let pins = self.pins()?;
        if self.ca.is_none() && pins.is_empty() {
            return Err(TlsError::Settings(
                "initiator TLS needs `ca` or `pinned_sha256` to verify the server".into(),
            ));
        }
        if self.key.is_some() && self.cert.is_none() {
            return Err(TlsError::Settings("`key` given without `cert`".into()));
        }
        Ok(())
    }
}

fn parse_pins(pins: &[String]) -> Result<Vec<Fingerprint>, TlsError> {
    pins.iter()
        .map(|p| {
            Fingerprint::parse(p).ok_or_else(|| {
                TlsError::Settings(format!(
                    "pinned_sha256 entry {p:?} is not 64 hex digits (colons and a `sha256:` prefix are allowed)"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deserializes_spec_shape_and_resolves_paths() {
        let s: ServerTlsSettings = toml::from_str(
            r#"cert = "certs/server.crt"
               key = "certs/server.key"
               client_ca = "/etc/ca.crt"
               crl = ["certs/ca.crl"]
               pinned_sha256 = ["AB:cd:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd"]"#,
        )
        .unwrap();
        let mut s2 = s.clone();
        s2.resolve(Path::new("/cfg"));
        assert_eq!(s2.cert, PathBuf::from("/cfg/certs/server.crt"));
        assert_eq!(s2.client_ca, Some(PathBuf::from("/etc/ca.crt")));
        assert_eq!(s2.crl, vec![PathBuf::from("/cfg/certs/ca.crl")]);
        assert!(s.mutual());
        assert_eq!(s.pins().unwrap().len(), 1);
    }

    #[test]
    fn bad_pin_is_named() {
        let s = ServerTlsSettings {
            pinned_sha256: vec!["xyz".into()],
            ..Default::default()
        };
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("\"xyz\""), "{e}");
    }

    #[test]
    fn initiator_needs_a_way_to_verify_the_server() {
        let c = ClientTlsSettings::default();
        assert!(c.validate().is_err());
        let c = ClientTlsSettings {
            ca: Some("ca.pem".into()),
            ..Default::default()
        };
        assert!(c.validate().is_ok());
    }
}
