//! Routing of transport events, sans-IO: session events to counters and status events,
//! application messages through the pipeline. The daemon's publish loop feeds it; tests drive
//! it directly.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::pipeline::{Outgoing, Pipeline, SessionCtx};
use crate::fix::session::SessionEvent;
use crate::fix::transport::FixEvent;
use crate::metrics::Registry;
use crate::normalize::{SessionState, SessionStatus};

/// Totals reported at the end (and by `fixcurve demo`'s summary line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub fix_messages: u64,
    pub events_published: u64,
}

fn status(ctx: &SessionCtx, state: SessionState, text: Option<String>) -> SessionStatus {
    SessionStatus {
        state,
        session: ctx.session.clone(),
        gap_from: None,
        gap_to: None,
        text,
    }
}

/// Most sessions' contexts cached (bounded by configuration in practice).
const MAX_CTX: usize = 4096;

/// Sans-IO routing of transport events: session events to counters and status events,
/// application messages through the pipeline.
pub struct Router {
    pipeline: Pipeline,
    registry: Arc<Registry>,
    ctxs: HashMap<(Arc<str>, Arc<str>), SessionCtx>,
    pub totals: Totals,
}

impl Router {
    pub fn new(pipeline: Pipeline, registry: Arc<Registry>) -> Self {
        Router {
            pipeline,
            registry,
            ctxs: HashMap::new(),
            totals: Totals::default(),
        }
    }

    pub fn pipeline(&mut self) -> &mut Pipeline {
        &mut self.pipeline
    }

