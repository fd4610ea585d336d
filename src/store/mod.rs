//! The job store: one folder per job under the workspace's jobs folder, named by the job id (a
//! prefix of its key), holding the rendered files, the logs, the job's outputs and its record.
//!
//! A job is done exactly when its folder holds a record that parses, names the job's full key
//! and says `done`. The record is written last and atomically (temp file + rename), so any crash
//! leaves either no record (the job reruns) or a whole one.

pub mod build_log;
pub mod by_name;
pub mod cache;
pub mod lock;
pub mod verify;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::key::{ID_LEN, JobKey, KeyIngredients};

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
    /// How many times the job ran in the build that wrote the record: 1, or more when it was
    /// retried (`[job] retries`). Records from before retries ran once.
    #[serde(default = "one_attempt")]
    pub attempts: u32,
    /// What its command used, as jobman measured it where it waited for the command (on the
    /// compute node for Slurm); none for a record written for a job that could not write its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The Slurm array task that ran it (`1234_7`), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_task: Option<String>,
    /// The shared cache its folder was restored from, when it did not run here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<PathBuf>,
    /// Where the result came from (code version, user, build), beside the key and never part of
    /// it. Empty in records written before it was kept.
    #[serde(default)]
    pub provenance: Provenance,
}

/// What a record says of where its job was made, under the names that `[report] columns` and
/// `--where` use for it.
pub const PROVENANCE_COLUMNS: [&str; 4] = ["git.commit", "git.dirty", "host", "user"];

impl JobRecord {
    /// The values of [`PROVENANCE_COLUMNS`], in that order; null where the record has none.
    pub fn provenance_values(&self) -> [serde_json::Value; 4] {
        use serde_json::Value;
        let git = self.provenance.git.as_ref();
        let text = |s: &str| if s.is_empty() { Value::Null } else { Value::from(s) };
        [
            git.map_or(Value::Null, |g| Value::from(g.commit.as_str())),
            git.map_or(Value::Null, |g| Value::from(g.dirty)),
            text(&self.host),
            text(&self.provenance.user),
        ]
    }
}

/// Where a job's result came from, as its build found it: recorded, never part of the key (a
/// commit in the key would rerun every job after every commit).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The git repository holding the Jobfile; `None` outside one (or without git).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitState>,
    /// Who ran the build.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// The build's command line: `jobman build -j 8 train`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build: Vec<String>,
}

/// A repository's checked-out commit and whether its tracked files differed from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitState {
    /// The full hash of `HEAD`.
    pub commit: String,
    /// Whether tracked files differed from `HEAD` (untracked files do not count: a workspace's
    /// own outputs are usually untracked).
    pub dirty: bool,
    /// blake3 of `git diff HEAD` when dirty: two runs with the same hash ran the same changes.
    #[serde(default)]
    pub diff: Option<String>,
}

impl GitState {
    /// `3f2a1c0` or `3f2a1c0, dirty`: the commit as people quote it.
    pub fn short(&self) -> String {
        let commit = crate::util::text::prefix(&self.commit, 7);
        if self.dirty { format!("{commit}, dirty") } else { commit.to_string() }
    }
}

fn one_attempt() -> u32 {
    1
}

/// What a job's command used: from `wait4`, so it covers the command and every process it
/// waited for (the `sh -c` around it, its children), as `time -v` and Slurm's `seff` measure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Peak resident memory of the largest of those processes, in MiB.
    pub max_rss_mb: f64,
    /// CPU time in user mode and in the kernel, in seconds.
    pub user_cpu_secs: f64,
    pub system_cpu_secs: f64,
}

impl Usage {
    /// CPU time, user and system.
    pub fn cpu_secs(&self) -> f64 {
        self.user_cpu_secs + self.system_cpu_secs
    }
}

/// What a build needs of a record; small enough to keep for every job in the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordSummary {
    pub status: JobStatus,
    pub exit_code: Option<i32>,
    pub message: Option<String>,
    pub duration_secs: f64,
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    #[serde(default = "one_attempt")]
    pub attempts: u32,
    #[serde(default)]
    pub usage: Option<Usage>,
}

