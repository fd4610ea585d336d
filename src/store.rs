//! The job store: one folder per job under the workspace's jobs folder, named by the job id (a
//! prefix of its key), holding the rendered files, the logs, the job's outputs and its record.
//!
//! A job is done exactly when its folder holds a record that parses, names the job's full key
//! and says `done`. The record is written last and atomically (temp file + rename), so any crash
//! leaves either no record (the job reruns) or a whole one.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::job_key::{ID_LEN, JobKey, KeyIngredients};

pub const RECORD_FILE: &str = "jobman-record.json";
pub const STDOUT_FILE: &str = "stdout.log";
pub const STDERR_FILE: &str = "stderr.log";
/// Files of a job folder that templates may not write.
pub const RESERVED_FILES: &[&str] = &[RECORD_FILE, STDOUT_FILE, STDERR_FILE];
/// Bump when the record's shape changes: an unknown format reads as "not done" (a rerun).
pub const RECORD_FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Done,
    Failed,
    TimedOut,
    Interrupted,
}

impl JobStatus {
    /// The name in records and JSON output.
    pub fn key(self) -> &'static str {
        match self {
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::TimedOut => "timed_out",
            JobStatus::Interrupted => "interrupted",
        }
    }

    /// The name in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::TimedOut => "timed out",
            JobStatus::Interrupted => "interrupted",
        }
    }
}

/// What a job folder says about its job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub format: u32,
    pub key: String,
    pub id: String,
    pub name: String,
    pub status: JobStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Why a job that exited 0 is not done (its results file is missing, say).
    pub message: Option<String>,
    pub command: String,
    /// RFC 3339, UTC.
    pub started: String,
    pub ended: String,
    pub duration_secs: f64,
    pub host: String,
    pub jobman_version: String,
    pub ingredients: KeyIngredients,
    /// Declared output file (results, series) → blake3 of its content when the job ended: what
    /// the report and figures read, so they can tell whether it changed without reading it.
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
}

/// Where a job lives and what is there now.
#[derive(Debug)]
pub struct Slot {
    pub id: String,
    pub dir: PathBuf,
    pub state: SlotState,
}

#[derive(Debug)]
pub enum SlotState {
    Done(Box<JobRecord>),
    /// A record of this key that is not done: failed, timed out or interrupted.
    NotDone(Box<JobRecord>),
    /// A folder with no readable record: a run that was cut off.
    Incomplete,
    Absent,
}

pub struct Store {
    pub jobs_dir: PathBuf,
}

impl Store {
    pub fn new(jobs_dir: PathBuf) -> Store {
        Store { jobs_dir }
    }

    /// Finds the folder of `key`: the shortest id of at least `min_len` hex characters whose folder
    /// is free or holds this key (a folder whose record names another key is never touched).
    pub fn locate(&self, key: &JobKey, min_len: usize) -> Slot {
        let hex = key.hex();
        let mut len = min_len.max(ID_LEN);
        loop {
            let id = hex[..len.min(hex.len())].to_string();
            let dir = self.jobs_dir.join(&id);
            let state = match read_record(&dir) {
                Some(record) if record.key == hex => {
                    if record.status == JobStatus::Done {
                        SlotState::Done(Box::new(record))
                    } else {
                        SlotState::NotDone(Box::new(record))
                    }
                }
                Some(_) if len < hex.len() => {
                    len += 4;
                    continue;
                }
                _ if dir.exists() => SlotState::Incomplete,
                _ => SlotState::Absent,
            };
            return Slot { id, dir, state };
        }
    }

    /// Every record in the store, for explaining why jobs rerun.
    pub fn records(&self) -> Vec<JobRecord> {
        let Ok(entries) = fs::read_dir(&self.jobs_dir) else { return Vec::new() };
        entries.filter_map(|e| read_record(&e.ok()?.path())).collect()
    }
}

/// The record in a job folder, if it is whole and of a format this jobman reads.
pub fn read_record(dir: &Path) -> Option<JobRecord> {
    let bytes = fs::read(dir.join(RECORD_FILE)).ok()?;
    let record: JobRecord = serde_json::from_slice(&bytes).ok()?;
    (record.format == RECORD_FORMAT).then_some(record)
}

/// Empties (or creates) a job folder for a fresh run: nothing of a cut-off run survives into the
/// new one.
pub fn reset_dir(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::create_dir_all(dir)
}

/// Writes the record last and atomically: a temp file in the same folder, then a rename.
///
/// No fsync per record (it would double the cost of a short job); the build syncs the
/// filesystem once at its end. A record torn by a power cut does not parse and so reads as
/// "not done": it costs a rerun, never a wrong result.
pub fn write_record(dir: &Path, record: &JobRecord) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
    write_atomic(&dir.join(RECORD_FILE), &bytes)
}

/// temp + rename in the target's folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.tmp"));
    let mut file = fs::File::create(&temp)?;
    file.write_all(bytes)?;
    drop(file);
    fs::rename(&temp, path)
}

/// Flushes everything written under `dir` to disk with one call (`syncfs`).
pub fn sync_filesystem(dir: &Path) {
    if let Ok(file) = fs::File::open(dir) {
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs takes any open descriptor of the filesystem and only reads it.
        unsafe {
            libc::syncfs(file.as_raw_fd());
        }
    }
}