    /// Handles one transport event; frames to publish are appended to `out`.
    pub fn handle(&mut self, ev: FixEvent, out: &mut Vec<Outgoing>) {
        let Some(event) = ev.event else {
            return;
        };
        let before = out.len();
        let key = (ev.venue, ev.session);
        if self.ctxs.len() >= MAX_CTX && !self.ctxs.contains_key(&key) {
            self.ctxs.clear();
        }
        let registry = &self.registry;
        // One lookup, the key moved in: nothing is copied per message.
        let ctx = self
            .ctxs
            .entry(key)
            .or_insert_with_key(|k| SessionCtx::new(&k.0, &k.1, registry));
        let c = &ctx.counters;
        let pipeline = &mut self.pipeline;
        match event {
            SessionEvent::App { msg, normalized } => {
                c.messages_in.fetch_add(1, Ordering::Relaxed);
                self.totals.fix_messages += 1;
                pipeline.on_app(ctx, &msg, normalized, ev.received_ns, out);
            }
            SessionEvent::LoggedOn { .. } => {
                // A logon after an earlier one on this session is a reconnect.
                let state = if c.logons.fetch_add(1, Ordering::Relaxed) == 0 {
                    SessionState::Logon
                } else {
                    SessionState::Reconnect
                };
                c.logged_on.store(1, Ordering::Relaxed);
                let s = status(ctx, state, None);
                pipeline.on_status(ctx, s, ev.received_ns, out);
            }
            SessionEvent::LoggedOut { reason } => {
                c.logged_on.store(0, Ordering::Relaxed);
                let s = status(ctx, SessionState::Logout, Some(reason));
                pipeline.on_status(ctx, s, ev.received_ns, out);
            }
            SessionEvent::Disconnect { reason } => {
                // Only a connection lost while logged on is news; after a Logout it is not.
                let was_on = c.logged_on.swap(0, Ordering::Relaxed) == 1;
                if was_on {
                    let s = status(ctx, SessionState::Disconnect, Some(reason));
                    pipeline.on_status(ctx, s, ev.received_ns, out);
                }
            }
            SessionEvent::Gap { expected, received } => {
                c.gaps.fetch_add(1, Ordering::Relaxed);
                let mut s = status(ctx, SessionState::Gap, None);
                s.gap_from = Some(expected);
                s.gap_to = Some(received);
                pipeline.on_status(ctx, s, ev.received_ns, out);
            }
            SessionEvent::ResendRequested { .. } => {
                c.resends.fetch_add(1, Ordering::Relaxed);
            }
            SessionEvent::Garbled { .. } => {
                c.garbled.fetch_add(1, Ordering::Relaxed);
            }
            SessionEvent::RejectSent { .. } => {
                c.rejects_sent.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        self.totals.events_published += (out.len() - before) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;
    use crate::fix::codec::{Decoder, DecoderLimits, Encoder};
    use crate::fix::Field;
    use crate::normalize::Event;

    fn fe(event: SessionEvent) -> FixEvent {
        FixEvent {
            venue: "V".into(),
            session: "B->C".into(),
            event: Some(event),
            received_ns: 42,
            ack: None,
        }
    }

    fn logon() -> SessionEvent {
        SessionEvent::LoggedOn {
            username: None,
            password: None,
            heartbeat_secs: 30,
            reset_seq_num: false,
            default_appl_ver_id: None,
        }
    }

    fn quote() -> SessionEvent {
        let body = [
            Field::new(49, b"C"),
            Field::new(56, b"B"),
            Field::new(34, b"2"),
            Field::new(52, b"20240102-10:00:00.000"),
            Field::new(55, b"EUR/USD"),
            Field::new(132, b"1.10"),
        ];
        let mut d = Decoder::new(DecoderLimits::default());
        d.feed(&Encoder::new("FIX.4.4").to_vec("S", &body));
        SessionEvent::App {
            msg: d.decode_next().unwrap().unwrap(),
            normalized: None,
        }
    }

    fn decoded(out: &[Outgoing]) -> Vec<(String, u64, String)> {
        out.iter()
            .map(|o| {
                let e = Envelope::decode(&o.payload).unwrap();
                let what = match &e.event {
                    Event::Session(s) => serde_json::to_value(&s.state)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    other => other.kind().to_owned(),
                };
                (String::from_utf8(o.topic.to_vec()).unwrap(), e.seq, what)
            })
            .collect()
    }

    #[test]
    fn session_events_become_status_events_and_counters() {
        let reg = Registry::new();
        let mut r = Router::new(Pipeline::new(1, reg.clone()), reg.clone());
        let mut out = Vec::new();
        for ev in [
            logon(),
            quote(),
            SessionEvent::Gap {
                expected: 3,
                received: 7,
            },
            SessionEvent::ResendRequested { begin: 1, end: 0 },
            SessionEvent::Disconnect {
                reason: "reset".into(),
            },
            logon(),
            SessionEvent::LoggedOut {
                reason: "bye".into(),
            },
            SessionEvent::Disconnect {
                reason: "closed".into(),
            },
        ] {
            r.handle(fe(ev), &mut out);
        }
        assert_eq!(
            decoded(&out),
            [
                ("status.V".into(), 1, "logon".into()),
                ("md.V.EUR/USD".into(), 1, "quote".into()),
                ("status.V".into(), 2, "gap".into()),
                ("status.V".into(), 3, "disconnect".into()),
                ("status.V".into(), 4, "reconnect".into()),
                ("status.V".into(), 5, "logout".into()),
            ]
        );
        let gap = Envelope::decode(&out[2].payload).unwrap();
        let Event::Session(s) = gap.event else {
            panic!()
        };
        assert_eq!((s.gap_from, s.gap_to), (Some(3), Some(7)));
        let c = reg.session("V", "B->C");
        assert_eq!(c.messages_in.load(Ordering::Relaxed), 1);
        assert_eq!(c.gaps.load(Ordering::Relaxed), 1);
        assert_eq!(c.resends.load(Ordering::Relaxed), 1);
        assert_eq!(c.logons.load(Ordering::Relaxed), 2);
        assert_eq!(c.logged_on.load(Ordering::Relaxed), 0);
        assert_eq!(
            r.totals,
            Totals {
                fix_messages: 1,
                events_published: 6
            }
        );
    }
}
