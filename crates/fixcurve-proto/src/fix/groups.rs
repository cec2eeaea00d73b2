//! Repeating groups of the messages fixcurve normalizes.
//!
//! Tag=value has no group delimiters on the wire: an entry starts at each occurrence of the
//! group's first (delimiter) field, and the last entry ends at the first field that is not a
//! member of the group. So group parsing needs to know each group's members; this module holds
//! them for the market-data, quote, security-status and execution-report groups (FIX 4.2/4.4,
//! FIX 5.0 via FIXT), nested groups included. Parsing is lazy and allocation-light: a group is
//! a list of position ranges into the already-indexed message.
//!
//! In a known group, user-defined tags (5000 and up) belong to the entry they appear in.
//!
//! A group we have no member list for is still readable: its members are taken to be the tags
//! seen in its entries before the last one, and a single-entry group runs to the end of the
//! body. That is a heuristic, so the normalizer only relies on the known groups.

use std::ops::Range;

use smallvec::SmallVec;

use super::field::Field;
use super::message::{parse_u64, Message};

/// A group definition: the NumInGroup tag and the tags its entries may hold (nested groups'
/// count tags and members included).
#[derive(Debug)]
pub struct GroupSpec {
    /// The NumInGroup tag that opens the group.
    pub count_tag: u32,
    /// Tags an entry may carry, the delimiter (first) included.
    pub members: &'static [u32],
    /// Groups that may nest inside an entry.
    pub nested: &'static [&'static GroupSpec],
    /// `is_member` for tags below [`BITS_BELOW`], built at compile time: one load per field
    /// while walking a group instead of a scan of up to ~130 tags and the nested lists.
    bits: [u64; BIT_WORDS],
}

/// Tags below this are answered from a bitmap (every standard tag fixcurve's groups hold).
const BITS_BELOW: u32 = 2048;
const BIT_WORDS: usize = (BITS_BELOW / 64) as usize;

/// FIX leaves tags from 5000 up to counterparties (user-defined fields). Venues put them in
/// group entries freely, so inside a known group they are taken as members of the entry they
/// appear in rather than as the end of the group: a custom tag must not cost a whole book.
const USER_DEFINED_FROM: u32 = 5000;

const fn set_bit(bits: &mut [u64; BIT_WORDS], tag: u32) {
    // Tags past the bitmap are answered by `is_member_scan`.
    if tag < BITS_BELOW {
        bits[(tag / 64) as usize] |= 1u64 << (tag % 64);
    }
}

impl GroupSpec {
    /// A group of `members` (delimiter first) with `nested` groups inside its entries; the
    /// member bitmap (own members, nested count tags and members) is computed here, at compile
    /// time for the statics below.
    pub const fn new(
        count_tag: u32,
        members: &'static [u32],
        nested: &'static [&'static GroupSpec],
    ) -> GroupSpec {
        let mut bits = [0u64; BIT_WORDS];
        let mut i = 0;
        while i < members.len() {
            set_bit(&mut bits, members[i]);
            i = i.saturating_add(1);
        }
        let mut j = 0;
        while j < nested.len() {
            let n = nested[j];
            set_bit(&mut bits, n.count_tag);
            let mut w = 0;
            while w < BIT_WORDS {
                bits[w] |= n.bits[w];
                w = w.saturating_add(1);
            }
            j = j.saturating_add(1);
        }
        GroupSpec {
            count_tag,
            members,
            nested,
            bits,
        }
    }

    #[inline]
    fn is_member(&self, tag: u32) -> bool {
        if tag < BITS_BELOW {
            return self
                .bits
                .get((tag / 64) as usize)
                .is_some_and(|w| (w >> (tag % 64)) & 1 == 1);
        }
        self.is_member_scan(tag)
    }

    fn is_member_scan(&self, tag: u32) -> bool {
        tag >= USER_DEFINED_FROM
            || self.members.contains(&tag)
            || self
                .nested
                .iter()
                .any(|n| n.count_tag == tag || n.is_member_scan(tag))
    }
}

