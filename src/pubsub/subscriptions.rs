//! Prefix subscriptions with reference counts, as libzmq keeps them: subscribing twice and
//! cancelling once leaves the prefix subscribed.

use bytes::Bytes;

#[derive(Debug, Default, Clone)]
pub struct Subscriptions {
    entries: Vec<(Bytes, u32)>,
}

/// Bounds what one peer can make the publisher hold.
pub const MAX_SUBSCRIPTIONS: usize = 4096;

impl Subscriptions {
    /// Returns false when the table is full (the subscription is ignored).
    pub fn add(&mut self, prefix: Bytes) -> bool {
        if let Some(e) = self.entries.iter_mut().find(|(p, _)| *p == prefix) {
            e.1 = e.1.saturating_add(1);
            return true;
        }
        if self.entries.len() >= MAX_SUBSCRIPTIONS {
            return false;
        }
        self.entries.push((prefix, 1));
        true
    }

    pub fn remove(&mut self, prefix: &[u8]) {
        if let Some(i) = self.entries.iter().position(|(p, _)| p == prefix) {
            self.entries[i].1 -= 1;
            if self.entries[i].1 == 0 {
                self.entries.swap_remove(i);
            }
        }
    }

    /// Hot path (every message x every subscriber): the common "everything" subscription and
    /// a first-byte mismatch are decided without a `memcmp` call.
    pub fn matches(&self, topic: &[u8]) -> bool {
        self.entries
            .iter()
            .any(|(p, _)| match (p.first(), topic.first()) {
                (None, _) => true,
                (Some(a), Some(b)) if a == b => topic.starts_with(p),
                _ => false,
            })
    }

    pub fn prefixes(&self) -> impl Iterator<Item = &Bytes> {
        self.entries.iter().map(|(p, _)| p)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refcounted_prefixes() {
        let mut s = Subscriptions::default();
        assert!(!s.matches(b"md.A"));
        s.add(Bytes::from_static(b"md."));
        s.add(Bytes::from_static(b"md."));
        assert!(s.matches(b"md.A") && !s.matches(b"exec.A"));
        s.remove(b"md.");
        assert!(s.matches(b"md.A"));
        s.remove(b"md.");
        assert!(!s.matches(b"md.A"));
        s.remove(b"never");
        s.add(Bytes::new());
        assert!(s.matches(b"anything"));
    }
}
