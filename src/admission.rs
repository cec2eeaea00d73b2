//! Decisions taken before any TLS or CURVE byte is read: the IP allow-list, the per-IP
//! connection cap and the cap on concurrent handshakes. All cheap, so a flood of unwanted
//! peers costs us an `accept` and a close, never a handshake. The TLS acceptors hold the
//! per-IP slot for the life of a connection; the CURVE publisher only until the handshake
//! ends, so that unauthenticated peers have their own budget, apart from subscribers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Accept backlog of every listening socket (the kernel clamps it to `net.core.somaxconn`).
/// The 128 that `TcpListener::bind` asks for overflows when a thousand subscribers reconnect
/// at once (a restart, an edge failover): each overflowing connection then waits for a
/// one-second SYN retransmit, which is what bounded the handshake rate, not the crypto.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a TCP listener with `LISTEN_BACKLOG` (first address that binds, as `bind` does).
pub async fn listen_tcp(
    addr: impl tokio::net::ToSocketAddrs,
) -> std::io::Result<tokio::net::TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(a) {
            Ok(()) => match socket.listen(LISTEN_BACKLOG) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            },
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    }))
}

/// CIDR allow-list (v4 and v6). Empty means every address is allowed.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct AllowList(pub Vec<IpNet>);

impl AllowList {
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        items
            .iter()
            .map(|s| {
                let s = s.as_ref().trim();
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("allow_ips entry {s:?} is not an IP address or CIDR"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(AllowList)
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.is_empty() || self.0.iter().any(|n| n.contains(&ip))
    }
}

/// `::ffff:a.b.c.d` (a v4 peer on a dual-stack socket) is matched as `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn default_per_ip() -> usize {
    16
}
fn default_handshakes() -> usize {
    64
}
fn default_handshake_ms() -> u64 {
    10_000
}

/// Limits on an acceptor; every field has a production default.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Simultaneous connections from one IP address.
    #[serde(default = "default_per_ip")]
    pub max_connections_per_ip: usize,
    /// TLS handshakes in progress at once on this listener; more are refused, not queued.
    #[serde(default = "default_handshakes")]
    pub max_concurrent_handshakes: usize,
    /// From TCP accept to the end of the TLS handshake.
    #[serde(default = "default_handshake_ms")]
    pub handshake_timeout_ms: u64,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections_per_ip: default_per_ip(),
            max_concurrent_handshakes: default_handshakes(),
            handshake_timeout_ms: default_handshake_ms(),
        }
    }
}

impl ConnectionLimits {
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
}

/// Why a connection was refused before TLS (for the audit line; never sent to the peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    NotAllowListed,
    TooManyFromIp,
    TooManyHandshakes,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NotAllowListed => "address not in allow_ips",
            Refusal::TooManyFromIp => "connections-per-IP cap reached",
            Refusal::TooManyHandshakes => "concurrent-handshake cap reached",
        }
    }

    /// A metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NotAllowListed => "allow_list",
            Refusal::TooManyFromIp => "per_ip_cap",
            Refusal::TooManyHandshakes => "handshake_cap",
        }
    }
}

/// The gate every accepted TCP connection passes through. Shared by the listener's tasks.
#[derive(Clone)]
pub struct PreHandshake {
    allow: AllowList,
    limits: ConnectionLimits,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    handshakes: Arc<Semaphore>,
}

/// Held for the life of a connection: releases its per-IP slot on drop.
pub struct IpSlot {
    ip: IpAddr,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.per_ip.lock() {
            if let Some(n) = m.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&self.ip);
                }
            }
        }
    }
}

/// Held while the TLS handshake runs.
pub type HandshakePermit = OwnedSemaphorePermit;

impl PreHandshake {
    pub fn new(allow: AllowList, limits: ConnectionLimits) -> Self {
        let handshakes = Arc::new(Semaphore::new(limits.max_concurrent_handshakes.max(1)));
        PreHandshake {
            allow,
            limits,
            per_ip: Arc::new(Mutex::new(HashMap::new())),
            handshakes,
        }
    }

    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// Admits a local (IPC) connection: no address to check, only the handshake cap.
    pub fn admit_local(&self) -> Result<HandshakePermit, Refusal> {
        self.handshakes
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::TooManyHandshakes)
    }

    /// Admits or refuses a fresh TCP connection from `ip`.
    pub fn admit(&self, ip: IpAddr) -> Result<(IpSlot, HandshakePermit), Refusal> {
        let ip = canonical(ip);
        if !self.allow.allows(ip) {
            return Err(Refusal::NotAllowListed);
        }
        let permit = self
            .handshakes
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::TooManyHandshakes)?;
        let mut m = self.per_ip.lock().map_err(|_| Refusal::TooManyHandshakes)?;
        let n = m.entry(ip).or_insert(0);
        if *n >= self.limits.max_connections_per_ip {
            return Err(Refusal::TooManyFromIp);
        }
        *n += 1;
        drop(m);
        Ok((
            IpSlot {
                ip,
                per_ip: self.per_ip.clone(),
            },
            permit,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listen_tcp_binds_v4_and_v6_and_refuses_a_taken_port() {
        for host in ["127.0.0.1:0", "[::1]:0"] {
            let l = listen_tcp(host).await.unwrap();
            let addr = l.local_addr().unwrap();
            let (client, accepted) = tokio::join!(tokio::net::TcpStream::connect(addr), l.accept());
            assert_eq!(accepted.unwrap().1, client.unwrap().local_addr().unwrap());
            let taken = listen_tcp(addr).await.unwrap_err();
            assert_eq!(taken.kind(), std::io::ErrorKind::AddrInUse, "{host}");
        }
    }

    #[test]
    fn allow_list_v4_v6_and_mapped() {
        let a = AllowList::parse(&["127.0.0.1/32", "::1", "10.0.0.0/8"]).unwrap();
        assert!(a.allows("127.0.0.1".parse().unwrap()));
        assert!(!a.allows("127.0.0.2".parse().unwrap()));
        assert!(a.allows("::1".parse().unwrap()));
        assert!(a.allows("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!a.allows("::2".parse().unwrap()));
        assert!(AllowList::default().allows("8.8.8.8".parse().unwrap()));
        let e = AllowList::parse(&["300.1.1.1/8"]).unwrap_err();
        assert!(e.contains("300.1.1.1/8"));
    }

    #[test]
    fn toml_shape() {
        #[derive(Deserialize)]
        struct T {
            allow_ips: AllowList,
        }
        let t: T = toml::from_str(r#"allow_ips = ["127.0.0.0/8", "::1/128"]"#).unwrap();
        assert_eq!(t.allow_ips.0.len(), 2);
    }

    #[test]
    fn caps_per_ip_and_handshakes() {
        let g = PreHandshake::new(
            AllowList::default(),
            ConnectionLimits {
                max_connections_per_ip: 2,
                max_concurrent_handshakes: 2,
                handshake_timeout_ms: 1,
            },
        );
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (s1, p1) = g.admit(ip).unwrap();
        drop(p1);
        let (s2, _p2) = g.admit(ip).unwrap();
        assert_eq!(g.admit(ip).err(), Some(Refusal::TooManyFromIp));
        drop(s1);
        let (_s3, _p3) = g.admit(ip).unwrap();
        // two handshakes in flight now
        assert_eq!(
            g.admit("127.0.0.9".parse().unwrap()).err(),
            Some(Refusal::TooManyHandshakes)
        );
        drop(s2);
    }
}