/// Instrument component (FIX 4.4), without its own nested groups.
macro_rules! instrument {
    () => {
        [
            55, 65, 48, 22, 460, 461, 167, 762, 200, 541, 1079, 966, 1049, 965, 224, 225, 239, 226,
            227, 228, 255, 543, 470, 471, 472, 240, 202, 947, 967, 968, 206, 231, 969, 996, 997,
            223, 207, 970, 971, 106, 348, 349, 107, 350, 351, 691, 667, 875, 876, 873, 874, 201,
            1151, 1146, 1147, 1191, 1192, 1193, 1194, 1195, 1196, 1197, 1198, 1199, 1200, 1227,
            1185, 1184, 1186,
        ]
    };
}

/// NoSecurityAltID (454).
pub static SECURITY_ALT_ID: GroupSpec = GroupSpec::new(454, &[455, 456], &[]);
/// NoEvents (864).
pub static EVENTS: GroupSpec = GroupSpec::new(864, &[865, 866, 867, 868, 1145], &[]);
/// NoPartySubIDs (802), inside Parties.
pub static PARTY_SUB_IDS: GroupSpec = GroupSpec::new(802, &[523, 803], &[]);
/// NoPartyIDs (453).
pub static PARTIES: GroupSpec = GroupSpec::new(453, &[448, 447, 452], &[&PARTY_SUB_IDS]);

/// 268 NoMDEntries in W (snapshot) and X (incremental refresh): the union of both layouts.
pub static MD_ENTRIES: GroupSpec = GroupSpec::new(
    268,
    &{
        const I: [u32; 69] = instrument!();
        const E: [u32; 57] = [
            279, 285, 269, 278, 280, 270, 15, 271, 272, 273, 274, 275, 336, 625, 276, 277, 282,
            283, 284, 286, 287, 288, 289, 290, 291, 292, 293, 294, 295, 296, 297, 298, 299, 1023,
            1024, 1048, 1070, 1020, 1026, 1027, 1028, 1029, 346, 811, 58, 354, 355, 40, 126, 110,
            18, 63, 64, 1025, 37, 198, 299,
        ];
        concat::<69, 57, 126>(I, E)
    },
    &[&SECURITY_ALT_ID, &EVENTS, &PARTIES],
);
/// 267 NoMDEntryTypes in V (MarketDataRequest).
pub static MD_ENTRY_TYPES: GroupSpec = GroupSpec::new(267, &[269], &[]);
/// 146 NoRelatedSym in V (MarketDataRequest), R (QuoteRequest) and friends.
pub static RELATED_SYM: GroupSpec = GroupSpec::new(
    146,
    &{
        const I: [u32; 69] = instrument!();
        const E: [u32; 12] = [15, 38, 54, 63, 64, 1, 303, 537, 336, 625, 40, 126];
        concat::<69, 12, 81>(I, E)
    },
    &[&SECURITY_ALT_ID, &EVENTS, &PARTIES],
);
/// 816 NoAltMDSource in Y (MarketDataRequestReject).
pub static ALT_MD_SOURCE: GroupSpec = GroupSpec::new(816, &[817], &[]);
/// 555 NoLegs (Quote, ExecutionReport): instrument-leg and leg-execution fields.
pub static LEGS: GroupSpec = GroupSpec::new(
    555,
    &[
        600, 601, 602, 603, 607, 608, 609, 764, 610, 611, 248, 249, 250, 251, 252, 253, 257, 599,
        596, 597, 598, 254, 612, 942, 613, 614, 615, 616, 617, 618, 619, 620, 621, 622, 623, 624,
        556, 740, 739, 955, 956, 999, 1001, 1017, 566, 687, 690, 683, 654, 587, 588, 637, 675,
        1073, 1074, 1075, 686, 681, 684, 676, 677, 678, 679, 680, 682, 1366,
    ],
    &[&PARTIES],
);
/// NoContraBrokers (382).
pub static CONTRA_BROKERS: GroupSpec = GroupSpec::new(382, &[375, 337, 437, 438, 655], &[]);
/// NoMiscFees (136).
pub static MISC_FEES: GroupSpec = GroupSpec::new(136, &[137, 138, 139, 891], &[]);
/// NoContAmts (518).
pub static CONT_AMTS: GroupSpec = GroupSpec::new(518, &[519, 520, 521], &[]);
/// NoStipulations (232).
pub static STIPULATIONS: GroupSpec = GroupSpec::new(232, &[233, 234], &[]);
/// NoUnderlyings (711).
pub static UNDERLYINGS: GroupSpec = GroupSpec::new(
    711,
    &[
        311, 312, 309, 305, 457, 458, 459, 462, 463, 310, 763, 313, 542, 315, 241, 242, 243, 244,
        245, 246, 256, 595, 592, 593, 594, 247, 316, 941, 317, 436, 435, 308, 306, 362, 363, 307,
        364, 365, 877, 878, 318, 879, 810, 882, 883, 884, 885, 886, 887, 888, 889,
    ],
    &[],
);
/// NoFills (1362).
pub static FILLS: GroupSpec = GroupSpec::new(1362, &[1363, 1364, 1365, 1443, 1622], &[]);

