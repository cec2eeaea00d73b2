//! Durable per-session sequence numbers and sent application messages.
//!
//! A FIX session must never reuse a MsgSeqNum and must be able to resend what it sent, across
//! crashes. [`FileStore`] keeps one append-only journal per session: every record carries a
//! length and a checksum, so a record torn by a crash or `kill -9` mid-write is detected on the
//! next open and cut off, leaving the last complete state. The sans-IO session hands out its
//! changes as [`StoreWork`], one batch per input: a batch that produced bytes to send is applied
//! with `sync` (one `write` plus one `fdatasync`, before any of them leaves the process). A
//! batch that only moved the peer's sequence number forward (market data in, nothing out) is
//! written (by the transport's store writer, off the reading task) but not waited for on
//! disk. The session syncs it shortly after (see `Session::poll_timeout`); if the machine
//! itself fails in between, the restarted session asks the peer again for what it had
//! already received, as after any gap (subscribers may see some of it twice); a sequence
//! number of ours is never reused.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub use crate::fix::session::{LoadRequest, MemoryStore, SeqState, StoreOp, StoreWork};

/// Why the store failed. Each names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sequence store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "invalid session id {0:?} for a store file name (letters, digits, '.', '-', '_' only)"
    )]
    BadSessionId(String),
    #[error("sequence store {path} is in use by another connection of the same session")]
    Locked { path: PathBuf },
    #[error("sequence store {path}: record for seq {seq} is unreadable")]
    Corrupt { path: PathBuf, seq: u64 },
}

/// Where a session's [`StoreWork`] goes: the driver owns one and carries out what the
/// sans-IO session asks for.
pub trait SeqStore: Send {
    /// What a new session on this store resumes from.
    fn state(&self) -> SeqState;
    /// Carries out one batch: written when it returns, and durable too when `work.sync`.
    fn apply(&mut self, work: StoreWork) -> Result<(), StoreError>;
    /// The stored messages a resend answer asks for, ascending.
    fn load(&mut self, req: LoadRequest) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
}

impl SeqStore for MemoryStore {
    fn state(&self) -> SeqState {
        MemoryStore::state(self)
    }
    fn apply(&mut self, work: StoreWork) -> Result<(), StoreError> {
        MemoryStore::apply(self, work);
        Ok(())
    }
    fn load(&mut self, req: LoadRequest) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        Ok(MemoryStore::load(self, req))
    }
}

const MAGIC: u8 = 0xF1;
const KIND_STATE: u8 = 1;
const KIND_SENT: u8 = 2;
const KIND_TARGET: u8 = 3;
const KIND_SENDER: u8 = 4;
/// magic, kind, payload length (u32 LE).
const RECORD_HEAD: usize = 6;
/// FNV-1a 64 of head and payload (u64 LE).
const RECORD_TAIL: usize = 8;
/// A sent message larger than this cannot be a FIX frame we produced: treat as corruption.
const MAX_RECORD: usize = 64 << 20;

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn encode_record(out: &mut Vec<u8>, kind: u8, payload_parts: &[&[u8]]) {
    let len: usize = payload_parts.iter().map(|p| p.len()).sum();
    let start = out.len();
    out.push(MAGIC);
    out.push(kind);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    for p in payload_parts {
        out.extend_from_slice(p);
    }
    let h = fnv1a(&[&out[start..]]);
    out.extend_from_slice(&h.to_le_bytes());
}

/// The journal-backed durable store: `<state_dir>/<session_id>.seqlog`.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    file: File,
    /// Bytes of the journal already written to the file.
    file_len: u64,
    pending: Vec<u8>,
    sender: u64,
    target: u64,
    /// seq -> (absolute offset of the frame in the journal, length).
    sent: BTreeMap<u64, (u64, u32)>,
    /// Records cut off as torn at open (for logs and tests).
    recovered_torn_bytes: u64,
    /// Sequence-number changes not yet journaled: only the last value of a batch is written.
    sender_dirty: bool,
    target_dirty: bool,
    /// Journal bytes that are not sent messages (superseded sequence-number records): when
    /// this grows past `COMPACT_AFTER`, the journal is rewritten.
    overhead_bytes: u64,
    compact_after: u64,
    /// Written by `flush` but not yet synced.
    unsynced: bool,
}

/// Rewrite the journal once superseded records exceed this (a long session without resets
/// would otherwise grow it by a record per input batch forever).
const COMPACT_AFTER: u64 = 4 << 20;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// One writer per journal: a second connection claiming the same session (or a second
/// process on the same state directory) must not interleave records with the first. The
/// advisory lock goes away with the file descriptor, so a crashed process never leaves it held.
pub(crate) fn lock_exclusive(file: &File, path: &Path) -> Result<(), StoreError> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a valid open descriptor owned by `file`; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Err(StoreError::Locked {
            path: path.to_owned(),
        })
    } else {
        Err(StoreError::Io {
            path: path.to_owned(),
            source: err,
        })
    }
}

