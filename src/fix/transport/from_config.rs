//! From the configuration file's `[[acceptor]]`, `[[initiator]]` and `[[session]]` tables to
//! transport configs, so `fixcurve run` and tools build them the same way.
//!
//! A session's `password_file` means two different things by role, both "a secret by path":
//! on an initiator session it holds the password we send in Logon (554), as the venue issued
//! it; on an acceptor session it holds the PBKDF2 hash the counterparty's password is checked
//! against (see [`super::credentials`]) — a plain password there is refused at start-up.

use std::time::Duration;

use super::credentials::{CredentialSettings, Credentials};
use super::{AcceptorConfig, InitiatorConfig, Reconnect, SessionBinding, TransportError};
use crate::config::{self, Config};
use crate::fix::session::{Role, SessionConfig};
use crate::tls::AllowList;

/// The session-layer config of one `[[session]]`.
/// Loads a session's data dictionary, if it names one (shared by identical paths).
fn dictionary(
    s: &config::Session,
) -> Result<Option<std::sync::Arc<crate::fix::dictionary::Dictionary>>, String> {
    let Some(p) = &s.data_dictionary else {
        return Ok(None);
    };
    let err = |key: &str, e: crate::fix::dictionary::DictionaryError| {
        format!("session {} {key}: {e}", s.id())
    };
    let mut d = crate::fix::dictionary::load(p).map_err(|e| err("data_dictionary", e))?;
    if let Some(app) = &s.app_data_dictionary {
        d = d.with_application(
            crate::fix::dictionary::load(app).map_err(|e| err("app_data_dictionary", e))?,
        );
    }
    Ok(Some(std::sync::Arc::new(d)))
}

pub fn session_config(s: &config::Session, role: Role) -> Result<SessionConfig, String> {
    let mut c = SessionConfig::new(
        s.begin_string.clone(),
        s.sender_comp_id.clone(),
        s.target_comp_id.clone(),
        role,
    );
    c.heartbeat_secs = s.heartbeat_secs;
    c.reset_on_logon = s.reset_on_logon;
    if s.default_appl_ver_id.is_some() {
        c.default_appl_ver_id = s.default_appl_ver_id.clone();
    }
    c.max_msgs_per_sec = (s.max_msgs_per_sec > 0).then_some(s.max_msgs_per_sec);
    c.inbound_sync_after = Duration::from_millis(s.inbound_sync_ms.into());
    // What the bridge consumes, validated before delivery: anything else gets the FIX
    // answer (BusinessMessageReject, Reject) instead of silence or a half-read publish.
    c.app_msg_types = Some(
        crate::normalize::MSG_TYPES
            .iter()
            .map(|t| (*t).to_owned())
            .collect(),
    );
    c.normalize_app = Some(crate::normalize::Normalizer::new(s.venue.clone()));
    c.schedule = s
        .schedule()
        .map_err(|e| format!("session {}: {e}", s.id()))?;
    c.reset_each_period = s.reset_each_period;
    Ok(c)
}

pub fn acceptor_config(
    cfg: &Config,
    a: &config::Acceptor,
) -> Result<AcceptorConfig, TransportError> {
    let name = format!("acceptor:{}", a.name);
    let bad = |reason: String| TransportError::Config {
        name: name.clone(),
        reason,
    };
    let allow_ips = AllowList::parse(&a.allow_ips).map_err(bad)?;
    let mut sessions = Vec::new();
    for s in cfg
        .session
        .iter()
        .filter(|s| s.acceptor.as_deref() == Some(&a.name))
    {
        let credentials = match (&s.username, &s.password_file) {
            (Some(u), Some(p)) => Some(
                Credentials::load(&CredentialSettings {
                    username: u.clone(),
                    password_hash_file: p.clone(),
                })
                .map_err(|e| bad(format!("session {}: {e}", s.id())))?,
            ),
            (None, None) => None,
            _ => {
                return Err(bad(format!(
                    "session {}: username and password_file go together",
                    s.id()
                )))
            }
        };
        let mut session = session_config(s, Role::Acceptor).map_err(bad)?;
        session.dictionary = dictionary(s).map_err(bad)?;
        sessions.push(SessionBinding {
            venue: s.venue.clone(),
            session,
            tls_identity: s.tls_identity.clone(),
            credentials,
        });
    }
    Ok(AcceptorConfig {
        name: a.name.clone(),
        listen: a.listen,
        tls: a.tls(),
        allow_ips,
        limits: a.limits(),
        sessions,
        logon_timeout: Duration::from_secs(10),
        read_ahead: cfg.sink.nats.is_none(),
    })
}

pub fn initiator_config(
    cfg: &Config,
    i: &config::Initiator,
) -> Result<InitiatorConfig, TransportError> {
    let name = format!("initiator:{}", i.name);
    let bad = |reason: String| TransportError::Config {
        name: name.clone(),
        reason,
    };
    let mut it = cfg
        .session
        .iter()
        .filter(|s| s.initiator.as_deref() == Some(&i.name));
    let s = it
        .next()
        .ok_or_else(|| bad("no [[session]] uses this initiator".into()))?;
    if it.next().is_some() {
        return Err(bad("one initiator carries one session".into()));
    }
    let mut session = session_config(s, Role::Initiator).map_err(bad)?;
    session.dictionary = dictionary(s).map_err(bad)?;
    session.username = s.username.clone();
    if let Some(p) = &s.password_file {
        crate::keys::fsutil::check_private(p).map_err(|e| bad(e.to_string()))?;
        let pw = std::fs::read_to_string(p).map_err(|e| bad(format!("{}: {e}", p.display())))?;
        let pw = zeroize::Zeroizing::new(pw);
        session.password = Some(crate::secret::Secret::new(
            pw.trim_end_matches(['\r', '\n']),
        ));
    }
    Ok(InitiatorConfig {
        name: i.name.clone(),
        connect: i.connect.clone(),
        tls: i.tls(),
        venue: s.venue.clone(),
        session,
        subscribe: s.subscribe.clone(),
        reconnect: Reconnect {
            min_ms: i.reconnect_min_ms,
            max_secs: i.reconnect_max_secs,
        },
        read_ahead: cfg.sink.nats.is_none(),
    })
}