impl From<&JobRecord> for RecordSummary {
    fn from(record: &JobRecord) -> Self {
        RecordSummary {
            status: record.status,
            exit_code: record.exit_code,
            message: record.message.clone(),
            duration_secs: record.duration_secs,
            outputs: record.outputs.clone(),
            attempts: record.attempts,
            usage: record.usage,
        }
    }
}

/// Identifies one version of a file without reading it: as git's index and ninja's log do. A
/// record is only ever replaced by a rename, which gives it a new inode and ctime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    size: u64,
    inode: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    pub fn of(path: &Path) -> Option<FileStamp> {
        fs::metadata(path).ok().as_ref().map(FileStamp::of_metadata)
    }

    /// Whether the file (or folder) was last modified before `time`.
    pub fn modified_before(&self, time: std::time::SystemTime) -> bool {
        time.duration_since(std::time::UNIX_EPOCH).is_ok_and(|since| self.mtime_ns < since.as_nanos() as i128)
    }

    fn of_metadata(m: &fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp::new(m.len(), m.ino(), (m.mtime(), m.mtime_nsec()), (m.ctime(), m.ctime_nsec()))
    }

    fn new(size: u64, inode: u64, mtime: (i64, i64), ctime: (i64, i64)) -> FileStamp {
        let ns = |(s, n): (i64, i64)| i128::from(s) * 1_000_000_000 + i128::from(n);
        FileStamp { size, inode, mtime_ns: ns(mtime), ctime_ns: ns(ctime) }
    }

    /// The stamp of the record of job `id` under the open jobs folder: `fstatat` walks two path
    /// components instead of the whole absolute path, a third of a no-op build's time at 100,000
    /// jobs. The path is built on the stack: this runs once per job.
    fn of_record(jobs: &fs::File, id: &str) -> Option<FileStamp> {
        use std::os::fd::AsRawFd;
        let mut path = [0u8; 128];
        let length = id.len() + 1 + RECORD_FILE.len();
        if length >= path.len() || id.contains('\0') {
            return None;
        }
        path[..id.len()].copy_from_slice(id.as_bytes());
        path[id.len()] = b'/';
        path[id.len() + 1..length].copy_from_slice(RECORD_FILE.as_bytes());
        let name = std::ffi::CStr::from_bytes_with_nul(&path[..=length]).ok()?;
        let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: a valid descriptor, a NUL-terminated path and a buffer of the right type.
        let result = unsafe { libc::fstatat(jobs.as_raw_fd(), name.as_ptr(), stat.as_mut_ptr(), 0) };
        if result != 0 {
            return None;
        }
        // SAFETY: fstatat succeeded, so it filled the buffer.
        let stat = unsafe { stat.assume_init() };
        Some(FileStamp::new(
            stat.st_size as u64,
            stat.st_ino,
            (stat.st_mtime, stat.st_mtime_nsec),
            (stat.st_ctime, stat.st_ctime_nsec),
        ))
    }
}

/// Where a job lives and what is there now.
#[derive(Debug)]
pub struct Slot {
    pub id: String,
    /// The jobs folder, shared by every slot of a store: a path per job was a tenth of a plan's
    /// memory at 10⁶ jobs.
    pub jobs: Arc<Path>,
    pub state: SlotState,
    /// The stamp of the record the state was read from, if any.
    pub stamp: Option<FileStamp>,
    /// Whether the state came from the index rather than from reading the record.
    pub indexed: bool,
}

#[derive(Debug, Default)]
pub enum SlotState {
    /// Boxed, as in `NotDone`: a sweep of 10⁶ pending jobs holds 10⁶ states, mostly `Absent`.
    Done(Box<RecordSummary>),
    /// A record of this key that is not done: failed, timed out or interrupted.
    NotDone(Box<RecordSummary>),
    /// A folder with no readable record: a run that was cut off.
    Incomplete,
    #[default]
    Absent,
}

