//! `.jobman/log`: what each run of a job rendered and was keyed on, so that `jobman explain` can
//! name the exact difference when a later build reruns it (down to a diff of a rendered file).
//!
//! JSON lines, append-only: a header line `{"jobman_log":1}`, then one entry per job run, written
//! by the build (which holds the workspace lock) as each job ends. Readers take the last entry of
//! each key and skip lines that do not parse: a build killed in the middle of a write leaves a
//! torn last line, which the next append closes with a newline first. A log of another version
//! is started afresh (it only serves explanations). When the file grows past [`COMPACT_AT`], the
//! next build rewrites it with the newest entry of each key, newest first up to half that size.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::key::KeyIngredients;
use crate::store::{JobRecord, write_atomic};

const LOG_FORMAT: u32 = 1;
/// Size past which the next build compacts the log.
const COMPACT_AT: u64 = 64 << 20;
/// Rendered files larger than this are logged by hash only (no diff for them).
const MAX_LOGGED_FILE: usize = 64 << 10;

#[derive(Serialize, Deserialize)]
struct Header {
    jobman_log: u32,
}

/// One run of one job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    pub key: String,
    pub id: String,
    pub name: String,
    /// Position in the sweep when it ran (templates may read `job.index`).
    pub index: usize,
    /// RFC 3339, UTC.
    pub at: String,
    pub ingredients: KeyIngredients,
    /// Target → rendered text (with `job.id`/`job.dir` placeholders), as hashed for the key;
    /// `None` when too large or not text.
    pub rendered: BTreeMap<String, Option<String>>,
}

impl LogEntry {
    /// What a record knows of its run: everything but the rendered text.
    pub fn from_record(record: &JobRecord) -> LogEntry {
        LogEntry {
            key: record.key.clone(),
            id: record.id.clone(),
            name: record.name.clone(),
            index: 0,
            at: record.started.clone(),
            ingredients: record.ingredients.clone(),
            rendered: BTreeMap::new(),
        }
    }

    pub fn rendered_files(files: &[(String, String)]) -> BTreeMap<String, Option<String>> {
        files
            .iter()
            .map(|(target, text)| (target.clone(), (text.len() <= MAX_LOGGED_FILE).then(|| text.clone())))
            .collect()
    }
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("log")
}

/// The log open for appending, for the length of a build.
pub struct LogWriter {
    file: fs::File,
}

impl LogWriter {
    /// Opens (creating, restarting or compacting as needed) the log at `path`.
    pub fn open(path: &Path) -> io::Result<LogWriter> {
        let size = fs::metadata(path).map_or(0, |m| m.len());
        if size > COMPACT_AT {
            compact(path)?;
        }
        let mut file = fs::OpenOptions::new().read(true).append(true).create(true).open(path)?;
        let mut first = String::new();
        (&file).take(64).read_to_string(&mut first).ok();
        let current = first
            .lines()
            .next()
            .and_then(|line| serde_json::from_str::<Header>(line).ok())
            .is_some_and(|h| h.jobman_log == LOG_FORMAT);
        if !current {
            file.set_len(0)?;
            writeln!(file, "{}", serde_json::to_string(&Header { jobman_log: LOG_FORMAT })?)?;
        } else if !ends_with_newline(&mut file)? {
            file.write_all(b"\n")?;
        }
        Ok(LogWriter { file })
    }

    /// Appends one entry in a single write, so that readers never see half of it mid-line.
    pub fn append(&mut self, entry: &LogEntry) -> io::Result<()> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }
}

fn ends_with_newline(file: &mut fs::File) -> io::Result<bool> {
    let length = file.metadata()?.len();
    if length == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::Start(length - 1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// The newest entry of every key in the log, oldest first (empty when there is no log).
pub fn read(path: &Path) -> Vec<LogEntry> {
    let Ok(text) = fs::read_to_string(path) else { return Vec::new() };
    let mut lines = text.lines();
    let current = lines
        .next()
        .and_then(|line| serde_json::from_str::<Header>(line).ok())
        .is_some_and(|h| h.jobman_log == LOG_FORMAT);
    if !current {
        return Vec::new();
    }
    let mut newest: HashMap<String, usize> = HashMap::new();
    let mut entries: Vec<Option<LogEntry>> = Vec::new();
    for entry in lines.filter_map(|line| serde_json::from_str::<LogEntry>(line).ok()) {
        if let Some(old) = newest.insert(entry.key.clone(), entries.len()) {
            entries[old] = None;
        }
        entries.push(Some(entry));
    }
    entries.into_iter().flatten().collect()
}

/// Rewrites the log with the newest entry of each key, keeping the newest entries up to half of
/// [`COMPACT_AT`].
fn compact(path: &Path) -> io::Result<()> {
    let entries = read(path);
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut size = 0;
    for entry in entries.iter().rev() {
        let line = serde_json::to_vec(entry)?;
        size += line.len() as u64 + 1;
        if size > COMPACT_AT / 2 {
            break;
        }
        lines.push(line);
    }
    let mut bytes = serde_json::to_vec(&Header { jobman_log: LOG_FORMAT })?;
    bytes.push(b'\n');
    for line in lines.iter().rev() {
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
    }
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, name: &str) -> LogEntry {
        LogEntry {
            key: key.into(),
            id: key[..4].into(),
            name: name.into(),
            index: 0,
            at: "2026-01-01T00:00:00Z".into(),
            ingredients: KeyIngredients::of_command("true", serde_json::json!({"x": 1})),
            rendered: LogEntry::rendered_files(&[("a.txt".into(), "x = 1\n".into())]),
        }
    }

    #[test]
    fn the_newest_entry_of_a_key_wins_and_a_torn_last_line_is_skipped_then_closed() {
        let dir = tempfile::tempdir().unwrap();
        let log = path(dir.path());
        let mut writer = LogWriter::open(&log).unwrap();
        writer.append(&entry("aaaa1", "first")).unwrap();
        writer.append(&entry("bbbb2", "other")).unwrap();
        writer.append(&entry("aaaa1", "again")).unwrap();
        drop(writer);
        // A build killed mid-write.
        fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(b"{\"key\":\"cc").unwrap();
        let names: Vec<String> = read(&log).into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["other", "again"]);

        LogWriter::open(&log).unwrap().append(&entry("dddd3", "after")).unwrap();
        let names: Vec<String> = read(&log).into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["other", "again", "after"]);
    }

    #[test]
    fn a_log_of_another_version_is_started_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let log = path(dir.path());
        fs::write(&log, "{\"jobman_log\":999}\n{\"whatever\":1}\n").unwrap();
        assert!(read(&log).is_empty());
        LogWriter::open(&log).unwrap().append(&entry("aaaa1", "new")).unwrap();
        assert_eq!(read(&log).len(), 1);
        assert!(fs::read_to_string(&log).unwrap().starts_with("{\"jobman_log\":1}\n"));
    }

    #[test]
    fn compaction_keeps_the_newest_entry_of_each_key() {
        let dir = tempfile::tempdir().unwrap();
        let log = path(dir.path());
        let mut writer = LogWriter::open(&log).unwrap();
        for round in 0..3 {
            for key in ["aaaa1", "bbbb2"] {
                writer.append(&entry(key, &format!("{key}-{round}"))).unwrap();
            }
        }
        drop(writer);
        compact(&log).unwrap();
        let text = fs::read_to_string(&log).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        let names: Vec<String> = read(&log).into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["aaaa1-2", "bbbb2-2"]);
    }
}
