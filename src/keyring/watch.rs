//! Keeps a `Keyring` current: file-system events (inotify through `notify`) trigger a rescan
//! within milliseconds; a periodic rescan covers file systems that drop or never send events.

use std::path::Path;
use std::sync::Weak;

use notify::{RecursiveMode, Watcher};

use super::{Keyring, KeyringError, RESCAN_INTERVAL};

pub(super) fn spawn(keyring: Weak<Keyring>, root: &Path) -> Result<(), KeyringError> {
    // Capacity 1 and try_send: events only need to say "look again"; a burst coalesces.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.try_send(());
        }
    })
    .map_err(|e| KeyringError::Root {
        root: root.to_path_buf(),
        reason: format!("cannot watch: {e}"),
    })?;
    for sub in ["authorized", "revoked"] {
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
        timer.tick().await;
        loop {
            let why = tokio::select! {
                event = rx.recv() => match event {
                    Some(()) => "file change",
                    None => return,
                },
                _ = timer.tick() => "periodic rescan",
            };
            let Some(keyring) = keyring.upgrade() else {
                return;
            };
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
