//! `fixcurve certs check`: the mTLS onboarding troubleshooting steps, automated. Each step
//! prints one line with a verdict, so an operator sees *which* step fails instead of a bare
//! "handshake failure": the chain file parses and is complete and ordered, the chain verifies
//! against the CA (`openssl verify`), the key matches the certificate (the "compare modulus
//! md5" step, for RSA, EC and Ed25519 alike), expiry with days left, key usage and EKU,
//! revocation by CRL, and the host/IP match.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::*;

use crate::tls::pem;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        })
    }
}

/// One line of the report.
#[derive(Clone, Debug)]
pub struct Check {
    pub step: &'static str,
    pub verdict: Verdict,
    pub detail: String,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4}  {:<10} {}", self.verdict, self.step, self.detail)
    }
}

/// Inputs, as on the command line.
#[derive(Clone, Debug, Default)]
pub struct CheckInput {
    pub cert: PathBuf,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub crl: Option<PathBuf>,
    pub host: Option<String>,
}

struct Report(Vec<Check>);

impl Report {
    fn push(&mut self, step: &'static str, verdict: Verdict, detail: impl Into<String>) {
        self.0.push(Check {
            step,
            verdict,
            detail: detail.into(),
        });
    }
}

fn name_of(c: &X509Certificate<'_>) -> String {
    c.subject().to_string()
}

/// Runs every step; never panics on hostile files (each failure becomes a FAIL line).
pub fn check(input: &CheckInput, now: UnixTime) -> Vec<Check> {
    let mut r = Report(Vec::new());
    let chain = match pem::certs(&input.cert) {
        Ok(c) => c,
        Err(e) => {
            r.push("parse", Verdict::Fail, e.to_string());
            return r.0;
        }
    };
    let parsed: Vec<X509Certificate<'_>> = match chain
        .iter()
        .map(|d| X509Certificate::from_der(d).map(|(_, c)| c))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(p) => p,
        Err(e) => {
            r.push(
                "parse",
                Verdict::Fail,
                format!("{}: {e}", input.cert.display()),
            );
            return r.0;
        }
    };
    let Some(leaf) = parsed.first() else {
        r.push("parse", Verdict::Fail, "no certificate");
        return r.0;
    };
    r.push(
        "parse",
        Verdict::Pass,
        format!(
            "{} certificate(s); leaf subject {}, issuer {}",
            parsed.len(),
            name_of(leaf),
            leaf.issuer()
        ),
    );

    let ca_certs: Option<Vec<CertificateDer<'static>>> = match &input.ca {
        Some(ca) => match pem::certs(ca) {
            Ok(c) => Some(c),
            Err(e) => {
                r.push("ca", Verdict::Fail, e.to_string());
                None
            }
        },
        None => None,
    };
    let ca_parsed: Vec<X509Certificate<'_>> = ca_certs
        .iter()
        .flatten()
        .filter_map(|d| X509Certificate::from_der(d).ok().map(|(_, c)| c))
        .collect();

    key_step(&mut r, input, &chain);
    order_step(&mut r, &parsed, &ca_parsed, input.ca.is_some());
    chain_step(&mut r, input, &chain, ca_certs.as_deref(), leaf, now);
    expiry_step(&mut r, &parsed, now);
    usage_step(&mut r, leaf);
    crl_step(&mut r, input, leaf, &ca_parsed, &parsed, now);
    host_step(&mut r, input, &chain);
    r.0
}

