//! An owned, validated FIX message: the frame's bytes plus an index of where each field sits.
//!
//! The decoder validates once and records `(tag, start, end)` per field, so a `Message` can be
//! moved across tasks cheaply (one refcounted `Bytes` and one `Vec`) and every field access
//! afterwards is a slice into the original frame — no per-field allocation, no re-parsing.

use bytes::Bytes;

use super::field::Field;

/// Where one field's value sits inside [`Message::as_bytes`]. `repr(C)`: the decoder's AVX2
/// pass writes four of these at once as 48 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct FieldIx {
    pub(crate) tag: u32,
    pub(crate) start: u32,
    pub(crate) end: u32,
}

/// A decoded FIX message. Fields are kept in wire order, header (8, 9, 35, ...) and trailer
/// (10) included, because resending, logging and group parsing all need the original order.
#[derive(Clone)]
pub struct Message {
    raw: Bytes,
    fields: Vec<FieldIx>,
}

impl Message {
    /// Only the decoder builds messages: it guarantees fields 0, 1, 2 are 8, 9, 35 and that
    /// every index lies inside `raw`.
    pub(crate) fn from_parts(raw: Bytes, fields: Vec<FieldIx>) -> Message {
        debug_assert!(fields.len() >= 4);
        Message { raw, fields }
    }

    #[inline]
    fn value(&self, ix: &FieldIx) -> &[u8] {
        // The decoder only produces in-bounds, ordered indexes; `get` keeps this panic-free
        // even if that invariant were ever broken.
        self.raw
            .get(ix.start as usize..ix.end as usize)
            .unwrap_or(&[])
    }

    #[inline]
    fn field_of(&self, ix: &FieldIx) -> Field<'_> {
        Field {
            tag: ix.tag,
            value: self.value(ix),
        }
    }

    /// The whole frame as it came off the wire, `8=` to the trailing SOH of `10=`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The frame as a refcounted buffer (cheap clone, e.g. to store or forward verbatim).
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// Tag 8.
    pub fn begin_string(&self) -> &[u8] {
        self.fields.first().map(|ix| self.value(ix)).unwrap_or(&[])
    }

    /// Tag 35, always the third field of a decoded message.
    pub fn msg_type(&self) -> &[u8] {
        self.fields.get(2).map(|ix| self.value(ix)).unwrap_or(&[])
    }

    /// Tag 35 as text (message types are ASCII; a non-UTF-8 type yields "").
    pub fn msg_type_str(&self) -> &str {
        std::str::from_utf8(self.msg_type()).unwrap_or("")
    }

    /// Tag 34, if present and a valid unsigned number.
    pub fn seq_num(&self) -> Option<u64> {
        self.get_u64(34)
    }

    /// Tag 49.
    pub fn sender_comp_id(&self) -> Option<&[u8]> {
        self.get(49).map(|f| f.value)
    }

    /// Tag 56.
    pub fn target_comp_id(&self) -> Option<&[u8]> {
        self.get(56).map(|f| f.value)
    }

    /// Tag 43 = 'Y'.
    pub fn poss_dup(&self) -> bool {
        self.get(43).map(|f| f.value == b"Y").unwrap_or(false)
    }

    /// The first occurrence of `tag` (fields inside repeating groups repeat; use
    /// [`Message::get_all`] or the `groups` module for those).
    pub fn get(&self, tag: u32) -> Option<Field<'_>> {
        self.fields
            .iter()
            .find(|ix| ix.tag == tag)
            .map(|ix| self.field_of(ix))
    }

    /// The first occurrence of `tag` as UTF-8 text.
    pub fn get_str(&self, tag: u32) -> Option<&str> {
        self.get(tag).and_then(|f| f.as_str())
    }

    /// The first occurrence of `tag` parsed as an unsigned integer (plain ASCII digits only,
    /// as FIX `int`/`SeqNum` fields are; leading zeros accepted).
    pub fn get_u64(&self, tag: u32) -> Option<u64> {
        self.get(tag).and_then(|f| parse_u64(f.value))
    }

    /// Every occurrence of `tag`, in wire order.
    pub fn get_all(&self, tag: u32) -> impl Iterator<Item = Field<'_>> + '_ {
        self.fields
            .iter()
            .filter(move |ix| ix.tag == tag)
            .map(|ix| self.field_of(ix))
    }

    /// All fields in wire order, header and trailer included.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = Field<'_>> + '_ {
        self.fields.iter().map(|ix| self.field_of(ix))
    }

    /// Fields after the standard header and before the trailer (the message body), in wire
    /// order. Header tags found after the first body tag are part of the body here.
    pub fn body_fields(&self) -> impl Iterator<Item = Field<'_>> + '_ {
        let n = self.fields.len();
        let start = self
            .fields
            .iter()
            .position(|ix| !is_header_tag(ix.tag))
            .unwrap_or(n);
        let end = n.saturating_sub(1).max(start);
        self.fields[start..end].iter().map(|ix| self.field_of(ix))
    }

    /// Number of fields, header and trailer included.
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// The tag at wire position `i` (no value slice built: for scans such as group parsing).
    #[inline]
    pub fn tag_at(&self, i: usize) -> Option<u32> {
        self.fields.get(i).map(|ix| ix.tag)
    }

    /// Wire position of the first `tag` within positions `range`.
    #[inline]
    pub fn position_in(&self, tag: u32, range: std::ops::Range<usize>) -> Option<usize> {
        let end = range.end.min(self.fields.len());
        let start = range.start.min(end);
        self.fields[start..end]
            .iter()
            .position(|ix| ix.tag == tag)
            .map(|p| p.saturating_add(start))
    }

    /// The tags at wire positions `range` (clamped to the fields there are), in order.
    #[inline]
    pub fn tags_in(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = u32> + '_ {
        let end = range.end.min(self.fields.len());
        let start = range.start.min(end);
        self.fields
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(|ix| ix.tag)
    }

    /// The field at wire position `i`.
    pub fn field_at(&self, i: usize) -> Option<Field<'_>> {
        self.fields.get(i).map(|ix| self.field_of(ix))
    }

    /// True for session-level (administrative) message types.
    pub fn is_admin(&self) -> bool {
        is_admin_msg_type(self.msg_type())
    }
}