impl FileStore {
    /// Opens (creating if needed) the store of `session_id` in `state_dir`, replaying the
    /// journal and cutting off a torn tail. See [`crate::fix::session::SessionConfig::session_id`].
    pub fn open(state_dir: &Path, session_id: &str) -> Result<FileStore, StoreError> {
        if !valid_session_id(session_id) {
            return Err(StoreError::BadSessionId(session_id.to_owned()));
        }
        std::fs::create_dir_all(state_dir).map_err(io_err(state_dir))?;
        let path = state_dir.join(format!("{session_id}.seqlog"));
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        lock_exclusive(&file, &path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(io_err(&path))?;
        let mut store = FileStore {
            path,
            file,
            file_len: 0,
            pending: Vec::new(),
            sender: 1,
            target: 1,
            sent: BTreeMap::new(),
            recovered_torn_bytes: 0,
            sender_dirty: false,
            target_dirty: false,
            overhead_bytes: 0,
            compact_after: COMPACT_AFTER,
            unsynced: false,
        };
        let good = store.replay(&data);
        if good < data.len() {
            store.recovered_torn_bytes = (data.len() - good) as u64;
            tracing::warn!(
                path = %store.path.display(),
                torn_bytes = data.len() - good,
                "sequence store: cut off an incomplete record (crash during write)"
            );
            store
                .file
                .set_len(good as u64)
                .map_err(io_err(&store.path))?;
            store.file.sync_all().map_err(io_err(&store.path))?;
        }
        store.file_len = good as u64;
        if store.overhead_bytes > store.compact_after {
            store.compact()?;
        }
        if !existed {
            // Make the new file's directory entry durable too.
            if let Ok(dir) = File::open(state_dir) {
                dir.sync_all().map_err(io_err(state_dir))?;
            }
        }
        Ok(store)
    }

    /// Applies every complete, checksummed record; returns the length of that prefix.
    fn replay(&mut self, data: &[u8]) -> usize {
        let mut pos = 0usize;
        loop {
            let Some(head) = data.get(pos..pos + RECORD_HEAD) else {
                return pos;
            };
            if head[0] != MAGIC {
                return pos;
            }
            let kind = head[1];
            let len = u32::from_le_bytes([head[2], head[3], head[4], head[5]]) as usize;
            if len > MAX_RECORD {
                return pos;
            }
            let body_end = pos + RECORD_HEAD + len;
            let Some(tail) = data.get(body_end..body_end + RECORD_TAIL) else {
                return pos;
            };
            let mut h = [0u8; 8];
            h.copy_from_slice(tail);
            if fnv1a(&[&data[pos..body_end]]) != u64::from_le_bytes(h) {
                return pos;
            }
            let payload = &data[pos + RECORD_HEAD..body_end];
            let u = |i: usize| -> Option<u64> {
                let b = payload.get(i..i + 8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Some(u64::from_le_bytes(a))
            };
            match kind {
                KIND_STATE => {
                    let (Some(s), Some(t)) = (u(0), u(8)) else {
                        return pos;
                    };
                    self.sender = s;
                    self.target = t;
                    self.sent.clear();
                }
                KIND_SENT => {
                    let Some(seq) = u(0) else {
                        return pos;
                    };
                    let off = (pos + RECORD_HEAD + 8) as u64;
                    self.sent.insert(seq, (off, (len - 8) as u32));
                    self.sender = seq + 1;
                }
                KIND_TARGET => {
                    let Some(t) = u(0) else {
                        return pos;
                    };
                    self.target = t;
                }
                KIND_SENDER => {
                    let Some(s) = u(0) else {
                        return pos;
                    };
                    self.sender = s;
                }
                _ => return pos,
            }
            if kind != KIND_SENT {
                self.overhead_bytes += (RECORD_HEAD + len + RECORD_TAIL) as u64;
            }
            pos = body_end + RECORD_TAIL;
        }
    }

    /// Rewrites the journal as: state, every stored sent message, final sequence numbers.
    /// Written to a temporary file, synced, then renamed over the journal, so a crash at any
    /// point leaves either the old or the new journal whole.
    fn compact(&mut self) -> Result<(), StoreError> {
        self.write_pending()?;
        let mut data = Vec::new();
        encode_record(
            &mut data,
            KIND_STATE,
            &[&self.sender.to_le_bytes(), &self.target.to_le_bytes()],
        );
        let sent: Vec<(u64, (u64, u32))> = self.sent.iter().map(|(k, v)| (*k, *v)).collect();
        for (seq, (off, len)) in sent {
            let buf = self.read_sent(seq, off, len)?;
            encode_record(&mut data, KIND_SENT, &[&seq.to_le_bytes(), &buf]);
        }
        encode_record(&mut data, KIND_SENDER, &[&self.sender.to_le_bytes()]);
        encode_record(&mut data, KIND_TARGET, &[&self.target.to_le_bytes()]);
        // The new journal is locked before it replaces the old one, so no other opener can
        // slip in between the rename and the lock.
        let tmp = self.path.with_extension("seqlog.tmp");
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        lock_exclusive(&f, &tmp)?;
        std::io::Write::write_all(&mut f, &data).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(io_err(&self.path))?;
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = File::open(dir) {
                d.sync_all().map_err(io_err(dir))?;
            }
        }
        self.file = f;
        let (sender, target) = (self.sender, self.target);
        self.sent.clear();
        self.overhead_bytes = 0;
        let good = self.replay(&data);
        debug_assert_eq!(good, data.len());
        debug_assert_eq!((self.sender, self.target), (sender, target));
        self.file_len = data.len() as u64;
        Ok(())
    }

    /// Superseded-record bytes after which the journal is rewritten (default 4 MiB).
    pub fn set_compact_after(&mut self, bytes: u64) {
        self.compact_after = bytes;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of a torn tail discarded when this store was opened.
    pub fn recovered_torn_bytes(&self) -> u64 {
        self.recovered_torn_bytes
    }

    /// One stored message, from its journal offset and length.
    fn read_sent(&self, seq: u64, off: u64, len: u32) -> Result<Vec<u8>, StoreError> {
        let mut buf = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut buf, off)
            .map_err(|_| StoreError::Corrupt {
                path: self.path.clone(),
                seq,
            })?;
        Ok(buf)
    }

    fn write_pending(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(&self.pending, self.file_len)
            .map_err(io_err(&self.path))?;
        self.file_len += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }
}

impl Drop for FileStore {
    /// A session ending (peer gone, shutdown) syncs what it flushed: the power-loss window
    /// stays open only while the session runs.
    fn drop(&mut self) {
        if self.unsynced {
            if let Err(e) = self.file.sync_data() {
                tracing::warn!(path = %self.path.display(), error = %e, "sequence store: final sync failed");
            }
        }
    }
}

impl SeqStore for FileStore {
    fn state(&self) -> SeqState {
        SeqState {
            next_sender: self.sender,
            next_target: self.target,
            period: self.period(),
        }
    }
    fn apply(&mut self, work: StoreWork) -> Result<(), StoreError> {
        for op in work.ops {
            match op {
                StoreOp::NextSender(n) => self.set_next_sender_seq(n)?,
                StoreOp::NextTarget(n) => self.set_next_target_seq(n)?,
                StoreOp::Sent { seq, raw } => self.save_sent(seq, &raw)?,
                StoreOp::Reset => self.reset()?,
                StoreOp::Period(p) => self.set_period(p)?,
            }
        }
        if work.sync {
            self.commit()
        } else {
            self.flush().map(|_| ())
        }
    }
    fn load(&mut self, req: LoadRequest) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.sent_range(req.begin, req.end)
    }
}

