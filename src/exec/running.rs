//! Which job processes of a local build may still run, kept where a later process can read it:
//! `.jobman/running`. Before it starts a job, a build writes `?`; once the job's process leads
//! its own group, `+GROUP` (or `!` when it could not start); once the job ended and its group was
//! killed, `-GROUP`.
//!
//! A build creates the file when it starts its first job and removes it at its end. A build
//! that died leaves it: its watchdog stops the groups it lists as running (at once, before their
//! numbers can be given to other processes), and if the watchdog died too, the next build does,
//! after checking that each is still a job of this workspace. No other process on the machine is
//! looked at, but for one case: a `?` without its `+` or `!`, a job started in the instant jobman
//! died, whose process only its environment (`JOBMAN_JOB_DIR`) can name.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// The file's name in the workspace's state folder.
pub const RUNNING_FILE: &str = "running";

/// The list of one build's job groups, open for appending.
pub struct RunningGroups {
    file: File,
    path: PathBuf,
}

impl RunningGroups {
    /// Starts the list of a build (the lock is held: no other build lists anything here).
    pub fn create(state_dir: &Path) -> io::Result<RunningGroups> {
        let path = state_dir.join(RUNNING_FILE);
        // Appended to by each worker: each line lands whole at the end.
        let file = fs::OpenOptions::new().create(true).append(true).open(&path)?;
        file.set_len(0)?;
        Ok(RunningGroups { file, path })
    }

    /// A job is about to start.
    pub fn starting(&self) {
        self.note("?\n");
    }

    /// The job started, leading group `group`; `None`: it could not start.
    pub fn started(&self, group: Option<i32>) {
        match group {
            Some(group) => self.note(&format!("+{group}\n")),
            None => self.note("!\n"),
        }
    }

    /// The job ended: its process was waited for and its group killed.
    pub fn ended(&self, group: i32) {
        self.note(&format!("-{group}\n"));
    }

    fn note(&self, line: &str) {
        // One write per line, appended whole. A line lost here makes a later reader check a
        // group that is gone, or look for a job that is not there.
        let _ = (&self.file).write_all(line.as_bytes());
    }

