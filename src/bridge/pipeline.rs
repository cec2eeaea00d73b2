//! The sans-IO core of the daemon: FIX messages and session events in, `[topic, payload]`
//! frames out. One pipeline is owned by the publishing task, so per-topic sequence numbers
//! need no locking and rise by exactly one in publish order.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use crate::envelope::{Envelope, Sequencer, VERSION};
use crate::fix::Message;
use crate::journal::Journal;
use crate::metrics::{Registry, SessionCounters};
use crate::normalize::{Event, Normalized, Normalizer, SessionStatus};
use crate::replay::snapshots::{Snapshots, Stamp};

/// What the pipeline knows about the session a message came from.
#[derive(Clone)]
pub struct SessionCtx {
    pub normalizer: Normalizer,
    /// `OURS->THEIRS`.
    pub session: String,
    pub counters: Arc<SessionCounters>,
}

impl SessionCtx {
    pub fn new(venue: &str, session: &str, registry: &Registry) -> Self {
        SessionCtx {
            normalizer: Normalizer::new(venue),
            session: session.to_owned(),
            counters: registry.session(venue, session),
        }
    }
}

/// One message ready for the publisher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub topic: Bytes,
    pub payload: Bytes,
    /// The envelope's epoch and per-topic sequence number (its identity in a JetStream sink).
    pub epoch: u64,
    pub seq: u64,
    /// Number of the last journal record at or before this envelope (0: none).
    pub journal: u64,
}

pub struct Pipeline {
    /// Topics not journaled: numbered from 1 under this run's epoch.
    sequencer: Sequencer,
    /// Journaled topics: numbering and epoch continue from the journal across restarts.
    durable: Option<(Journal, Sequencer)>,
    /// Last values of `md.` topics for late joiners, when a replay endpoint serves them.
    snapshots: Option<Arc<Snapshots>>,
    registry: Arc<Registry>,
}

impl Pipeline {
    /// `epoch` tells subscribers a restart from a gap (use the start time in ns).
    pub fn new(epoch: u64, registry: Arc<Registry>) -> Self {
        Pipeline {
            sequencer: Sequencer::new(epoch),
            durable: None,
            snapshots: None,
            registry,
        }
    }

    /// With a journal: events on its topics are appended to it (and numbered on from it);
    /// executions it already holds (a venue resending after our crash) are dropped.
    pub fn with_journal(epoch: u64, journal: Journal, registry: Arc<Registry>) -> Self {
        let durable = Sequencer::resume(journal.epoch(), journal.last_seqs());
        Pipeline {
            sequencer: Sequencer::new(epoch),
            durable: Some((journal, durable)),
            snapshots: None,
            registry,
        }
    }

    pub fn epoch(&self) -> u64 {
        self.sequencer.epoch()
    }

    /// Keeps the last value of every `md.` topic in `snapshots`.
    pub fn with_snapshots(mut self, snapshots: Arc<Snapshots>) -> Self {
        self.snapshots = Some(snapshots);
        self
    }

    pub fn journal(&mut self) -> Option<&mut Journal> {
        self.durable.as_mut().map(|(j, _)| j)
    }

    /// An application message, with its events when its session normalized it already (as
    /// the daemon's sessions do, to refuse what they cannot read); normalized here otherwise.
    /// Errors are logged with the session and counted, never fatal.
    pub fn on_app(
        &mut self,
        ctx: &SessionCtx,
        msg: &Message,
        normalized: Option<Vec<Normalized>>,
        received_ns: u64,
        out: &mut Vec<Outgoing>,
    ) {
        let events = match normalized {
            Some(events) => Ok(events),
            None => ctx.normalizer.normalize_message(msg),
        };
        match events {
            Ok(events) => {
                let fix_seq = msg.seq_num();
                for n in events {
                    self.emit(ctx, n, fix_seq, received_ns, out);
                }
            }
            Err(e) => {
                ctx.counters
                    .normalize_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(venue = ctx.normalizer.venue(), session = %ctx.session, error = %e, "message not normalized");
            }
        }
    }

    /// A session status change (logon, logout, gap...), published on `status.<VENUE>`.
    pub fn on_status(
        &mut self,
        ctx: &SessionCtx,
        status: SessionStatus,
        received_ns: u64,
        out: &mut Vec<Outgoing>,
    ) {
        let n = ctx.normalizer.session_status(status);
        self.emit(ctx, n, None, received_ns, out);
    }

