//! The current book of one symbol, built from a full book (35=W) and the changes after it
//! (35=X): what a late joiner gets as its snapshot (zguide "Clone" pattern), valid at the
//! sequence number of the last change applied.
//!
//! A change naming an MDEntryID applies to that entry; one with only an MDEntryPositionNo
//! applies to that rank of its side (new inserts there, change replaces, delete removes, as
//! FIX depth books work); otherwise levels are keyed by entry type and price. Bids are kept
//! best (highest) first, offers best (lowest) first; other entry types (index values,
//! settlement prices...) in arrival order.

use std::cmp::Ordering;

use super::events::{BookChange, BookEntry, EntryType, UpdateAction};

/// Most levels kept per book: a venue flooding new levels must not grow memory without bound.
pub const MAX_LEVELS: usize = 10_000;

/// The levels of one symbol's book.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Book {
    entries: Vec<BookEntry>,
}

fn same_level(a: &BookEntry, b: &BookEntry) -> bool {
    if a.side != b.side {
        return false;
    }
    match (&a.entry_id, &b.entry_id) {
        (Some(x), Some(y)) => x == y,
        (None, None) => a.price == b.price,
        _ => false,
    }
}

fn rank(e: &BookEntry) -> u8 {
    match e.side {
        Some(EntryType::Bid) => 0,
        Some(EntryType::Offer) => 1,
        _ => 2,
    }
}

/// Bids by price descending, offers ascending, the rest as they came (stable sort).
fn order(a: &BookEntry, b: &BookEntry) -> Ordering {
    rank(a)
        .cmp(&rank(b))
        .then_with(|| match (rank(a), &a.price, &b.price) {
            (0, Some(x), Some(y)) => y.cmp(x),
            (1, Some(x), Some(y)) => x.cmp(y),
            _ => Ordering::Equal,
        })
}

impl Book {
    /// A book replaced whole by a snapshot's entries (trade entries are prints, not levels).
    pub fn from_snapshot(entries: &[BookEntry]) -> Book {
        let mut b = Book::default();
        for e in entries
            .iter()
            .filter(|e| e.side != Some(EntryType::Trade))
            .take(MAX_LEVELS)
        {
            b.upsert(e.clone());
        }
        b.sort();
        b
    }

    /// Applies one change in wire order.
    pub fn apply(&mut self, c: &BookChange) {
        if c.entry.side == Some(EntryType::Trade) {
            return;
        }
        if let (None, Some(pos)) = (&c.entry.entry_id, c.entry.position) {
            self.positional(c, pos);
            return;
        }
        match c.action {
            UpdateAction::Delete => self.entries.retain(|e| !same_level(e, &c.entry)),
            // New, Change and anything unnamed (Overlay...) all leave the level as sent.
            _ => self.upsert(c.entry.clone()),
        }
    }

    /// Applies a batch of changes and restores the order.
    pub fn apply_all(&mut self, changes: &[BookChange]) {
        for c in changes {
            self.apply(c);
        }
        self.sort();
    }

    /// A change addressed by rank within its side (1 = best).
    fn positional(&mut self, c: &BookChange, pos: u32) {
        let side: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries.get(i).is_some_and(|e| e.side == c.entry.side))
            .collect();
        let rank = usize::try_from(pos.saturating_sub(1)).unwrap_or(usize::MAX);
        let at = side.get(rank).copied();
        match (&c.action, at) {
            (UpdateAction::Delete, Some(i)) => {
                self.entries.remove(i);
            }
            (UpdateAction::Delete, None) => {}
            (UpdateAction::New, Some(i)) if self.entries.len() < MAX_LEVELS => {
                self.entries.insert(i, c.entry.clone());
            }
            (UpdateAction::New, _) => self.upsert(c.entry.clone()),
            (_, Some(i)) => {
                if let Some(e) = self.entries.get_mut(i) {
                    *e = c.entry.clone();
                }
            }
            (_, None) => self.upsert(c.entry.clone()),
        }
    }

    fn upsert(&mut self, e: BookEntry) {
        if let Some(x) = self.entries.iter_mut().find(|x| same_level(x, &e)) {
            *x = e;
        } else if self.entries.len() < MAX_LEVELS {
            self.entries.push(e);
        }
    }

    fn sort(&mut self) {
        self.entries.sort_by(order);
    }

    /// The levels, best first per side.
    pub fn entries(&self) -> &[BookEntry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn lvl(side: EntryType, px: i64, size: i64) -> BookEntry {
        BookEntry {
            side: Some(side),
            price: Some(Decimal::new(px, 0)),
            size: Some(Decimal::new(size, 0)),
            entry_id: None,
            position: None,
            orders: None,
        }
    }

    fn change(action: UpdateAction, entry: BookEntry) -> BookChange {
        BookChange { action, entry }
    }

    #[test]
    fn changes_by_position_address_the_rank_of_their_side() {
        let at = |side, px, size, pos| BookEntry {
            position: Some(pos),
            ..lvl(side, px, size)
        };
        let mut b = Book::from_snapshot(&[
            at(EntryType::Bid, 100, 1, 1),
            at(EntryType::Bid, 99, 2, 2),
            at(EntryType::Offer, 101, 3, 1),
        ]);
        b.apply_all(&[
            change(UpdateAction::Change, at(EntryType::Bid, 100, 5, 1)),
            change(UpdateAction::New, at(EntryType::Offer, 102, 1, 2)),
            change(UpdateAction::Delete, at(EntryType::Bid, 0, 0, 2)),
        ]);
        let got: Vec<(i64, i64)> = b
            .entries()
            .iter()
            .map(|e| {
                (
                    e.price.map(|p| p.mantissa() as i64).unwrap_or(0),
                    e.size.map(|p| p.mantissa() as i64).unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(got, vec![(100, 5), (101, 3), (102, 1)]);
    }

    #[test]
    fn snapshot_then_changes_give_the_current_book() {
        let mut b = Book::from_snapshot(&[
            lvl(EntryType::Offer, 102, 5),
            lvl(EntryType::Bid, 100, 1),
            lvl(EntryType::Bid, 101, 2),
            lvl(EntryType::Trade, 101, 9),
        ]);
        b.apply_all(&[
            change(UpdateAction::Change, lvl(EntryType::Bid, 101, 7)),
            change(UpdateAction::Delete, lvl(EntryType::Bid, 100, 0)),
            change(UpdateAction::New, lvl(EntryType::Offer, 103, 1)),
            change(UpdateAction::New, lvl(EntryType::Trade, 102, 3)),
        ]);
        let got: Vec<(Option<EntryType>, Option<Decimal>, Option<Decimal>)> = b
            .entries()
            .iter()
            .map(|e| (e.side.clone(), e.price, e.size))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    Some(EntryType::Bid),
                    Some(Decimal::new(101, 0)),
                    Some(Decimal::new(7, 0))
                ),
                (
                    Some(EntryType::Offer),
                    Some(Decimal::new(102, 0)),
                    Some(Decimal::new(5, 0))
                ),
                (
                    Some(EntryType::Offer),
                    Some(Decimal::new(103, 0)),
                    Some(Decimal::new(1, 0))
                ),
            ]
        );
    }
}
