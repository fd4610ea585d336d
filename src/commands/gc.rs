//! `jobman gc`: removes what the jobs folder holds for jobs the Jobfile no longer names — their
//! folders, the `ID.previous` folders kept by forced reruns, and temp files of record writes that
//! were cut off — after listing them, and only with the user's consent.
//!
//! Only folders whose names look like job ids are ever removed, never a symlink or anything
//! outside the jobs folder, never the folder of a current job.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::key::ID_LEN;
use crate::plan::Job;
use crate::plan::Workspace;
use crate::store::lock::WorkspaceLock;
use crate::store::{self, RECORD_FILE, SlotState};
use crate::util::console;
use crate::util::text::plural;
use crate::util::text::shell_word;

pub struct GcOptions {
    pub jobfile: PathBuf,
    pub yes: bool,
    /// Keep the folders of jobs that are not done, to look into them.
    pub keep_failed: bool,
    /// Only what was last written longer ago than this.
    pub older_than: Option<Duration>,
}

/// A temp file of a record write is stray once it is this old: the write takes milliseconds.
const STRAY_TEMP_AGE: Duration = Duration::from_secs(600);

pub fn gc(options: &GcOptions) -> anyhow::Result<i32> {
    let workspace = Workspace::open(&options.jobfile)?;
    let jobfile = &workspace.jobfile;
    let consent = Consent::of(options.yes);
    // Held from the listing to the removal, so that what is listed is what is removed.
    let lock = match consent {
        Consent::ListOnly => None,
        Consent::Given | Consent::Ask => Some(WorkspaceLock::acquire(&jobfile.workspace.state)?),
    };
    let plans = workspace.plan()?;
    // A job waiting for upstream jobs has no key yet: its folder may be any of its stage's.
    let waiting: HashSet<String> = plans
        .iter()
        .filter(|p| !p.waiting.is_empty())
        .filter_map(|p| jobfile.stage(p.stage).name().map(String::from))
        .collect();
    let jobs: Vec<Job> = plans.into_iter().flat_map(|p| p.jobs).collect();
    let found = scan(&jobfile.workspace.jobs, &jobs, &waiting, options);

    let root = &jobfile.root;
    let jobs_folder = console::relative(&jobfile.workspace.jobs, root);
    let mut kept = vec![plural(jobs.len(), "current job")];
    if found.kept_waiting > 0 {
        kept.push(format!("{} of stages with jobs waiting for upstream jobs", plural(found.kept_waiting, "folder")));
    }
    if found.kept_not_done > 0 {
        kept.push(format!("{} not done", plural(found.kept_not_done, "folder")));
    }
    if let Some(limit) = options.older_than.filter(|_| found.kept_newer > 0) {
        kept.push(format!("{} newer than {}", plural(found.kept_newer, "folder"), short_duration(limit)));
    }
    let kept = kept.join(", ");
    if found.remove.is_empty() {
        console::status("Clean", &format!("nothing to remove in {jobs_folder} (kept: {kept})"));
        return Ok(0);
    }
    if consent != Consent::Given || !console::is_quiet() {
        print_list(root, &found.remove);
    }
    println!("{} (kept: {kept})", total(&found.remove));
    let nothing_current = !jobs.is_empty() && jobs.iter().all(|j| matches!(j.slot.state, SlotState::Absent));
    if nothing_current && found.remove.iter().any(|r| r.done) {
        let note = "no job of this Jobfile has a folder yet, so every finished job listed is another job; if \
                    this Jobfile built them, check its declared env vars and inputs: they are part of each job's key";
        eprintln!("{}", console::line(console::Tone::Note, "Note", note));
    }
    if !consent.confirm(&format!("Remove {}?", total(&found.remove))) {
        if consent == Consent::ListOnly {
            println!("run `{}` to remove them", yes_command(options));
        }
        return Ok(0);
    }
    let result = remove(root, &found.remove);
    workspace.link_names(jobs.iter());
    let ids: HashSet<&str> = found.remove.iter().filter_map(|r| r.path.file_name()?.to_str()).collect();
    if let Err(e) = workspace.store.forget(&ids) {
        let index = jobfile.workspace.state.join("index");
        console::failure("Warning", &format!("cannot update {}: {e}", console::relative(&index, root)));
    }
    drop(lock);
    result.map(|()| 0)
}

