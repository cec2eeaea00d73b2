//! The stream: created with the settings the sink relies on when absent, checked when present
//! (a stream that would drop history, or does not capture our subjects, is refused with the
//! reason: retrying cannot fix it), and its end read back after a crash or an error.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use super::subject::JOURNAL_HEADER;
use super::NatsError;
use crate::config::NatsConnection;

/// What the stream holds last: where the sink resumes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamEnd {
    /// The stream's last sequence (0 when empty).
    pub last_seq: u64,
    /// `Nats-Msg-Id` of that message.
    pub last_msg_id: Option<String>,
    /// Its journal header: journal records up to here are in the stream.
    pub journal: u64,
    /// Whether that message is the stream's last (no foreign message after it).
    pub last_is_ours: bool,
}

/// Whether the stream subject filter `filter` captures every subject under `prefix`.
pub fn covers(filter: &str, prefix: &str) -> bool {
    let mut f = filter.split('.');
    for p in prefix.split('.') {
        match f.next() {
            Some(">") => return true,
            Some("*") => {}
            Some(t) if t == p => {}
            _ => return false,
        }
    }
    // After the prefix, our subjects have one or more tokens: only `>` captures them all.
    matches!((f.next(), f.next()), (Some(">"), None))
}

fn stream_err(cfg: &NatsConnection, reason: impl std::fmt::Display) -> NatsError {
    NatsError::Stream {
        stream: cfg.stream.clone(),
        reason: reason.to_string(),
    }
}

fn schema_err(cfg: &NatsConnection, reason: String) -> NatsError {
    NatsError::Schema {
        stream: cfg.stream.clone(),
        reason,
    }
}

/// Checks an existing stream's settings against what the sink and edges rely on (`owner`:
/// the bridge, whose configuration names the replicas).
pub fn check(cfg: &NatsConnection, c: &stream::Config, owner: bool) -> Result<(), NatsError> {
    if !c.subjects.iter().any(|s| covers(s, &cfg.subject_prefix)) {
        return Err(schema_err(
            cfg,
            format!(
                "captures {:?}, not `{}.>`: fix the stream or `subject_prefix`",
                c.subjects, cfg.subject_prefix
            ),
        ));
    }
    if c.retention != stream::RetentionPolicy::Limits {
        return Err(schema_err(
            cfg,
            format!(
                "retention is {:?}: messages would be deleted once consumed, edges need them kept (limits)",
                c.retention
            ),
        ));
    }
    if c.max_messages_per_subject > 0 {
        return Err(schema_err(
            cfg,
            format!(
                "keeps only {} message(s) per subject: replay needs every envelope",
                c.max_messages_per_subject
            ),
        ));
    }
    if c.duplicate_window < Duration::from_secs(1) {
        return Err(schema_err(
            cfg,
            "duplicate window under 1 s: envelopes resent after an error would be stored twice"
                .into(),
        ));
    }
    if owner && c.num_replicas != cfg.replicas {
        tracing::warn!(stream = %cfg.stream, configured = cfg.replicas, actual = c.num_replicas, "stream replicas differ from the configuration; keeping the stream's");
    }
    Ok(())
}

/// The stream, created when absent.
pub async fn ensure(
    js: &jetstream::Context,
    cfg: &NatsConnection,
) -> Result<stream::Stream, NatsError> {
    match js.get_stream(&cfg.stream).await {
        Ok(mut s) => {
            let info = s.info().await.map_err(|e| stream_err(cfg, e))?;
            check(cfg, &info.config, true)?;
            Ok(s)
        }
        Err(e)
            if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            let max_age =
                humantime::parse_duration(&cfg.max_age).map_err(|e| stream_err(cfg, e))?;
            let s = js
                .create_stream(stream::Config {
                    name: cfg.stream.clone(),
                    subjects: vec![format!("{}.>", cfg.subject_prefix)],
                    max_age,
                    num_replicas: cfg.replicas,
                    storage: stream::StorageType::File,
                    duplicate_window: Duration::from_secs(120),
                    allow_direct: true,
                    description: Some("fixcurve envelopes".into()),
                    ..Default::default()
                })
                .await
                .map_err(|e| stream_err(cfg, format!("cannot create: {e}")))?;
            tracing::info!(stream = %cfg.stream, replicas = cfg.replicas, "stream created");
            Ok(s)
        }
        Err(e) => Err(stream_err(cfg, e)),
    }
}

/// Messages looked at, newest first, for the last one a fixcurve sink wrote.
const LOOK_BACK: u64 = 1000;

/// The stream's last sequence, and the newest message a fixcurve sink wrote (its id and
/// journal header). Messages someone else published into our subjects are passed over (the
/// edges count and skip them); if none of the last `LOOK_BACK` is ours, the stream is not
/// ours: a schema error.
pub async fn end(s: &stream::Stream, cfg: &NatsConnection) -> Result<StreamEnd, NatsError> {
    let info = s.get_info().await.map_err(|e| stream_err(cfg, e))?;
    let last_seq = info.state.last_sequence;
    let first = info.state.first_sequence.max(1);
    if info.state.messages == 0 || last_seq == 0 {
        return Ok(StreamEnd {
            last_seq,
            ..Default::default()
        });
    }
    let mut seq = last_seq;
    let mut foreign = 0u64;
    while seq >= first && last_seq - seq < LOOK_BACK {
        let m = match s.get_raw_message(seq).await {
            Ok(m) => m,
            // Deleted (or retired meanwhile): look further back.
            Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => {
                seq -= 1;
                continue;
            }
            Err(e) => return Err(stream_err(cfg, format!("reading message {seq}: {e}"))),
        };
        // The standard name, not a string: parsed headers store it as a standard header,
        // and a lookup by string would miss it.
        let id = m
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str().trim().to_owned());
        // Header values read back from the stream keep the blank after the colon.
        let journal = m
            .headers
            .get(JOURNAL_HEADER)
            .and_then(|v| v.as_str().trim().parse::<u64>().ok());
        if let (Some(id), Some(journal)) = (id, journal) {
            if foreign > 0 {
                tracing::warn!(stream = %cfg.stream, foreign, "messages not written by a fixcurve bridge at the stream's end (edges skip them)");
            }
            return Ok(StreamEnd {
                last_seq,
                last_msg_id: Some(id),
                journal,
                last_is_ours: foreign == 0,
            });
        }
        foreign += 1;
        seq -= 1;
    }
    if foreign == 0 {
        return Ok(StreamEnd {
            last_seq,
            ..Default::default()
        });
    }
    Err(schema_err(
        cfg,
        format!(
            "none of its last {foreign} messages was written by a fixcurve bridge: another publisher owns these subjects"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn subject_filters_that_capture_the_prefix() {
        assert!(covers("fixcurve.>", "fixcurve"));
        assert!(covers(">", "fixcurve"));
        assert!(covers("*.>", "fixcurve"));
        assert!(covers("a.>", "a.b"));
        assert!(!covers("fixcurve.*", "fixcurve"));
        assert!(!covers("fixcurve.exec.>", "fixcurve"));
        assert!(!covers("other.>", "fixcurve"));
        assert!(!covers("fixcurve", "fixcurve"));
        assert!(!covers("fixcurve.>.x", "fixcurve"));
    }
}
