//! How jobs ended, whichever executor ran them: each job's line, the failures' summary, and what
//! a whole run came to.

use std::fs;
use std::path::{Path, PathBuf};

use crate::store::build_log::LogEntry;
use crate::store::{FileStamp, JobRecord, JobStatus, STDERR_FILE};
use crate::util::console::{self, Tone};
use crate::util::exit;
use crate::util::text::plural;

/// What running the pending jobs of one stage came to, locally or on Slurm.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// A job failed (or could not start).
    pub failed: bool,
    /// Ctrl-C (or SIGTERM) stopped the run.
    pub interrupted: bool,
    /// Jobs were submitted to Slurm and left there (`--detach`): not done, not failed.
    pub submitted: bool,
    /// Each failed job with the end of its log: printed last ([`Outcome::print_failures`]), so
    /// that the cause is what a reader sees, not the products made after.
    pub failures: Vec<String>,
}

impl Outcome {
    /// Both runs' outcomes together.
    pub fn and(mut self, other: Outcome) -> Outcome {
        self.failures.extend(other.failures);
        Outcome {
            failed: self.failed || other.failed,
            interrupted: self.interrupted || other.interrupted,
            submitted: self.submitted || other.submitted,
            failures: self.failures,
        }
    }

    /// `Failures 2 jobs:`, then each one's name, reason, log and the log's last lines.
    pub fn print_failures(&self) {
        if self.failures.is_empty() {
            return;
        }
        console::failure("Failures", &format!("{}:", plural(self.failures.len(), "job")));
        for failure in &self.failures {
            eprintln!("{failure}");
        }
    }

    /// The process's exit code for this outcome.
    pub fn exit_code(&self) -> i32 {
        if self.interrupted {
            exit::INTERRUPTED
        } else if self.failed {
            exit::JOB_FAILED
        } else {
            exit::OK
        }
    }
}

/// A job's end, as the build loop sees it.
pub struct Finished {
    pub index: usize,
    /// The record the local pool wrote, with its stamp, when it wrote one.
    pub record: Option<(JobRecord, FileStamp)>,
    /// What it rendered, for the build log.
    pub logged: Option<LogEntry>,
    pub name: String,
    pub dir: PathBuf,
    /// `None` when the job never started (Ctrl-C, --fail-fast).
    pub status: Option<JobStatus>,
    pub detail: String,
    pub seconds: f64,
    /// How many times it ran.
    pub attempts: u32,
}

impl Finished {
    /// A job that ended with this record (a Slurm task's, read or written by the build).
    pub fn of_record(index: usize, record: JobRecord, dir: PathBuf) -> Finished {
        Finished {
            index,
            name: record.name.clone(),
            dir,
            status: Some(record.status),
            detail: failure_detail(&record),
            seconds: record.duration_secs,
            attempts: record.attempts,
            logged: None,
            // The job's state is read from its folder when the build plans again.
            record: None,
        }
    }

    pub fn line(&self, root: &Path) -> String {
        let time = console::duration(self.seconds);
        match self.status {
            Some(JobStatus::Done) => {
                console::line(Tone::Good, "Ran", &format!("{} in {time}{}", self.name, attempt_note(self.attempts)))
            }
            Some(status) => console::line(
                Tone::Bad,
                "Failed",
                &format!(
                    "{} ({}{}) in {time}: {}",
                    self.name,
                    status.as_str(),
                    self.detail,
                    console::relative(&self.dir, root)
                ),
            ),
            None => console::line(Tone::Note, "Skipped", &self.name),
        }
    }

