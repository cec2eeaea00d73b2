//! Reading the journal while it is written: the replay endpoint's view. Records are read from
//! the segment files with `pread` (starting near the wanted record through each segment's
//! sparse index), up to what the writer has written, in bounded batches.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::record::{self, Record, Scan};
use super::{Segment, Shared};

/// Bytes read from a segment per `pread`.
const CHUNK: usize = 1 << 20;

/// A batch of records and where to continue.
#[derive(Debug, Default)]
pub struct ReadBatch {
    pub records: Vec<Record>,
    /// The record number to ask for next.
    pub next: u64,
    /// Nothing more is written yet beyond `next`.
    pub end: bool,
    /// The oldest record number still held (earlier ones were retired).
    pub oldest: u64,
}

/// A cheap handle for reading; clone freely.
#[derive(Clone, Debug)]
pub struct JournalReader {
    shared: Arc<Shared>,
}

impl JournalReader {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        JournalReader { shared }
    }

    /// Whether any journaled topic starts with `prefix`.
    pub fn knows_prefix(&self, prefix: &[u8]) -> bool {
        self.shared
            .topics
            .read()
            .map(|t| t.iter().any(|topic| topic.as_bytes().starts_with(prefix)))
            .unwrap_or(false)
    }

    /// The highest record number readable now.
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Acquire)
    }

    /// Records from number `from` on that pass `keep`, at most `max_records` of them or about
    /// `max_bytes` of payload (at least one). Blocking file I/O: call off the async workers.
    pub fn read(
        &self,
        from: u64,
        keep: &dyn Fn(&Record) -> bool,
        max_records: usize,
        max_bytes: usize,
    ) -> ReadBatch {
        self.read_topics(from, None, keep, max_records, max_bytes)
    }

    /// As [`JournalReader::read`], skipping whole segments that hold no topic under
    /// `prefix` at or after sequence number `since` (`hint`).
    pub fn read_topics(
        &self,
        from: u64,
        hint: Option<(&[u8], u64)>,
        keep: &dyn Fn(&Record) -> bool,
        max_records: usize,
        max_bytes: usize,
    ) -> ReadBatch {
        let written = self.written();
        let segments: Vec<Segment> = self
            .shared
            .segments
            .read()
            .map(|s| s.clone())
            .unwrap_or_default();
        let oldest = segments.first().map(|s| s.first).unwrap_or(1);
        let mut batch = ReadBatch {
            records: Vec::new(),
            next: from.max(oldest),
            end: false,
            oldest,
        };
        let mut bytes = 0usize;
        for seg in &segments {
            if seg.last < batch.next || seg.first > written {
                continue;
            }
            if let Some((prefix, since)) = hint {
                let useful = seg
                    .topic_max
                    .iter()
                    .any(|(t, m)| *m >= since && t.as_bytes().starts_with(prefix));
                if !useful && seg.last <= written {
                    batch.next = batch.next.max(seg.last.saturating_add(1));
                    continue;
                }
            }
            let Ok(file) = File::open(&seg.path) else {
                // Retired while we read: continue with what is left.
                continue;
            };
            let start = seg
                .index
                .iter()
                .take_while(|(n, _)| *n <= batch.next)
                .last()
                .map(|(_, off)| *off)
                .unwrap_or(0);
            let full = self.scan_segment(
                &file,
                seg,
                start,
                written,
                &mut batch,
                &mut bytes,
                keep,
                max_records,
                max_bytes,
            );
            if !full {
                return batch;
            }
        }
        batch.end = batch.next > written;
        batch
    }

    /// Scans one segment from `offset`; false once the batch is full.
    #[allow(clippy::too_many_arguments)]
    fn scan_segment(
        &self,
        file: &File,
        seg: &Segment,
        mut offset: u64,
        written: u64,
        batch: &mut ReadBatch,
        bytes: &mut usize,
        keep: &dyn Fn(&Record) -> bool,
        max_records: usize,
        max_bytes: usize,
    ) -> bool {
        let mut buf = vec![0u8; CHUNK];
        while offset < seg.bytes {
            let want = usize::try_from(seg.bytes - offset)
                .unwrap_or(CHUNK)
                .min(buf.len());
            let Ok(n) = file.read_at(&mut buf[..want], offset) else {
                return true;
            };
            if n == 0 {
                return true;
            }
            let data = &buf[..n];
            let mut pos = 0usize;
            loop {
                match record::scan(data, pos) {
                    Scan::Record(r, next) => {
                        pos = next;
                        if r.number > written {
                            return true;
                        }
                        if r.number < batch.next {
                            continue;
                        }
                        batch.next = r.number.saturating_add(1);
                        if keep(&r) {
                            *bytes += r.payload.len();
                            batch.records.push(r);
                            if batch.records.len() >= max_records || *bytes >= max_bytes {
                                return false;
                            }
                        }
                    }
                    Scan::Incomplete => {
                        if pos == 0 {
                            if n < buf.len() || buf.len() >= record::MAX_BODY + record::HEAD {
                                // The end of what is written.
                                return true;
                            }
                            // One record larger than the chunk: read it whole.
                            buf.resize(record::MAX_BODY + record::HEAD, 0);
                        }
                        break;
                    }
                    Scan::Bad => match record::resync(data, pos + 1, true) {
                        Some(at) => {
                            self.shared
                                .damaged_bytes
                                .fetch_add((at - pos) as u64, Ordering::Relaxed);
                            pos = at;
                        }
                        None => {
                            // Damage up to the end of this chunk: skip it.
                            pos = n;
                            break;
                        }
                    },
                }
            }
            offset += pos as u64;
        }
        true
    }
}
