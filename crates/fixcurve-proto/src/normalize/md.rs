//! Market data: the NoMDEntries (268) repeating group of W and X.
//!
//! The group is delimited the FIX way: the first tag after 268 starts every entry. Fields
//! that cannot be part of an entry (trailer, a few message-level tags that may follow the
//! group) end it. The entry count must match 268 exactly: a short or long group means the
//! message was mangled, and publishing half a book would be worse than publishing nothing.

use super::{
    field_decimal, field_text, field_u32, md_topic, tag, BookChange, BookEntry, BookSnapshot,
    BookUpdate, EntryType, Event, NormalizeError, Normalized, Trade, UpdateAction, View,
};
use crate::fix::Field;

/// More entries than this in one message is refused (bounded work per message).
pub(crate) const MAX_ENTRIES: usize = 10_000;

/// Tags that end the MD entries group when met: trailer and message-level tags FIX places
/// after NoMDEntries (ApplQueueDepth/Resolution).
const GROUP_END: &[u32] = &[10, 89, 93, 813, 814];

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

/// One entry's fields, by the tags the normalizer reads (first occurrence in the entry).
#[derive(Default)]
struct RawEntry<'a> {
    fields: Vec<Field<'a>>,
}

impl<'a> RawEntry<'a> {
    fn raw(&self, t: u32) -> Option<&'a [u8]> {
        self.fields.iter().find(|f| f.tag == t).map(|f| f.value)
    }
}

/// Splits the 268 group into entries; `Ok(None)` when the message has no 268 at all.
fn entries<'a>(v: &View<'_, 'a>) -> Result<Vec<RawEntry<'a>>, NormalizeError> {
    let group_err = |reason: String| NormalizeError::Group {
        msg_type: v.msg_type.to_owned(),
        count_tag: tag::NO_MD_ENTRIES,
        reason,
    };
    let Some(start) = v.fields.iter().position(|f| f.tag == tag::NO_MD_ENTRIES) else {
        return Err(v.missing(tag::NO_MD_ENTRIES));
    };
    let declared = field_u32(
        v.msg_type,
        tag::NO_MD_ENTRIES,
        v.fields.get(start).map(|f| f.value),
    )?
    .unwrap_or(0) as usize;
    if declared > MAX_ENTRIES {
        return Err(group_err(format!(
            "{declared} entries exceeds the limit {MAX_ENTRIES}"
        )));
    }
    let rest = v.fields.get(start.saturating_add(1)..).unwrap_or(&[]);
    let mut out: Vec<RawEntry<'a>> = Vec::with_capacity(declared);
    let Some(first) = rest.first() else {
        return if declared == 0 {
            Ok(out)
        } else {
            Err(group_err(format!("declares {declared} entries, has 0")))
        };
    };
    let delimiter = first.tag;
    if GROUP_END.contains(&delimiter) {
        return if declared == 0 {
            Ok(out)
        } else {
            Err(group_err(format!("declares {declared} entries, has 0")))
        };
    }
    for f in rest {
        if GROUP_END.contains(&f.tag) {
            break;
        }
        if f.tag == delimiter {
            if out.len() == declared {
                return Err(group_err(format!(
                    "more than the {declared} entries declared"
                )));
            }
            out.push(RawEntry::default());
        }
        if let Some(e) = out.last_mut() {
            if f.tag != delimiter
                && ENTRY_TAGS.contains(&f.tag)
                && e.fields.iter().any(|g| g.tag == f.tag)
            {
                return Err(NormalizeError::RepeatedTag {
                    msg_type: v.msg_type.to_owned(),
                    tag: f.tag,
                });
            }
            e.fields.push(*f);
        }
    }
    if out.len() != declared {
        return Err(group_err(format!(
            "declares {declared} entries, has {}",
            out.len()
        )));
    }
    Ok(out)
}

fn book_entry(msg_type: &str, e: &RawEntry<'_>) -> Result<BookEntry, NormalizeError> {
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

fn entry_time(msg_type: &str, e: &RawEntry<'_>) -> Result<Option<String>, NormalizeError> {
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
    e: &RawEntry<'_>,
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