/// The record-level operations `apply` is made of (public for tests and tools).
impl FileStore {
    pub fn next_sender_seq(&self) -> u64 {
        self.sender
    }
    /// Kept beside the journal (`<session>.period`, one number): rare, tiny, replaced whole.
    pub fn period(&self) -> Option<i64> {
        let text = std::fs::read_to_string(self.path.with_extension("period")).ok()?;
        text.trim().parse().ok()
    }
    pub fn set_period(&mut self, unix_secs: i64) -> Result<(), StoreError> {
        let path = self.path.with_extension("period");
        crate::keys::fsutil::write_atomic(&path, unix_secs.to_string().as_bytes(), 0o600).map_err(
            |e| StoreError::Io {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            },
        )
    }
    pub fn next_target_seq(&self) -> u64 {
        self.target
    }
    pub fn set_next_sender_seq(&mut self, n: u64) -> Result<(), StoreError> {
        if n != self.sender {
            self.sender = n;
            self.sender_dirty = true;
        }
        Ok(())
    }
    pub fn set_next_target_seq(&mut self, n: u64) -> Result<(), StoreError> {
        if n != self.target {
            self.target = n;
            self.target_dirty = true;
        }
        Ok(())
    }
    pub fn save_sent(&mut self, seq: u64, raw: &[u8]) -> Result<(), StoreError> {
        let off = self.file_len + self.pending.len() as u64 + (RECORD_HEAD + 8) as u64;
        encode_record(&mut self.pending, KIND_SENT, &[&seq.to_le_bytes(), raw]);
        self.sent.insert(seq, (off, raw.len() as u32));
        self.sender = seq + 1;
        self.sender_dirty = false;
        Ok(())
    }
    pub fn sent_range(&mut self, begin: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        if begin > end {
            return Ok(Vec::new());
        }
        self.write_pending()?;
        let mut out = Vec::new();
        for (&seq, &(off, len)) in self.sent.range(begin..=end) {
            out.push((seq, self.read_sent(seq, off, len)?));
        }
        Ok(out)
    }
    pub fn reset(&mut self) -> Result<(), StoreError> {
        // A fresh journal holding one state record: compaction comes for free with resets.
        self.pending.clear();
        self.sent.clear();
        self.sender = 1;
        self.target = 1;
        self.sender_dirty = false;
        self.target_dirty = false;
        self.overhead_bytes = 0;
        let mut rec = Vec::new();
        encode_record(
            &mut rec,
            KIND_STATE,
            &[&1u64.to_le_bytes(), &1u64.to_le_bytes()],
        );
        self.file.set_len(0).map_err(io_err(&self.path))?;
        self.file
            .write_all_at(&rec, 0)
            .map_err(io_err(&self.path))?;
        self.file.sync_data().map_err(io_err(&self.path))?;
        self.file_len = rec.len() as u64;
        self.unsynced = false;
        Ok(())
    }
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if !self.flush()? {
            return Ok(());
        }
        self.file.sync_data().map_err(io_err(&self.path))?;
        self.unsynced = false;
        if self.overhead_bytes > self.compact_after {
            self.compact()?;
        }
        Ok(())
    }
    pub fn flush(&mut self) -> Result<bool, StoreError> {
        let before = self.pending.len();
        if self.sender_dirty {
            encode_record(
                &mut self.pending,
                KIND_SENDER,
                &[&self.sender.to_le_bytes()],
            );
            self.sender_dirty = false;
        }
        if self.target_dirty {
            encode_record(
                &mut self.pending,
                KIND_TARGET,
                &[&self.target.to_le_bytes()],
            );
            self.target_dirty = false;
        }
        self.overhead_bytes += (self.pending.len() - before) as u64;
        if !self.pending.is_empty() {
            self.write_pending()?;
            self.unsynced = true;
        }
        Ok(self.unsynced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = FileStore::open(dir.path(), "FIX.4.4-A-B").unwrap();
            assert_eq!((s.next_sender_seq(), s.next_target_seq()), (1, 1));
            s.save_sent(1, b"one").unwrap();
            s.set_next_sender_seq(3).unwrap();
            s.save_sent(3, b"three").unwrap();
            s.set_next_target_seq(7).unwrap();
            s.commit().unwrap();
        }
        let mut s = FileStore::open(dir.path(), "FIX.4.4-A-B").unwrap();
        assert_eq!((s.next_sender_seq(), s.next_target_seq()), (4, 7));
        assert_eq!(
            s.sent_range(1, 10).unwrap(),
            vec![(1, b"one".to_vec()), (3, b"three".to_vec())]
        );
        assert_eq!(s.sent_range(2, 2).unwrap(), vec![]);
        s.reset().unwrap();
        drop(s);
        let mut s = FileStore::open(dir.path(), "FIX.4.4-A-B").unwrap();
        assert_eq!((s.next_sender_seq(), s.next_target_seq()), (1, 1));
        assert!(s.sent_range(1, 10).unwrap().is_empty());
    }

    #[test]
    fn uncommitted_changes_are_not_durable_but_committed_ones_are() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FileStore::open(dir.path(), "s").unwrap();
        s.set_next_target_seq(5).unwrap();
        s.commit().unwrap();
        s.set_next_target_seq(6).unwrap();
        // As after kill -9: nothing flushes an uncommitted batch on the way out.
        drop(s);
        let s = FileStore::open(dir.path(), "s").unwrap();
        assert_eq!(s.next_target_seq(), 5);
    }

    #[test]
    fn flushed_changes_survive_the_process_and_commit_syncs_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FileStore::open(dir.path(), "f").unwrap();
        assert!(!s.flush().unwrap(), "nothing to sync yet");
        s.set_next_target_seq(7).unwrap();
        assert!(s.flush().unwrap(), "written, awaiting sync");
        assert!(s.flush().unwrap(), "still awaiting sync");
        // Visible to a new process at once (kill -9 does not lose it): read the journal.
        let mut again = FileStore::open(dir.path(), "f2").unwrap();
        std::fs::copy(s.path(), again.path()).unwrap();
        drop(again);
        again = FileStore::open(dir.path(), "f2").unwrap();
        assert_eq!(again.next_target_seq(), 7);
        s.commit().unwrap();
        assert!(!s.flush().unwrap(), "synced");
    }

    /// Every possible torn write (the journal cut at each byte) reopens to the state of the last
    /// complete record, and the store stays usable afterwards.
    #[test]
    fn torn_writes_recover_to_last_complete_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut states = vec![(0usize, 1u64, 1u64, 0usize)];
        {
            let mut s = FileStore::open(dir.path(), "t").unwrap();
            for i in 1..=4u64 {
                s.save_sent(i, format!("message {i}").as_bytes()).unwrap();
                s.set_next_target_seq(i + 1).unwrap();
                s.commit().unwrap();
                let len = std::fs::metadata(s.path()).unwrap().len() as usize;
                states.push((len, i + 1, i + 1, i as usize));
            }
        }
        let full = std::fs::read(dir.path().join("t.seqlog")).unwrap();
        for cut in 0..=full.len() {
            let d2 = tempfile::tempdir().unwrap();
            let mut bytes = full[..cut].to_vec();
            // A torn tail may also hold garbage rather than a clean cut.
            if cut % 3 == 0 && cut < full.len() {
                bytes.extend_from_slice(&[0xF1, 2, 0xff, 0xff]);
            }
            std::fs::write(d2.path().join("t.seqlog"), &bytes).unwrap();
            let mut s = FileStore::open(d2.path(), "t").unwrap();
            // The last committed batch fully contained in the cut.
            let &(_, sender, _, nsent) = states.iter().rev().find(|st| st.0 <= cut).unwrap();
            assert!(s.next_sender_seq() == sender || s.next_sender_seq() == sender + 1);
            assert!(s.sent_range(1, 100).unwrap().len() >= nsent);
            for (seq, body) in s.sent_range(1, 100).unwrap() {
                assert_eq!(body, format!("message {seq}").as_bytes());
            }
            // Writes after recovery land after the cut and survive another reopen.
            s.set_next_target_seq(99).unwrap();
            s.commit().unwrap();
            drop(s);
            assert_eq!(
                FileStore::open(d2.path(), "t").unwrap().next_target_seq(),
                99
            );
        }
    }

    #[test]
    fn only_the_last_seq_of_a_batch_is_journaled_and_compaction_keeps_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FileStore::open(dir.path(), "c").unwrap();
        s.save_sent(1, b"first").unwrap();
        for n in 2..1000 {
            s.set_next_target_seq(n).unwrap();
        }
        s.commit().unwrap();
        let one_batch = std::fs::metadata(s.path()).unwrap().len();
        assert!(one_batch < 100, "one batch wrote {one_batch} bytes");
        // Enough batches to cross a (test-sized) compaction threshold.
        let threshold = 2048;
        s.set_compact_after(threshold);
        let per_batch = (RECORD_HEAD + 8 + RECORD_TAIL) as u64;
        for n in 0..(threshold / per_batch + 10) {
            s.set_next_target_seq(1000 + n).unwrap();
            s.commit().unwrap();
        }
        s.set_next_sender_seq(7).unwrap();
        s.commit().unwrap();
        let len = std::fs::metadata(s.path()).unwrap().len();
        assert!(len < threshold / 2, "journal still {len} bytes");
        let target = s.next_target_seq();
        drop(s);
        let mut s = FileStore::open(dir.path(), "c").unwrap();
        assert_eq!((s.next_sender_seq(), s.next_target_seq()), (7, target));
        assert_eq!(s.sent_range(1, 1).unwrap(), vec![(1, b"first".to_vec())]);
    }

    #[test]
    fn a_second_open_of_the_same_session_is_refused_until_the_first_closes() {
        let dir = tempfile::tempdir().unwrap();
        let first = FileStore::open(dir.path(), "same").unwrap();
        assert!(matches!(
            FileStore::open(dir.path(), "same"),
            Err(StoreError::Locked { .. })
        ));
        drop(first);
        FileStore::open(dir.path(), "same").unwrap();
    }

    #[test]
    fn session_id_cannot_escape_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../x", "a/b", "", ".hidden", "a b"] {
            assert!(matches!(
                FileStore::open(dir.path(), bad),
                Err(StoreError::BadSessionId(_))
            ));
        }
    }
}
