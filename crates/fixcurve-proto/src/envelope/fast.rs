//! The envelope read in one pass.
//!
//! `#[serde(flatten)]` (how [`Envelope`] nests the event's `kind`/`body` beside its own
//! fields) makes serde buffer the whole map into an intermediate tree before reading it, and
//! the version probe parsed everything once more: in the end-to-end profile with four
//! subscribers that was a fifth of all CPU. Our writer puts `kind` before `body`, so the
//! body can be read straight into the right event type. A map with `body` first (another
//! writer is free to order fields differently), or anything else this reader does not
//! expect, falls back to the general path, which also gives the precise errors.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::Envelope;
use crate::normalize::Event;

/// Decodes `bytes` in one pass, or None when the general path must decide.
pub(super) fn decode(bytes: &[u8]) -> Option<Envelope> {
    // Like `rmp_serde::from_slice` on the general path: one map read from the front.
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    (&mut de).deserialize_map(EnvelopeVisitor).ok()
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a fixcurve envelope map with kind before body")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let (mut version, mut epoch, mut seq, mut received_ns) = (None, None, None, None);
        let (mut venue, mut session, mut fix_seq) = (None, None, None);
        let mut kind: Option<&'de str> = None;
        let mut event: Option<Event> = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "version" => version = Some(map.next_value()?),
                "epoch" => epoch = Some(map.next_value()?),
                "seq" => seq = Some(map.next_value()?),
                "received_ns" => received_ns = Some(map.next_value()?),
                "venue" => venue = Some(map.next_value()?),
                "session" => session = Some(map.next_value()?),
                "fix_seq" => fix_seq = map.next_value()?,
                "kind" => kind = Some(map.next_value()?),
                "body" => {
                    let k = kind.ok_or_else(|| de::Error::custom("body before kind"))?;
                    event = Some(match k {
                        "execution" => Event::Execution(map.next_value()?),
                        "book_snapshot" => Event::BookSnapshot(map.next_value()?),
                        "book_update" => Event::BookUpdate(map.next_value()?),
                        "trade" => Event::Trade(map.next_value()?),
                        "quote" => Event::Quote(map.next_value()?),
                        "security_status" => Event::SecurityStatus(map.next_value()?),
                        "trading_session_status" => Event::TradingSessionStatus(map.next_value()?),
                        "market_data_request_reject" => {
                            Event::MarketDataRequestReject(map.next_value()?)
                        }
                        "session" => Event::Session(map.next_value()?),
                        other => return Err(de::Error::custom(format!("kind {other}"))),
                    });
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let missing = |f: &'static str| de::Error::missing_field(f);
        Ok(Envelope {
            version: version.ok_or_else(|| missing("version"))?,
            epoch: epoch.ok_or_else(|| missing("epoch"))?,
            seq: seq.ok_or_else(|| missing("seq"))?,
            received_ns: received_ns.ok_or_else(|| missing("received_ns"))?,
            venue: venue.ok_or_else(|| missing("venue"))?,
            session: session.ok_or_else(|| missing("session"))?,
            fix_seq,
            event: event.ok_or_else(|| missing("body"))?,
        })
    }
}