const fn concat<const A: usize, const B: usize, const C: usize>(
    a: [u32; A],
    b: [u32; B],
) -> [u32; C] {
    let mut out = [0u32; C];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i = i.saturating_add(1);
    }
    while i < C {
        out[i] = b[i.saturating_sub(A)];
        i = i.saturating_add(1);
    }
    out
}

/// Every known group, for the tests that check `spec` and the bitmaps against the lists.
#[cfg(test)]
static ALL: &[&GroupSpec] = &[
    &MD_ENTRIES,
    &MD_ENTRY_TYPES,
    &RELATED_SYM,
    &ALT_MD_SOURCE,
    &LEGS,
    &PARTIES,
    &PARTY_SUB_IDS,
    &CONTRA_BROKERS,
    &MISC_FEES,
    &CONT_AMTS,
    &STIPULATIONS,
    &UNDERLYINGS,
    &SECURITY_ALT_ID,
    &EVENTS,
    &FILLS,
];

/// The known definition of the group counted by `count_tag`, if any.
pub fn spec(count_tag: u32) -> Option<&'static GroupSpec> {
    Some(match count_tag {
        268 => &MD_ENTRIES,
        267 => &MD_ENTRY_TYPES,
        146 => &RELATED_SYM,
        816 => &ALT_MD_SOURCE,
        555 => &LEGS,
        453 => &PARTIES,
        802 => &PARTY_SUB_IDS,
        382 => &CONTRA_BROKERS,
        136 => &MISC_FEES,
        518 => &CONT_AMTS,
        232 => &STIPULATIONS,
        711 => &UNDERLYINGS,
        454 => &SECURITY_ALT_ID,
        864 => &EVENTS,
        1362 => &FILLS,
        _ => return None,
    })
}

/// Why a group could not be read (maps to SessionRejectReason 16 or 15).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// Each variant is documented by its `#[error]` text, which is what users read.
#[allow(missing_docs)]
pub enum GroupError {
    #[error("NumInGroup {tag} is not a number")]
    BadCount { tag: u32 },
    #[error("NumInGroup {tag} says {declared} entries, found {found}")]
    CountMismatch { tag: u32, declared: u64, found: u64 },
}

/// Entry starts, kept inline for books of up to 16 entries (no allocation per walk), as u32
/// to keep a `Group` small enough to move without a `memcpy` call. Walks stop at position
/// `u32::MAX`; a message cannot hold that many fields (its offsets are u32 too).
type Starts = SmallVec<[u32; 16]>;

/// A parsed repeating group: where each entry starts among the message's field positions,
/// and where the last one ends.
#[derive(Debug, Clone)]
pub struct Group<'m> {
    msg: &'m Message,
    count_tag: u32,
    starts: Starts,
    end: u32,
}

/// One entry of a group.
#[derive(Debug, Clone)]
pub struct GroupEntry<'m> {
    msg: &'m Message,
    range: Range<usize>,
}

