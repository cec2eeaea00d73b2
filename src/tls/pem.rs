//! Reading certificates, keys and CRLs from files, with errors that name the file.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use super::TlsError;

/// Upper bound for any PEM/DER file we read: real chains and CRLs are far smaller, and a
/// bound keeps a wrong path (a log file, a device) from eating memory.
pub const MAX_FILE: u64 = 16 * 1024 * 1024;

pub fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    crate::keys::fsutil::read_bounded(path, MAX_FILE)
        .map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| material(path, "file larger than 16 MiB"))
}

/// Refuses a secret file that group or others may read, naming the fix.
pub(crate) fn private(path: &Path) -> Result<(), TlsError> {
    match crate::keys::fsutil::check_private(path) {
        Ok(()) => Ok(()),
        Err(crate::keys::fsutil::FsError::TooOpen { mode, .. }) => Err(material(
            path,
            format!(
                "holds a private key but is accessible by group or others (mode {mode:04o}); \
                 run `chmod 600 {}`",
                path.display()
            ),
        )),
        Err(crate::keys::fsutil::FsError::Io { source, .. }) => Err(TlsError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn material(path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::Material {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// All certificates in a PEM file, in file order. An empty result is an error.
pub fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let buf = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&buf)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| material(path, format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(material(path, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC). A key file (or a
/// combined certificate + key file) that group or others may read is refused, as ssh does.
pub fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    private(path)?;
    let buf = read(path)?;
    PrivateKeyDer::from_pem_slice(&buf).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => material(path, "no PRIVATE KEY block found"),
        other => material(path, format!("bad private key PEM: {other}")),
    })
}

/// CRLs from a file in PEM (one or more `X509 CRL` blocks) or DER.
pub fn crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let buf = read(path)?;
    if buf.first() == Some(&0x30) {
        return Ok(vec![CertificateRevocationListDer::from(buf)]);
    }
    let v = CertificateRevocationListDer::pem_slice_iter(&buf)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| material(path, format!("bad PEM: {e}")))?;
    if v.is_empty() {
        return Err(material(path, "no X509 CRL block found"));
    }
    Ok(v)
}

/// A root store from a PEM CA bundle; every certificate must be usable as a trust anchor.
pub fn roots(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    for c in certs(path)? {
        store
            .add(c)
            .map_err(|e| material(path, format!("unusable CA certificate: {e}")))?;
    }
    Ok(store)
}
