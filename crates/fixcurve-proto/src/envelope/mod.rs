//! The MessagePack envelope every published payload is wrapped in (schema version 1).
//!
//! A map with named fields, so any msgpack library decodes it without our code, and new
//! optional fields can be added without breaking old readers (a breaking change bumps
//! `version`). Decimals are exact strings. The field names are the contract in the README's
//! "Wire schema" section and are pinned by a test.
//!
//! ```text
//! version      u32     schema version, 1
//! epoch        u64     publisher start time (ns); a new epoch restarts every sequence at 1
//! seq          u64     per-topic sequence, rises by exactly 1 per message on the topic
//! received_ns  u64     when the FIX message was read (ns since the Unix epoch)
//! venue        str     configured venue name (the VENUE part of the topic)
//! session      str     FIX session `OURS->THEIRS`
//! fix_seq      u64|nil MsgSeqNum (34) of the FIX message the event came from
//! kind         str     event kind (execution, book_snapshot, book_update, trade, quote, ...)
//! body         map     the event, see `normalize::Event`
//! ```

use std::collections::HashMap;

mod fast;
mod reader;

use serde::{Deserialize, Serialize};

use crate::normalize::Event;

/// The schema version this build writes and reads.
pub const VERSION: u32 = 1;

/// Most topics the sequencer tracks; a message for a new topic beyond it is refused (and
/// counted) rather than growing memory without bound for a venue that invents symbols.
pub const MAX_TOPICS: usize = 1_000_000;

/// First allocation of an encoded envelope (see [`Envelope::encode`]).
const ENCODE_CAPACITY: usize = 256;

/// One published event with the metadata subscribers need to order and trace it.
///
/// Serialized by hand ([`Serialize`] below), deserialized by derive (the one-pass reader in
/// `fast` is the usual path, this the general one).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Envelope {
    /// Schema version ([`VERSION`]).
    pub version: u32,
    /// Publisher start time (ns): changes when the publisher restarts, resetting `seq`.
    pub epoch: u64,
    /// Per-topic sequence number within the epoch, from 1, gapless.
    pub seq: u64,
    /// When the FIX bytes arrived (ns since the Unix epoch).
    pub received_ns: u64,
    /// The configured VENUE of the FIX session.
    pub venue: String,
    /// `SENDER->TARGET` of the FIX session, from our side.
    pub session: String,
    /// MsgSeqNum (34) of the FIX message it came from.
    #[serde(default)]
    pub fix_seq: Option<u64>,
    /// The normalized event.
    #[serde(flatten)]
    pub event: Event,
}

/// The envelope's fields in the order the derived form had them, `kind` and `body` last, as
/// a map of known length. Derived, `#[serde(flatten)]` made it a map of unknown length, which
/// rmp_serde writes into a second buffer and copies behind the header once it has counted the
/// entries (a quote envelope 236–291 → 196–241 ns, `cargo bench --bench envelope`, six
/// alternated runs). The bytes are the same; a test compares them with the derived form's
/// for every event kind.
impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(ENVELOPE_ENTRIES))?;
        m.serialize_entry("version", &self.version)?;
        m.serialize_entry("epoch", &self.epoch)?;
        m.serialize_entry("seq", &self.seq)?;
        m.serialize_entry("received_ns", &self.received_ns)?;
        m.serialize_entry("venue", &self.venue)?;
        m.serialize_entry("session", &self.session)?;
        m.serialize_entry("fix_seq", &self.fix_seq)?;
        m.serialize_entry("kind", self.event.kind())?;
        m.serialize_entry("body", &Body(&self.event))?;
        m.end()
    }
}

/// Entries of an envelope map: seven of its own, `kind` and `body`.
const ENVELOPE_ENTRIES: usize = 9;

/// An event's content, the envelope's `body`, without its `kind` tag.
struct Body<'a>(&'a Event);