/// The command that removes what a listing without consent showed.
fn yes_command(options: &GcOptions) -> String {
    let mut words = vec!["jobman".to_string()];
    if options.jobfile != Path::new("Jobfile.toml") {
        words.push("-f".into());
        words.push(shell_word(&options.jobfile.to_string_lossy()));
    }
    words.push("gc".into());
    if options.keep_failed {
        words.push("--keep-failed".into());
    }
    if let Some(limit) = options.older_than {
        words.push(format!("--older-than {}", short_duration(limit)));
    }
    words.push("--yes".into());
    words.join(" ")
}

/// `7days`, `1h30m`: a duration as `--older-than` reads it back.
fn short_duration(duration: Duration) -> String {
    humantime::format_duration(duration).to_string().replace(' ', "")
}

/// What the jobs folder holds for gc.
#[derive(Default)]
struct Found {
    remove: Vec<Removal>,
    kept_not_done: usize,
    kept_newer: usize,
    kept_waiting: usize,
}

/// `waiting`: the stages with jobs waiting for upstream jobs, whose folders are all kept.
fn scan(jobs_dir: &Path, jobs: &[Job], waiting: &HashSet<String>, options: &GcOptions) -> Found {
    let mut found = Found::default();
    let Ok(entries) = fs::read_dir(jobs_dir) else { return found };
    let current = Current::of(jobs);
    let now = SystemTime::now();
    let older = |modified: Option<SystemTime>, limit: Duration| {
        modified.and_then(|m| now.duration_since(m).ok()).is_some_and(|age| age >= limit)
    };
    // A record write cut off leaves its temp file in the jobs folder; one younger than this may
    // be renamed any moment.
    let temp_limit = options.older_than.unwrap_or_default().max(STRAY_TEMP_AGE);
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(String::from) else { continue };
        // `file_type` does not follow symlinks: a symlink is never a folder here.
        let file_type = entry.file_type().ok();
        let is_dir = file_type.is_some_and(|t| t.is_dir());
        if file_type.is_some_and(|t| t.is_file()) && store::is_record_temp(&name) {
            let removal = Removal::temp_file(entry.path());
            if older(removal.modified, temp_limit) {
                found.remove.push(removal);
            }
            continue;
        }
        if fate(&name, is_dir, &current) != Fate::Remove {
            continue;
        }
        let removal = Removal::folder(entry.path());
        if removal.stage.as_ref().is_some_and(|stage| waiting.contains(stage)) {
            found.kept_waiting += 1;
        } else if options.keep_failed && !removal.done {
            found.kept_not_done += 1;
        } else if options.older_than.is_some_and(|limit| !older(removal.modified, limit)) {
            found.kept_newer += 1;
        } else {
            found.remove.push(removal);
        }
    }
    found.remove.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// The current jobs, as gc needs to know them.
struct Current {
    /// Id → whether the job is done.
    done: HashMap<String, bool>,
    /// Ids that current jobs' longer ids start with: the folders there hold other jobs' keys
    /// and are why those current jobs have longer ids. Removing one would move its current job
    /// to the shorter id, away from its results.
    blocking: HashSet<String>,
}

impl Current {
    fn of(jobs: &[Job]) -> Current {
        let done = jobs.iter().map(|j| (j.slot.id.clone(), matches!(j.slot.state, SlotState::Done(_)))).collect();
        let mut blocking = HashSet::new();
        for job in jobs.iter().filter(|j| j.slot.id.len() > ID_LEN) {
            for len in (ID_LEN..job.slot.id.len()).step_by(4) {
                blocking.insert(job.slot.id[..len].to_string());
            }
        }
        Current { done, blocking }
    }
}

/// What gc does with one entry of the jobs folder.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    /// A folder of the current Jobfile's jobs.
    Keep,
    /// A folder of a job the Jobfile no longer names, or a previous run that was superseded.
    Remove,
    /// Not something jobman made: a file, a symlink, a name that is not a job id.
    Foreign,
}

