//! Market data: the NoMDEntries (268) repeating group of W and X.
//!
//! The group is read by `fix::groups` (the first tag after 268 starts every entry; the first
//! tag that is not a member of an MD entry ends the group). The entry count must match 268
//! exactly: a short or long group means the message was mangled, and publishing half a book
//! would be worse than publishing nothing.

use super::{
    field_decimal, field_text, field_u32, md_topic, tag, BookChange, BookEntry, BookSnapshot,
    BookUpdate, EntryType, Event, NormalizeError, Normalized, Trade, UpdateAction, View,
};
use crate::fix::{groups, Field};

/// More entries than this in one message is refused (bounded work per message).
pub(crate) const MAX_ENTRIES: usize = 10_000;

/// Tags of an MD entry the normalizer reads: each may appear once per entry, or the value to
/// publish would be a guess.
const ENTRY_TAGS: &[u32] = &[
    tag::SYMBOL,
    tag::MD_ENTRY_TYPE,
    tag::MD_ENTRY_PX,
    tag::MD_ENTRY_SIZE,
    tag::MD_ENTRY_DATE,
    tag::MD_ENTRY_TIME,
    tag::MD_ENTRY_ID,
    tag::MD_UPDATE_ACTION,
    tag::MD_ENTRY_POSITION_NO,
    tag::NUMBER_OF_ORDERS,
];

/// MDUpdateAction (279): New, Change, Delete, Delete Thru, Delete From, Overlay.
fn check_action(msg_type: &str, value: Option<&[u8]>) -> Result<(), NormalizeError> {
    match value {
        None | Some(b"0" | b"1" | b"2" | b"3" | b"4" | b"5") => Ok(()),
        Some(v) => Err(NormalizeError::BadEnum {
            msg_type: msg_type.to_owned(),
            tag: tag::MD_UPDATE_ACTION,
            value: String::from_utf8_lossy(v).chars().take(16).collect(),
        }),
    }
}

/// MDEntryType (269): one character, a digit or a letter, in every FIX version.
fn check_entry_type(msg_type: &str, value: Option<&[u8]>) -> Result<(), NormalizeError> {
    match value {
        None => Ok(()),
        Some([c]) if c.is_ascii_alphanumeric() => Ok(()),
        Some(v) => Err(NormalizeError::BadEnum {
            msg_type: msg_type.to_owned(),
            tag: tag::MD_ENTRY_TYPE,
            value: String::from_utf8_lossy(v).chars().take(16).collect(),
        }),
    }
}

/// One entry's fields, in wire order.
struct RawEntry<'e, 'a> {
    fields: &'e [Field<'a>],
}

impl<'a> RawEntry<'_, 'a> {
    /// First occurrence of `t` in the entry (each tag read is checked to occur once).
    fn raw(&self, t: u32) -> Option<&'a [u8]> {
        self.fields.iter().find(|f| f.tag == t).map(|f| f.value)
    }
}

/// Splits the 268 group into entries with the one group parser (`fix::groups`), then checks
/// what the normalizer needs on top: a bounded count, and each tag it reads at most once per
/// entry (two prices in one entry would make the published one a guess).
fn entries<'e, 'a>(v: &View<'e, 'a>) -> Result<Vec<RawEntry<'e, 'a>>, NormalizeError> {
    let group_err = |reason: String| NormalizeError::Group {
        msg_type: v.msg_type.to_owned(),
        count_tag: tag::NO_MD_ENTRIES,
        reason,
    };
    let ranges = groups::entry_ranges(v.fields, 0..v.fields.len(), tag::NO_MD_ENTRIES)
        .map_err(|e| group_err(e.to_string()))?
        .ok_or_else(|| v.missing(tag::NO_MD_ENTRIES))?;
    if ranges.len() > MAX_ENTRIES {
        return Err(group_err(format!(
            "{} entries exceeds the limit {MAX_ENTRIES}",
            ranges.len()
        )));
    }
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges {
        let fields = v.fields.get(r).unwrap_or_default();
        for (i, f) in fields.iter().enumerate() {
            if ENTRY_TAGS.contains(&f.tag)
                && fields
                    .get(..i)
                    .is_some_and(|before| before.iter().any(|g| g.tag == f.tag))
            {
                return Err(NormalizeError::RepeatedTag {
                    msg_type: v.msg_type.to_owned(),
                    tag: f.tag,
                });
            }
        }
        out.push(RawEntry { fields });
    }
    Ok(out)
}

fn book_entry(msg_type: &str, e: &RawEntry<'_, '_>) -> Result<BookEntry, NormalizeError> {
    check_entry_type(msg_type, e.raw(tag::MD_ENTRY_TYPE))?;
    check_action(msg_type, e.raw(tag::MD_UPDATE_ACTION))?;
    Ok(BookEntry {
        side: field_text(msg_type, tag::MD_ENTRY_TYPE, e.raw(tag::MD_ENTRY_TYPE))?
            .map(|s| EntryType::from_fix(&s)),
        price: field_decimal(msg_type, tag::MD_ENTRY_PX, e.raw(tag::MD_ENTRY_PX))?,
        size: field_decimal(msg_type, tag::MD_ENTRY_SIZE, e.raw(tag::MD_ENTRY_SIZE))?,
        entry_id: field_text(msg_type, tag::MD_ENTRY_ID, e.raw(tag::MD_ENTRY_ID))?,
        position: field_u32(
            msg_type,
            tag::MD_ENTRY_POSITION_NO,
            e.raw(tag::MD_ENTRY_POSITION_NO),
        )?,
        orders: field_u32(
            msg_type,
            tag::NUMBER_OF_ORDERS,
            e.raw(tag::NUMBER_OF_ORDERS),
        )?,
    })
}

