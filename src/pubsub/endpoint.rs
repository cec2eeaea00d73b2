//! `tcp://host:port` and `ipc://path` endpoints, as libzmq spells them.

use std::path::PathBuf;

use super::PubSubError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Host (name or address, `*` = all interfaces) and port.
    Tcp(String, u16),
    Ipc(PathBuf),
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Self, PubSubError> {
        let bad = || PubSubError::BadEndpoint(s.to_string());
        if let Some(rest) = s.strip_prefix("tcp://") {
            let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
            let port: u16 = port.parse().map_err(|_| bad())?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return Err(bad());
            }
            let host = if host == "*" { "0.0.0.0" } else { host };
            Ok(Endpoint::Tcp(host.to_string(), port))
        } else if let Some(path) = s.strip_prefix("ipc://") {
            if path.is_empty() {
                return Err(bad());
            }
            Ok(Endpoint::Ipc(PathBuf::from(path)))
        } else {
            Err(bad())
        }
    }

    /// `host:port` for the resolver (IPv6 literals bracketed).
    pub fn host_port(&self) -> Option<String> {
        match self {
            Endpoint::Tcp(h, p) if h.contains(':') => Some(format!("[{h}]:{p}")),
            Endpoint::Tcp(h, p) => Some(format!("{h}:{p}")),
            Endpoint::Ipc(_) => None,
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(..) => write!(f, "tcp://{}", self.host_port().unwrap_or_default()),
            Endpoint::Ipc(p) => write!(f, "ipc://{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:0").unwrap(),
            Endpoint::Tcp("127.0.0.1".into(), 0)
        );
        assert_eq!(
            Endpoint::parse("tcp://*:5556").unwrap(),
            Endpoint::Tcp("0.0.0.0".into(), 5556)
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]:7").unwrap().to_string(),
            "tcp://[::1]:7"
        );
        assert_eq!(
            Endpoint::parse("ipc:///tmp/x.sock").unwrap(),
            Endpoint::Ipc("/tmp/x.sock".into())
        );
        for bad in [
            "udp://x:1",
            "tcp://x",
            "tcp://:1",
            "tcp://h:99999",
            "ipc://",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