impl Serialize for Body<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Event::Execution(e) => e.serialize(s),
            Event::BookSnapshot(e) => e.serialize(s),
            Event::BookUpdate(e) => e.serialize(s),
            Event::Trade(e) => e.serialize(s),
            Event::Quote(e) => e.serialize(s),
            Event::SecurityStatus(e) => e.serialize(s),
            Event::TradingSessionStatus(e) => e.serialize(s),
            Event::MarketDataRequestReject(e) => e.serialize(s),
            Event::Session(e) => e.serialize(s),
        }
    }
}

/// Why an envelope could not be read or written.
#[derive(Debug, thiserror::Error)]
// Each variant is documented by its `#[error]` text, which is what users read.
#[allow(missing_docs)]
pub enum EnvelopeError {
    #[error("not a fixcurve envelope: {0}")]
    Decode(String),
    #[error("envelope schema version {0} is not supported (this build reads {VERSION})")]
    Version(u32),
    #[error("cannot encode envelope: {0}")]
    Encode(String),
}

/// Only the version, decoded first so a newer schema is reported as such rather than as a
/// confusing field error.
#[derive(Deserialize)]
struct VersionProbe {
    version: u32,
}

impl Envelope {
    /// MessagePack with named fields (a map), as the wire schema says.
    pub fn encode(&self) -> Result<Vec<u8>, EnvelopeError> {
        // Sized for a Quote or a trade (~200 bytes) up front: `to_vec_named` starts empty and
        // reallocates its way up on every envelope.
        let mut out = Vec::with_capacity(ENCODE_CAPACITY);
        rmp_serde::encode::write_named(&mut out, self)
            .map_err(|e| EnvelopeError::Encode(e.to_string()))?;
        Ok(out)
    }

    /// Reads an envelope from MessagePack, refusing other schema versions.
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        Self::decode_with(bytes, |e| e)
    }

    /// [`Envelope::decode`], handing the envelope to `wrap` where it is built: a caller that
    /// keeps it boxed (`|e| Box::new(e)`, or inside a struct of its own) gets it there without
    /// moving its few hundred bytes out through the decoder's layers first.
    #[inline]
    pub fn decode_with<T>(
        bytes: &[u8],
        wrap: impl FnOnce(Envelope) -> T,
    ) -> Result<T, EnvelopeError> {
        // `wrap` goes to the one-pass reader only if it can run; the general path keeps
        // it when the reader declines (another field order, another version, an error).
        let mut wrap = Some(wrap);
        let once = |e| wrap.take().map(|w| w(e));
        if let Ok(Some(t)) = fast::decode_with(bytes, once) {
            return Ok(t);
        }
        let probe: VersionProbe =
            rmp_serde::from_slice(bytes).map_err(|e| EnvelopeError::Decode(e.to_string()))?;
        if probe.version != VERSION {
            return Err(EnvelopeError::Version(probe.version));
        }
        let env = rmp_serde::from_slice(bytes).map_err(|e| EnvelopeError::Decode(e.to_string()))?;
        wrap.map(|w| w(env))
            // Only if the one-pass reader failed after handing the envelope over, which
            // its map reading rules out.
            .ok_or_else(|| EnvelopeError::Decode("one-pass reader failed after reading".into()))
    }

    /// Checks the one-pass reader against rmp_serde on `bytes`: when the reader accepts them,
    /// rmp_serde must read the same envelope. Returns what the reader gave (fuzzing).
    #[cfg(any(test, feature = "test-support"))]
    pub fn check_one_pass_reader(bytes: &[u8]) -> Option<Envelope> {
        let fast = fast::decode(bytes).ok();
        if let Some(env) = &fast {
            assert_eq!(
                fast::decode_with_rmp_serde(bytes).as_ref(),
                Some(env),
                "one-pass reader and rmp_serde disagree on {bytes:02x?}"
            );
        }
        fast
    }

    /// `received_ns` of an envelope as this crate writes it (the integers `version`,
    /// `epoch` and `seq` before it), without decoding the rest: for tracing a message's age
    /// along the path from its bytes alone. `None` for anything else.
    pub fn peek_received_ns(mut bytes: &[u8]) -> Option<u64> {
        let entries = rmp::decode::read_map_len(&mut bytes).ok()?;
        for _ in 0..entries.min(4) {
            let len = rmp::decode::read_str_len(&mut bytes).ok()?;
            let (key, rest) = bytes.split_at_checked(len as usize)?;
            bytes = rest;
            let value: u64 = rmp::decode::read_int(&mut bytes).ok()?;
            if key == b"received_ns" {
                return Some(value);
            }
        }
        None
    }

    /// The event kind as on the wire (`execution`, `book_update`...).
    pub fn kind(&self) -> &'static str {
        self.event.kind()
    }
}