impl Slot {
    /// The slot of job `id` with no folder (yet).
    pub fn absent(jobs: Arc<Path>, id: String) -> Slot {
        Slot { id, jobs, state: SlotState::Absent, stamp: None, indexed: false }
    }

    /// The job's folder.
    pub fn dir(&self) -> PathBuf {
        // Sized up front: `join` reallocates, and `ls` asks this of every job.
        let mut dir = PathBuf::with_capacity(self.jobs.as_os_str().len() + 1 + self.id.len());
        dir.push(&self.jobs);
        dir.push(&self.id);
        dir
    }
}

impl SlotState {
    pub fn of(summary: RecordSummary) -> SlotState {
        if summary.status == JobStatus::Done {
            SlotState::Done(Box::new(summary))
        } else {
            SlotState::NotDone(Box::new(summary))
        }
    }

    /// The status its record of this key gives; `None` when pending (never ran, or cut off).
    pub fn status(&self) -> Option<JobStatus> {
        self.summary().map(|summary| summary.status)
    }

    /// The job's status as output names it: `done`, `failed`, `timed_out`, `interrupted` or
    /// `pending`.
    pub fn status_key(&self) -> &'static str {
        self.status().map_or("pending", JobStatus::key)
    }

    /// The record's summary, when there is a record of this key.
    pub fn summary(&self) -> Option<&RecordSummary> {
        match self {
            SlotState::Done(summary) | SlotState::NotDone(summary) => Some(summary),
            SlotState::Incomplete | SlotState::Absent => None,
        }
    }
}

/// The index: for each done job, its id, key, record stamp and summary as last read. A no-op
/// build of 100,000 jobs then stats each record instead of reading and parsing it. The records
/// stay the truth: an entry whose stamp does not match the record file is ignored.
///
/// One line per job, tab-separated (parsing JSON lines cost 0.4 s at 100,000 jobs):
/// `id key size inode mtime_ns ctime_ns duration attempts max_rss_mb cpu_secs [output=hash …]`,
/// with `-` for a usage not measured. `cpu_secs` is kept as user CPU (system 0): the summary
/// needs their sum only.
#[derive(Debug)]
struct IndexEntry {
    key: JobKey,
    stamp: FileStamp,
    summary: RecordSummary,
}

const INDEX_HEADER: &str = "jobman index v4";

impl IndexEntry {
    fn parse(line: &str) -> Option<(&str, IndexEntry)> {
        let mut fields = line.split('\t');
        let id = fields.next()?;
        let key = JobKey::from_hex(fields.next()?)?;
        let stamp = FileStamp {
            size: fields.next()?.parse().ok()?,
            inode: fields.next()?.parse().ok()?,
            mtime_ns: fields.next()?.parse().ok()?,
            ctime_ns: fields.next()?.parse().ok()?,
        };
        let duration_secs = fields.next()?.parse().ok()?;
        let attempts = fields.next()?.parse().ok()?;
        let (max_rss, cpu) = (fields.next()?, fields.next()?);
        let usage = match (max_rss.parse(), cpu.parse()) {
            (Ok(max_rss_mb), Ok(user_cpu_secs)) => Some(Usage { max_rss_mb, user_cpu_secs, system_cpu_secs: 0.0 }),
            _ => None,
        };
        let outputs =
            fields.map(|f| f.split_once('=').map(|(n, h)| (n.to_string(), h.to_string()))).collect::<Option<_>>()?;
        let summary = RecordSummary {
            status: JobStatus::Done,
            exit_code: Some(0),
            message: None,
            duration_secs,
            outputs,
            attempts,
            usage,
        };
        Some((id, IndexEntry { key, stamp, summary }))
    }

    fn write(id: &str, key: &str, stamp: &FileStamp, summary: &RecordSummary, out: &mut String) {
        use std::fmt::Write as _;
        let FileStamp { size, inode, mtime_ns, ctime_ns } = stamp;
        let _ = write!(
            out,
            "{id}\t{key}\t{size}\t{inode}\t{mtime_ns}\t{ctime_ns}\t{}\t{}",
            summary.duration_secs, summary.attempts
        );
        match summary.usage {
            Some(usage) => write!(out, "\t{}\t{}", usage.max_rss_mb, usage.cpu_secs()),
            None => write!(out, "\t-\t-"),
        }
        .unwrap_or(());
        for (name, hash) in &summary.outputs {
            let _ = write!(out, "\t{name}={hash}");
        }
        out.push('\n');
    }
}

