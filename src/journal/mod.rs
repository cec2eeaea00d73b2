//! The execution journal: every event on a journaled topic (`exec.` by default) is appended
//! here before the FIX sequence number that carried it is committed, so a crash never loses
//! what the venue considers delivered, and subscribers can fetch again what they missed.
//!
//! Append-only segment files (`<first record number>.seg`, 20 digits) of CRC-checked records
//! (`record`), rolled at `segment_bytes` and deleted oldest first beyond `max_bytes` or
//! `max_age`. On open, every segment is scanned: a torn tail (crash mid-write) is cut off; a
//! damaged record elsewhere (flipped bytes) is reported, the segment is copied to
//! `quarantine/` and the records around the damage are still served. Per-topic sequence
//! numbers and the publisher epoch of journaled topics continue across restarts.
//!
//! Written by one owner (the publishing task); read concurrently through [`JournalReader`]
//! (the replay endpoint), which sees records once they are written to the file.

mod dedupe;
mod reader;
pub mod record;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use self::dedupe::Dedupe;
pub use self::reader::{JournalReader, ReadBatch};
pub use self::record::Record;
use self::record::Scan;

/// Where and what to journal.
#[derive(Clone, Debug)]
pub struct JournalConfig {
    pub dir: PathBuf,
    /// Topic prefixes journaled (`exec.`; add `md.` to journal market data too).
    pub prefixes: Vec<String>,
    /// A segment is closed and a new one started beyond this size.
    pub segment_bytes: u64,
    /// Oldest segments are deleted while the journal is larger than this.
    pub max_bytes: u64,
    /// ... or while their records are older than this.
    pub max_age: Duration,
    /// Dedupe keys (ExecIDs) remembered, newest kept.
    pub max_dedupe_keys: usize,
}

