//! ZPL certificate files: the `.key` / `.key_secret` pair that CZMQ's `zcert` and pyzmq's
//! `zmq.auth.create_certificates` write, so keys move freely between those tools and us.
//!
//! Both writers are accepted: CZMQ quotes every value and repeats the metadata in the public
//! file; pyzmq leaves metadata values unquoted and writes metadata only into the secret file.
//! We write the CZMQ form (quoted values), which both of them read back.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::fsutil::{self, FsError};
use super::{KeyError, Keypair, PublicKey, SecretKey};

/// A certificate is a few hundred bytes; anything far larger is not one.
pub const MAX_CERT_SIZE: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: larger than {MAX_CERT_SIZE} bytes, not a certificate")]
    TooLarge { path: PathBuf },
    #[error("{path}: not UTF-8 text")]
    NotText { path: PathBuf },
    #[error("{path}: no `{field}` in the `curve` section")]
    Missing { path: PathBuf, field: &'static str },
    #[error("{path}: `{field}`: {source}")]
    BadKey {
        path: PathBuf,
        field: &'static str,
        #[source]
        source: KeyError,
    },
    #[error("{path}: secret-key does not match public-key")]
    Mismatch { path: PathBuf },
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("metadata {0:?}: names are [A-Za-z0-9_-], values one line without quotes")]
    BadMetadata(String),
    #[error("key name {0:?}: use letters, digits, '.', '_' or '-' (no path separators)")]
    BadName(String),
}

/// What a public certificate says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicCert {
    pub key: PublicKey,
    /// Metadata `name`, if any.
    pub name: Option<String>,
    /// Metadata `topics`: comma-separated topic prefixes; `None` means all topics.
    pub topics: Option<Vec<String>>,
    /// Every metadata property, in file order.
    pub metadata: Vec<(String, String)>,
}

/// A parsed ZPL document reduced to what certificates use: `metadata` and `curve` sections.
#[derive(Default)]
struct Zpl {
    metadata: Vec<(String, String)>,
    curve: Vec<(String, String)>,
}

/// ZPL (ZeroMQ RFC 4) as certificates use it: a section name alone on an unindented line,
/// indented `name = value` properties under it, `#` comments, values optionally quoted.
fn parse_zpl(text: &str) -> Zpl {
    let mut zpl = Zpl::default();
    let mut section: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        if !indented {
            section = Some(trimmed.split_once('=').map_or(trimmed, |(n, _)| n.trim()));
            continue;
        }
        let Some((name, value)) = trimmed.split_once('=') else {
            continue; // a nested child section; certificates have none we use
        };
        let value = unquote(value.trim());
        let entry = (name.trim().to_string(), value.to_string());
        match section {
            Some("metadata") => zpl.metadata.push(entry),
            Some("curve") => zpl.curve.push(entry),
            _ => {}
        }
    }
    zpl
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

fn get<'a>(props: &'a [(String, String)], name: &str) -> Option<&'a str> {
    props
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Reads a file of at most `MAX_CERT_SIZE` bytes as text.
fn read_text(path: &Path) -> Result<String, CertError> {
    let bytes = fsutil::read_bounded(path, MAX_CERT_SIZE)
        .map_err(|source| CertError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| CertError::TooLarge {
            path: path.to_path_buf(),
        })?;
    String::from_utf8(bytes).map_err(|_| CertError::NotText {
        path: path.to_path_buf(),
    })
}

/// Parses public-certificate text (the part of `read_public` after reading the file).
pub fn parse_public(path: &Path, text: &str) -> Result<PublicCert, CertError> {
    let zpl = parse_zpl(text);
    let z85 = get(&zpl.curve, "public-key").ok_or_else(|| CertError::Missing {
        path: path.to_path_buf(),
        field: "public-key",
    })?;
    let key = PublicKey::from_z85(z85).map_err(|source| CertError::BadKey {
        path: path.to_path_buf(),
        field: "public-key",
        source,
    })?;
    let name = get(&zpl.metadata, "name")
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let topics = get(&zpl.metadata, "topics").map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    });
    Ok(PublicCert {
        key,
        name,
        topics,
        metadata: zpl.metadata,
    })
}

/// Reads a public certificate (a `.key` file; a `.key_secret` file works too).
pub fn read_public(path: &Path) -> Result<PublicCert, CertError> {
    parse_public(path, &read_text(path)?)
}

