//! rustls `ClientConfig` for initiators, from [`ClientTlsSettings`].

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use super::config::ClientTlsSettings;
use super::verifier::ServerPolicy;
use super::{pem, provider, versions, TlsError};

/// Builds the initiator's TLS config, reading every file now.
pub fn build_client_config(s: &ClientTlsSettings) -> Result<Arc<ClientConfig>, TlsError> {
    s.validate()?;
    let provider = provider();
    let chain = match &s.ca {
        Some(ca) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(pem::roots(ca)?), provider.clone())
                .build()
                .map_err(|e| pem::material(ca, e.to_string()))?
                as Arc<dyn rustls::client::danger::ServerCertVerifier>,
        ),
        None => None,
    };
    let verifier = Arc::new(ServerPolicy {
        chain,
        pins: s.pins()?,
        provider: provider.clone(),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions(s.tls13_only))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let cfg = match &s.cert {
        Some(cert) => {
            let chain = pem::certs(cert)?;
            let key_path = s.key.as_deref().unwrap_or(cert);
            let key = pem::key(key_path)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| pem::material(key_path, e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// The name to verify the server against: `server_name` if set, else the host of `connect`
/// (`host:port`, `[v6]:port`).
pub fn server_name(s: &ClientTlsSettings, connect: &str) -> Result<ServerName<'static>, TlsError> {
    let host = match &s.server_name {
        Some(n) => n.clone(),
        None => host_of(connect).to_string(),
    };
    ServerName::try_from(host.clone())
        .map_err(|_| TlsError::Settings(format!("server name {host:?} is not a DNS name or IP")))
}

fn host_of(connect: &str) -> &str {
    if let Some(rest) = connect.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match connect.rsplit_once(':') {
        Some((h, _)) => h,
        None => connect,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_of_forms() {
        assert_eq!(super::host_of("fix.example:4490"), "fix.example");
        assert_eq!(super::host_of("[::1]:4490"), "::1");
        assert_eq!(super::host_of("127.0.0.1:1"), "127.0.0.1");
    }
}