/// The index as read: its text, and where each id's line starts, by a hash of the id. A line is
/// parsed only when its job is located, on the locating threads: building a map of 100,000
/// parsed entries up front was a fifth of `jobman status`.
#[derive(Default)]
struct Index {
    text: String,
    lines: IdMap<u64, usize>,
}

impl Index {
    fn read(path: &Path) -> Index {
        let text = fs::read_to_string(path).unwrap_or_default();
        let Some(body) = text.strip_prefix(INDEX_HEADER).and_then(|rest| rest.strip_prefix('\n')) else {
            return Index::default();
        };
        let mut lines = IdMap::with_capacity_and_hasher(body.len() / 128, Default::default());
        let mut at = text.len() - body.len();
        for line in body.split_inclusive('\n') {
            if let Some((id, _)) = line.split_once('\t') {
                lines.insert(id_hash(id), at);
            }
            at += line.len();
        }
        Index { text, lines }
    }

    /// The entry of `id`; `None` when it has none, or two ids share a hash and the line is the
    /// other's (that job's record is then read: slower, never wrong).
    fn get(&self, id: &str) -> Option<IndexEntry> {
        let &at = self.lines.get(&id_hash(id))?;
        let line = self.text[at..].split('\n').next()?;
        IndexEntry::parse(line).filter(|(line_id, _)| *line_id == id).map(|(_, entry)| entry)
    }
}

fn id_hash(id: &str) -> u64 {
    let mut hasher = IdHasher::default();
    hasher.write(id.as_bytes());
    hasher.finish()
}

/// FNV-1a, for maps keyed by job ids: they are random hex already, so SipHash's protection
/// buys nothing, and at 100,000 jobs hashing them cost a tenth of `jobman status`.
pub struct IdHasher(u64);

