//! One journal record on disk, and the scan that finds them again.
//!
//! `magic (1) | length (u32 LE) | crc32 of the body (u32 LE) | body`, where the body is
//! `record number (u64 BE) | topic seq (u64 BE) | topic length (u16 BE) | topic |
//! dedupe key length (u16 BE) | dedupe key | envelope`. The CRC covers the whole body, so a
//! torn write, a flipped bit or a record spliced from elsewhere is caught before anything in
//! it is trusted; after a bad record the scan resynchronises on the next header whose CRC
//! holds, so one damaged spot costs only the records in it.

use bytes::Bytes;

pub const MAGIC: u8 = 0xFC;
pub const HEAD: usize = 9;
/// No record is larger: an envelope is a few hundred bytes, a book snapshot some KB.
pub const MAX_BODY: usize = 4 << 20;

/// A record as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Position in the journal, from 1, gapless across segments.
    pub number: u64,
    /// The topic's sequence number (the envelope's `seq`).
    pub seq: u64,
    pub topic: String,
    /// What duplicates are recognised by (venue and ExecID for executions), if anything.
    pub dedupe: Option<String>,
    /// The envelope as published.
    pub payload: Bytes,
}

/// Appends one framed record to `out`.
pub fn encode(
    out: &mut Vec<u8>,
    number: u64,
    seq: u64,
    topic: &str,
    dedupe: Option<&str>,
    payload: &[u8],
) {
    let topic = &topic.as_bytes()[..topic.len().min(u16::MAX as usize)];
    let key = dedupe.map(str::as_bytes).unwrap_or_default();
    let key = &key[..key.len().min(u16::MAX as usize)];
    let body_len = 8 + 8 + 2 + topic.len() + 2 + key.len() + payload.len();
    out.reserve(HEAD + body_len);
    out.push(MAGIC);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    let crc_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let body_at = out.len();
    out.extend_from_slice(&number.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    out.extend_from_slice(topic);
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[body_at..]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// What is at `buf[pos..]`.
pub enum Scan {
    /// A whole, checksummed record and where the next one starts.
    Record(Record, usize),
    /// Not enough bytes for a whole record (end of data, or a torn tail).
    Incomplete,
    /// Not a valid record here.
    Bad,
}

/// Reads the record starting at `pos`.
pub fn scan(buf: &[u8], pos: usize) -> Scan {
    let Some(head) = buf.get(pos..pos.saturating_add(HEAD)) else {
        return Scan::Incomplete;
    };
    if head[0] != MAGIC {
        return Scan::Bad;
    }
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let crc = u32::from_le_bytes([head[5], head[6], head[7], head[8]]);
    if !(20..=MAX_BODY).contains(&len) {
        return Scan::Bad;
    }
    let start = pos + HEAD;
    let Some(body) = buf.get(start..start + len) else {
        return Scan::Incomplete;
    };
    if crc32fast::hash(body) != crc {
        return Scan::Bad;
    }
    match parse_body(body) {
        Some(r) => Scan::Record(r, start + len),
        None => Scan::Bad,
    }
}

fn parse_body(b: &[u8]) -> Option<Record> {
    let number = u64::from_be_bytes(b.get(0..8)?.try_into().ok()?);
    let seq = u64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
    let tl = u16::from_be_bytes(b.get(16..18)?.try_into().ok()?) as usize;
    let topic = std::str::from_utf8(b.get(18..18 + tl)?).ok()?.to_owned();
    let k = 18 + tl;
    let kl = u16::from_be_bytes(b.get(k..k + 2)?.try_into().ok()?) as usize;
    let key = b.get(k + 2..k + 2 + kl)?;
    let dedupe = if kl == 0 {
        None
    } else {
        Some(std::str::from_utf8(key).ok()?.to_owned())
    };
    let payload = Bytes::copy_from_slice(b.get(k + 2 + kl..)?);
    Some(Record {
        number,
        seq,
        topic,
        dedupe,
        payload,
    })
}

/// The next position at or after `pos` where a valid record starts (resynchronising after
/// damage), or `None` if there is none in `buf`. With `partial`, a header whose record runs
/// past the end of `buf` also counts (the caller reads on from there).
pub fn resync(buf: &[u8], pos: usize, partial: bool) -> Option<usize> {
    let mut p = pos;
    while let Some(off) = buf.get(p..).and_then(memchr_magic) {
        let at = p + off;
        match scan(buf, at) {
            Scan::Record(..) => return Some(at),
            Scan::Incomplete if partial => return Some(at),
            _ => {}
        }
        p = at + 1;
    }
    None
}

fn memchr_magic(b: &[u8]) -> Option<usize> {
    b.iter().position(|&x| x == MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut buf = Vec::new();
        encode(&mut buf, 1, 7, "exec.V.A", Some("V/E1"), b"payload-1");
        let second = buf.len();
        encode(&mut buf, 2, 8, "exec.V.A", None, b"payload-2");
        let Scan::Record(r, next) = scan(&buf, 0) else {
            panic!("first record")
        };
        assert_eq!(
            (r.number, r.seq, r.topic.as_str(), r.dedupe.as_deref()),
            (1, 7, "exec.V.A", Some("V/E1"))
        );
        assert_eq!(&r.payload[..], b"payload-1");
        assert_eq!(next, second);
        // A flipped byte in the first record: bad there, the second is found again.
        let mut bad = buf.clone();
        bad[20] ^= 0x40;
        assert!(matches!(scan(&bad, 0), Scan::Bad));
        assert_eq!(resync(&bad, 1, false), Some(second));
        // A torn tail: incomplete, never a record.
        assert!(matches!(
            scan(&buf[..buf.len() - 3], second),
            Scan::Incomplete
        ));
    }
}