impl<'m> Group<'m> {
    /// The NumInGroup tag.
    pub fn count_tag(&self) -> u32 {
        self.count_tag
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.starts.len()
    }
    /// No entries (NumInGroup 0).
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }
    /// The entries in wire order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = GroupEntry<'m>> + '_ {
        let (msg, starts, end) = (self.msg, &self.starts[..], self.end);
        let at = move |i: usize| starts.get(i).copied().unwrap_or(end) as usize;
        (0..starts.len()).map(move |i| GroupEntry {
            msg,
            range: at(i)..at(i.saturating_add(1)),
        })
    }
    /// Entry `i`, if there is one.
    pub fn entry(&self, i: usize) -> Option<GroupEntry<'m>> {
        let start = *self.starts.get(i)? as usize;
        let end = match self.starts.get(i.saturating_add(1)) {
            Some(&next) => next,
            None => self.end,
        };
        Some(GroupEntry {
            msg: self.msg,
            range: start..end as usize,
        })
    }
}

impl<'m> GroupEntry<'m> {
    /// The entry's fields in wire order (nested groups included, flat).
    pub fn fields(&self) -> impl Iterator<Item = Field<'m>> + '_ {
        let msg = self.msg;
        self.range.clone().filter_map(move |i| msg.field_at(i))
    }
    /// First occurrence of `tag` in this entry (nested groups included, in wire order).
    pub fn get(&self, tag: u32) -> Option<Field<'m>> {
        self.msg
            .position_in(tag, self.range.clone())
            .and_then(|i| self.msg.field_at(i))
    }
    /// The value of `tag` in this entry as text, if present and UTF-8.
    pub fn get_str(&self, tag: u32) -> Option<&'m str> {
        self.get(tag).and_then(|f| f.as_str())
    }
    /// A group nested in this entry (e.g. 453 parties inside an MD entry).
    pub fn group(&self, count_tag: u32) -> Result<Option<Group<'m>>, GroupError> {
        parse_in(self.msg, self.range.clone(), count_tag)
    }
}

/// What the group parser reads: a decoded [`Message`] or a plain slice of fields (the
/// normalizer's view), so both go through the one parser.
pub trait FieldSeq {
    /// Number of fields.
    fn field_count(&self) -> usize;
    /// The tag at position `i`.
    fn tag_at(&self, i: usize) -> Option<u32>;
    /// The value at position `i`.
    fn value_at(&self, i: usize) -> Option<&[u8]>;
    /// Position of the first `tag` within `range`.
    fn position_in(&self, tag: u32, range: Range<usize>) -> Option<usize> {
        range.into_iter().find(|&i| self.tag_at(i) == Some(tag))
    }
    /// The tags at positions `range` (clamped to the fields there are), in order: the group
    /// walk iterates these rather than indexing field by field.
    fn tags(&self, range: Range<usize>) -> impl Iterator<Item = u32> + '_;
}

impl FieldSeq for Message {
    #[inline]
    fn field_count(&self) -> usize {
        Message::field_count(self)
    }
    #[inline]
    fn tag_at(&self, i: usize) -> Option<u32> {
        Message::tag_at(self, i)
    }
    fn value_at(&self, i: usize) -> Option<&[u8]> {
        self.field_at(i).map(|f| f.value)
    }
    #[inline]
    fn position_in(&self, tag: u32, range: Range<usize>) -> Option<usize> {
        Message::position_in(self, tag, range)
    }
    #[inline]
    fn tags(&self, range: Range<usize>) -> impl Iterator<Item = u32> + '_ {
        self.tags_in(range)
    }
}

impl FieldSeq for [Field<'_>] {
    #[inline]
    fn field_count(&self) -> usize {
        self.len()
    }
    #[inline]
    fn tag_at(&self, i: usize) -> Option<u32> {
        self.get(i).map(|f| f.tag)
    }
    fn value_at(&self, i: usize) -> Option<&[u8]> {
        self.get(i).map(|f| f.value)
    }
    #[inline]
    fn tags(&self, range: Range<usize>) -> impl Iterator<Item = u32> + '_ {
        let end = range.end.min(self.len());
        self.get(range.start.min(end)..end)
            .unwrap_or_default()
            .iter()
            .map(|f| f.tag)
    }
}

/// The group counted by `count_tag` at the top level of `msg`. `Ok(None)`: no such count
/// field in the message.
#[inline]
pub fn group(msg: &Message, count_tag: u32) -> Result<Option<Group<'_>>, GroupError> {
    parse_in(msg, 0..msg.field_count(), count_tag)
}