impl Default for IdHasher {
    fn default() -> Self {
        IdHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A hash map keyed by job ids (or their hashes).
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

pub struct Store {
    pub jobs_dir: Arc<Path>,
    /// The jobs folder, open, for stamping records relative to it.
    jobs_handle: Option<fs::File>,
    index_path: PathBuf,
    index: Index,
    /// How many jobs were looked for outside the index; past [`LIST_AFTER`], the names in the
    /// jobs folder, listed once.
    misses: AtomicUsize,
    folders: OnceLock<Option<HashSet<String>>>,
}

/// Index misses answered with one call each before the jobs folder is listed instead: a sweep
/// that adds a few jobs to many costs a few calls, a new sweep of 10⁶ jobs one listing.
const LIST_AFTER: usize = 64;

impl Store {
    /// Opens the store of `jobs_dir` with its index at `index_path` (missing, unreadable or of
    /// another version: empty, which only makes this build read the records).
    pub fn open(jobs_dir: PathBuf, index_path: PathBuf) -> Store {
        let index = Index::read(&index_path);
        let jobs_handle = fs::File::open(&jobs_dir).ok();
        Store {
            jobs_dir: Arc::from(jobs_dir),
            jobs_handle,
            index_path,
            index,
            misses: AtomicUsize::new(0),
            folders: OnceLock::new(),
        }
    }

    /// Whether the jobs folder has an entry `id` (at `dir`).
    fn has_folder(&self, id: &str, dir: &Path) -> bool {
        let listed = (self.misses.fetch_add(1, Ordering::Relaxed) >= LIST_AFTER)
            .then(|| {
                self.folders.get_or_init(|| match fs::read_dir(&self.jobs_dir) {
                    Ok(entries) => Some(entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect()),
                    // No jobs folder yet: no job has a folder.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Some(HashSet::new()),
                    Err(_) => None,
                })
            })
            .and_then(Option::as_ref);
        match listed {
            Some(names) => names.contains(id),
            None => fs::symlink_metadata(dir).is_ok(),
        }
    }

    /// Finds the folder of `key`: the shortest id of at least `min_len` hex characters whose folder
    /// is free or holds this key (a folder whose record names another key is never touched).
    pub fn locate(&self, key: &JobKey, min_len: usize) -> Slot {
        let hex = key.hex_digits();
        let mut len = min_len.max(ID_LEN);
        loop {
            let id = hex[..len.min(hex.len())].to_string();
            if let Some(entry) = self.index.get(&id).filter(|e| e.key == *key)
                && let Some(jobs) = &self.jobs_handle
            {
                let stamp = FileStamp::of_record(jobs, &id);
                if stamp == Some(entry.stamp) {
                    let state = SlotState::of(entry.summary);
                    return Slot { id, jobs: self.jobs_dir.clone(), state, stamp, indexed: true };
                }
            }
            let dir = self.jobs_dir.join(&id);
            // A job never run has no folder: one call says so, or none past a few (see
            // `has_folder`).
            if len == min_len.max(ID_LEN) && !self.has_folder(&id, &dir) {
                return Slot::absent(self.jobs_dir.clone(), id);
            }
            // Stamp first: if the record changes after, the next build sees a new stamp.
            let stamp = FileStamp::of(&dir.join(RECORD_FILE));
            let state = match read_record(&dir) {
                Some(record) if record.key == *hex => SlotState::of(RecordSummary::from(&record)),
                Some(_) if len < hex.len() => {
                    len += 4;
                    continue;
                }
                _ if dir.exists() => SlotState::Incomplete,
                _ => SlotState::Absent,
            };
            let stamp = stamp.filter(|_| matches!(state, SlotState::Done(_) | SlotState::NotDone(_)));
            return Slot { id, jobs: self.jobs_dir.clone(), state, stamp, indexed: false };
        }
    }

    /// Rewrites the index for these slots (with their keys) when any was not read from it.
    pub fn save_index<'a>(&self, slots: impl Iterator<Item = (&'a Slot, &'a JobKey)> + Clone) -> io::Result<()> {
        let unindexed = |slot: &Slot| !slot.indexed && slot.stamp.is_some() && matches!(slot.state, SlotState::Done(_));
        if !slots.clone().any(|(slot, _)| unindexed(slot)) {
            return Ok(());
        }
        let mut text = String::with_capacity(INDEX_HEADER.len() + 1);
        text.push_str(INDEX_HEADER);
        text.push('\n');
        for (slot, key) in slots {
            // Output names with a tab or `=` cannot be written in this format; such jobs are read
            // from their records instead.
            if let (SlotState::Done(summary), Some(stamp)) = (&slot.state, &slot.stamp)
                && summary.outputs.keys().all(|name| !name.contains(['\t', '\n', '=']))
            {
                IndexEntry::write(&slot.id, &key.hex(), stamp, summary, &mut text);
            }
        }
        write_atomic(&self.index_path, text.as_bytes())
    }

    /// Drops the index entries of removed folders and rewrites the index if any was there. The
    /// index would not trust them anyway (their records cannot be stamped); this keeps it from
    /// carrying lines no build reads.
    pub fn forget(&self, removed_ids: &HashSet<&str>) -> io::Result<()> {
        let removed = |line: &str| line.split_once('\t').is_some_and(|(id, _)| removed_ids.contains(id));
        let Some(body) = self.index.text.strip_prefix(INDEX_HEADER) else { return Ok(()) };
        if !body.lines().any(removed) {
            return Ok(());
        }
        let mut text = format!("{INDEX_HEADER}\n");
        for line in body.lines().filter(|line| !line.is_empty() && !removed(line)) {
            text.push_str(line);
            text.push('\n');
        }
        write_atomic(&self.index_path, text.as_bytes())
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
    // A new job's folder is one call; a folder left by an earlier run is emptied first.
    match fs::create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_dir_all(dir)?;
            fs::create_dir(dir)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir_all(dir),
        done => done,
    }
}

/// A results file, parsed; `None` when it is missing, does not parse, or no longer has the
/// content hash `recorded` in its job's record (edited since the job ended, or cut short by a
/// crash before it reached the disk).
pub fn read_results(path: &Path, recorded: Option<&String>) -> Option<serde_json::Value> {
    let bytes = fs::read(path).ok()?;
    if recorded.is_some_and(|hash| *hash != crate::key::content_hash(&bytes)) {
        return None;
    }
    let text = String::from_utf8(bytes).ok()?;
    if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str::<serde_json::Value>(&text).ok()
    } else {
        serde_json::from_str(&text).ok()
    }
}

