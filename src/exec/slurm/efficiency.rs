//! How well jobs fit what they asked of Slurm: after a build, one line per stage comparing the
//! peak memory and the longest run of its jobs with `mem` and `time`, as Slurm's `seff` does
//! for one job, so that users can tune both.

use crate::store::{JobRecord, JobStatus};
use crate::util::console;

/// The done jobs of one stage followed on Slurm, and what their arrays asked for.
#[derive(Debug, Default)]
pub struct StageUsage {
    jobs: usize,
    /// The largest peak memory measured, in MiB.
    max_rss_mb: f64,
    /// The longest run, in seconds.
    longest_secs: f64,
    /// The smallest `--mem` and `--time` among the stage's arrays.
    mem_asked_mb: Option<f64>,
    time_asked_secs: Option<f64>,
    /// Several jobs ran one after the other in a task: the time limit is the task's.
    packed: bool,
}

impl StageUsage {
    /// Counts a job that ended with `record` in an array submitted with `mem` and `time`.
    pub fn add(&mut self, record: &JobRecord, mem: Option<&str>, time: Option<&str>, jobs_per_task: usize) {
        if record.status != JobStatus::Done {
            return;
        }
        self.jobs += 1;
        if let Some(usage) = record.usage {
            self.max_rss_mb = self.max_rss_mb.max(usage.max_rss_mb);
        }
        self.longest_secs = self.longest_secs.max(record.duration_secs);
        let smaller = |asked: Option<f64>, new: Option<f64>| match (asked, new) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.mem_asked_mb = smaller(self.mem_asked_mb, mem.and_then(memory_mb));
        self.time_asked_secs = smaller(self.time_asked_secs, time.and_then(time_limit_secs));
        self.packed |= jobs_per_task > 1;
    }

    /// `peak memory 63 MB of 4096 MB asked (2%), longest job 1m 2s of 2h (1%)`; none without a
    /// done job.
    pub fn line(&self) -> Option<String> {
        if self.jobs == 0 {
            return None;
        }
        let share = |used: f64, asked: f64| format!("{:.0}%", 100.0 * used / asked);
        let memory = match self.mem_asked_mb {
            Some(asked) => {
                format!(
                    "peak memory {:.0} MB of {asked:.0} MB asked ({})",
                    self.max_rss_mb,
                    share(self.max_rss_mb, asked)
                )
            }
            None => format!("peak memory {:.0} MB (no `mem` asked)", self.max_rss_mb),
        };
        let per = if self.packed { "job (tasks run several)" } else { "job" };
        let time = match self.time_asked_secs {
            Some(asked) => format!(
                "longest {per} {} of {} ({})",
                console::duration(self.longest_secs),
                console::duration(asked),
                share(self.longest_secs, asked)
            ),
            None => format!("longest {per} {} (no `time` asked)", console::duration(self.longest_secs)),
        };
        Some(format!("{memory}, {time}"))
    }
}

/// `--mem` in MiB: `4G`, `500M`, `16000` (megabytes), `1T`, `512K`.
pub fn memory_mb(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => (&text[..at], &text[at..]),
        None => (text, "M"),
    };
    let scale = match unit.to_ascii_uppercase().as_str() {
        "K" | "KB" => 1.0 / 1024.0,
        "M" | "MB" => 1.0,
        "G" | "GB" => 1024.0,
        "T" | "TB" => 1024.0 * 1024.0,
        _ => return None,
    };
    Some(number.parse::<f64>().ok()? * scale)
}

/// `--time` in seconds, in Slurm's forms: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`,
/// `D-HH:MM:SS`; none for `UNLIMITED` or what is not understood.
pub fn time_limit_secs(text: &str) -> Option<f64> {
    let (days, rest) = match text.trim().split_once('-') {
        Some((days, rest)) => (days.parse::<f64>().ok()?, rest),
        None => (0.0, text.trim()),
    };
    let parts: Vec<f64> = rest.split(':').map(|p| p.parse::<f64>().ok()).collect::<Option<_>>()?;
    let seconds = match (text.contains('-'), &parts[..]) {
        (false, &[minutes]) => minutes * 60.0,
        (false, &[minutes, seconds]) => minutes * 60.0 + seconds,
        (true, &[hours]) => hours * 3600.0,
        (true, &[hours, minutes]) => hours * 3600.0 + minutes * 60.0,
        (_, &[hours, minutes, seconds]) => hours * 3600.0 + minutes * 60.0 + seconds,
        _ => return None,
    };
    Some(days * 86400.0 + seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_time_limits_read_as_sbatch_reads_them() {
        assert_eq!(memory_mb("4G"), Some(4096.0));
        assert_eq!(memory_mb("500M"), Some(500.0));
        assert_eq!(memory_mb("16000"), Some(16000.0));
        assert_eq!(memory_mb("512K"), Some(0.5));
        assert_eq!(memory_mb("lots"), None);
        assert_eq!(time_limit_secs("02:00:00"), Some(7200.0));
        assert_eq!(time_limit_secs("90"), Some(5400.0));
        assert_eq!(time_limit_secs("10:30"), Some(630.0));
        assert_eq!(time_limit_secs("1-00:00:00"), Some(86400.0));
        assert_eq!(time_limit_secs("2-12"), Some(2.0 * 86400.0 + 12.0 * 3600.0));
        assert_eq!(time_limit_secs("UNLIMITED"), None);
    }
}
