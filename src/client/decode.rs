//! Frames to typed updates with per-topic gap detection: the transport-independent half of
//! the subscriber, also used by `fixcurve sub`.

use bytes::Bytes;

use crate::envelope::{Envelope, GapDetector, SeqCheck};

/// One received, decoded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The ZeroMQ topic frame (`md.VENUE.SYMBOL`...).
    pub topic: String,
    pub envelope: Envelope,
}

/// What a subscriber sees, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// Boxed: an envelope is large next to the other variants, which are frequent too.
    Event(Box<Received>),
    /// `missing` messages on `topic` never arrived (first missing: `expected`). Reported just
    /// before the event that revealed the gap.
    Gap {
        topic: String,
        expected: u64,
        missing: u64,
    },
    /// The publisher restarted (new epoch): sequences on `topic` begin again.
    Restart { topic: String },
    /// Connected (or reconnected) to the publisher; subscriptions were (re)sent.
    Connected,
    /// Connection lost; the subscriber reconnects with back-off.
    Disconnected { reason: String },
    /// A message that is not a fixcurve envelope (wrong frame count, bad schema).
    Undecodable { topic: String, error: String },
}

/// Stateful decoder: feed it `[topic, payload]` frames, get updates.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    gaps: GapDetector,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// For a subscriber resuming `since` a per-topic seq: what is below it is already held.
    pub fn resuming(since: u64) -> Self {
        FrameDecoder {
            gaps: GapDetector::with_floor(since),
        }
    }

    /// Up to `max` topics seen, with the last sequence number of each.
    pub fn topics(&self, max: usize) -> Vec<(String, u64)> {
        self.gaps.topics(max)
    }

    /// An event applied from a snapshot valid at its seq: delivered as is, and live messages
    /// on its topic continue after that seq.
    pub fn push_snapshot(&mut self, topic: &str, payload: &[u8], out: &mut Vec<Update>) {
        match Envelope::decode(payload) {
            Ok(envelope) => {
                self.gaps
                    .mark(topic.as_bytes(), envelope.epoch, envelope.seq);
                out.push(Update::Event(Box::new(Received {
                    topic: topic.to_owned(),
                    envelope,
                })));
            }
            Err(e) => out.push(Update::Undecodable {
                topic: topic.to_owned(),
                error: e.to_string(),
            }),
        }
    }

    /// Decodes one message (its frames) into zero, one or two updates appended to `out`
    /// (a gap or restart report first, then the event). Duplicates are dropped.
    pub fn push(&mut self, frames: &[Bytes], out: &mut Vec<Update>) {
        let [topic, payload] = frames else {
            out.push(Update::Undecodable {
                topic: frames
                    .first()
                    .map(|t| String::from_utf8_lossy(t).into_owned())
                    .unwrap_or_default(),
                error: format!("expected 2 frames, got {}", frames.len()),
            });
            return;
        };
        let topic_s = String::from_utf8_lossy(topic).into_owned();
        // Boxed where it is decoded (see `Envelope::decode_with`); the topic goes in after.
        let boxed = Envelope::decode_with(payload, |envelope| {
            Box::new(Received {
                topic: String::new(),
                envelope,
            })
        });
        let mut received = match boxed {
            Ok(r) => r,
            Err(e) => {
                out.push(Update::Undecodable {
                    topic: topic_s,
                    error: e.to_string(),
                });
                return;
            }
        };
        match self
            .gaps
            .check(topic, received.envelope.epoch, received.envelope.seq)
        {
            SeqCheck::InOrder => {}
            SeqCheck::Duplicate => return,
            SeqCheck::Restart => out.push(Update::Restart {
                topic: topic_s.clone(),
            }),
            SeqCheck::Gap { expected, missing } => out.push(Update::Gap {
                topic: topic_s.clone(),
                expected,
                missing,
            }),
        }
        received.topic = topic_s;
        out.push(Update::Event(received));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::VERSION;
    use crate::normalize::{Event, TradingSessionStatus};

    fn frame(topic: &str, seq: u64, epoch: u64) -> Vec<Bytes> {
        let env = Envelope {
            version: VERSION,
            epoch,
            seq,
            received_ns: 1,
            venue: "V".into(),
            session: "A->B".into(),
            fix_seq: None,
            event: Event::TradingSessionStatus(TradingSessionStatus {
                trading_session_id: "D".into(),
                status: "2".into(),
                text: None,
            }),
        };
        vec![
            Bytes::from(topic.to_owned()),
            Bytes::from(env.encode().unwrap()),
        ]
    }

    #[test]
    fn gaps_restarts_duplicates_and_garbage() {
        let mut d = FrameDecoder::new();
        let mut out = Vec::new();
        d.push(&frame("t", 1, 1), &mut out);
        d.push(&frame("t", 2, 1), &mut out);
        d.push(&frame("t", 2, 1), &mut out);
        d.push(&frame("t", 5, 1), &mut out);
        d.push(&frame("t", 1, 2), &mut out);
        d.push(&[Bytes::from_static(b"x")], &mut out);
        d.push(
            &[Bytes::from_static(b"x"), Bytes::from_static(b"nope")],
            &mut out,
        );
        let shape: Vec<String> = out
            .iter()
            .map(|u| match u {
                Update::Event(r) => format!("ev{}", r.envelope.seq),
                Update::Gap {
                    expected, missing, ..
                } => format!("gap{expected}+{missing}"),
                Update::Restart { .. } => "restart".into(),
                Update::Undecodable { .. } => "bad".into(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            shape,
            ["ev1", "ev2", "gap3+2", "ev5", "restart", "ev1", "bad", "bad"]
        );
    }
}