/// Fields whose values never reach a log: Password (554) and NewPassword (925).
const SECRET_TAGS: &[u32] = &[554, 925];

impl std::fmt::Debug for Message {
    /// SOH shown as `|`, binary bytes escaped, passwords replaced by `***`: messages end up in
    /// logs and test failures.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Message(\"")?;
        let mut secret = false;
        let mut at_tag_start = true;
        let mut tag: u32 = 0;
        for &b in self.raw.iter() {
            if secret && b != 0x01 {
                continue;
            }
            match b {
                0x01 => {
                    if secret {
                        write!(f, "***")?;
                    }
                    secret = false;
                    at_tag_start = true;
                    tag = 0;
                    write!(f, "|")?;
                    continue;
                }
                b'=' if at_tag_start => {
                    at_tag_start = false;
                    write!(f, "=")?;
                    secret = SECRET_TAGS.contains(&tag);
                    continue;
                }
                b'0'..=b'9' if at_tag_start => {
                    tag = tag.saturating_mul(10).saturating_add(u32::from(b & 0x0f));
                }
                _ => at_tag_start = false,
            }
            match b {
                0x20..=0x7e => write!(f, "{}", b as char)?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        write!(f, "\")")
    }
}

impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl Eq for Message {}

/// Session-level message types (Heartbeat, TestRequest, ResendRequest, Reject, SequenceReset,
/// Logout, Logon): these are never resent, only gap-filled.
pub fn is_admin_msg_type(t: &[u8]) -> bool {
    matches!(t, b"0" | b"1" | b"2" | b"3" | b"4" | b"5" | b"A")
}

/// Standard header tags (FIX 4.2/4.4/FIXT.1.1). Used to split header from body, e.g. when a
/// stored message is resent with a fresh header.
pub fn is_header_tag(tag: u32) -> bool {
    matches!(
        tag,
        8 | 9
            | 35
            | 49
            | 56
            | 115
            | 128
            | 90
            | 91
            | 34
            | 50
            | 142
            | 57
            | 143
            | 116
            | 144
            | 129
            | 145
            | 43
            | 97
            | 52
            | 122
            | 212
            | 213
            | 347
            | 369
            | 627
            | 628
            | 629
            | 630
            | 1128
            | 1129
            | 1156
    )
}

/// Parses plain ASCII decimal digits (no sign, no spaces), rejecting overflow.
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(d as u64)?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use crate::fix::codec::{frame_body, Decoder, DecoderLimits};

    #[test]
    fn passwords_never_show_in_debug() {
        let mut raw = Vec::new();
        frame_body(
            "FIX.4.4",
            b"35=A\x0149=A\x0156=B\x0134=1\x0152=20260101-00:00:00\x01553=alice\x01554=s3cret\x01925=n3w\x01",
            &mut raw,
        );
        let mut d = Decoder::new(DecoderLimits::default());
        d.feed(&raw);
        let m = d.decode_next().unwrap().unwrap();
        let shown = format!("{m:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("n3w"),
            "{shown}"
        );
        assert!(
            shown.contains("|554=***|925=***|") && shown.contains("553=alice"),
            "{shown}"
        );
        assert!(shown.starts_with("Message(\"8=FIX.4.4|9="), "{shown}");
    }
}