/// Writes the record last and atomically: a temp file in the jobs folder, then a rename into the
/// job folder. Returns the record's stamp, taken from the open file after the rename (no lookup
/// by name).
///
/// The rename crosses from the jobs folder into the job folder, so every record written, by a
/// build, a Slurm task or a cache restore, changes the jobs folder's stamp: `status` trusts its
/// counts of earlier while that stamp stays the same (docs/ARCHITECTURE.md, "`status` without
/// a look at each record").
///
/// No fsync per record (it would double the cost of a short job); the build syncs the
/// filesystem once at its end. A record torn by a power cut does not parse and so reads as
/// "not done": it costs a rerun, never a wrong result.
pub fn write_record(dir: &Path, record: &JobRecord) -> io::Result<FileStamp> {
    let bytes = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
    let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.with_file_name(format!(".{id}.{}", unique_temp_name(RECORD_FILE)));
    let file = write_through(&temp, &dir.join(RECORD_FILE), &bytes)?;
    Ok(FileStamp::of_metadata(&file.metadata()?))
}

/// Whether `name`, in the jobs folder, is the temp file of a record write (left there when the
/// write was cut off).
pub fn is_record_temp(name: &str) -> bool {
    name.starts_with('.') && name.contains(&format!(".{RECORD_FILE}.")) && name.ends_with(".tmp")
}

/// temp + rename in the target's folder. The temp name is unique to this process, so that two
/// processes writing the same file never mix their bytes.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    write_through(&path.with_file_name(format!(".{}", unique_temp_name(&name))), path, bytes).map(drop)
}

/// `NAME.PID.tmp`: the temp name under which this process writes `NAME`.
fn unique_temp_name(name: &str) -> String {
    format!("{name}.{}.tmp", std::process::id())
}

