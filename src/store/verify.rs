//! Checking done jobs against their records: after an unclean end (a power cut before the
//! build's final sync, which is what orders outputs before records on disk), and on request
//! (`jobman verify`). A job whose outputs no longer match the hashes its record took is done no
//! more: its record is replaced by a failed one that says why, so the next build reruns it and
//! `explain` tells the reason.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{JobRecord, JobStatus, RECORD_FILE, read_record, write_record};
use crate::key::content_hash;

/// `.jobman/unsynced`: written (and synced) before a build writes its first record, removed after
/// its final sync. Found by a later build, it means that records written since may have reached
/// the disk before their jobs' outputs.
const MARKER: &str = "unsynced";

/// A build's promise to sync before it ends; see [`MARKER`].
pub struct Unsynced {
    marker: PathBuf,
}

impl Unsynced {
    /// Writes the marker durably, before any record.
    pub fn begin(state_dir: &Path) -> io::Result<Unsynced> {
        fs::create_dir_all(state_dir)?;
        let marker = state_dir.join(MARKER);
        let mut file = fs::File::create(&marker)?;
        file.write_all(b"a build is writing records; they are synced when it ends\n")?;
        file.sync_all()?;
        fs::File::open(state_dir)?.sync_all()?;
        Ok(Unsynced { marker })
    }

    /// Syncs everything the build wrote under `jobs_dir`, then removes the marker.
    pub fn end(self, jobs_dir: &Path) {
        super::sync_filesystem(jobs_dir);
        let _ = fs::remove_file(&self.marker);
    }

    /// When the marker of a build that never reached its final sync was written, if one was.
    pub fn left_behind(state_dir: &Path) -> Option<SystemTime> {
        fs::metadata(state_dir.join(MARKER)).and_then(|m| m.modified()).ok()
    }

    /// Forgets a marker whose records were checked.
    pub fn clear(state_dir: &Path) {
        let _ = fs::remove_file(state_dir.join(MARKER));
    }
}

/// A done job that failed its check, and why.
pub struct Unverified {
    pub dir: PathBuf,
    pub name: String,
    pub why: String,
}

/// Checks every done job under `jobs_dir` whose record was written at or after `since` (all of
/// them with `UNIX_EPOCH`); each that fails is made not done. Returns how many were checked, and
/// those that failed.
pub fn verify_done_jobs(jobs_dir: &Path, since: SystemTime) -> io::Result<(usize, Vec<Unverified>)> {
    let mut checked = 0;
    let mut failed = Vec::new();
    let Ok(entries) = fs::read_dir(jobs_dir) else { return Ok((0, failed)) };
    for entry in entries.flatten() {
        let dir = entry.path();
        let written = fs::metadata(dir.join(RECORD_FILE)).and_then(|m| m.modified());
        if !written.is_ok_and(|at| at >= since) {
            continue;
        }
        let Some(record) = read_record(&dir).filter(|r| r.status == JobStatus::Done) else { continue };
        checked += 1;
        if let Err(why) = check_outputs(&dir, &record) {
            let message = format!("{why} (found by checking its outputs against its record)");
            write_record(&dir, &JobRecord { status: JobStatus::Failed, message: Some(message), ..record.clone() })?;
            failed.push(Unverified { dir, name: record.name, why });
        }
    }
    Ok((checked, failed))
}

/// Whether each output the record hashed still has that content.
fn check_outputs(dir: &Path, record: &JobRecord) -> Result<(), String> {
    for (name, hash) in &record.outputs {
        match fs::read(dir.join(name)) {
            Ok(bytes) if content_hash(&bytes) == *hash => {}
            Ok(_) => return Err(format!("`{name}` does not match its record")),
            Err(_) => return Err(format!("`{name}` is missing")),
        }
    }
    Ok(())
}
