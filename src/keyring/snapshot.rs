//! One consistent view of the keyring directories, built by reading every key file.
//!
//! Snapshots are compared by content (keys, names, topics, expiry, files), never by mtime or
//! size, so a same-size rewrite of a certificate is seen. A file that fails to parse is
//! reported and skipped; if the same path held a good certificate before, that entry is kept,
//! so a half-written or corrupted file can neither empty the keyring nor drop a subscriber.
//!
//! Rescanning is cheap when nothing changed: a file whose inode, size, mtime and ctime are
//! those seen at the previous read is not read again, unless it changed so shortly before
//! that read that a later write could carry the same timestamps ("racy" entries, as git
//! calls them, are always re-read). ctime cannot be set from user space, so a rewrite is seen.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;

use crate::auth::{Decision, Grant, TopicAcl};
use crate::keys::cert;
use crate::keys::PublicKey;

/// More files than this in one directory are not read (a runaway directory must not stall
/// or exhaust the daemon).
pub const MAX_FILES: usize = 100_000;

/// A cached read is trusted only if the file's last change was at least this long before
/// the read (timestamps are coarser than the time a write takes).
const RACY_WINDOW: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: PublicKey,
    /// Metadata `name`, else the file stem.
    pub name: String,
    pub topics: Option<Vec<String>>,
    /// Metadata `expires` (RFC 3339): refused from then on.
    pub expires: Option<OffsetDateTime>,
    pub file: PathBuf,
}

impl Entry {
    pub fn expired_at(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|e| OffsetDateTime::from(now) >= e)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Authorized,
    Revoked,
}

/// What a file looked like when it was last read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    fn changed_at(&self) -> SystemTime {
        let secs = u64::try_from(self.ctime.0).unwrap_or(0);
        let nanos = u64::try_from(self.ctime.1).unwrap_or(0);
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos)
    }
}

/// A good read of one file: the entry, and the stamp it was read under, if trustworthy.
#[derive(Clone, Debug, Default)]
struct ReadCache(HashMap<PathBuf, Stamp>);

#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// By file path (sorted), so output and precedence are deterministic.
    pub authorized: BTreeMap<PathBuf, Entry>,
    pub revoked: BTreeMap<PathBuf, Entry>,
    /// Files skipped, with why (also logged).
    pub problems: Vec<String>,
    /// Lookup by key (the first file in path order wins for a key listed twice).
    authorized_by_key: HashMap<PublicKey, PathBuf>,
    revoked_by_key: HashMap<PublicKey, PathBuf>,
    cache: ReadCache,
    /// Every file of both folders as last scanned, or `None` if some file was too fresh for
    /// its stamps to be trusted: `unchanged_on_disk` compares against this.
    listing: Option<Listing>,
}

/// File names and stamps of both folders, sorted.
type Listing = Vec<(PathBuf, Option<Stamp>)>;

/// Content only: the indexes are derived and the read cache is not part of what the keyring says.
impl PartialEq for Snapshot {
    fn eq(&self, other: &Self) -> bool {
        self.authorized == other.authorized
            && self.revoked == other.revoked
            && self.problems == other.problems
    }
}

impl Eq for Snapshot {}

impl Snapshot {
    /// Reads `root/authorized` and `root/revoked`. `previous` supplies the last good entry for
    /// files that no longer parse, and the entries of files unchanged since it was read.
    pub fn scan(root: &Path, previous: Option<&Snapshot>) -> Snapshot {
        let mut snap = Snapshot::default();
        let mut cache = ReadCache::default();
        let prev_cache = previous.map(|p| &p.cache);
        let authorized = scan_dir(
            &root.join("authorized"),
            previous.map(|p| &p.authorized),
            prev_cache,
            &mut cache,
            &mut snap.problems,
        );
        let revoked = scan_dir(
            &root.join("revoked"),
            previous.map(|p| &p.revoked),
            prev_cache,
            &mut cache,
            &mut snap.problems,
        );
        snap.authorized = authorized;
        snap.revoked = revoked;
        snap.cache = cache;
        snap.index();
        snap.listing = listing(root).filter(|l| {
            let now = SystemTime::now();
            l.iter()
                .all(|(_, s)| s.is_some_and(|s| s.changed_at() + RACY_WINDOW < now))
        });
        snap
    }

    /// True when no watched folder (authorized/, revoked/, server/) gained, lost or changed a
    /// file since this snapshot was scanned: a stat per file and no reads, so the periodic
    /// rescan costs next to nothing.
    pub fn unchanged_on_disk(&self, root: &Path) -> bool {
        self.listing.is_some() && listing(root) == self.listing
    }

    fn index(&mut self) {
        for (by_key, entries) in [
            (&mut self.authorized_by_key, &self.authorized),
            (&mut self.revoked_by_key, &self.revoked),
        ] {
            by_key.clear();
            for (path, e) in entries {
                by_key.entry(e.key).or_insert_with(|| path.clone());
            }
        }
    }

    pub fn find_revoked(&self, key: &PublicKey) -> Option<&Entry> {
        self.revoked_by_key
            .get(key)
            .and_then(|p| self.revoked.get(p))
    }

    pub fn find_authorized(&self, key: &PublicKey) -> Option<&Entry> {
        self.authorized_by_key
            .get(key)
            .and_then(|p| self.authorized.get(p))
    }