/// Assigns per-topic sequence numbers (sans-IO; the publishing task owns one).
#[derive(Debug)]
pub struct Sequencer {
    epoch: u64,
    next: HashMap<String, u64>,
}

/// The sequencer tracks too many topics already; the topic named is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("topic table full ({MAX_TOPICS} topics): refusing new topic {0:?}")]
pub struct TopicTableFull(pub String);

impl Sequencer {
    /// A sequencer for a publisher that started at `epoch`.
    pub fn new(epoch: u64) -> Self {
        Sequencer {
            epoch,
            next: HashMap::new(),
        }
    }

    /// A sequencer resuming at `last` per topic (the journal's last sequence numbers), under
    /// the same epoch as before, so subscribers see no restart.
    pub fn resume<'a>(epoch: u64, last: impl IntoIterator<Item = (&'a String, &'a u64)>) -> Self {
        Sequencer {
            epoch,
            next: last.into_iter().map(|(t, n)| (t.clone(), *n)).collect(),
        }
    }

    /// The epoch stamped on every envelope.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The sequence number for the next message on `topic`: 1, 2, 3... with no gaps.
    pub fn next(&mut self, topic: &str) -> Result<u64, TopicTableFull> {
        if let Some(n) = self.next.get_mut(topic) {
            *n = n.saturating_add(1);
            return Ok(*n);
        }
        if self.next.len() >= MAX_TOPICS {
            return Err(TopicTableFull(topic.chars().take(80).collect()));
        }
        self.next.insert(topic.to_owned(), 1);
        Ok(1)
    }

    /// Topics with a sequence so far.
    pub fn topics(&self) -> usize {
        self.next.len()
    }
}

/// What a subscriber concludes from one envelope's sequence (shared by the Rust and CLI
/// subscribers; the Python client implements the same rules).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeqCheck {
    /// The next one expected, or the first seen on this topic.
    InOrder,
    /// `missing` messages on the topic were never received (`expected` is the first of them).
    Gap {
        /// The first sequence number not received.
        expected: u64,
        /// How many were skipped.
        missing: u64,
    },
    /// The publisher restarted (new epoch): sequences start again.
    Restart,
    /// An old or repeated sequence: ignore.
    Duplicate,
}

/// Per-topic gap detection on the receiving side.
#[derive(Debug, Default)]
pub struct GapDetector {
    last: HashMap<Vec<u8>, (u64, u64)>,
    /// Sequence numbers below this on a topic not seen yet are already held (a subscriber
    /// resuming `since` a seq, perhaps on another edge that is still catching up).
    floor: u64,
}

impl GapDetector {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tracker for a subscriber that already holds everything below `since` on every topic:
    /// older events are duplicates, and a first event beyond `since` reveals a gap from it.
    pub fn with_floor(since: u64) -> Self {
        GapDetector {
            last: HashMap::new(),
            floor: since,
        }
    }

    /// Up to `max` topics seen (as text), with the last sequence number of each.
    pub fn topics(&self, max: usize) -> Vec<(String, u64)> {
        self.last
            .iter()
            .take(max)
            .map(|(t, (_, s))| (String::from_utf8_lossy(t).into_owned(), *s))
            .collect()
    }