fn fate(name: &str, is_dir: bool, current: &Current) -> Fate {
    if !is_dir {
        return Fate::Foreign;
    }
    let (id, previous) = match name.strip_suffix(".previous") {
        Some(id) => (id, true),
        None => (name, false),
    };
    if !is_job_id(id) {
        return Fate::Foreign;
    }
    match (current.done.get(id), previous) {
        (Some(_), false) => Fate::Keep,
        // The last finished result of a current job whose forced rerun did not finish.
        (Some(false), true) => Fate::Keep,
        (Some(true), true) => Fate::Remove,
        (None, false) if current.blocking.contains(id) => Fate::Keep,
        (None, _) => Fate::Remove,
    }
}

/// 12 lowercase hex digits, or more in steps of 4 (ids grow so on a collision) up to a full key.
fn is_job_id(name: &str) -> bool {
    (ID_LEN..=64).contains(&name.len())
        && (name.len() - ID_LEN).is_multiple_of(4)
        && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Something in the jobs folder to remove, as listed to the user.
pub(crate) struct Removal {
    pub path: PathBuf,
    is_dir: bool,
    /// The job's name, from its record.
    name: Option<String>,
    /// `done`, `failed`, …; `incomplete` without a record; `temp file`.
    status: String,
    done: bool,
    bytes: u64,
    /// When its record (or, without one, the folder) was last written.
    modified: Option<SystemTime>,
    /// The stage its record names (a Jobfile with stages).
    stage: Option<String>,
}

impl Removal {
    /// A job folder, described by its record. Records of any format are read for their name and
    /// status: this is only for the listing.
    pub(crate) fn folder(path: PathBuf) -> Removal {
        let record_path = path.join(RECORD_FILE);
        let record: Option<serde_json::Value> =
            fs::read(&record_path).ok().map(|bytes| serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null));
        let field = |name: &str| record.as_ref().and_then(|r| r.get(name)?.as_str().map(String::from));
        let status = match (&record, field("status")) {
            (None, _) => "incomplete".to_string(),
            (Some(_), Some(status)) => status.replace('_', " "),
            (Some(_), None) => "unreadable record".to_string(),
        };
        let modified =
            fs::symlink_metadata(&record_path).or_else(|_| fs::symlink_metadata(&path)).and_then(|m| m.modified()).ok();
        let stage = record.as_ref().and_then(|r| r.pointer("/ingredients/stage")?.as_str().map(String::from));
        Removal {
            name: field("name"),
            stage,
            done: status == "done",
            status,
            bytes: disk_usage(&path),
            modified,
            is_dir: true,
            path,
        }
    }

    fn temp_file(path: PathBuf) -> Removal {
        let metadata = fs::symlink_metadata(&path).ok();
        Removal {
            name: None,
            status: "temp file".into(),
            done: false,
            bytes: metadata.as_ref().map_or(0, |m| m.len()),
            modified: metadata.and_then(|m| m.modified().ok()),
            is_dir: false,
            path,
            stage: None,
        }
    }
}

/// The bytes of the files under `path`; symlinks count as themselves and are not followed.
fn disk_usage(path: &Path) -> u64 {
    let Ok(metadata) = fs::symlink_metadata(path) else { return 0 };
    if !metadata.is_dir() {
        return metadata.len();
    }
    let Ok(entries) = fs::read_dir(path) else { return 0 };
    entries.flatten().map(|entry| disk_usage(&entry.path())).sum()
}