    /// The build ended with no job running: nothing is left to stop.
    pub fn remove(self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What a dead build's list says is left running.
#[derive(Debug, Default, PartialEq)]
struct Listed {
    /// The groups started and not ended, in the order they started.
    groups: Vec<i32>,
    /// Whether a job was starting when the build died.
    starting: bool,
}

/// What a dead build's list says; `None` without a list (the last build ended well, or ran no
/// job).
fn listed(state_dir: &Path) -> Option<Listed> {
    let text = fs::read_to_string(state_dir.join(RUNNING_FILE)).ok()?;
    let mut groups: Vec<i32> = Vec::new();
    let mut live = HashSet::new();
    let mut starting = 0_i64;
    // Only whole lines: a line cut short by a crash could name another group. Group numbers
    // 0 and 1 would mean "this group" and "every process" to kill.
    for line in text.split_inclusive('\n').filter_map(|line| line.strip_suffix('\n')) {
        let (sign, number) = line.split_at(line.len().min(1));
        match (sign, number.parse::<i32>().ok().filter(|&group| group > 1)) {
            ("?", _) => starting += 1,
            ("!", _) => starting -= 1,
            ("+", Some(group)) => {
                starting -= 1;
                if live.insert(group) {
                    groups.push(group);
                }
            }
            ("-", Some(group)) => {
                live.remove(&group);
            }
            _ => {}
        }
    }
    // Each live group once, where it first started.
    groups.retain(|group| live.remove(group));
    Some(Listed { groups, starting: starting > 0 })
}

/// For the watchdog, as soon as jobman died: every group its list names as running and that
/// still exists (so soon after, no listed group can have ended and its number been reused), and
/// a job started in the instant jobman died.
pub fn listed_and_alive(state_dir: &Path, jobs_dir: &Path) -> Vec<i32> {
    let Some(listed) = listed(state_dir) else { return Vec::new() };
    let mut groups: Vec<i32> = listed.groups.into_iter().filter(|&group| group_exists(group)).collect();
    if listed.starting {
        // Time for a process caught between fork and exec to become the job.
        std::thread::sleep(std::time::Duration::from_millis(100));
        add_new(&mut groups, groups_running_jobs_of(jobs_dir));
    }
    groups
}

/// For a later build: the groups a dead build (and its dead watchdog) left running that are
/// still jobs of `jobs_dir`. A group whose leader lives must carry the job's environment: its
/// number may have been given to another process since. A group whose leader is gone is the
/// job's own: a group's number is not given out again while the group has a process. `None`
/// without a list.
pub fn left_running(state_dir: &Path, jobs_dir: &Path) -> Option<Vec<i32>> {
    let listed = listed(state_dir)?;
    let marker = job_marker(jobs_dir);
    let mut groups: Vec<i32> = listed
        .groups
        .into_iter()
        .filter(|&group| match fs::read(format!("/proc/{group}/environ")) {
            Ok(environ) => leads_group(group) && runs_a_job(&environ, &marker),
            Err(_) => !Path::new(&format!("/proc/{group}")).exists() && group_exists(group),
        })
        .collect();
    if listed.starting {
        add_new(&mut groups, groups_running_jobs_of(jobs_dir));
    }
    Some(groups)
}

fn add_new(groups: &mut Vec<i32>, more: Vec<i32>) {
    for group in more {
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
}

/// The environment entry of a job of `jobs_dir`.
fn job_marker(jobs_dir: &Path) -> String {
    format!("JOBMAN_JOB_DIR={}/", jobs_dir.display())
}

/// Whether a process environment (`/proc/PID/environ`) is a local job's of the marker's jobs
/// folder: a job that Slurm runs (`SLURM_JOB_ID` set), even on this machine, is Slurm's to stop.
fn runs_a_job(environ: &[u8], marker: &str) -> bool {
    let mut vars = environ.split(|&b| b == 0);
    vars.clone().any(|var| var.starts_with(marker.as_bytes())) && !vars.any(|var| var.starts_with(b"SLURM_JOB_ID="))
}

/// The process groups of every process on the machine whose environment says it runs a job of
/// `jobs_dir`: only for a job started in the instant its build died, before it was listed.
fn groups_running_jobs_of(jobs_dir: &Path) -> Vec<i32> {
    let marker = job_marker(jobs_dir);
    let Ok(processes) = fs::read_dir("/proc") else { return Vec::new() };
    let mut groups = Vec::new();
    for entry in processes.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else { continue };
        let Some(group) = process_group(pid).filter(|group| !groups.contains(group)) else { continue };
        if runs_a_job(&fs::read(entry.path().join("environ")).unwrap_or_default(), &marker) {
            groups.push(group);
        }
    }
    groups
}

/// Forgets a dead build's list once its groups were stopped.
pub fn forget(state_dir: &Path) {
    let _ = fs::remove_file(state_dir.join(RUNNING_FILE));
}

fn group_exists(group: i32) -> bool {
    // SAFETY: signal 0 sends nothing; it only asks whether the group has a process.
    unsafe { libc::kill(-group, 0) == 0 }
}

/// Whether process `pid` leads its own process group.
fn leads_group(pid: i32) -> bool {
    process_group(pid) == Some(pid)
}

/// The process group of process `pid`: the fifth field of `/proc/PID/stat`, the third after
/// the parenthesised command name.
fn process_group(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed_of(text: &str) -> Option<Listed> {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(RUNNING_FILE), text).unwrap();
        listed(dir.path())
    }

    #[test]
    fn a_list_names_the_groups_started_and_not_ended_and_a_job_caught_starting() {
        // 10 ended; 1, 0 and -5 are never groups of jobs; the last line was cut short.
        let cut_short = listed_of("?\n+10\n?\n+11\n-10\n+1\n+0\n+-5\n?\n+12\n?\n+13");
        assert_eq!(cut_short, Some(Listed { groups: vec![11, 12], starting: true }));
        // Started again after it ended: a reused number, running. A job that could not start.
        let reused = listed_of("?\n+10\n-10\n?\n+10\n?\n!\n");
        assert_eq!(reused, Some(Listed { groups: vec![10], starting: false }));
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(listed(dir.path()), None);
        let groups = RunningGroups::create(dir.path()).unwrap();
        groups.starting();
        groups.started(Some(42));
        groups.ended(42);
        assert_eq!(listed(dir.path()), Some(Listed::default()));
        groups.remove();
        assert_eq!(listed(dir.path()), None);
    }
}