    /// Takes `seq` (of `epoch`) as seen on `topic` without judging it: a snapshot valid at
    /// `seq` was applied, so live messages continue from `seq + 1`.
    pub fn mark(&mut self, topic: &[u8], epoch: u64, seq: u64) {
        let full = self.last.len() >= MAX_TOPICS;
        match self.last.get_mut(topic) {
            Some(e) if e.0 == epoch && e.1 >= seq => {}
            Some(e) => *e = (epoch, seq),
            None if !full => {
                self.last.insert(topic.to_vec(), (epoch, seq));
            }
            None => {}
        }
    }

    /// Records `seq` (of `epoch`) on `topic` and says how it relates to what came before.
    pub fn check(&mut self, topic: &[u8], epoch: u64, seq: u64) -> SeqCheck {
        let Some(entry) = self.last.get_mut(topic) else {
            if self.floor > 1 && seq < self.floor {
                return SeqCheck::Duplicate;
            }
            // Bounded like the publisher's table: a subscriber tracks at most MAX_TOPICS.
            if self.last.len() < MAX_TOPICS {
                self.last.insert(topic.to_vec(), (epoch, seq));
            }
            if self.floor > 1 && seq > self.floor {
                return SeqCheck::Gap {
                    expected: self.floor,
                    missing: seq.saturating_sub(self.floor),
                };
            }
            return SeqCheck::InOrder;
        };
        let (last_epoch, last_seq) = *entry;
        if epoch != last_epoch {
            *entry = (epoch, seq);
            return SeqCheck::Restart;
        }
        if seq <= last_seq {
            return SeqCheck::Duplicate;
        }
        *entry = (epoch, seq);
        // `seq > last_seq` here, so neither can wrap; saturating all the same (peer numbers).
        let expected = last_seq.saturating_add(1);
        if seq == expected {
            SeqCheck::InOrder
        } else {
            SeqCheck::Gap {
                expected,
                missing: seq.saturating_sub(expected),
            }
        }
    }

    /// Forgets everything (after a reconnect the first message of each topic is accepted).
    pub fn reset(&mut self) {
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use rust_decimal::Decimal;

    use super::*;
    use crate::normalize::*;

    fn sample_exec() -> Envelope {
        Envelope {
            version: VERSION,
            epoch: 1_700_000_000_000_000_000,
            seq: 42,
            received_ns: 1_700_000_000_123_456_789,
            venue: "VENUE1".into(),
            session: "BRIDGE->CLIENT1".into(),
            fix_seq: Some(7),
            event: Event::Execution(Box::new(Execution {
                order_id: "O1".into(),
                cl_ord_id: Some("C1".into()),
                orig_cl_ord_id: None,
                exec_id: "E1".into(),
                exec_type: ExecType::PartialFill,
                ord_status: OrdStatus::Other("Z".into()),
                side: Side::Buy,
                symbol: "EUR/USD".into(),
                last_px: Some(Decimal::from_str("1.08765000").unwrap()),
                last_qty: Some(Decimal::from_str("0.00000001").unwrap()),
                cum_qty: None,
                leaves_qty: None,
                avg_px: None,
                price: Some(Decimal::from_str("-12345678901234567890.12345678").unwrap()),
                order_qty: None,
                account: None,
                currency: None,
                transact_time: Some("20240102-10:00:00.123456".into()),
                text: None,
            })),
        }
    }

    fn book() -> Envelope {
        let mut e = sample_exec();
        e.event = Event::BookUpdate(BookUpdate {
            symbol: "EUR/USD".into(),
            md_req_id: None,
            changes: vec![BookChange {
                action: UpdateAction::Delete,
                entry: BookEntry {
                    side: Some(EntryType::Offer),
                    price: Some(Decimal::from_str("1.10").unwrap()),
                    size: None,
                    entry_id: Some("x".into()),
                    position: Some(3),
                    orders: None,
                },
            }],
        });
        e
    }

    /// The envelope as `#[derive(Serialize)]` with a flattened event wrote it: the
    /// hand-written `Serialize` must give the same bytes.
    #[derive(Serialize)]
    struct Derived<'a> {
        version: u32,
        epoch: u64,
        seq: u64,
        received_ns: u64,
        venue: &'a str,
        session: &'a str,
        fix_seq: Option<u64>,
        #[serde(flatten)]
        event: &'a Event,
    }