fn entry_time(msg_type: &str, e: &RawEntry<'_, '_>) -> Result<Option<String>, NormalizeError> {
    let date = field_text(msg_type, tag::MD_ENTRY_DATE, e.raw(tag::MD_ENTRY_DATE))?;
    let time = field_text(msg_type, tag::MD_ENTRY_TIME, e.raw(tag::MD_ENTRY_TIME))?;
    Ok(match (date, time) {
        (Some(d), Some(t)) => Some(format!("{d}-{t}")),
        (d, t) => d.or(t),
    })
}

fn trade(
    msg_type: &str,
    symbol: &str,
    e: &RawEntry<'_, '_>,
    action: Option<UpdateAction>,
) -> Result<Trade, NormalizeError> {
    let b = book_entry(msg_type, e)?;
    Ok(Trade {
        symbol: symbol.to_owned(),
        price: b.price.ok_or_else(|| NormalizeError::Missing {
            msg_type: msg_type.to_owned(),
            tag: tag::MD_ENTRY_PX,
        })?,
        size: b.size,
        trade_id: b.entry_id,
        time: entry_time(msg_type, e)?,
        action,
    })
}

/// Fields before the group (message level), so a 55 inside an entry is not mistaken for it.
fn header<'m, 'a>(v: &View<'m, 'a>) -> View<'m, 'a> {
    let end = v
        .fields
        .iter()
        .position(|f| f.tag == tag::NO_MD_ENTRIES)
        .unwrap_or(v.fields.len());
    View {
        fields: v.fields.get(..end).unwrap_or(v.fields),
        msg_type: v.msg_type,
    }
}

/// 35=W: one full book for the message's symbol.
pub(super) fn snapshot(venue: &str, v: &View<'_, '_>) -> Result<Vec<Normalized>, NormalizeError> {
    let h = header(v);
    let symbol = h.req_text(tag::SYMBOL)?;
    let md_req_id = h.text(tag::MD_REQ_ID)?;
    let mut book = Vec::new();
    for e in entries(v)? {
        let entry = book_entry(v.msg_type, &e)?;
        if entry.side.is_none() {
            return Err(v.missing(tag::MD_ENTRY_TYPE));
        }
        book.push(entry);
    }
    Ok(vec![Normalized {
        topic: md_topic(venue, &symbol),
        event: Event::BookSnapshot(BookSnapshot {
            symbol,
            md_req_id,
            entries: book,
        }),
    }])
}

/// 35=X: book changes grouped per symbol and trades as `Trade` events, in wire order (a run
/// of book changes for one symbol becomes one `BookUpdate`; a trade or a change of symbol
/// closes the run).
pub(super) fn incremental(
    venue: &str,
    v: &View<'_, '_>,
) -> Result<Vec<Normalized>, NormalizeError> {
    let h = header(v);
    let msg_symbol = h.text(tag::SYMBOL)?;
    let md_req_id = h.text(tag::MD_REQ_ID)?;
    let mut out = Vec::new();
    let mut pending: Option<BookUpdate> = None;
    let mut last_symbol = msg_symbol;
    let flush = |pending: &mut Option<BookUpdate>, out: &mut Vec<Normalized>| {
        if let Some(u) = pending.take() {
            out.push(Normalized {
                topic: md_topic(venue, &u.symbol),
                event: Event::BookUpdate(u),
            });
        }
    };
    for e in entries(v)? {
        // An entry without 55 belongs to the previous entry's instrument (or the message's).
        let symbol = match field_text(v.msg_type, tag::SYMBOL, e.raw(tag::SYMBOL))? {
            Some(s) => s,
            None => last_symbol.clone().ok_or_else(|| v.missing(tag::SYMBOL))?,
        };
        last_symbol = Some(symbol.clone());
        check_action(v.msg_type, e.raw(tag::MD_UPDATE_ACTION))?;
        check_entry_type(v.msg_type, e.raw(tag::MD_ENTRY_TYPE))?;
        let action = field_text(
            v.msg_type,
            tag::MD_UPDATE_ACTION,
            e.raw(tag::MD_UPDATE_ACTION),
        )?
        .map(|s| UpdateAction::from_fix(&s));
        let entry_type = field_text(v.msg_type, tag::MD_ENTRY_TYPE, e.raw(tag::MD_ENTRY_TYPE))?
            .map(|s| EntryType::from_fix(&s));
        if entry_type == Some(EntryType::Trade) {
            flush(&mut pending, &mut out);
            let t = trade(v.msg_type, &symbol, &e, action)?;
            out.push(Normalized {
                topic: md_topic(venue, &symbol),
                event: Event::Trade(t),
            });
            continue;
        }
        let action = action.ok_or_else(|| NormalizeError::Missing {
            msg_type: v.msg_type.to_owned(),
            tag: tag::MD_UPDATE_ACTION,
        })?;
        if entry_type.is_none() && action != UpdateAction::Delete {
            return Err(v.missing(tag::MD_ENTRY_TYPE));
        }
        let change = BookChange {
            action,
            entry: book_entry(v.msg_type, &e)?,
        };
        match &mut pending {
            Some(u) if u.symbol == symbol => u.changes.push(change),
            _ => {
                flush(&mut pending, &mut out);
                pending = Some(BookUpdate {
                    symbol,
                    md_req_id: md_req_id.clone(),
                    changes: vec![change],
                });
            }
        }
    }
    flush(&mut pending, &mut out);
    Ok(out)
}
