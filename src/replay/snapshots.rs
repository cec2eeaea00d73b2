//! The last value of every market-data topic, for late joiners (zguide "Clone" pattern): the
//! current book built from W and X, the last quote, the last security status and the last
//! trade, each stamped with the topic's latest sequence number. A subscriber that applies a
//! snapshot and then the live updates after that number has the venue's current state.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

use crate::auth::TopicAcl;
use crate::envelope::{Envelope, VERSION};
use crate::normalize::book::Book;
use crate::normalize::{BookSnapshot, Event};

/// Most topics tracked: the sequencer's own topic bound keeps them far below this.
const MAX_TOPICS: usize = 100_000;

#[derive(Debug)]
struct TopicState {
    epoch: u64,
    seq: u64,
    received_ns: u64,
    venue: String,
    session: String,
    book: Option<(String, Option<String>, Book)>,
    last: Vec<Event>,
}

/// Shared between the publishing task (writer) and the replay endpoint (reader).
#[derive(Debug, Default)]
pub struct Snapshots {
    topics: Mutex<HashMap<String, TopicState>>,
}

/// Where the event came from, for the snapshot's envelope.
pub struct Stamp<'a> {
    pub epoch: u64,
    pub seq: u64,
    pub received_ns: u64,
    pub venue: &'a str,
    pub session: &'a str,
}

impl Snapshots {
    pub fn new() -> Self {
        Snapshots::default()
    }

    /// Folds one published `md.` event into its topic's state.
    pub fn record(&self, topic: &str, stamp: Stamp<'_>, event: &Event) {
        let Ok(mut topics) = self.topics.lock() else {
            return;
        };
        if !topics.contains_key(topic) && topics.len() >= MAX_TOPICS {
            return;
        }
        let st = topics
            .entry(topic.to_owned())
            .or_insert_with(|| TopicState {
                epoch: stamp.epoch,
                seq: 0,
                received_ns: 0,
                venue: String::new(),
                session: String::new(),
                book: None,
                last: Vec::new(),
            });
        if st.epoch != stamp.epoch {
            // The publisher restarted: what we held belongs to the old numbering.
            st.book = None;
            st.last.clear();
            st.epoch = stamp.epoch;
        }
        st.seq = stamp.seq;
        st.received_ns = stamp.received_ns;
        if st.venue != stamp.venue {
            st.venue = stamp.venue.to_owned();
        }
        if st.session != stamp.session {
            st.session = stamp.session.to_owned();
        }
        match event {
            Event::BookSnapshot(b) => {
                st.book = Some((
                    b.symbol.clone(),
                    b.md_req_id.clone(),
                    Book::from_snapshot(&b.entries),
                ));
            }
            Event::BookUpdate(u) => {
                let entry = st.book.get_or_insert_with(|| {
                    (u.symbol.clone(), u.md_req_id.clone(), Book::default())
                });
                entry.2.apply_all(&u.changes);
            }
            other => {
                let kind = other.kind();
                st.last.retain(|e| e.kind() != kind);
                st.last.push(other.clone());
            }
        }
    }

    /// The snapshot envelopes of every topic under `prefix` that `acl` grants, topic by topic:
    /// `(topic, envelope)` pairs, all of a topic's envelopes carrying its latest seq.
    pub fn matching(&self, prefix: &[u8], acl: &TopicAcl, max: usize) -> Vec<(String, Bytes)> {
        let Ok(topics) = self.topics.lock() else {
            return Vec::new();
        };
        let mut names: Vec<&String> = topics
            .keys()
            .filter(|t| t.as_bytes().starts_with(prefix) && acl.allows(t.as_bytes()))
            .collect();
        names.sort();
        let mut out = Vec::new();
        for t in names.into_iter().take(max) {
            let Some(st) = topics.get(t) else { continue };
            let mut events = Vec::new();
            if let Some((symbol, md_req_id, book)) = &st.book {
                events.push(Event::BookSnapshot(BookSnapshot {
                    symbol: symbol.clone(),
                    md_req_id: md_req_id.clone(),
                    entries: book.entries().to_vec(),
                }));
            }
            events.extend(st.last.iter().cloned());
            for event in events {
                let env = Envelope {
                    version: VERSION,
                    epoch: st.epoch,
                    seq: st.seq,
                    received_ns: st.received_ns,
                    venue: st.venue.clone(),
                    session: st.session.clone(),
                    fix_seq: None,
                    event,
                };
                if let Ok(b) = env.encode() {
                    out.push((t.clone(), Bytes::from(b)));
                }
            }
        }
        out
    }
}