/// Writes `bytes` to `temp`, renames it to `path`, and returns the file, still open.
fn write_through(temp: &Path, path: &Path, bytes: &[u8]) -> io::Result<fs::File> {
    let mut file = fs::File::create(temp)?;
    file.write_all(bytes)?;
    fs::rename(temp, path)?;
    Ok(file)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &JobKey, id: &str, status: JobStatus) -> JobRecord {
        JobRecord {
            format: RECORD_FORMAT,
            key: key.hex(),
            id: id.into(),
            name: id.into(),
            status,
            exit_code: Some(0),
            signal: None,
            message: None,
            command: "true".into(),
            started: String::new(),
            ended: String::new(),
            duration_secs: 0.5,
            host: String::new(),
            jobman_version: String::new(),
            ingredients: KeyIngredients::of_command("true", serde_json::json!({})),
            outputs: BTreeMap::new(),
            attempts: 1,
            usage: Some(Usage { max_rss_mb: 12.5, user_cpu_secs: 0.25, system_cpu_secs: 0.0 }),
            slurm_task: None,
            restored_from: None,
            provenance: Provenance::default(),
        }
    }

    #[test]
    fn writing_a_record_into_an_existing_folder_changes_the_jobs_folders_stamp() {
        let jobs = tempfile::tempdir().unwrap();
        let key = JobKey([0x5e; 32]);
        let folder = jobs.path().join("5e5e5e5e5e5e");
        fs::create_dir(&folder).unwrap();
        let a_day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
        fs::File::open(jobs.path()).unwrap().set_modified(a_day_ago).unwrap();
        let before = FileStamp::of(jobs.path()).unwrap();
        assert!(before.modified_before(std::time::SystemTime::now() - std::time::Duration::from_secs(60)));

        write_record(&folder, &record(&key, "5e5e5e5e5e5e", JobStatus::Done)).unwrap();
        let after = FileStamp::of(jobs.path()).unwrap();
        assert!(!after.modified_before(a_day_ago + std::time::Duration::from_secs(1)), "{before:?} → {after:?}");
        assert_eq!(read_record(&folder).unwrap().key, key.hex());
        let names: Vec<_> = fs::read_dir(jobs.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["5e5e5e5e5e5e"], "no temp file is left behind");
    }

    #[test]
    fn a_folder_holding_another_key_gets_a_longer_id_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mine = JobKey([0xab; 32]);
        let mut theirs_bytes = [0xab; 32];
        theirs_bytes[31] = 0;
        let theirs = JobKey(theirs_bytes);
        let taken = dir.path().join(&mine.hex()[..ID_LEN]);
        fs::create_dir_all(&taken).unwrap();
        write_record(&taken, &record(&theirs, &theirs.hex()[..ID_LEN], JobStatus::Done)).unwrap();

        let store = Store::open(dir.path().to_path_buf(), dir.path().join("index"));
        let slot = store.locate(&mine, 0);
        assert_eq!(slot.id, mine.hex()[..ID_LEN + 4]);
        assert!(matches!(slot.state, SlotState::Absent));
        assert_eq!(read_record(&taken).unwrap().key, theirs.hex(), "the other job's folder is untouched");
    }

    #[test]
    fn the_index_is_used_only_while_the_record_is_the_one_it_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let key = JobKey([7; 32]);
        let id = &key.hex()[..ID_LEN];
        let folder = dir.path().join(id);
        fs::create_dir_all(&folder).unwrap();
        write_record(&folder, &record(&key, id, JobStatus::Done)).unwrap();

        let store = Store::open(dir.path().to_path_buf(), dir.path().join("index"));
        let slot = store.locate(&key, 0);
        assert!(!slot.indexed && matches!(slot.state, SlotState::Done(_)));
        store.save_index([(&slot, &key)].into_iter()).unwrap();

        let store = Store::open(dir.path().to_path_buf(), dir.path().join("index"));
        let indexed = store.locate(&key, 0);
        assert!(indexed.indexed);
        // The index gives the summary the record gives, what the job used included.
        assert_eq!(indexed.state.summary(), slot.state.summary());

        write_record(&folder, &record(&key, id, JobStatus::Failed)).unwrap();
        let slot = store.locate(&key, 0);
        assert!(!slot.indexed && matches!(slot.state, SlotState::NotDone(_)));
    }

    #[test]
    fn forgetting_removed_folders_drops_only_their_index_lines() {
        let dir = tempfile::tempdir().unwrap();
        let keys = [JobKey([1; 32]), JobKey([2; 32])];
        let slots: Vec<Slot> = keys
            .iter()
            .map(|key| {
                let id = &key.hex()[..ID_LEN];
                let folder = dir.path().join(id);
                fs::create_dir_all(&folder).unwrap();
                write_record(&folder, &record(key, id, JobStatus::Done)).unwrap();
                Store::open(dir.path().to_path_buf(), dir.path().join("index")).locate(key, 0)
            })
            .collect();
        let store = Store::open(dir.path().to_path_buf(), dir.path().join("index"));
        store.save_index(slots.iter().zip(&keys)).unwrap();

        let store = Store::open(dir.path().to_path_buf(), dir.path().join("index"));
        let gone = &keys[0].hex()[..ID_LEN];
        store.forget(&HashSet::from([gone])).unwrap();
        let text = fs::read_to_string(dir.path().join("index")).unwrap();
        let ids: Vec<&str> = text.lines().skip(1).filter_map(|line| line.split('\t').next()).collect();
        assert_eq!(ids, [&keys[1].hex()[..ID_LEN]]);
    }
}