/// Inlined, so the `Group` (its entry starts inline, ~100 bytes) is built where the caller
/// keeps it rather than built here and moved out through the `Result`.
#[inline]
fn parse_in(
    msg: &Message,
    within: Range<usize>,
    count_tag: u32,
) -> Result<Option<Group<'_>>, GroupError> {
    let mut starts = Starts::new();
    Ok(walk(msg, within, count_tag, &mut starts)?.map(|end| Group {
        msg,
        count_tag,
        starts,
        end,
    }))
}

/// The entries of the group counted by `count_tag` within positions `within` of `seq`, as
/// position ranges. `Ok(None)`: no such count field there. The trailer (the last field of a
/// message, 10) is never part of a group; a field slice without one may end in a group.
pub fn entry_ranges<S: FieldSeq + ?Sized>(
    seq: &S,
    within: Range<usize>,
    count_tag: u32,
) -> Result<Option<Vec<Range<usize>>>, GroupError> {
    let mut starts = Starts::new();
    let Some(end) = walk(seq, within, count_tag, &mut starts)? else {
        return Ok(None);
    };
    let ends = starts.iter().skip(1).copied().chain(std::iter::once(end));
    Ok(Some(
        starts
            .iter()
            .zip(ends)
            .map(|(&s, e)| s as usize..e as usize)
            .collect(),
    ))
}

/// Finds the group counted by `count_tag` within `within`, pushes each entry's first position
/// onto `starts` and returns where the last entry ends. `Ok(None)`: no such count field.
fn walk<S: FieldSeq + ?Sized>(
    seq: &S,
    within: Range<usize>,
    count_tag: u32,
    starts: &mut Starts,
) -> Result<Option<u32>, GroupError> {
    // Positions are kept as u32 (see `Starts`): nothing past u32::MAX is looked at.
    let within = within.start..within.end.min(u32::MAX as usize);
    let Some(pos) = seq.position_in(count_tag, within.clone()) else {
        return Ok(None);
    };
    let declared = seq
        .value_at(pos)
        .and_then(parse_u64)
        .ok_or(GroupError::BadCount { tag: count_tag })?;
    let mismatch = |found: u64| GroupError::CountMismatch {
        tag: count_tag,
        declared,
        found,
    };
    let first = pos.saturating_add(1);
    let delimiter = match seq.tag_at(first) {
        Some(t) if declared > 0 && first < within.end => t,
        _ if declared == 0 => return Ok(Some(first as u32)),
        _ => return Err(mismatch(0)),
    };
    let known = spec(count_tag);
    if let Some(s) = known {
        if delimiter != count_tag && !s.is_member(delimiter) {
            return Err(mismatch(0));
        }
    }
    // The trailer (10) never belongs to a group.
    let count = seq.field_count();
    let trailer = count.checked_sub(1).filter(|&i| seq.tag_at(i) == Some(10));
    let body_end = within.end.min(trailer.unwrap_or(count));
    // At most one entry per remaining field: a lying count cannot make this allocate more.
    // (Books of up to `inline_size` entries need no reserve call at all.)
    let expect = usize::try_from(declared)
        .unwrap_or(usize::MAX)
        .min(body_end.saturating_sub(first));
    if expect > starts.inline_size() {
        starts.reserve(expect);
    }
    starts.push(first as u32);
    let mut found: u64 = 1;
    let end = match known {
        Some(s) => {
            let from = first.saturating_add(1);
            let mut end = body_end;
            for (k, t) in seq.tags(from..body_end).enumerate() {
                if t == delimiter {
                    // One more entry than declared: the count is wrong, and the rest of the
                    // message cannot be trusted to be where it seems.
                    if found >= declared {
                        return Err(mismatch(found.saturating_add(1)));
                    }
                    found = found.saturating_add(1);
                    starts.push(from.saturating_add(k) as u32);
                } else if !s.is_member(t) {
                    end = from.saturating_add(k);
                    break;
                }
            }
            end as u32
        }
        None => walk_unknown(
            seq, first, body_end, delimiter, declared, &mut found, starts,
        )
        .map_err(|()| mismatch(found.saturating_add(1)))?,
    };
    if found != declared {
        return Err(mismatch(found));
    }
    Ok(Some(end))
}