fn key_step(r: &mut Report, input: &CheckInput, chain: &[CertificateDer<'static>]) {
    // The key may sit in the certificate file (combined PEM, as venues hand out).
    let key_path: &Path = input.key.as_deref().unwrap_or(&input.cert);
    let key = match pem::key(key_path) {
        Ok(k) => k,
        Err(e) => {
            if input.key.is_some() {
                r.push("key", Verdict::Fail, e.to_string());
            } else {
                r.push(
                    "key",
                    Verdict::Skip,
                    "no --key given and none in the certificate file",
                );
            }
            return;
        }
    };
    let signer = match rustls::crypto::ring::sign::any_supported_type(&key) {
        Ok(s) => s,
        Err(e) => {
            r.push(
                "key",
                Verdict::Fail,
                format!("{}: unusable key: {e}", key_path.display()),
            );
            return;
        }
    };
    let ck = rustls::sign::CertifiedKey::new(chain.to_vec(), signer);
    match ck.keys_match() {
        Ok(()) => r.push(
            "key",
            Verdict::Pass,
            format!(
                "{} matches the certificate's public key",
                key_path.display()
            ),
        ),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => r.push(
            "key",
            Verdict::Fail,
            format!(
                "{} does NOT match the certificate (wrong key file)",
                key_path.display()
            ),
        ),
        Err(e) => r.push("key", Verdict::Warn, format!("cannot compare: {e}")),
    }
}

fn signed_by(child: &X509Certificate<'_>, parent: &X509Certificate<'_>) -> bool {
    child.issuer() == parent.subject() && child.verify_signature(Some(parent.public_key())).is_ok()
}

fn self_signed(c: &X509Certificate<'_>) -> bool {
    c.issuer() == c.subject() && c.verify_signature(None).is_ok()
}

fn order_step(
    r: &mut Report,
    parsed: &[X509Certificate<'_>],
    ca: &[X509Certificate<'_>],
    have_ca: bool,
) {
    for (i, pair) in parsed.windows(2).enumerate() {
        if let [child, parent] = pair {
            if !signed_by(child, parent) {
                r.push(
                    "order",
                    Verdict::Fail,
                    format!(
                        "certificate #{} ({}) is not issued by the next one #{} ({}): the chain file must go leaf first, then each issuer",
                        i + 1,
                        name_of(child),
                        i + 2,
                        name_of(parent)
                    ),
                );
                return;
            }
        }
    }
    let Some(last) = parsed.last() else { return };
    if self_signed(last) {
        r.push(
            "order",
            Verdict::Pass,
            "ordered; ends with a self-signed root",
        );
    } else if ca.iter().any(|a| signed_by(last, a)) {
        r.push(
            "order",
            Verdict::Pass,
            "ordered and complete up to a CA in the bundle",
        );
    } else if have_ca {
        r.push(
            "order",
            Verdict::Fail,
            format!(
                "incomplete chain: the issuer of {} ({}) is neither in the certificate file nor in the CA bundle (add the intermediate certificate after the leaf)",
                name_of(last),
                last.issuer()
            ),
        );
    } else {
        r.push("order", Verdict::Skip, "ordered; completeness needs --ca");
    }
}

fn chain_step(
    r: &mut Report,
    input: &CheckInput,
    chain: &[CertificateDer<'static>],
    ca: Option<&[CertificateDer<'static>]>,
    leaf: &X509Certificate<'_>,
    now: UnixTime,
) {
    let Some(ca) = ca else {
        r.push("chain", Verdict::Skip, "no --ca given");
        return;
    };
    let anchors: Vec<_> = ca
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .collect();
    let Some(leaf_der) = chain.first() else {
        return;
    };
    let ee = match webpki::EndEntityCert::try_from(leaf_der) {
        Ok(e) => e,
        Err(e) => {
            r.push("chain", Verdict::Fail, format!("leaf not usable: {e}"));
            return;
        }
    };
    // Intermediates may come from the certificate file or the CA bundle.
    let mut inter: Vec<CertificateDer<'_>> = chain.iter().skip(1).cloned().collect();
    inter.extend(ca.iter().cloned());
    let server = leaf
        .extended_key_usage()
        .ok()
        .flatten()
        .map(|e| e.value.server_auth && !e.value.client_auth)
        .unwrap_or(false);
    let usage = if server {
        webpki::KeyUsage::server_auth()
    } else {
        webpki::KeyUsage::client_auth()
    };
    let ca_name = input
        .ca
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    match ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &inter,
        now,
        usage,
        None,
        None,
    ) {
        Ok(_) => r.push(
            "chain",
            Verdict::Pass,
            format!("verifies against {ca_name}"),
        ),
        Err(e) => r.push(
            "chain",
            Verdict::Fail,
            format!("does not verify against {ca_name}: {e:?}"),
        ),
    }
}

fn expiry_step(r: &mut Report, parsed: &[X509Certificate<'_>], now: UnixTime) {
    let now = now.as_secs() as i64;
    let mut worst = Verdict::Pass;
    let mut details = Vec::new();
    for (i, c) in parsed.iter().enumerate() {
        let nb = c.validity().not_before.timestamp();
        let na = c.validity().not_after.timestamp();
        let what = if i == 0 {
            "leaf".to_string()
        } else {
            format!("#{}", i + 1)
        };
        if now < nb {
            worst = Verdict::Fail;
            details.push(format!(
                "{what} not valid until {}",
                c.validity().not_before
            ));
        } else if now > na {
            worst = Verdict::Fail;
            details.push(format!(
                "{what} EXPIRED {} ({} days ago)",
                c.validity().not_after,
                (now - na) / 86_400
            ));
        } else {
            let left = (na - now) / 86_400;
            if left < 30 && worst == Verdict::Pass {
                worst = Verdict::Warn;
            }
            details.push(format!(
                "{what} valid until {} ({left} days left)",
                c.validity().not_after
            ));
        }
    }
    r.push("expiry", worst, details.join("; "));
}

fn usage_step(r: &mut Report, leaf: &X509Certificate<'_>) {
    let mut names = Vec::new();
    let mut verdict = Verdict::Pass;
    match leaf.key_usage() {
        Ok(Some(ku)) => {
            names.push(format!("keyUsage: {}", ku.value));
            if !ku.value.digital_signature() {
                verdict = Verdict::Fail;
                names.push("(digitalSignature missing: TLS needs it)".into());
            }
        }
        Ok(None) => names.push("keyUsage: none".into()),
        Err(e) => {
            r.push(
                "usage",
                Verdict::Fail,
                format!("bad keyUsage extension: {e}"),
            );
            return;
        }
    }
    match leaf.extended_key_usage() {
        Ok(Some(eku)) => {
            let e = &eku.value;
            let mut l = Vec::new();
            if e.server_auth {
                l.push("serverAuth");
            }
            if e.client_auth {
                l.push("clientAuth");
            }
            if e.code_signing {
                l.push("codeSigning");
            }
            if e.email_protection {
                l.push("emailProtection");
            }
            if e.any {
                l.push("any");
            }
            if !e.other.is_empty() {
                l.push("other");
            }
            names.push(format!("EKU: {}", l.join(",")));
            if !(e.server_auth || e.client_auth || e.any) {
                verdict = Verdict::Fail;
                names.push("(neither serverAuth nor clientAuth: unusable for TLS)".into());
            }
        }
        Ok(None) => {
            if verdict == Verdict::Pass {
                verdict = Verdict::Warn;
            }
            names.push("EKU: none (fixcurve acceptors require clientAuth)".into());
        }
        Err(e) => {
            r.push("usage", Verdict::Fail, format!("bad EKU extension: {e}"));
            return;
        }
    }
    r.push("usage", verdict, names.join(" "));
}

fn crl_step(
    r: &mut Report,
    input: &CheckInput,
    leaf: &X509Certificate<'_>,
    ca: &[X509Certificate<'_>],
    chain: &[X509Certificate<'_>],
    now: UnixTime,
) {
    let Some(path) = &input.crl else {
        r.push("revocation", Verdict::Skip, "no --crl given");
        return;
    };
    let crls = match pem::crls(path) {
        Ok(c) => c,
        Err(e) => {
            r.push("revocation", Verdict::Fail, e.to_string());
            return;
        }
    };
    let now = now.as_secs() as i64;
    for der in &crls {
        let Ok((_, crl)) = CertificateRevocationList::from_der(der) else {
            r.push(
                "revocation",
                Verdict::Fail,
                format!("{}: unparsable CRL", path.display()),
            );
            return;
        };
        if crl.issuer() != leaf.issuer() {
            continue;
        }
        let issuer = ca
            .iter()
            .chain(chain.iter().skip(1))
            .find(|c| c.subject() == crl.issuer());
        match issuer {
            Some(i) if crl.verify_signature(i.public_key()).is_err() => {
                r.push(
                    "revocation",
                    Verdict::Fail,
                    "CRL signature does not verify with its issuer",
                );
                return;
            }
            None => {
                r.push(
                    "revocation",
                    Verdict::Warn,
                    "CRL issuer certificate not available (--ca): signature unchecked",
                );
            }
            _ => {}
        }
        if let Some(next) = crl.next_update() {
            if next.timestamp() < now {
                r.push(
                    "revocation",
                    Verdict::Fail,
                    format!("CRL expired (nextUpdate {next})"),
                );
                return;
            }
        }
        let serial = leaf.raw_serial();
        if let Some(rev) = crl
            .iter_revoked_certificates()
            .find(|rc| rc.raw_serial() == serial)
        {
            r.push(
                "revocation",
                Verdict::Fail,
                format!(
                    "REVOKED: serial {} on {}",
                    leaf.raw_serial_as_string(),
                    rev.revocation_date
                ),
            );
        } else {
            r.push(
                "revocation",
                Verdict::Pass,
                format!(
                    "serial {} not in the CRL ({} entries)",
                    leaf.raw_serial_as_string(),
                    crl.iter_revoked_certificates().count()
                ),
            );
        }
        return;
    }
    r.push(
        "revocation",
        Verdict::Fail,
        format!(
            "no CRL in {} is issued by {}",
            path.display(),
            leaf.issuer()
        ),
    );
}

fn host_step(r: &mut Report, input: &CheckInput, chain: &[CertificateDer<'static>]) {
    let Some(host) = &input.host else {
        r.push("host", Verdict::Skip, "no --host given");
        return;
    };
    let (Some(leaf), Ok(name)) = (chain.first(), ServerName::try_from(host.as_str())) else {
        r.push(
            "host",
            Verdict::Fail,
            format!("{host:?} is not a DNS name or IP address"),
        );
        return;
    };
    let ok = webpki::EndEntityCert::try_from(leaf)
        .map(|ee| ee.verify_is_valid_for_subject_name(&name).is_ok())
        .unwrap_or(false);
    if ok {
        r.push("host", Verdict::Pass, format!("valid for {host}"));
    } else {
        r.push(
            "host",
            Verdict::Fail,
            format!("NOT valid for {host} (subjectAltName mismatch)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_pki_passes_every_step_and_wrong_key_fails() {
        let d = tempfile::tempdir().unwrap();
        let p = crate::tools::certs_dev::generate(d.path(), &Default::default()).unwrap();
        let now = UnixTime::now();
        let checks = check(
            &CheckInput {
                cert: p.server_cert.clone(),
                key: Some(p.server_key.clone()),
                ca: Some(p.ca.clone()),
                crl: None,
                host: Some("127.0.0.1".into()),
            },
            now,
        );
        for c in &checks {
            assert!(matches!(c.verdict, Verdict::Pass | Verdict::Skip), "{c}");
        }
        let checks = check(
            &CheckInput {
                cert: p.client_combined.clone(),
                key: Some(p.client2_key.clone()),
                ca: Some(p.ca.clone()),
                host: Some("example.org".into()),
                ..Default::default()
            },
            now,
        );
        let fails: Vec<_> = checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| c.step)
            .collect();
        assert_eq!(fails, vec!["key", "host"], "{checks:?}");
    }

    #[test]
    fn garbage_file_is_one_fail_line() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x.pem");
        std::fs::write(
            &f,
            b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let checks = check(
            &CheckInput {
                cert: f,
                ..Default::default()
            },
            UnixTime::now(),
        );
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].verdict, Verdict::Fail);
    }
}