    /// The failure as the end-of-build summary shows it: name, why, the tail of its stderr.
    pub fn summary(&self, root: &Path) -> String {
        let log = self.dir.join(STDERR_FILE);
        let tail = read_tail(&log, 4096);
        let lines: Vec<&str> = tail.lines().collect();
        let tail: Vec<String> = lines[lines.len().saturating_sub(5)..].iter().map(|l| format!("      | {l}")).collect();
        let status = self.status.map_or("", JobStatus::as_str);
        let log = if log.exists() {
            format!("log: {}", console::relative(&log, root))
        } else {
            format!("it wrote nothing to stderr (its folder: {})", console::relative(&self.dir, root))
        };
        let mut text = format!("  {} ({status}{})\n    {log}", self.name, self.detail);
        if !tail.is_empty() {
            text.push('\n');
            text.push_str(&tail.join("\n"));
        }
        text
    }
}

/// What a record says of a job that did not finish well, after its status: `, exit code 3`,
/// `: why`, ` after 3 attempts, exit code 3`.
pub fn failure_detail(record: &JobRecord) -> String {
    let attempts = if record.attempts > 1 && record.status != JobStatus::Done {
        format!(" after {} attempts", record.attempts)
    } else {
        String::new()
    };
    match (&record.message, record.exit_code) {
        (Some(message), _) => format!("{attempts}: {message}"),
        (None, Some(code)) if record.status != JobStatus::Done => format!("{attempts}, exit code {code}"),
        _ => attempts,
    }
}

/// Which attempt finished a job that was retried: ` (2nd attempt)`; empty for a first.
pub fn attempt_note(attempts: u32) -> String {
    let suffix = match (attempts % 10, attempts % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    if attempts > 1 { format!(" ({attempts}{suffix} attempt)") } else { String::new() }
}

/// The last `bytes` of a file (a failed job's log may be huge), as text.
fn read_tail(path: &Path, bytes: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = fs::File::open(path) else { return String::new() };
    let length = file.metadata().map_or(0, |m| m.len());
    if length > bytes && file.seek(SeekFrom::Start(length - bytes)).is_err() {
        return String::new();
    }
    let mut buffer = Vec::new();
    let _ = file.take(bytes).read_to_end(&mut buffer);
    let text = String::from_utf8_lossy(&buffer).into_owned();
    // A cut first line is noise.
    if length > bytes { text.split_once('\n').map_or(text.clone(), |(_, rest)| rest.to_string()) } else { text }
}

/// The jobs of one run, counted for its summary line.
#[derive(Default, Clone)]
pub struct Tally {
    pub ran: usize,
    pub cached: usize,
    /// Stopped while running (Ctrl-C, or cancelled on Slurm).
    pub interrupted: usize,
    /// Never started: the build stopped first (Ctrl-C, `--fail-fast`).
    pub not_started: usize,
    pub failed: Vec<String>,
}

impl Tally {
    /// Prints the summary line; what the run came to, its failures to be printed last.
    pub fn finish(&self, total: usize, seconds: f64, interrupted: bool) -> Outcome {
        let summary = format!(
            "{}: {} ran, {} cached, {} failed{} in {}",
            plural(total, "job"),
            self.ran,
            self.cached,
            self.failed.len(),
            [(self.interrupted, "interrupted"), (self.not_started, "not started")]
                .iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!(", {n} {what}"))
                .collect::<String>(),
            console::duration(seconds)
        );
        if interrupted {
            console::failure("Interrupted", &summary);
        } else if !self.failed.is_empty() {
            console::failure("Finished", &summary);
        } else {
            console::status("Finished", &summary);
        }
        Outcome { failed: !self.failed.is_empty(), interrupted, submitted: false, failures: self.failed.clone() }
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::attempt_note;

    #[test]
    fn a_retried_job_says_which_attempt_finished_it() {
        assert_eq!(attempt_note(1), "");
        assert_eq!(attempt_note(2), " (2nd attempt)");
        assert_eq!(attempt_note(3), " (3rd attempt)");
        assert_eq!(attempt_note(4), " (4th attempt)");
        assert_eq!(attempt_note(11), " (11th attempt)");
        assert_eq!(attempt_note(22), " (22nd attempt)");
    }
}
