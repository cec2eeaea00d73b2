//! Writing frames: fields, BodyLength and CheckSum.

use super::*;

/// Appends `tag=value SOH`.
#[inline]
pub fn put_field(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    put_uint(out, tag as u64);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(SOH);
}

/// Appends `tag=<decimal n> SOH`.
#[inline]
pub fn put_uint_field(out: &mut Vec<u8>, tag: u32, n: u64) {
    put_uint(out, tag as u64);
    out.push(b'=');
    put_uint(out, n);
    out.push(SOH);
}

/// Appends `n` in decimal without allocating.
#[inline]
#[allow(clippy::arithmetic_side_effects)] // decimal digits of a u64 into a 20-byte buffer
pub fn put_uint(out: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i = i.saturating_sub(1);
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

fn uint_len(mut n: u64) -> usize {
    let mut l: usize = 1;
    while n >= 10 {
        n /= 10;
        l = l.saturating_add(1);
    }
    l
}

/// Frames a message whose body (starting with `35=`, ending with SOH) is already encoded:
/// writes `8=`, `9=` (exact BodyLength), the body and `10=` (CheckSum) to `out`.
#[allow(clippy::arithmetic_side_effects)] // lengths of a body held in memory; digits of a checksum < 256
pub fn frame_body(begin_string: &str, body: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.reserve(body.len() + begin_string.len() + 24);
    out.extend_from_slice(b"8=");
    out.extend_from_slice(begin_string.as_bytes());
    out.push(SOH);
    put_uint_field(out, 9, body.len() as u64);
    out.extend_from_slice(body);
    let sum = checksum(&out[start..]);
    out.extend_from_slice(b"10=");
    out.push(b'0' + sum / 100);
    out.push(b'0' + (sum / 10) % 10);
    out.push(b'0' + sum % 10);
    out.push(SOH);
}

/// Encodes one message: `fields` are everything after 35 (rest of the header, then the body),
/// in the order given. BodyLength and CheckSum are computed.
#[allow(clippy::arithmetic_side_effects)] // lengths of fields the caller holds in memory
pub fn encode(begin_string: &str, msg_type: &str, fields: &[Field<'_>], out: &mut Vec<u8>) {
    let body_len = 3
        + msg_type.len()
        + 1
        + fields
            .iter()
            .map(|f| uint_len(f.tag as u64) + 2 + f.value.len())
            .sum::<usize>();
    let start = out.len();
    out.reserve(body_len + begin_string.len() + 24);
    out.extend_from_slice(b"8=");
    out.extend_from_slice(begin_string.as_bytes());
    out.push(SOH);
    put_uint_field(out, 9, body_len as u64);
    put_field(out, 35, msg_type.as_bytes());
    for f in fields {
        put_field(out, f.tag, f.value);
    }
    let sum = checksum(&out[start..]);
    out.extend_from_slice(b"10=");
    out.push(b'0' + sum / 100);
    out.push(b'0' + (sum / 10) % 10);
    out.push(b'0' + sum % 10);
    out.push(SOH);
}

/// An encoder bound to one BeginString.
#[derive(Clone, Debug)]
pub struct Encoder {
    begin_string: String,
}

impl Encoder {
    /// An encoder for `begin_string` (`FIX.4.4`, `FIXT.1.1`...).
    pub fn new(begin_string: impl Into<String>) -> Encoder {
        Encoder {
            begin_string: begin_string.into(),
        }
    }

    /// The BeginString every frame gets.
    pub fn begin_string(&self) -> &str {
        &self.begin_string
    }

    /// See [`encode`].
    pub fn encode(&self, msg_type: &str, fields: &[Field<'_>], out: &mut Vec<u8>) {
        encode(&self.begin_string, msg_type, fields, out)
    }

    /// Encodes into a fresh buffer.
    pub fn to_vec(&self, msg_type: &str, fields: &[Field<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(msg_type, fields, &mut out);
        out
    }
}
