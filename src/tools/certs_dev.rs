//! `fixcurve certs dev`: a throw-away development PKI — a CA, a server certificate for
//! localhost, client certificates (`client1`, and `client2` for binding tests) and the
//! combined certificate + key PEM venues hand out. Never for production.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// What to generate.
#[derive(Clone, Debug)]
pub struct DevOptions {
    /// RSA-2048 keys instead of ECDSA P-256 (QuickFIX 1.15 loads only RSA/DSA keys). RSA keys
    /// are generated with the `rsa` crate, because *ring* cannot generate RSA keys.
    pub rsa: bool,
    /// Validity of the leaf certificates.
    pub days: u32,
}

impl Default for DevOptions {
    fn default() -> Self {
        DevOptions {
            rsa: false,
            days: 365,
        }
    }
}

/// Paths of everything written. Keys are mode 0600.
#[derive(Clone, Debug)]
pub struct DevPki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// Server certificate followed by its key, in one file.
    pub server_combined: PathBuf,
    /// CN=client1, clientAuth.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// Client certificate followed by its key, in one file, as venues hand out.
    pub client_combined: PathBuf,
    /// CN=client2: a second, equally valid identity (for CompID-binding tests).
    pub client2_cert: PathBuf,
    pub client2_key: PathBuf,
    pub client2_combined: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("RSA key generation failed: {0}")]
    Rsa(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DevError + '_ {
    move |source| DevError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn new_key(rsa: bool) -> Result<KeyPair, DevError> {
    if !rsa {
        return Ok(KeyPair::generate()?);
    }
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
        .map_err(|e| DevError::Rsa(e.to_string()))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| DevError::Rsa(e.to_string()))?;
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(der.as_bytes());
    Ok(KeyPair::from_pkcs8_der_and_sign_algo(
        &der,
        &rcgen::PKCS_RSA_SHA256,
    )?)
}

/// Writes a file, with mode 0600 for secrets (created that way, never chmod-ed after).
fn write(path: &Path, data: &str, secret: bool) -> Result<(), DevError> {
    let _ = std::fs::remove_file(path);
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, if secret { 0o600 } else { 0o644 });
    let mut f = o.open(path).map_err(io(path))?;
    f.write_all(data.as_bytes()).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

fn validity(p: &mut CertificateParams, days: u32) {
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - Duration::from_secs(3600);
    p.not_after = now + Duration::from_secs(u64::from(days) * 86_400);
}

fn leaf(
    cn: &str,
    sans: Vec<SanType>,
    eku: ExtendedKeyUsagePurpose,
    days: u32,
) -> Result<CertificateParams, DevError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name
        .push(DnType::OrganizationName, "fixcurve dev");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.subject_alt_names = sans;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![eku];
    p.use_authority_key_identifier_extension = true;
    validity(&mut p, days);
    Ok(p)
}

/// Generates the PKI into `out` (created if missing; existing files are replaced).
pub fn generate(out: &Path, opts: &DevOptions) -> Result<DevPki, DevError> {
    std::fs::create_dir_all(out).map_err(io(out))?;

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "fixcurve dev");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "fixcurve development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut ca_params, opts.days.saturating_add(365));
    let ca_key = new_key(opts.rsa)?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let p = |name: &str| out.join(name);
    let pki = DevPki {
        dir: out.to_path_buf(),
        ca: p("ca.crt"),
        ca_key: p("ca.key"),
        server_cert: p("server.crt"),
        server_key: p("server.key"),
        server_combined: p("server.pem"),
        client_cert: p("client.crt"),
        client_key: p("client.key"),
        client_combined: p("client.pem"),
        client2_cert: p("client2.crt"),
        client2_key: p("client2.key"),
        client2_combined: p("client2.pem"),
    };
    write(&pki.ca, &ca_cert.pem(), false)?;
    write(&pki.ca_key, &ca_key_pem, true)?;

    let server = leaf(
        "localhost",
        vec![
            SanType::DnsName("localhost".try_into()?),
            SanType::IpAddress(
                "127.0.0.1"
                    .parse()
                    .map_err(|_| rcgen::Error::InvalidIpAddressOctetLength(0))?,
            ),
            SanType::IpAddress(
                "::1"
                    .parse()
                    .map_err(|_| rcgen::Error::InvalidIpAddressOctetLength(0))?,
            ),
        ],
        ExtendedKeyUsagePurpose::ServerAuth,
        opts.days,
    )?;
    let clients = [
        (
            "client1",
            &pki.client_cert,
            &pki.client_key,
            &pki.client_combined,
        ),
        (
            "client2",
            &pki.client2_cert,
            &pki.client2_key,
            &pki.client2_combined,
        ),
    ];
    let mut jobs: Vec<(CertificateParams, &PathBuf, &PathBuf, &PathBuf)> = vec![(
        server,
        &pki.server_cert,
        &pki.server_key,
        &pki.server_combined,
    )];
    for (cn, c, k, comb) in clients {
        jobs.push((
            leaf(
                cn,
                Vec::new(),
                ExtendedKeyUsagePurpose::ClientAuth,
                opts.days,
            )?,
            c,
            k,
            comb,
        ));
    }
    for (params, cert_path, key_path, combined_path) in jobs {
        let key = new_key(opts.rsa)?;
        let cert = params.signed_by(&key, &issuer)?;
        let key_pem = key.serialize_pem();
        write(cert_path, &cert.pem(), false)?;
        write(key_path, &key_pem, true)?;
        write(combined_path, &format!("{}{}", cert.pem(), key_pem), true)?;
    }
    Ok(pki)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_usable_pki_with_private_keys_0600() {
        check_usable(&DevOptions::default());
    }

    /// RSA keys (for QuickFIX): the key files are RSA and the chain still builds both ways.
    #[test]
    fn rsa_pki_is_rsa_and_usable() {
        let (_dir, pki) = check_usable(&DevOptions {
            rsa: true,
            ..Default::default()
        });
        let der = crate::tls::pem::certs(&pki.server_cert).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der[0]).unwrap();
        assert_eq!(
            cert.public_key().algorithm.algorithm,
            x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION
        );
    }

    fn check_usable(opts: &DevOptions) -> (tempfile::TempDir, DevPki) {
        let d = tempfile::tempdir().unwrap();
        let pki = generate(d.path(), opts).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for k in [
                &pki.ca_key,
                &pki.server_key,
                &pki.client_key,
                &pki.client_combined,
            ] {
                let mode = std::fs::metadata(k).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", k.display());
            }
        }
        let server = crate::tls::ServerTlsSettings {
            cert: pki.server_cert.clone(),
            key: Some(pki.server_key.clone()),
            client_ca: Some(pki.ca.clone()),
            ..Default::default()
        };
        crate::tls::build_server_config(&server).unwrap();
        let client = crate::tls::ClientTlsSettings {
            cert: Some(pki.client_combined.clone()),
            ca: Some(pki.ca.clone()),
            ..Default::default()
        };
        crate::tls::build_client_config(&client).unwrap();
        let der = crate::tls::pem::certs(&pki.client_cert).unwrap();
        let id = crate::tls::PeerIdentity::from_der(&der[0]);
        assert!(id.matches("client1"));
        (d, pki)
    }
}