    fn emit(
        &mut self,
        ctx: &SessionCtx,
        n: Normalized,
        fix_seq: Option<u64>,
        received_ns: u64,
        out: &mut Vec<Outgoing>,
    ) {
        let journaled = match &mut self.durable {
            Some((j, _)) if j.config().journals(&n.topic) => {
                let key = match &n.event {
                    Event::Execution(e) => {
                        Some(format!("{}/{}", ctx.normalizer.venue(), e.exec_id))
                    }
                    _ => None,
                };
                if let Some(k) = &key {
                    if j.is_duplicate(k) {
                        ctx.counters
                            .duplicates_dropped
                            .fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
                Some(key)
            }
            _ => None,
        };
        let (sequencer, epoch) = match (&mut self.durable, &journaled) {
            (Some((j, seq)), Some(_)) => {
                let e = j.epoch();
                (seq, e)
            }
            _ => {
                let e = self.sequencer.epoch();
                (&mut self.sequencer, e)
            }
        };
        let seq = match sequencer.next(&n.topic) {
            Ok(s) => s,
            Err(e) => {
                self.registry.topics_refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(session = %ctx.session, error = %e, "event refused");
                return;
            }
        };
        let topic = n.topic;
        if let Some(snap) = &self.snapshots {
            if topic.starts_with("md.") {
                let stamp = Stamp {
                    epoch,
                    seq,
                    received_ns,
                    venue: ctx.normalizer.venue(),
                    session: &ctx.session,
                };
                snap.record(&topic, stamp, &n.event);
            }
        }
        let env = Envelope {
            version: VERSION,
            epoch,
            seq,
            received_ns,
            venue: ctx.normalizer.venue().to_owned(),
            session: ctx.session.clone(),
            fix_seq,
            event: n.event,
        };
        match env.encode() {
            Ok(payload) => {
                if let (Some((j, _)), Some(key)) = (&mut self.durable, &journaled) {
                    j.append(&topic, seq, key.as_deref(), &payload);
                }
                let journal = self
                    .durable
                    .as_ref()
                    .map(|(j, _)| j.last_number())
                    .unwrap_or(0);
                ctx.counters.events_out.fetch_add(1, Ordering::Relaxed);
                self.registry.published.fetch_add(1, Ordering::Relaxed);
                out.push(Outgoing {
                    topic: Bytes::from(topic.into_bytes()),
                    payload: Bytes::from(payload),
                    epoch,
                    seq,
                    journal,
                });
            }
            Err(e) => {
                tracing::error!(session = %ctx.session, error = %e, "envelope not encoded");
            }
        }
    }
}

pub use crate::clock::now_ns;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::codec::{Decoder, DecoderLimits, Encoder};
    use crate::fix::Field;
    use crate::normalize::{Event, SessionState};

    /// A framed, decoded message of type `msg_type` with the `|`-separated `body` fields.
    fn message(msg_type: &str, body: &str) -> Message {
        let fields: Vec<(u32, &[u8])> = body
            .split('|')
            .filter(|s| !s.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.parse().unwrap(), v.as_bytes())
            })
            .collect();
        let fields: Vec<Field<'_>> = fields.iter().map(|(t, v)| Field::new(*t, v)).collect();
        let mut d = Decoder::new(DecoderLimits::default());
        d.feed(&Encoder::new("FIX.4.4").to_vec(msg_type, &fields));
        d.decode_next().unwrap().unwrap()
    }

    /// A pipeline of `epoch` and the context of session `B->C` of venue `V`.
    fn pipeline(epoch: u64) -> (SessionCtx, Pipeline) {
        let reg = Registry::new();
        (
            SessionCtx::new("V", "B->C", &reg),
            Pipeline::new(epoch, reg),
        )
    }

    #[test]
    fn sequences_rise_per_topic_and_errors_are_counted() {
        let (ctx, mut p) = pipeline(77);
        let mut out = Vec::new();
        for (i, sym) in ["A", "B", "A", "A"].iter().enumerate() {
            let m = message("S", &format!("49=C|56=B|34={}|55={sym}|132=1.5|", i + 1));
            p.on_app(&ctx, &m, None, 1000 + i as u64, &mut out);
        }
        let bad = message("S", "49=C|56=B|34=9|");
        p.on_app(&ctx, &bad, None, 0, &mut out);
        p.on_status(
            &ctx,
            SessionStatus {
                state: SessionState::Logon,
                session: "B->C".into(),
                gap_from: None,
                gap_to: None,
                text: None,
            },
            5,
            &mut out,
        );
        let got: Vec<(String, u64, Option<u64>, u64)> = out
            .iter()
            .map(|o| {
                let e = Envelope::decode(&o.payload).unwrap();
                (
                    String::from_utf8(o.topic.to_vec()).unwrap(),
                    e.seq,
                    e.fix_seq,
                    e.epoch,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("md.V.A".into(), 1, Some(1), 77),
                ("md.V.B".into(), 1, Some(2), 77),
                ("md.V.A".into(), 2, Some(3), 77),
                ("md.V.A".into(), 3, Some(4), 77),
                ("status.V".into(), 1, None, 77),
            ]
        );
        let last = Envelope::decode(&out[4].payload).unwrap();
        assert!(matches!(last.event, Event::Session(_)));
        assert_eq!(ctx.counters.normalize_errors.load(Ordering::Relaxed), 1);
        assert_eq!(ctx.counters.events_out.load(Ordering::Relaxed), 5);
    }

    /// Events the session made are published as they are: the message is not read again
    /// (here they differ from what reading it would give).
    #[test]
    fn events_normalized_by_the_session_are_not_made_again() {
        let (ctx, mut p) = pipeline(1);
        let mut out = Vec::new();
        let m = message("S", "49=C|56=B|34=3|55=A|132=1.5|");
        let mut given = ctx.normalizer.normalize_message(&m).unwrap();
        given[0].topic = "md.V.GIVEN".into();
        p.on_app(&ctx, &m, Some(given), 0, &mut out);
        p.on_app(&ctx, &m, Some(Vec::new()), 0, &mut out);
        let topics: Vec<&[u8]> = out.iter().map(|o| &o.topic[..]).collect();
        assert_eq!(topics, vec![&b"md.V.GIVEN"[..]]);
        assert_eq!(Envelope::decode(&out[0].payload).unwrap().fix_seq, Some(3));
    }
}