/// One line per item: path, job name, status, size, age.
pub(crate) fn print_list(root: &Path, items: &[Removal]) {
    let now = SystemTime::now();
    let rows: Vec<[String; 5]> = items
        .iter()
        .map(|item| {
            let path = console::relative(&item.path, root) + if item.is_dir { "/" } else { "" };
            let age = item.modified.and_then(|m| now.duration_since(m).ok()).map_or("?".to_string(), console::age);
            [path, item.name.clone().unwrap_or_else(|| "-".into()), item.status.clone(), console::size(item.bytes), age]
        })
        .collect();
    let header = ["PATH", "NAME", "STATUS", "SIZE", "AGE"].map(String::from);
    let widths: Vec<usize> =
        (0..5).map(|c| rows.iter().chain([&header]).map(|row| row[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = std::io::stdout().lock();
    for row in [&header].into_iter().chain(&rows) {
        let [path, name, status, size, age] = row;
        let _ = writeln!(
            out,
            "{path:<w0$}  {name:<w1$}  {status:<w2$}  {size:>w3$}  {age:>w4$}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4]
        );
    }
}

/// `3 folders and 1 temp file, 12.0 KiB`.
pub(crate) fn total(items: &[Removal]) -> String {
    let folders = items.iter().filter(|i| i.is_dir).count();
    let files = items.len() - folders;
    let mut parts = Vec::new();
    if folders > 0 {
        parts.push(plural(folders, "folder"));
    }
    if files > 0 {
        parts.push(plural(files, "temp file"));
    }
    format!("{}, {}", parts.join(" and "), console::size(items.iter().map(|i| i.bytes).sum()))
}

/// Removes each item; a failure is reported and the others are still removed.
pub(crate) fn remove(root: &Path, items: &[Removal]) -> anyhow::Result<()> {
    let mut failed = 0;
    for item in items {
        // Neither call follows a symlink: one put in the item's place is removed, not its target.
        let result = if item.is_dir { fs::remove_dir_all(&item.path) } else { fs::remove_file(&item.path) };
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                failed += 1;
                console::failure("Error", &format!("cannot remove {}: {e}", console::relative(&item.path, root)));
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{} of {} could not be removed", failed, plural(items.len(), "item"));
    }
    console::status("Removed", &total(items));
    Ok(())
}

/// Whether the user agreed to a removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Consent {
    /// `--yes`.
    Given,
    /// On a terminal: ask.
    Ask,
    /// Neither: list what would be removed, remove nothing.
    ListOnly,
}

impl Consent {
    pub(crate) fn of(yes: bool) -> Consent {
        if yes {
            Consent::Given
        } else if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            Consent::Ask
        } else {
            Consent::ListOnly
        }
    }

    /// Whether to go on, asking `question` (y/N) on the terminal when needed.
    pub(crate) fn confirm(self, question: &str) -> bool {
        match self {
            Consent::Given => true,
            Consent::ListOnly => false,
            Consent::Ask => {
                eprint!("{question} [y/N] ");
                let _ = std::io::stderr().flush();
                let mut answer = String::new();
                if std::io::stdin().lock().read_line(&mut answer).is_err() {
                    return false;
                }
                matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current(done: &[(&str, bool)], blocking: &[&str]) -> Current {
        Current {
            done: done.iter().map(|&(id, d)| (id.to_string(), d)).collect(),
            blocking: blocking.iter().map(|id| id.to_string()).collect(),
        }
    }

    #[test]
    fn only_folders_named_like_job_ids_of_no_current_job_are_removed() {
        let current = current(&[("aaaaaaaaaaaa", true), ("bbbbbbbbbbbb", false)], &["cccccccccccc"]);
        let cases = [
            ("aaaaaaaaaaaa", true, Fate::Keep),
            ("bbbbbbbbbbbb", true, Fate::Keep),
            ("0123456789ab", true, Fate::Remove),
            ("0123456789ab0123", true, Fate::Remove),
            ("0123456789ab.previous", true, Fate::Remove),
            ("aaaaaaaaaaaa.previous", true, Fate::Remove),
            ("bbbbbbbbbbbb.previous", true, Fate::Keep),
            ("cccccccccccc", true, Fate::Keep),
            ("0123456789ab", false, Fate::Foreign),
            ("0123456789a", true, Fate::Foreign),
            ("0123456789abc", true, Fate::Foreign),
            ("0123456789AB", true, Fate::Foreign),
            ("notes", true, Fate::Foreign),
            (".previous", true, Fate::Foreign),
        ];
        for (name, is_dir, expected) in cases {
            assert_eq!(fate(name, is_dir, &current), expected, "{name} (folder: {is_dir})");
        }
    }
}
