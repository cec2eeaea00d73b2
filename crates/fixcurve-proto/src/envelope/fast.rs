//! The envelope read in one pass.
//!
//! `#[serde(flatten)]` (how [`Envelope`] nests the event's `kind`/`body` beside its own
//! fields) makes serde buffer the whole map into an intermediate tree before reading it, and
//! the version probe parsed everything once more: in the end-to-end profile with four
//! subscribers that was a fifth of all CPU. Our writer puts `kind` before `body`, so the
//! body can be read straight into the right event type. A map with `body` first (another
//! writer is free to order fields differently), or anything else this reader does not
//! expect, falls back to the general path, which also gives the precise errors.
//!
//! The bytes are read by [`super::reader::Reader`] rather than rmp_serde's deserializer (in
//! place, keys compared as bytes): a quote envelope 857 → 545 ns (`cargo bench --bench envelope`,
//! old and new binaries alternated).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::reader::Reader;
use super::Envelope;
use crate::normalize::Event;

/// Decodes `bytes` in one pass and hands the envelope to `wrap` (only one of our schema
/// version), or `Err` when the general path must decide (another version included).
///
/// `wrap` is called where the envelope is built, so a caller that boxes it gets it boxed
/// there rather than moved out through each `Result` on the way: the envelope is a few
/// hundred bytes, and those moves were ~3% of the CPU with 4 subscribers end to end.
#[inline]
pub(super) fn decode_with<T>(bytes: &[u8], wrap: impl FnOnce(Envelope) -> T) -> Result<T, ()> {
    // Like `rmp_serde::from_slice` on the general path: one map read from the front.
    match Reader::new(bytes).deserialize_map(EnvelopeVisitor(wrap)) {
        Ok(t) => Ok(t),
        Err(_) => Err(()),
    }
}

/// [`decode_with`], the envelope itself.
#[cfg(any(test, feature = "test-support"))]
pub(super) fn decode(bytes: &[u8]) -> Result<Envelope, ()> {
    decode_with(bytes, |e| e)
}

/// The same one-pass read with rmp_serde's deserializer, the reference [`Reader`] is checked
/// against: whatever the reader accepts, rmp_serde must read to the same envelope.
#[cfg(any(test, feature = "test-support"))]
pub(super) fn decode_with_rmp_serde(bytes: &[u8]) -> Option<Envelope> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    (&mut de).deserialize_map(EnvelopeVisitor(|e| e)).ok()
}

/// A map key as its bytes (the reader gives identifiers without a UTF-8 check).
struct Key<'de>(&'de [u8]);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_bytes<E: de::Error>(self, b: &'de [u8]) -> Result<Key<'de>, E> {
                Ok(Key(b))
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(s.as_bytes()))
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// Reads the map and hands the envelope to its closure.
struct EnvelopeVisitor<W>(W);

impl<'de, T, W: FnOnce(Envelope) -> T> Visitor<'de> for EnvelopeVisitor<W> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a fixcurve envelope map with kind before body")
    }

    #[inline]
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let (mut version, mut epoch, mut seq, mut received_ns) = (None, None, None, None);
        let (mut venue, mut session, mut fix_seq) = (None, None, None);
        let mut kind: Option<&'de str> = None;
        let mut event: Option<Event> = None;
        while let Some(Key(key)) = map.next_key()? {
            match key {
                b"version" => version = Some(map.next_value()?),
                b"epoch" => epoch = Some(map.next_value()?),
                b"seq" => seq = Some(map.next_value()?),
                b"received_ns" => received_ns = Some(map.next_value()?),
                b"venue" => venue = Some(map.next_value()?),
                b"session" => session = Some(map.next_value()?),
                b"fix_seq" => fix_seq = map.next_value()?,
                b"kind" => kind = Some(map.next_value()?),
                b"body" => {
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
        let version = version.ok_or_else(|| missing("version"))?;
        if version != super::VERSION {
            // The general path names the version.
            return Err(de::Error::custom("another schema version"));
        }
        Ok((self.0)(Envelope {
            version,
            epoch: epoch.ok_or_else(|| missing("epoch"))?,
            seq: seq.ok_or_else(|| missing("seq"))?,
            received_ns: received_ns.ok_or_else(|| missing("received_ns"))?,
            venue: venue.ok_or_else(|| missing("venue"))?,
            session: session.ok_or_else(|| missing("session"))?,
            fix_seq,
            event: event.ok_or_else(|| missing("body"))?,
        }))
    }
}