impl JournalConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        JournalConfig {
            dir: dir.into(),
            prefixes: vec!["exec.".into()],
            segment_bytes: 64 << 20,
            max_bytes: 4 << 30,
            max_age: Duration::from_secs(7 * 86_400),
            max_dedupe_keys: 4_000_000,
        }
    }

    /// Whether events on `topic` are journaled.
    pub fn journals(&self, topic: &str) -> bool {
        self.prefixes.iter().any(|p| topic.starts_with(p.as_str()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("journal {path}: {reason}")]
    Format { path: PathBuf, reason: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One segment file as the writer and readers know it.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub path: PathBuf,
    /// First record number it holds (its name).
    pub first: u64,
    /// Last record number written to it (`first - 1` while empty).
    pub last: u64,
    pub bytes: u64,
    /// When its first record was written (Unix seconds; the file's mtime after a restart).
    pub created: u64,
    /// (record number, file offset) every `INDEX_EVERY` records: readers start near `from`.
    pub index: Vec<(u64, u64)>,
    /// Highest sequence number of each topic in this segment: a reader after `since` on a
    /// topic skips segments that end before it.
    pub topic_max: HashMap<String, u64>,
}

/// A sparse index entry every this many records.
const INDEX_EVERY: u64 = 256;

/// State readers share with the writer.
#[derive(Debug)]
pub(crate) struct Shared {
    pub segments: RwLock<Vec<Segment>>,
    /// Highest record number written to a file (readable).
    pub written: AtomicU64,
    /// Damaged bytes found (on open or while reading).
    pub damaged_bytes: AtomicU64,
    /// Every topic journaled (replay tells an unknown topic from an empty range).
    pub topics: RwLock<std::collections::HashSet<String>>,
}

/// What the journal reports for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    pub bytes: u64,
    pub records: u64,
    pub oldest_record: u64,
    pub newest_record: u64,
    pub segments: u64,
    pub damaged_bytes: u64,
    pub torn_bytes: u64,
    pub duplicates_dropped: u64,
}

/// The writer.
pub struct Journal {
    /// Held (flock) for the journal's life: two bridges on one state directory would
    /// interleave records.
    _lock: File,
    cfg: JournalConfig,
    epoch: u64,
    shared: Arc<Shared>,
    active: File,
    active_len: u64,
    pending: Vec<u8>,
    /// Record number of the first record in `pending`.
    pending_first: u64,
    next_number: u64,
    last_seq: HashMap<String, u64>,
    dedupe: Dedupe,
    unsynced: bool,
    torn_bytes: u64,
    duplicates_dropped: u64,
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.seg")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

impl Journal {
    /// Opens (creating) the journal in `cfg.dir`: scans every segment, cuts a torn tail,
    /// quarantines damaged segments, and resumes numbering, topic sequences and the epoch.
    /// `new_epoch` is used only when the journal is new.
    pub fn open(cfg: JournalConfig, new_epoch: u64) -> Result<Journal, JournalError> {
        let dir = cfg.dir.clone();
        crate::keys::fsutil::create_dir_mode(&dir, 0o700).map_err(|e| JournalError::Io {
            path: dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        crate::fix::store::lock_exclusive(&lock, &lock_path).map_err(|e| JournalError::Format {
            path: dir.clone(),
            reason: format!("in use by another process ({e})"),
        })?;
        let epoch = read_or_create_epoch(&dir, new_epoch)?;
        let mut names: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| {
                let stem = p.file_name()?.to_str()?.strip_suffix(".seg")?;
                (stem.len() == 20).then(|| stem.parse::<u64>().ok().map(|n| (n, p.clone())))?
            })
            .collect();
        names.sort();
        let mut j = Journal {
            _lock: lock,
            cfg,
            epoch,
            shared: Arc::new(Shared {
                segments: RwLock::new(Vec::new()),
                written: AtomicU64::new(0),
                damaged_bytes: AtomicU64::new(0),
                topics: RwLock::new(Default::default()),
            }),
            active: tempfile_placeholder(&dir)?,
            active_len: 0,
            pending: Vec::with_capacity(64 * 1024),
            pending_first: 1,
            next_number: 1,
            last_seq: HashMap::new(),
            dedupe: Dedupe::new(0),
            unsynced: false,
            torn_bytes: 0,
            duplicates_dropped: 0,
        };
        j.dedupe = Dedupe::new(j.cfg.max_dedupe_keys);
        let count = names.len();
        let mut segments = Vec::new();
        for (i, (first, path)) in names.into_iter().enumerate() {
            let is_last = i + 1 == count;
            segments.push(j.recover_segment(first, path, is_last)?);
        }
        let last = segments.last().map(|s| s.last).unwrap_or(0);
        j.next_number = last
            .max(
                segments
                    .last()
                    .map(|s| s.first.saturating_sub(1))
                    .unwrap_or(0),
            )
            .saturating_add(1);
        let reuse = segments
            .last()
            .filter(|s| s.bytes < j.cfg.segment_bytes)
            .map(|s| (s.path.clone(), s.bytes));
        match reuse {
            Some((path, len)) => {
                j.active = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                j.active_len = len;
            }
            None => {
                let seg = new_segment(&dir, j.next_number)?;
                j.active = seg.0;
                segments.push(seg.1);
                j.active_len = 0;
            }
        }
        j.pending_first = j.next_number;
        j.shared.written.store(j.next_number - 1, Ordering::Release);
        if let Ok(mut s) = j.shared.segments.write() {
            *s = segments;
        }
        j.apply_retention();
        Ok(j)
    }

    /// Scans one segment on open; returns what it holds.
    fn recover_segment(
        &mut self,
        first: u64,
        path: PathBuf,
        is_last: bool,
    ) -> Result<Segment, JournalError> {
        let data = std::fs::read(&path).map_err(io_err(&path))?;
        let created = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or_else(unix_now);
        let mut seg = Segment {
            path: path.clone(),
            first,
            last: first.saturating_sub(1),
            bytes: 0,
            created,
            index: Vec::new(),
            topic_max: HashMap::new(),
        };
        let mut pos = 0usize;
        let mut damaged = 0u64;
        let mut good_end = 0usize;
        loop {
            match record::scan(&data, pos) {
                Scan::Record(r, next) => {
                    if r.number.wrapping_sub(first) % INDEX_EVERY == 0 || seg.index.is_empty() {
                        seg.index.push((r.number, pos as u64));
                    }
                    seg.last = seg.last.max(r.number);
                    let m = seg.topic_max.entry(r.topic.clone()).or_insert(0);
                    *m = (*m).max(r.seq);
                    self.note_topic(&r.topic, r.seq);
                    if let Some(k) = r.dedupe {
                        self.dedupe.insert(k);
                    }
                    pos = next;
                    good_end = next;
                }
                Scan::Incomplete => break,
                Scan::Bad => match record::resync(&data, pos + 1, false) {
                    Some(at) => {
                        damaged += (at - pos) as u64;
                        pos = at;
                    }
                    None => break,
                },
            }
        }
        let tail = (data.len() - good_end) as u64;
        if damaged > 0 || (tail > 0 && !is_last) {
            let lost = damaged + if is_last { 0 } else { tail };
            self.shared.damaged_bytes.fetch_add(lost, Ordering::Relaxed);
            let q = quarantine(&self.cfg.dir, &path)?;
            tracing::error!(segment = %path.display(), damaged_bytes = lost, copy = %q.display(),
                "journal segment damaged: the records around the damage are served, a copy is quarantined");
        }
        if is_last && tail > 0 {
            // A torn tail from a crash mid-write: cut it so appends continue after the last
            // whole record.
            self.torn_bytes += tail;
            tracing::warn!(segment = %path.display(), torn_bytes = tail, "journal: cut off an incomplete record (crash during write)");
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            f.set_len(good_end as u64).map_err(io_err(&path))?;
            f.sync_all().map_err(io_err(&path))?;
            seg.bytes = good_end as u64;
        } else {
            seg.bytes = data.len() as u64;
        }
        Ok(seg)
    }

    /// The epoch stamped on journaled topics' envelopes: fixed for the life of the journal, so
    /// their sequence numbers continue across restarts.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn config(&self) -> &JournalConfig {
        &self.cfg
    }

    /// Last sequence number per journaled topic (where the sequencer resumes).
    pub fn last_seqs(&self) -> &HashMap<String, u64> {
        &self.last_seq
    }

    /// Number of the last record appended (0: none yet).
    pub fn last_number(&self) -> u64 {
        self.next_number.saturating_sub(1)
    }

    /// A reader for the replay endpoint.
    pub fn reader(&self) -> JournalReader {
        JournalReader::new(self.shared.clone())
    }

    /// Whether an event with this dedupe key (venue and ExecID) was journaled already: the
    /// venue resending after a crash must not reach subscribers twice.
    pub fn is_duplicate(&mut self, key: &str) -> bool {
        let dup = self.dedupe.contains(key);
        if dup {
            self.duplicates_dropped += 1;
        }
        dup
    }

    /// Buffers one record; it reaches the file at the next `flush` (the caller flushes before
    /// acknowledging, and before the FIX sequence number is committed).
    pub fn append(&mut self, topic: &str, seq: u64, dedupe: Option<&str>, payload: &[u8]) {
        let number = self.next_number;
        let offset = self.active_len + self.pending.len() as u64;
        if let Ok(mut s) = self.shared.segments.write() {
            if let Some(last) = s.last_mut() {
                if number.wrapping_sub(last.first) % INDEX_EVERY == 0 {
                    last.index.push((number, offset));
                }
                match last.topic_max.get_mut(topic) {
                    Some(m) => *m = (*m).max(seq),
                    None => {
                        last.topic_max.insert(topic.to_owned(), seq);
                    }
                }
            }
        }
        record::encode(&mut self.pending, number, seq, topic, dedupe, payload);
        self.next_number += 1;
        self.note_topic(topic, seq);
        if let Some(k) = dedupe {
            self.dedupe.insert(k.to_owned());
        }
    }

    fn note_topic(&mut self, topic: &str, seq: u64) {
        match self.last_seq.get_mut(topic) {
            Some(e) => *e = (*e).max(seq),
            None => {
                self.last_seq.insert(topic.to_owned(), seq);
                if let Ok(mut t) = self.shared.topics.write() {
                    t.insert(topic.to_owned());
                }
            }
        }
    }

    /// Writes buffered records to the file (they survive a crash of this process from here;
    /// `sync` makes them survive the machine), then rolls the segment if it is full.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = self.active_path();
        self.active
            .write_all_at(&self.pending, self.active_len)
            .map_err(io_err(&path))?;
        self.active_len += self.pending.len() as u64;
        self.pending.clear();
        self.unsynced = true;
        let last = self.next_number - 1;
        if let Ok(mut s) = self.shared.segments.write() {
            if let Some(seg) = s.last_mut() {
                seg.last = last;
                seg.bytes = self.active_len;
            }
        }
        self.pending_first = self.next_number;
        self.shared.written.store(last, Ordering::Release);
        if self.active_len >= self.cfg.segment_bytes {
            self.roll()?;
        }
        Ok(())
    }

    /// Makes everything written durable (`fdatasync`); returns how long that took.
    pub fn sync(&mut self) -> Result<Option<Duration>, JournalError> {
        self.flush()?;
        if !self.unsynced {
            return Ok(None);
        }
        let t = std::time::Instant::now();
        let path = self.active_path();
        self.active.sync_data().map_err(io_err(&path))?;
        self.unsynced = false;
        Ok(Some(t.elapsed()))
    }

    /// A handle on the active segment to `fdatasync` off the publishing task, after `flush`.
    /// Syncs may overlap: each covers everything written before it started (a segment that
    /// rolled over was synced when it was closed).
    pub fn sync_handle(&mut self) -> Result<File, JournalError> {
        self.flush()?;
        let path = self.active_path();
        self.unsynced = false;
        self.active.try_clone().map_err(io_err(&path))
    }

    fn active_path(&self) -> PathBuf {
        self.shared
            .segments
            .read()
            .ok()
            .and_then(|s| s.last().map(|s| s.path.clone()))
            .unwrap_or_else(|| self.cfg.dir.clone())
    }

    fn roll(&mut self) -> Result<(), JournalError> {
        let path = self.active_path();
        self.active.sync_data().map_err(io_err(&path))?;
        self.unsynced = false;
        let (file, seg) = new_segment(&self.cfg.dir, self.next_number)?;
        self.active = file;
        self.active_len = 0;
        if let Ok(mut s) = self.shared.segments.write() {
            s.push(seg);
        }
        self.apply_retention();
        Ok(())
    }

    /// Deletes the oldest segments beyond `max_bytes` / `max_age` (never the active one).
    fn apply_retention(&mut self) {
        let now = unix_now();
        let Ok(mut segs) = self.shared.segments.write() else {
            return;
        };
        loop {
            if segs.len() < 2 {
                return;
            }
            let total: u64 = segs.iter().map(|s| s.bytes).sum();
            // A segment's records are all older than the next segment's creation.
            let too_old = segs
                .get(1)
                .is_some_and(|next| now.saturating_sub(next.created) > self.cfg.max_age.as_secs());
            if total <= self.cfg.max_bytes && !too_old {
                return;
            }
            let old = segs.remove(0);
            match std::fs::remove_file(&old.path) {
                Ok(()) => {
                    tracing::info!(segment = %old.path.display(), records = old.last + 1 - old.first, "journal segment retired")
                }
                Err(e) => {
                    tracing::warn!(segment = %old.path.display(), error = %e, "journal segment not deleted")
                }
            }
        }
    }

    pub fn stats(&self) -> JournalStats {
        let segs = self.shared.segments.read();
        let (bytes, oldest, count) = segs
            .as_ref()
            .map(|s| {
                (
                    s.iter().map(|x| x.bytes).sum::<u64>(),
                    s.first().map(|x| x.first).unwrap_or(1),
                    s.len() as u64,
                )
            })
            .unwrap_or((0, 1, 0));
        let newest = self.next_number - 1;
        JournalStats {
            bytes: bytes + self.pending.len() as u64,
            records: (newest + 1).saturating_sub(oldest),
            oldest_record: oldest,
            newest_record: newest,
            segments: count,
            damaged_bytes: self.shared.damaged_bytes.load(Ordering::Relaxed),
            torn_bytes: self.torn_bytes,
            duplicates_dropped: self.duplicates_dropped,
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Err(e) = self.sync() {
            tracing::warn!(error = %e, "journal: final sync failed");
        }
    }
}

/// The writer needs a `File` before recovery decides which one it appends to.
fn tempfile_placeholder(dir: &Path) -> Result<File, JournalError> {
    File::open(dir).map_err(io_err(dir))
}

fn new_segment(dir: &Path, first: u64) -> Result<(File, Segment), JournalError> {
    let path = dir.join(segment_name(first));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(&path))?;
    sync_dir(dir)?;
    Ok((
        f,
        Segment {
            path,
            first,
            last: first.saturating_sub(1),
            bytes: 0,
            created: unix_now(),
            index: Vec::new(),
            topic_max: HashMap::new(),
        },
    ))
}

fn quarantine(dir: &Path, seg: &Path) -> Result<PathBuf, JournalError> {
    let qdir = dir.join("quarantine");
    std::fs::create_dir_all(&qdir).map_err(io_err(&qdir))?;
    let name = seg
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dest = qdir.join(format!("{name}.{}", unix_now()));
    std::fs::copy(seg, &dest).map_err(io_err(&dest))?;
    Ok(dest)
}

fn read_or_create_epoch(dir: &Path, new_epoch: u64) -> Result<u64, JournalError> {
    let path = dir.join("epoch");
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|_| JournalError::Format {
            path: path.clone(),
            reason: "epoch is not a number".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::keys::fsutil::write_atomic(&path, new_epoch.to_string().as_bytes(), 0o600)
                .map_err(|e| JournalError::Io {
                    path: path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            Ok(new_epoch)
        }
        Err(e) => Err(JournalError::Io { path, source: e }),
    }
}

#[cfg(test)]
mod tests;