    /// Deny wins: a revoked key is refused even if also authorized; so is an expired one.
    pub fn decide(&self, key: &PublicKey, now: SystemTime) -> Decision {
        if let Some(e) = self.find_revoked(key) {
            return Decision::Deny(format!("key revoked ({})", e.name));
        }
        match self.find_authorized(key) {
            Some(e) if e.expired_at(now) => Decision::Deny(format!(
                "key expired ({}, {})",
                e.name,
                e.expires.map(rfc3339).unwrap_or_default()
            )),
            Some(e) => Decision::Allow(Grant {
                name: e.name.clone(),
                topics: TopicAcl(e.topics.clone()),
            }),
            None => Decision::Deny("key not authorized".into()),
        }
    }

    /// The next moment after `now` at which an authorized key expires: decisions change then
    /// without any file changing.
    pub fn next_expiry(&self, now: SystemTime) -> Option<SystemTime> {
        let now = OffsetDateTime::from(now);
        self.authorized
            .values()
            .filter_map(|e| e.expires)
            .filter(|e| *e > now)
            .min()
            .map(SystemTime::from)
    }

    /// Every entry with its status, authorized first.
    pub fn entries(&self) -> impl Iterator<Item = (Status, &Entry)> {
        self.authorized
            .values()
            .map(|e| (Status::Authorized, e))
            .chain(self.revoked.values().map(|e| (Status::Revoked, e)))
    }

    /// Authorized keys that are not revoked.
    pub fn effective_count(&self) -> usize {
        self.authorized
            .values()
            .filter(|e| !self.revoked_by_key.contains_key(&e.key))
            .count()
    }
}

/// RFC 3339 text of a time, for messages.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Stamps of every file in the three watched folders (`server/` too: its files are stat-ed,
/// never read, so a rotation is noticed without rereading the secret every rescan).
fn listing(root: &Path) -> Option<Listing> {
    let mut out = Vec::new();
    for sub in ["authorized", "revoked", "server"] {
        let dir = root.join(sub);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => return None,
        };
        for entry in entries.flatten().take(MAX_FILES) {
            let path = entry.path();
            let stamp = std::fs::metadata(&path).ok().map(|m| Stamp::of(&m));
            out.push((path, stamp));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Some(out)
}

fn scan_dir(
    dir: &Path,
    previous: Option<&BTreeMap<PathBuf, Entry>>,
    prev_cache: Option<&ReadCache>,
    cache: &mut ReadCache,
    problems: &mut Vec<String>,
) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(e) => {
            problems.push(format!("{}: {e}", dir.display()));
            // an unreadable directory keeps what it held
            return previous.cloned().unwrap_or_default();
        }
    };
    for (n, entry) in entries.flatten().enumerate() {
        if n >= MAX_FILES {
            problems.push(format!(
                "{}: more than {MAX_FILES} files; the rest not read",
                dir.display()
            ));
            break;
        }
        let path = entry.path();
        let Some(file_name) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        if file_name.starts_with('.') {
            continue; // temporary files of atomic writes, editors' swap files
        }
        if file_name.ends_with(".key_secret") {
            let msg = format!(
                "{}: a secret key file does not belong here; ignored (move it out of the keyring)",
                path.display()
            );
            tracing::debug!("{msg}");
            problems.push(msg);
            continue;
        }
        let Some(stem) = file_name.strip_suffix(".key") else {
            continue;
        };
        let read_at = SystemTime::now();
        let stamp = std::fs::metadata(&path).ok().map(|m| Stamp::of(&m));
        let unchanged =
            stamp.is_some() && prev_cache.and_then(|c| c.0.get(&path)) == stamp.as_ref();
        if unchanged {
            if let Some(old) = previous.and_then(|p| p.get(&path)) {
                if let Some(s) = stamp {
                    cache.0.insert(path.clone(), s);
                }
                out.insert(path, old.clone());
                continue;
            }
        }
        match read_entry(&path, stem) {
            Ok(e) => {
                // Trust this read next time only if no write can hide behind its timestamps.
                if let Some(s) = stamp.filter(|s| s.changed_at() + RACY_WINDOW < read_at) {
                    cache.0.insert(path.clone(), s);
                }
                out.insert(path, e);
            }
            Err(e) => {
                tracing::debug!(error = %e, "keyring: certificate skipped");
                problems.push(e);
                if let Some(old) = previous.and_then(|p| p.get(&path)) {
                    out.insert(path, old.clone());
                }
            }
        }
    }
    out
}

fn read_entry(path: &Path, stem: &str) -> Result<Entry, String> {
    let c = cert::read_public(path).map_err(|e| e.to_string())?;
    let expires = match c.metadata.iter().find(|(k, _)| k == "expires") {
        None => None,
        Some((_, v)) => Some(
            OffsetDateTime::parse(v.trim(), &time::format_description::well_known::Rfc3339)
                .map_err(|e| {
                    format!(
                        "{}: metadata expires {v:?} is not an RFC 3339 time ({e})",
                        path.display()
                    )
                })?,
        ),
    };
    Ok(Entry {
        key: c.key,
        name: c.name.unwrap_or_else(|| stem.to_string()),
        topics: c.topics,
        expires,
        file: path.to_path_buf(),
    })
}
