//! The replay endpoint's frames, for stock ZeroMQ clients (DEALER or REQ over CURVE).
//!
//! Requests (a REQ socket puts an empty delimiter frame first; it is echoed back):
//! - `REPLAY | prefix | since | from [| max]`: journaled events on topics starting with
//!   `prefix`, each topic from its sequence number `since` on, scanning the journal from
//!   record number `from` (`0` = the oldest held), at most `max` records (default 1000, at
//!   most 10000) per reply. Numbers are decimal ASCII.
//! - `SNAPSHOT | prefix`: the last value of every market-data topic under `prefix`.
//!
//! Replies:
//! - `OK | MORE or END | next | oldest | topic | envelope | topic | envelope ...`: `next` is
//!   the `from` of the following request (`END`: nothing more is journaled yet), `oldest` the
//!   oldest record number still held (a topic whose `since` lies before it has lost records
//!   to retention).
//! - `ERROR | code | text`, code one of `malformed`, `range`, `unknown-topic`, `forbidden`,
//!   `unavailable`.

use bytes::Bytes;

/// Most records in one reply.
pub const MAX_BATCH: usize = 10_000;
/// Records in a reply when the request does not say.
pub const DEFAULT_BATCH: usize = 1_000;
/// Payload bytes in one reply (about; one record more may cross it).
pub const MAX_REPLY_BYTES: usize = 4 << 20;
/// Longest topic prefix accepted.
const MAX_PREFIX: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Replay {
        prefix: Vec<u8>,
        since: u64,
        from: u64,
        max: usize,
    },
    Snapshot {
        prefix: Vec<u8>,
    },
}

/// A refusal: the code a program matches on and a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub text: String,
}

impl Refusal {
    pub fn new(code: &'static str, text: impl Into<String>) -> Self {
        Refusal {
            code,
            text: text.into(),
        }
    }

    pub fn frames(&self) -> Vec<Bytes> {
        vec![
            Bytes::from_static(b"ERROR"),
            Bytes::from_static(self.code.as_bytes()),
            Bytes::from(self.text.clone().into_bytes()),
        ]
    }
}

fn number(frame: Option<&Bytes>, what: &str) -> Result<u64, Refusal> {
    let f = frame.ok_or_else(|| Refusal::new("malformed", format!("missing {what}")))?;
    std::str::from_utf8(f)
        .ok()
        .filter(|t| !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| Refusal::new("malformed", format!("{what} is not a decimal number")))
}

/// Splits a REQ socket's delimiter off (`route`, echoed in the reply) and parses the rest.
pub fn parse(parts: &[Bytes]) -> (Vec<Bytes>, Result<Request, Refusal>) {
    let (route, body) = match parts.split_first() {
        Some((first, rest)) if first.is_empty() => (vec![first.clone()], rest),
        _ => (Vec::new(), parts),
    };
    (route, parse_body(body))
}

fn parse_body(body: &[Bytes]) -> Result<Request, Refusal> {
    let verb = body
        .first()
        .ok_or_else(|| Refusal::new("malformed", "empty request"))?;
    let prefix = body.get(1).map(|p| p.to_vec()).unwrap_or_default();
    if prefix.len() > MAX_PREFIX {
        return Err(Refusal::new(
            "malformed",
            "topic prefix longer than 256 bytes",
        ));
    }
    match &verb[..] {
        b"REPLAY" => {
            if body.len() < 4 || body.len() > 5 {
                return Err(Refusal::new(
                    "malformed",
                    "REPLAY takes prefix, since, from and optionally max",
                ));
            }
            let since = number(body.get(2), "since")?.max(1);
            let from = number(body.get(3), "from")?;
            let max = match body.get(4) {
                None => DEFAULT_BATCH,
                Some(_) => {
                    let m = number(body.get(4), "max")?;
                    if m == 0 || m > MAX_BATCH as u64 {
                        return Err(Refusal::new(
                            "range",
                            format!("max must be 1..={MAX_BATCH} records per reply"),
                        ));
                    }
                    m as usize
                }
            };
            Ok(Request::Replay {
                prefix,
                since,
                from,
                max,
            })
        }
        b"SNAPSHOT" => {
            if body.len() != 2 {
                return Err(Refusal::new("malformed", "SNAPSHOT takes one prefix"));
            }
            Ok(Request::Snapshot { prefix })
        }
        _ => Err(Refusal::new(
            "malformed",
            "unknown request (REPLAY or SNAPSHOT)",
        )),
    }
}

/// The header of an `OK` reply.
pub fn ok_header(end: bool, next: u64, oldest: u64) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"OK"),
        Bytes::from_static(if end { b"END" } else { b"MORE" }),
        Bytes::from(next.to_string().into_bytes()),
        Bytes::from(oldest.to_string().into_bytes()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(parts: &[&str]) -> Vec<Bytes> {
        parts
            .iter()
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect()
    }

    #[test]
    fn requests_and_refusals() {
        let (route, r) = parse(&frames(&["", "REPLAY", "exec.V.", "5", "0"]));
        assert_eq!(route.len(), 1, "the REQ delimiter is kept for the reply");
        assert_eq!(
            r,
            Ok(Request::Replay {
                prefix: b"exec.V.".to_vec(),
                since: 5,
                from: 0,
                max: DEFAULT_BATCH
            })
        );
        let (route, r) = parse(&frames(&["SNAPSHOT", "md."]));
        assert!(route.is_empty());
        assert_eq!(
            r,
            Ok(Request::Snapshot {
                prefix: b"md.".to_vec()
            })
        );
        for (bad, code) in [
            (vec!["REPLAY", "exec.", "x", "0"], "malformed"),
            (vec!["REPLAY", "exec.", "1"], "malformed"),
            (vec!["REPLAY", "exec.", "1", "0", "99999999"], "range"),
            (vec!["REPLAY", "exec.", "1", "0", "0"], "range"),
            (vec!["REPLAY", "exec.", "-1", "0"], "malformed"),
            (
                vec!["REPLAY", "exec.", "184467440737095516160", "0"],
                "malformed",
            ),
            (vec!["DELETE", "exec."], "malformed"),
            (vec![], "malformed"),
        ] {
            let (_, r) = parse(&frames(&bad));
            assert_eq!(r.map_err(|e| e.code), Err(code), "{bad:?}");
        }
    }
}