    #[test]
    fn encoding_is_byte_for_byte_the_derived_form() {
        for mut env in every_kind() {
            for fix_seq in [None, Some(7)] {
                env.fix_seq = fix_seq;
                let derived = Derived {
                    version: env.version,
                    epoch: env.epoch,
                    seq: env.seq,
                    received_ns: env.received_ns,
                    venue: &env.venue,
                    session: &env.session,
                    fix_seq: env.fix_seq,
                    event: &env.event,
                };
                let want = rmp_serde::to_vec_named(&derived).unwrap();
                assert_eq!(env.encode().unwrap(), want, "{}", env.kind());
                // Self-describing formats too (the CLI prints envelopes as JSON).
                assert_eq!(
                    serde_json::to_value(&env).unwrap(),
                    serde_json::to_value(&derived).unwrap()
                );
            }
        }
    }

    #[test]
    fn received_ns_is_read_from_the_bytes_alone() {
        for mut env in every_kind() {
            env.received_ns = 1_765_000_000_123_456_789;
            let bytes = env.encode().unwrap();
            assert_eq!(Envelope::peek_received_ns(&bytes), Some(env.received_ns));
            // Cut short, or not an envelope: none, and no panic.
            assert_eq!(Envelope::peek_received_ns(&bytes[..20]), None);
        }
        assert_eq!(Envelope::peek_received_ns(b""), None);
        assert_eq!(Envelope::peek_received_ns(&[0x81, 0xa1, b'x', 0xc0]), None);
    }

    #[test]
    fn round_trip_every_kind_sample() {
        for env in every_kind() {
            let bytes = env.encode().unwrap();
            assert_eq!(Envelope::decode(&bytes).unwrap(), env);
        }
    }

