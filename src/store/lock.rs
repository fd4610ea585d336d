//! One build at a time: an exclusive lock on `.jobman/lock`, waited for with a message.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Holds the workspace lock until dropped.
pub struct WorkspaceLock {
    pub file: File,
}

impl WorkspaceLock {
    /// Takes the lock, printing once that it waits when another build holds it.
    pub fn acquire(state_dir: &Path) -> anyhow::Result<WorkspaceLock> {
        std::fs::create_dir_all(state_dir).with_context(|| format!("cannot create {}", state_dir.display()))?;
        let path = state_dir.join("lock");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                crate::util::console::status(
                    "Blocking",
                    &format!(
                        "waiting for the lock on {} (another jobman build{} is running)",
                        path.display(),
                        if holder.is_empty() { String::new() } else { format!(", pid {holder}") }
                    ),
                );
                file.lock().with_context(|| format!("cannot lock {}", path.display()))?;
            }
            Err(TryLockError::Error(e)) => return Err(e).with_context(|| format!("cannot lock {}", path.display())),
        }
        file.set_len(0)?;
        // A build waiting for this one says who holds the lock: the pipeline job of a detached
        // build runs on a compute node, where its pid alone names nothing.
        match std::env::var("SLURM_JOB_ID") {
            Ok(job) => write!(file, "{} (Slurm job {job})", std::process::id())?,
            Err(_) => write!(file, "{}", std::process::id())?,
        }
        Ok(WorkspaceLock { file })
    }
}

/// Whether a build holds the workspace lock now (a build, or the watchdog of one that died,
/// still stopping its jobs).
pub fn is_held(state_dir: &Path) -> bool {
    let Ok(file) = File::open(state_dir.join("lock")) else { return false };
    matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock))
}
