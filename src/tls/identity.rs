//! Who is on the other end of a TLS connection: the names and fingerprint of the peer's leaf
//! certificate, and the match against a session's configured `tls_identity`.
//!
//! This is what stunnel in front of a FIX engine loses: here the Logon's CompIDs are checked
//! against the certificate that actually completed the handshake.

use std::fmt;

use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

/// SHA-256 of a certificate's DER encoding (what `openssl x509 -fingerprint -sha256` prints).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }

    /// Accepts `sha256:` prefix, colons, either case: the forms openssl and browsers print.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let s = s
            .strip_prefix("sha256:")
            .or_else(|| s.strip_prefix("SHA256:"))
            .unwrap_or(s);
        let hexed: String = s.chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(hexed).ok()?;
        Some(Fingerprint(bytes.try_into().ok()?))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The identity a verified peer certificate carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Subject common names (normally one).
    pub common_names: Vec<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    pub fingerprint: Fingerprint,
}

impl PeerIdentity {
    /// Extracts names from a leaf certificate. A certificate x509-parser cannot read still
    /// yields its fingerprint (rustls already verified it, if verification was configured).
    pub fn from_der(der: &[u8]) -> Self {
        let fingerprint = Fingerprint::of(der);
        let mut common_names = Vec::new();
        let mut dns_names = Vec::new();
        if let Ok((_, cert)) = X509Certificate::from_der(der) {
            for cn in cert.subject().iter_common_name() {
                if let Ok(s) = cn.as_str() {
                    common_names.push(s.to_string());
                }
            }
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                for n in &san.value.general_names {
                    if let GeneralName::DNSName(d) = n {
                        dns_names.push(d.to_string());
                    }
                }
            }
        }
        PeerIdentity {
            common_names,
            dns_names,
            fingerprint,
        }
    }

    /// Does this identity satisfy a session's `tls_identity`? `sha256:<hex>` pins the exact
    /// leaf; anything else must equal the subject CN or a DNS SAN (DNS names compare
    /// case-insensitively, CNs exactly; wildcards are not expanded: a binding names one
    /// counterparty).
    pub fn matches(&self, spec: &str) -> bool {
        let spec = spec.trim();
        if spec.len() > 7 && spec[..7].eq_ignore_ascii_case("sha256:") {
            return Fingerprint::parse(spec) == Some(self.fingerprint);
        }
        self.common_names.iter().any(|cn| cn == spec)
            || self.dns_names.iter().any(|d| d.eq_ignore_ascii_case(spec))
    }
}

impl fmt::Display for PeerIdentity {
    /// For audit lines: `CN=client1 sha256:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(cn) = self.common_names.first() {
            write!(f, "CN={cn} ")?;
        }
        write!(f, "{}", self.fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: &str, sans: &[&str]) -> Vec<u8> {
        let mut p =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let k = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&k).unwrap().der().to_vec()
    }

    #[test]
    fn matches_cn_san_and_fingerprint() {
        let der = cert("client1", &["Client1.Example"]);
        let id = PeerIdentity::from_der(&der);
        assert_eq!(id.common_names, vec!["client1"]);
        assert!(id.matches("client1"));
        assert!(id.matches("client1.example"));
        assert!(!id.matches("Client1"));
        assert!(!id.matches("client2"));
        let fp = hex::encode(Sha256::digest(&der));
        assert!(id.matches(&format!("sha256:{fp}")));
        assert!(id.matches(&format!("SHA256:{}", fp.to_uppercase())));
        let mut wrong = fp.into_bytes();
        wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
        assert!(!id.matches(&format!("sha256:{}", String::from_utf8(wrong).unwrap())));
        assert!(id.to_string().starts_with("CN=client1 sha256:"));
    }

    #[test]
    fn fingerprint_parse_forms() {
        let fp = Fingerprint([0xab; 32]);
        let colons = (0..32).map(|_| "AB").collect::<Vec<_>>().join(":");
        assert_eq!(Fingerprint::parse(&colons), Some(fp));
        assert_eq!(Fingerprint::parse(&fp.to_string()), Some(fp));
        assert_eq!(Fingerprint::parse("sha256:abcd"), None);
        assert_eq!(Fingerprint::parse("zz"), None);
    }
}