    /// The one-pass reader and the general path agree, and a map that puts `body` before
    /// `kind` (legal for other writers) still decodes, through the general path.
    #[test]
    fn one_pass_reader_matches_and_field_order_is_free() {
        for env in every_kind() {
            let bytes = env.encode().unwrap();
            assert_eq!(fast::decode(&bytes).ok().as_ref(), Some(&env));
        }
        let env = sample_exec();
        let Event::Execution(body) = &env.event else {
            unreachable!()
        };
        #[derive(Serialize)]
        struct BodyFirst<'a> {
            body: &'a Execution,
            version: u32,
            epoch: u64,
            seq: u64,
            received_ns: u64,
            venue: &'a str,
            session: &'a str,
            fix_seq: Option<u64>,
            kind: &'a str,
            extra: &'a str,
        }
        let bytes = rmp_serde::to_vec_named(&BodyFirst {
            body,
            version: env.version,
            epoch: env.epoch,
            seq: env.seq,
            received_ns: env.received_ns,
            venue: &env.venue,
            session: &env.session,
            fix_seq: env.fix_seq,
            kind: "execution",
            extra: "a field a newer writer added",
        })
        .unwrap();
        assert!(fast::decode(&bytes).is_err());
        assert_eq!(Envelope::decode(&bytes).unwrap(), env);
    }

    /// One envelope of every kind, with nested maps, arrays, a flattened struct, a unit enum,
    /// negative and wide numbers, non-ASCII text and nil.
    fn every_kind() -> Vec<Envelope> {
        let d = |s: &str| Decimal::from_str(s).ok();
        let with = |event| Envelope {
            event,
            ..sample_exec()
        };
        let entry = BookEntry {
            side: Some(EntryType::Bid),
            price: d("101.25"),
            size: d("5"),
            entry_id: None,
            position: Some(1),
            orders: Some(70_000),
        };
        vec![
            sample_exec(),
            book(),
            with(Event::BookSnapshot(BookSnapshot {
                symbol: "ÉCU/€".into(),
                md_req_id: Some("r1".into()),
                entries: vec![entry.clone(), entry],
            })),
            with(Event::Quote(Quote {
                symbol: "EUR/USD".into(),
                quote_id: Some("1764979260123400000".into()),
                bid_px: d("1.08763"),
                offer_px: d("1.08774"),
                bid_size: d("1000000"),
                offer_size: None,
                transact_time: Some("20261205-23:41:00.123".into()),
                valid_until: None,
            })),
            with(Event::Trade(Trade {
                symbol: "X".into(),
                price: Decimal::from_str("-0.5").unwrap(),
                size: None,
                trade_id: Some("t".repeat(300)),
                time: None,
                action: Some(UpdateAction::Delete),
            })),
            with(Event::Session(SessionStatus {
                state: SessionState::Gap,
                session: "A->B".into(),
                gap_from: Some(u64::MAX),
                gap_to: Some(70_000),
                text: None,
            })),
            Envelope {
                fix_seq: None,
                epoch: 0,
                ..with(Event::TradingSessionStatus(TradingSessionStatus {
                    trading_session_id: "D".into(),
                    status: "2".into(),
                    text: Some(String::new()),
                }))
            },
        ]
    }

    /// Whatever the one-pass reader accepts, rmp_serde reads to the same envelope; every
    /// well-formed envelope is accepted. Garbled copies (bytes changed, markers swapped,
    /// cut short) exercise the declining paths; `check_one_pass_reader` panics on a mismatch.
    #[test]
    fn one_pass_reader_agrees_with_rmp_serde() {
        let markers = [
            0xc0u8, 0xc2, 0xc3, 0xcc, 0xcd, 0xd0, 0xd3, 0xca, 0xcb, 0xd9, 0xc4, 0x91, 0x80, 0xa0,
            0xff,
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut declined = 0;
        for env in every_kind() {
            let bytes = env.encode().unwrap();
            assert_eq!(Envelope::check_one_pass_reader(&bytes), Some(env.clone()));
            for _ in 0..3_000 {
                let mut b = bytes.clone();
                for _ in 0..=next() % 3 {
                    let at = (next() % b.len() as u64) as usize;
                    b[at] = match next() % 3 {
                        0 => markers[(next() % markers.len() as u64) as usize],
                        1 => b[at] ^ (1 << (next() % 8)),
                        _ => next() as u8,
                    };
                }
                if next() % 4 == 0 {
                    b.truncate((next() % b.len() as u64) as usize);
                }
                if Envelope::check_one_pass_reader(&b).is_none() {
                    declined += 1;
                }
            }
        }
        assert!(
            declined > 1_000,
            "garbling should make most copies undecodable"
        );
    }

    /// Decodes with a schema-agnostic reader, as a Python subscriber would.
    fn as_json(env: &Envelope) -> serde_json::Value {
        let bytes = env.encode().unwrap();
        rmp_serde::from_slice::<serde_json::Value>(&bytes).unwrap()
    }

    #[test]
    fn schema_field_names_are_pinned() {
        let v = as_json(&sample_exec());
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "body",
                "epoch",
                "fix_seq",
                "kind",
                "received_ns",
                "seq",
                "session",
                "venue",
                "version"
            ]
        );
        assert_eq!(v["version"], 1);
        assert_eq!(v["kind"], "execution");
        assert_eq!(v["seq"], 42);
        assert_eq!(v["fix_seq"], 7);
        let body = &v["body"];
        // Decimals are exact strings (scale kept), never numbers.
        assert_eq!(body["last_px"], "1.08765000");
        assert_eq!(body["last_qty"], "0.00000001");
        assert_eq!(body["price"], "-12345678901234567890.12345678");
        assert_eq!(body["exec_type"], "partial_fill");
        assert_eq!(body["ord_status"], "Z");
        assert_eq!(body["side"], "buy");
        assert_eq!(body["cum_qty"], serde_json::Value::Null);

        let b = as_json(&book());
        assert_eq!(b["kind"], "book_update");
        let ch = &b["body"]["changes"][0];
        assert_eq!(ch["action"], "delete");
        assert_eq!(ch["side"], "offer");
        assert_eq!(ch["price"], "1.10");
        assert_eq!(ch["position"], 3);
    }

    #[test]
    fn no_float_on_the_wire() {
        // msgpack float32/float64 markers are 0xca / 0xcb; the encoding of a message full of
        // decimals must use strings, so neither marker may appear as a value type. Decode
        // generically and walk the tree.
        fn walk(v: &serde_json::Value) {
            match v {
                serde_json::Value::Number(n) => assert!(!n.is_f64(), "float on the wire: {n}"),
                serde_json::Value::Array(a) => a.iter().for_each(walk),
                serde_json::Value::Object(o) => o.values().for_each(walk),
                _ => {}
            }
        }
        walk(&as_json(&sample_exec()));
        walk(&as_json(&book()));
    }

    #[test]
    fn newer_version_and_garbage_are_typed_errors() {
        let mut env = sample_exec();
        env.version = 2;
        let bytes = env.encode().unwrap();
        assert!(matches!(
            Envelope::decode(&bytes),
            Err(EnvelopeError::Version(2))
        ));
        assert!(matches!(
            Envelope::decode(b"\xc1garbage"),
            Err(EnvelopeError::Decode(_))
        ));
        assert!(matches!(
            Envelope::decode(b""),
            Err(EnvelopeError::Decode(_))
        ));
    }

    #[test]
    fn sequencer_rises_by_one_per_topic() {
        let mut s = Sequencer::new(9);
        assert_eq!(s.next("md.A").unwrap(), 1);
        assert_eq!(s.next("md.B").unwrap(), 1);
        assert_eq!(s.next("md.A").unwrap(), 2);
        assert_eq!(s.next("md.A").unwrap(), 3);
        assert_eq!(s.next("md.B").unwrap(), 2);
        assert_eq!(s.topics(), 2);
    }

    #[test]
    fn a_floor_drops_what_is_held_and_reveals_a_gap_from_it() {
        let mut g = GapDetector::with_floor(100);
        // Another publisher still catching up: below the floor is held already.
        assert_eq!(g.check(b"t", 7, 42), SeqCheck::Duplicate);
        assert_eq!(g.check(b"t", 7, 99), SeqCheck::Duplicate);
        assert_eq!(g.check(b"t", 7, 100), SeqCheck::InOrder);
        assert_eq!(g.check(b"t", 7, 101), SeqCheck::InOrder);
        assert_eq!(
            g.check(b"u", 7, 105),
            SeqCheck::Gap {
                expected: 100,
                missing: 5
            }
        );
        assert_eq!(
            GapDetector::with_floor(1).check(b"t", 7, 3),
            SeqCheck::InOrder
        );
    }

    #[test]
    fn gap_detector() {
        let mut g = GapDetector::new();
        assert_eq!(g.check(b"t", 1, 5), SeqCheck::InOrder);
        assert_eq!(g.check(b"t", 1, 6), SeqCheck::InOrder);
        assert_eq!(
            g.check(b"t", 1, 9),
            SeqCheck::Gap {
                expected: 7,
                missing: 2
            }
        );
        assert_eq!(g.check(b"t", 1, 9), SeqCheck::Duplicate);
        assert_eq!(g.check(b"u", 1, 1), SeqCheck::InOrder);
        assert_eq!(g.check(b"t", 2, 1), SeqCheck::Restart);
        assert_eq!(g.check(b"t", 2, 2), SeqCheck::InOrder);
    }
}