/// Reads a secret certificate. Refuses a file that group or others may read, as ssh does
/// with private keys, and a secret key that does not match the public key beside it.
pub fn read_secret(path: &Path) -> Result<Keypair, CertError> {
    fsutil::check_private(path)?;
    let text = read_text(path)?;
    let zpl = parse_zpl(&text);
    let z85 = get(&zpl.curve, "secret-key").ok_or_else(|| CertError::Missing {
        path: path.to_path_buf(),
        field: "secret-key",
    })?;
    let secret = SecretKey::from_z85(z85).map_err(|source| CertError::BadKey {
        path: path.to_path_buf(),
        field: "secret-key",
        source,
    })?;
    let keypair = Keypair::from_secret(secret);
    if let Some(public) = get(&zpl.curve, "public-key") {
        if PublicKey::from_z85(public).ok() != Some(keypair.public) {
            return Err(CertError::Mismatch {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(keypair)
}

/// A key name usable as a file stem.
pub fn check_name(name: &str) -> Result<(), CertError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(CertError::BadName(name.to_string()))
    }
}

fn check_metadata(metadata: &[(String, String)]) -> Result<(), CertError> {
    for (k, v) in metadata {
        let key_ok = !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        let value_ok = !v.chars().any(|c| c.is_control() || c == '"' || c == '\'');
        if !key_ok || !value_ok {
            return Err(CertError::BadMetadata(format!("{k} = {v}")));
        }
    }
    Ok(())
}

/// Certificate text as CZMQ writes it. `secret` adds the secret key (the `.key_secret` form).
pub fn render(
    public: &PublicKey,
    secret: Option<&SecretKey>,
    metadata: &[(String, String)],
) -> String {
    let stamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "#   ****  Generated on {stamp} by fixcurve  ****");
    if secret.is_some() {
        out.push_str("#   ZeroMQ CURVE **Secret** Certificate\n");
        out.push_str("#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n");
    } else {
        out.push_str("#   ZeroMQ CURVE Public Certificate\n");
        out.push_str("#   Exchange securely, or use a secure mechanism to verify the contents\n");
        out.push_str("#   of this file after exchange. Store public certificates in your home\n");
        out.push_str("#   directory, in the .curve subdirectory.\n");
    }
    out.push_str("\nmetadata\n");
    for (k, v) in metadata {
        let _ = writeln!(out, "    {k} = \"{v}\"");
    }
    out.push_str("curve\n");
    let _ = writeln!(out, "    public-key = \"{}\"", public.to_z85());
    if let Some(secret) = secret {
        let _ = writeln!(out, "    secret-key = \"{}\"", secret.to_z85());
    }
    out
}

/// Writes a public certificate atomically (mode 0644).
pub fn write_public(
    path: &Path,
    public: &PublicKey,
    metadata: &[(String, String)],
) -> Result<(), CertError> {
    check_metadata(metadata)?;
    fsutil::write_atomic(path, render(public, None, metadata).as_bytes(), 0o644)?;
    Ok(())
}

/// Writes `dir/NAME.key` (0644) and `dir/NAME.key_secret` (0600), each atomically; the
/// secret file is never visible with looser permissions, even for a moment.
pub fn write_keypair(
    dir: &Path,
    name: &str,
    keypair: &Keypair,
    metadata: &[(String, String)],
) -> Result<(PathBuf, PathBuf), CertError> {
    check_name(name)?;
    check_metadata(metadata)?;
    let public_path = dir.join(format!("{name}.key"));
    let secret_path = dir.join(format!("{name}.key_secret"));
    let secret_text =
        zeroize::Zeroizing::new(render(&keypair.public, Some(&keypair.secret), metadata));
    fsutil::write_atomic(&secret_path, secret_text.as_bytes(), 0o600)?;
    fsutil::write_atomic(
        &public_path,
        render(&keypair.public, None, metadata).as_bytes(),
        0o644,
    )?;
    Ok((public_path, secret_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exactly what pyzmq 27 `zmq.auth.create_certificates(d, "srv", metadata=...)` wrote.
    const PYZMQ_SECRET: &str = "#   ****  Generated on 2026-11-22 11:52:40.832930 by pyzmq  ****\n#   ZeroMQ CURVE **Secret** Certificate\n#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\nmetadata\n    name = alice\n    topics = md.,exec.\ncurve\n    public-key = \"{CEF*<e2]Zd:jW8bV5:G*b/Z7OEJ-NoB0UKl}pY*\"\n    secret-key = \"*]QVe801<A+s>1l3eEew!a8(-0#&KqEBGp3cxJ30\"\n";
    const PYZMQ_PUBLIC: &str = "#   ****  Generated on 2026-11-22 11:52:40.832930 by pyzmq  ****\n#   ZeroMQ CURVE Public Certificate\n#   Exchange securely, or use a secure mechanism to verify the contents\n#   of this file after exchange. Store public certificates in your home\n#   directory, in the .curve subdirectory.\n\nmetadata\ncurve\n    public-key = \"{CEF*<e2]Zd:jW8bV5:G*b/Z7OEJ-NoB0UKl}pY*\"\n";
    /// The CZMQ zcert layout (zcert_save_public): quoted metadata values, tab-free indent.
    const CZMQ_PUBLIC: &str = "#   ****  Generated on 2026-11-22 12:00:00 by CZMQ  ****\n#   ZeroMQ CURVE Public Certificate\n#   Exchange securely, or use a secure mechanism to verify the contents\n#   of this file after exchange. Store public certificates in your home\n#   directory, in the .curve subdirectory.\n\nmetadata\n    name = \"bob\"\n    topics = \"md.VENUE1.\"\ncurve\n    public-key = \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\"\n";

    #[test]
    fn reads_pyzmq_and_czmq() {
        let p = Path::new("x.key");
        let c = parse_public(p, PYZMQ_PUBLIC).unwrap();
        assert_eq!(c.key.to_z85(), "{CEF*<e2]Zd:jW8bV5:G*b/Z7OEJ-NoB0UKl}pY*");
        assert_eq!((c.name, c.topics), (None, None));
        let s = parse_public(p, PYZMQ_SECRET).unwrap();
        assert_eq!(s.name.as_deref(), Some("alice"));
        assert_eq!(s.topics, Some(vec!["md.".to_string(), "exec.".to_string()]));
        let z = parse_public(p, CZMQ_PUBLIC).unwrap();
        assert_eq!(z.name.as_deref(), Some("bob"));
        assert_eq!(z.topics, Some(vec!["md.VENUE1.".to_string()]));
    }

    #[test]
    fn secret_roundtrip_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let kp = Keypair::generate();
        let meta = vec![("name".to_string(), "carol".to_string())];
        let (public, secret) = write_keypair(dir.path(), "carol", &kp, &meta).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&public), mode(&secret)), (0o644, 0o600));
        assert_eq!(read_secret(&secret).unwrap().public, kp.public);
        let cert = read_public(&public).unwrap();
        assert_eq!((cert.key, cert.name.as_deref()), (kp.public, Some("carol")));
        // pyzmq's secret text loads once its mode is tightened.
        let py = dir.path().join("py.key_secret");
        std::fs::write(&py, PYZMQ_SECRET).unwrap();
        std::fs::set_permissions(&py, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_secret(&py).unwrap_err().to_string();
        assert!(
            err.contains("py.key_secret") && err.contains("644"),
            "{err}"
        );
        std::fs::set_permissions(&py, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_secret(&py).unwrap().public.to_z85(),
            "{CEF*<e2]Zd:jW8bV5:G*b/Z7OEJ-NoB0UKl}pY*"
        );
    }

    #[test]
    fn hostile_files() {
        let p = Path::new("h.key");
        assert!(matches!(
            parse_public(p, ""),
            Err(CertError::Missing { .. })
        ));
        assert!(matches!(
            parse_public(p, "curve\n    public-key = \"short\"\n"),
            Err(CertError::BadKey { .. })
        ));
        assert!(matches!(
            parse_public(p, "curve\n  = \n==\n\"\n"),
            Err(CertError::Missing { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.key");
        std::fs::write(&big, vec![b'#'; (MAX_CERT_SIZE + 1) as usize]).unwrap();
        assert!(matches!(read_public(&big), Err(CertError::TooLarge { .. })));
        let kp = Keypair::generate();
        assert!(write_keypair(dir.path(), "../evil", &kp, &[]).is_err());
        assert!(write_keypair(dir.path(), "ok", &kp, &[("name".into(), "a\"b".into())]).is_err());
    }
}
