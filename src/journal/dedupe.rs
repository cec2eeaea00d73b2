//! The dedupe keys (venue and ExecID) of journaled executions, bounded: after a crash the venue
//! resends what it sent since our last committed sequence number, and what the journal already
//! holds must not be published twice.

use std::collections::{HashSet, VecDeque};

#[derive(Debug)]
pub(super) struct Dedupe {
    set: HashSet<String>,
    order: VecDeque<String>,
    max: usize,
}

impl Dedupe {
    pub(super) fn new(max: usize) -> Self {
        Dedupe {
            set: HashSet::new(),
            order: VecDeque::new(),
            max,
        }
    }

    pub(super) fn contains(&self, key: &str) -> bool {
        self.set.contains(key)
    }

    /// Remembers `key`, forgetting the oldest beyond the bound.
    pub(super) fn insert(&mut self, key: String) {
        if self.max == 0 || self.set.contains(&key) {
            return;
        }
        if self.order.len() >= self.max {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(key.clone());
        self.order.push_back(key);
    }
}
