//! rustls `ServerConfig` for acceptors, from [`ServerTlsSettings`].

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;

use super::config::ServerTlsSettings;
use super::verifier::ClientPolicy;
use super::{pem, provider, versions, TlsError};

/// Builds the acceptor's TLS config, reading every file now. Called at start-up and on each
/// reload; an error leaves the caller's current config in place.
pub fn build_server_config(s: &ServerTlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    s.validate()?;
    let provider = provider();
    let chain = pem::certs(&s.cert)?;
    let key = pem::key(s.key.as_deref().unwrap_or(&s.cert))?;

    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(s.tls13_only))?;
    let builder = match client_verifier(s)? {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| pem::material(s.key.as_deref().unwrap_or(&s.cert), e.to_string()))?;
    // FIX sessions are long-lived; resumption buys little and complicates identity checks.
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    Ok(Arc::new(cfg))
}

/// The client-certificate policy of an acceptor (chain to `client_ca` with its CRLs, pins,
/// EKU and key usage), reading the files now; `None` for one-way TLS. Also what established
/// sessions are checked against again after a reload.
pub fn client_verifier(
    s: &ServerTlsSettings,
) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, TlsError> {
    let provider = provider();
    let pins = s.pins()?;
    if !s.mutual() {
        return Ok(None);
    }
    {
        let chain_verifier = match &s.client_ca {
            Some(ca) => {
                let roots = Arc::new(pem::roots(ca)?);
                let mut crls = Vec::new();
                for path in &s.crl {
                    crls.extend(pem::crls(path)?);
                }
                let mut b = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
                if !crls.is_empty() {
                    // Strict: the leaf's issuer must have a CRL among those configured, and
                    // a CRL past its nextUpdate is not trusted (as openssl does).
                    b = b
                        .with_crls(crls)
                        .only_check_end_entity_revocation()
                        .enforce_revocation_expiration();
                }
                Some(b.build().map_err(|e| pem::material(ca, e.to_string()))?)
            }
            None => None,
        };
        Ok(Some(Arc::new(ClientPolicy {
            chain: chain_verifier,
            pins,
            provider: provider.clone(),
        })))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::tls::{build_client_config, build_server_config, ClientTlsSettings, PeerIdentity};
    use crate::tls::{Fingerprint, ServerTlsSettings};
    use crate::tools::certs_dev::{generate, DevOptions};

    /// One handshake over an in-memory pipe; returns the server's view of the client.
    async fn handshake(
        server: &ServerTlsSettings,
        client: &ClientTlsSettings,
    ) -> Result<Option<PeerIdentity>, String> {
        let scfg = build_server_config(server).map_err(|e| e.to_string())?;
        let ccfg = build_client_config(client).map_err(|e| e.to_string())?;
        let (a, b) = tokio::io::duplex(64 * 1024);
        let acceptor = tokio_rustls::TlsAcceptor::from(scfg);
        let connector = tokio_rustls::TlsConnector::from(ccfg);
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let srv = tokio::spawn(async move {
            let mut s = acceptor.accept(a).await.map_err(|e| e.to_string())?;
            let id = s
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| PeerIdentity::from_der(c));
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(id)
        });
        let cli = async move {
            let mut c = connector
                .connect(name, b)
                .await
                .map_err(|e| e.to_string())?;
            c.write_all(b"ping").await.map_err(|e| e.to_string())?;
            c.flush().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(c)
        };
        let c = cli.await;
        let s = srv.await.unwrap();
        drop(c);
        s
    }

    fn pki() -> (tempfile::TempDir, crate::tools::certs_dev::DevPki) {
        let d = tempfile::tempdir().unwrap();
        let p = generate(d.path(), &DevOptions::default()).unwrap();
        (d, p)
    }

    #[tokio::test]
    async fn mutual_tls_identifies_client_and_refuses_strangers() {
        let (_d, p) = pki();
        let (_d2, other) = pki();
        let server = ServerTlsSettings {
            cert: p.server_combined.clone(),
            client_ca: Some(p.ca.clone()),
            ..Default::default()
        };
        let client = ClientTlsSettings {
            cert: Some(p.client_combined.clone()),
            ca: Some(p.ca.clone()),
            ..Default::default()
        };
        let id = handshake(&server, &client).await.unwrap().unwrap();
        assert!(id.matches("client1"));

        // A client certificate from another CA.
        let stranger = ClientTlsSettings {
            cert: Some(other.client_combined.clone()),
            ..client.clone()
        };
        assert!(handshake(&server, &stranger).await.is_err());

        // No client certificate at all.
        let anonymous = ClientTlsSettings {
            cert: None,
            ..client.clone()
        };
        assert!(handshake(&server, &anonymous).await.is_err());

        // A server certificate used as a client certificate: EKU serverAuth only.
        let wrong_eku = ClientTlsSettings {
            cert: Some(p.server_combined.clone()),
            ..client.clone()
        };
        let e = handshake(&server, &wrong_eku).await.unwrap_err();
        assert!(!e.is_empty());
    }

    #[tokio::test]
    async fn pins_restrict_to_one_leaf_and_work_without_ca() {
        let (_d, p) = pki();
        let leaf1 = crate::tls::pem::certs(&p.client_cert).unwrap();
        let pin = Fingerprint::of(&leaf1[0]).to_string();
        let client1 = ClientTlsSettings {
            cert: Some(p.client_combined.clone()),
            ca: Some(p.ca.clone()),
            ..Default::default()
        };
        let client2 = ClientTlsSettings {
            cert: Some(p.client2_combined.clone()),
            ..client1.clone()
        };
        for ca in [Some(p.ca.clone()), None] {
            let server = ServerTlsSettings {
                cert: p.server_combined.clone(),
                client_ca: ca,
                pinned_sha256: vec![pin.clone()],
                ..Default::default()
            };
            assert!(handshake(&server, &client1).await.is_ok());
            assert!(handshake(&server, &client2).await.is_err());
        }
        // The initiator pinning the server instead of trusting a CA.
        let spin = Fingerprint::of(&crate::tls::pem::certs(&p.server_cert).unwrap()[0]);
        let server = ServerTlsSettings {
            cert: p.server_combined.clone(),
            client_ca: Some(p.ca.clone()),
            ..Default::default()
        };
        let pinned = ClientTlsSettings {
            ca: None,
            pinned_sha256: vec![spin.to_string()],
            ..client1.clone()
        };
        assert!(handshake(&server, &pinned).await.is_ok());
        let wrong_pin = ClientTlsSettings {
            pinned_sha256: vec![Fingerprint([7; 32]).to_string()],
            ..pinned
        };
        assert!(handshake(&server, &wrong_pin).await.is_err());
    }

    #[tokio::test]
    async fn tls13_only_refuses_a_tls12_client() {
        let (_d, p) = pki();
        let server = ServerTlsSettings {
            cert: p.server_combined.clone(),
            client_ca: Some(p.ca.clone()),
            tls13_only: true,
            ..Default::default()
        };
        let client = ClientTlsSettings {
            cert: Some(p.client_combined.clone()),
            ca: Some(p.ca.clone()),
            ..Default::default()
        };
        assert!(handshake(&server, &client).await.is_ok());
        // Hand-build a TLS 1.2-only client.
        let provider = crate::tls::provider();
        let roots = crate::tls::pem::roots(&p.ca).unwrap();
        let chain = crate::tls::pem::certs(&p.client_cert).unwrap();
        let key = crate::tls::pem::key(&p.client_key).unwrap();
        let c12 = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap();
        let scfg = build_server_config(&server).unwrap();
        let (a, b) = tokio::io::duplex(64 * 1024);
        let srv =
            tokio::spawn(async move { tokio_rustls::TlsAcceptor::from(scfg).accept(a).await });
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let r = tokio_rustls::TlsConnector::from(Arc::new(c12))
            .connect(name, b)
            .await;
        assert!(r.is_err());
        assert!(srv.await.unwrap().is_err());
    }
}