/// The entries of a group we have no member list for: a tag is a member when it was seen in
/// an earlier entry, or while more entries are still to come. `Err` when one more entry than
/// declared starts.
fn walk_unknown<S: FieldSeq + ?Sized>(
    seq: &S,
    first: usize,
    body_end: usize,
    delimiter: u32,
    declared: u64,
    found: &mut u64,
    starts: &mut Starts,
) -> Result<u32, ()> {
    let mut seen = [0u32; 16];
    seen[0] = delimiter;
    let mut nseen = 1usize;
    let mut i = first.saturating_add(1);
    loop {
        match seq.tag_at(i).filter(|_| i < body_end) {
            Some(t) if t == delimiter => {
                if *found >= declared {
                    return Err(());
                }
                *found = found.saturating_add(1);
                starts.push(i as u32);
            }
            Some(t) if seen.get(..nseen).is_some_and(|s| s.contains(&t)) => {}
            Some(t) if declared == 1 || *found < declared => {
                if let Some(slot) = seen.get_mut(nseen) {
                    *slot = t;
                    nseen = nseen.saturating_add(1);
                }
            }
            _ => return Ok(i as u32),
        }
        i = i.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::codec::{frame_body, Decoder, DecoderLimits};

    /// The bitmap answers what the member lists say, for every tag of every known group.
    #[test]
    fn member_bitmap_matches_member_lists() {
        for spec in ALL {
            for tag in 0..6000 {
                assert_eq!(
                    spec.is_member(tag),
                    spec.is_member_scan(tag),
                    "group {} tag {tag}",
                    spec.count_tag
                );
            }
        }
        assert!(MD_ENTRIES.is_member(270) && !MD_ENTRIES.is_member(10));
        // Nested groups' count tags and members are members of the outer entry.
        assert!(
            MD_ENTRIES.is_member(453) && MD_ENTRIES.is_member(802) && MD_ENTRIES.is_member(523)
        );
    }

    /// `spec` finds every known group by its count tag, and nothing else.
    #[test]
    fn spec_finds_every_known_group() {
        for s in ALL {
            assert!(std::ptr::eq(spec(s.count_tag).unwrap(), *s));
        }
        assert!(spec(9000).is_none() && spec(10).is_none());
    }

    fn decode(raw: &[u8]) -> Message {
        let mut d = Decoder::new(DecoderLimits::default());
        d.feed(raw);
        d.decode_next().unwrap().unwrap()
    }

    fn msg(body: &str) -> Message {
        let mut raw = Vec::new();
        frame_body("FIX.4.4", body.replace('|', "\x01").as_bytes(), &mut raw);
        decode(&raw)
    }

    #[test]
    fn snapshot_w_entries() {
        let m = decode(include_bytes!("testdata/md_w.fix"));
        let g = group(&m, 268).unwrap().unwrap();
        assert_eq!(g.len(), 10);
        let prices: Vec<&str> = g.entries().map(|e| e.get_str(270).unwrap()).collect();
        assert_eq!(prices[0], "63997.50");
        assert_eq!(prices[9], "64002.00");
        assert_eq!(g.entry(5).unwrap().get_str(269), Some("1"));
        assert_eq!(g.entry(9).unwrap().get_str(290), Some("5"));
        assert_eq!(g.entry(0).unwrap().fields().count(), 4);
    }

    #[test]
    fn incremental_x_entries_with_symbol_per_entry() {
        let m = decode(include_bytes!("testdata/md_x.fix"));
        let g = group(&m, 268).unwrap().unwrap();
        assert_eq!(g.len(), 3);
        for e in g.entries() {
            assert_eq!(e.get_str(279), Some("0"));
            assert_eq!(e.get_str(55), Some("BTC-USD"));
        }
        assert_eq!(g.entry(2).unwrap().get_str(270), Some("64002.00"));
    }

    #[test]
    fn group_ends_at_first_non_member_and_count_is_checked() {
        let m = msg("35=W|49=A|56=B|34=1|52=x|55=EUR/USD|268=2|269=0|270=1.1|269=1|270=1.2|93=4|");
        let g = group(&m, 268).unwrap().unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g.entry(1).unwrap().fields().count(), 2);
        assert_eq!(m.get_str(93), Some("4"));
        // User-defined tags stay in their entry, wherever they appear in it.
        let m = msg("35=W|49=A|56=B|34=1|52=x|268=2|269=0|5001=a|270=1.1|269=1|270=1.2|5000=b|");
        let g = group(&m, 268).unwrap().unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g.entry(0).unwrap().get_str(5001), Some("a"));
        assert_eq!(g.entry(0).unwrap().get_str(270), Some("1.1"));
        assert_eq!(g.entry(1).unwrap().get_str(5000), Some("b"));
        let bad = msg("35=W|49=A|56=B|34=1|52=x|268=3|269=0|270=1.1|269=1|270=1.2|");
        assert_eq!(
            group(&bad, 268).unwrap_err(),
            GroupError::CountMismatch {
                tag: 268,
                declared: 3,
                found: 2
            }
        );
        let zero = msg("35=W|49=A|56=B|34=1|52=x|268=0|");
        assert!(group(&zero, 268).unwrap().unwrap().is_empty());
        let nan = msg("35=W|49=A|56=B|34=1|52=x|268=x|");
        assert!(group(&nan, 268).is_err());
        assert!(group(&nan, 146).unwrap().is_none());
    }

    /// A book past the inline capacity of the entry list: every entry found, in order, by
    /// both views (the decoded message and the normalizer's field slice).
    #[test]
    fn long_book_spills_and_both_views_agree() {
        let mut body = String::from("35=W|49=A|56=B|34=1|52=x|55=EUR/USD|268=40|");
        for i in 0..40 {
            body.push_str(&format!("269={}|270=1.{i}|271={}|", i % 2, i + 1));
        }
        body.push_str("5000=end|");
        let m = msg(&body);
        let g = group(&m, 268).unwrap().unwrap();
        assert_eq!(g.len(), 40);
        for (i, e) in g.entries().enumerate() {
            assert_eq!(e.get_str(270), Some(format!("1.{i}").as_str()));
            assert_eq!(e.fields().count(), if i == 39 { 4 } else { 3 });
        }
        assert_eq!(g.entry(39).unwrap().get_str(5000), Some("end"));
        assert!(g.entry(40).is_none());
        let fields: Vec<Field<'_>> = m.fields().collect();
        let ranges = entry_ranges(&fields[..], 0..fields.len(), 268)
            .unwrap()
            .unwrap();
        let via_msg: Vec<Range<usize>> = g.entries().map(|e| e.range).collect();
        assert_eq!(ranges, via_msg);
    }

    #[test]
    fn nested_parties_inside_md_entry() {
        let m = msg("35=X|49=A|56=B|34=1|52=x|268=2|279=0|269=2|270=5|453=2|448=P1|452=1|448=P2|452=3|279=1|269=2|270=6|");
        let g = group(&m, 268).unwrap().unwrap();
        assert_eq!(g.len(), 2);
        let parties = g.entry(0).unwrap().group(453).unwrap().unwrap();
        assert_eq!(parties.len(), 2);
        assert_eq!(parties.entry(1).unwrap().get_str(448), Some("P2"));
        assert_eq!(g.entry(1).unwrap().get_str(270), Some("6"));
        assert!(g.entry(1).unwrap().group(453).unwrap().is_none());
    }

    #[test]
    fn market_data_request_groups() {
        let m = msg("35=V|49=A|56=B|34=1|52=x|262=r|263=1|264=0|267=2|269=0|269=1|146=2|55=EUR/USD|55=USD/JPY|");
        assert_eq!(group(&m, 267).unwrap().unwrap().len(), 2);
        let syms = group(&m, 146).unwrap().unwrap();
        let v: Vec<&str> = syms.entries().map(|e| e.get_str(55).unwrap()).collect();
        assert_eq!(v, ["EUR/USD", "USD/JPY"]);
    }

    #[test]
    fn unknown_group_uses_tags_seen_in_earlier_entries() {
        let m = msg("35=U1|49=A|56=B|34=1|52=x|9000=2|9001=a|9002=b|9001=c|9002=d|9999=z|");
        let g = group(&m, 9000).unwrap().unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g.entry(1).unwrap().get_str(9002), Some("d"));
        assert_eq!(g.entry(1).unwrap().get(9999), None);
    }
}
