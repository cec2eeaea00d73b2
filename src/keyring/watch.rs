//! Keeps a `Keyring` current: file-system events (inotify through `notify`) trigger a rescan
//! within milliseconds; a periodic rescan covers file systems that drop or never send events;
//! a timer re-checks live connections when an authorized key's `expires` time passes.
//!
//! Only events that can change what the keyring says wake it: creation, removal, renames,
//! metadata and content changes, and a writer closing a file. Opening and reading a file are
//! ignored: a rescan reads every key file, and reacting to those reads made the watcher
//! rescan itself in a loop (hundreds of times a second, a core's worth of CPU, while idle).

use std::path::Path;
use std::sync::Weak;
use std::time::{Duration, SystemTime};

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecursiveMode, Watcher};

use super::{Keyring, KeyringError, RESCAN_INTERVAL};

/// Whether an event can change the keyring's content.
pub(super) fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Any
        | EventKind::Other => true,
    }
}

pub(super) fn spawn(keyring: Weak<Keyring>, root: &Path) -> Result<(), KeyringError> {
    // Capacity 1 and try_send: events only need to say "look again"; a burst coalesces.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // An error (e.g. the kernel's queue overflowed) may hide a change: rescan.
        if event.map_or(true, |e| is_change(&e.kind)) {
            let _ = tx.try_send(());
        }
    })
    .map_err(|e| KeyringError::Root {
        root: root.to_path_buf(),
        reason: format!("cannot watch: {e}"),
    })?;
    // server/ only where it exists: a keyring without a server keypair has nothing to follow.
    let subs = ["authorized", "revoked", "server"]
        .into_iter()
        .filter(|s| *s != "server" || root.join(s).is_dir());
    for sub in subs {
        watcher
            .watch(&root.join(sub), RecursiveMode::NonRecursive)
            .map_err(|e| KeyringError::Root {
                root: root.to_path_buf(),
                reason: format!("cannot watch {sub}/: {e}"),
            })?;
    }
    tokio::spawn(async move {
        let _watcher = watcher; // lives as long as this task
        let mut timer = tokio::time::interval(RESCAN_INTERVAL);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer.tick().await;
        loop {
            let next_expiry = keyring
                .upgrade()
                .and_then(|k| k.next_deadline(SystemTime::now()));
            let until_expiry = next_expiry
                .and_then(|t| t.duration_since(SystemTime::now()).ok())
                .unwrap_or(Duration::from_secs(3600));
            let why = tokio::select! {
                // No debounce: `keys authorize` must be in force by the time a client that
                // runs right after it connects (libzmq gives up for good after one refusal).
                // Events that arrive during a rescan coalesce in the one-slot channel.
                event = rx.recv() => match event {
                    Some(()) => "file change",
                    None => return,
                },
                _ = timer.tick() => "periodic rescan",
                // A moment late, so that `now >= deadline` holds when it is checked.
                _ = tokio::time::sleep(until_expiry + Duration::from_millis(5)), if next_expiry.is_some() => "key expiry",
            };
            let Some(keyring) = keyring.upgrade() else {
                return;
            };
            if why == "key expiry" {
                keyring.expired();
                continue;
            }
            // Scanning reads files: keep it off the async workers.
            let done = tokio::task::spawn_blocking(move || {
                keyring.reload(why);
            })
            .await;
            if done.is_err() {
                tracing::error!("keyring rescan panicked; the previous snapshot stays in force");
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind, RemoveKind, RenameMode};

    #[test]
    fn reads_do_not_count_as_changes() {
        assert!(!is_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_change(&EventKind::Access(AccessKind::Read)));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Remove(RemoveKind::File)));
        assert!(is_change(&EventKind::Modify(ModifyKind::Name(
            RenameMode::Both
        ))));
    }
}
