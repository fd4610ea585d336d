//! What Slurm says of submitted jobs: `squeue` and `sacct` parsed, what a state means for a job,
//! and how often to ask.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::jobfile::slurm::MIN_POLL_INTERVAL;
use crate::store::JobStatus;

/// The fields asked of `squeue --Format`: `|` after each, widths unlimited.
pub const SQUEUE_FORMAT: &str = "ArrayJobID:|,ArrayTaskID:|,State:|,Reason:|,exit_code:|";

/// A job's state as Slurm names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlurmState {
    Pending,
    Configuring,
    Running,
    Completing,
    Suspended,
    /// Requeued (after preemption or a node failure) or held for it: it will run again.
    Requeued,
    Completed,
    Failed,
    Timeout,
    Cancelled,
    OutOfMemory,
    NodeFail,
    BootFail,
    Preempted,
    Deadline,
    /// A state this version of jobman does not know; treated as still in the queue.
    Other(String),
}

impl SlurmState {
    /// Reads Slurm's name; `sacct` appends who cancelled (`CANCELLED by 1000`).
    pub fn parse(text: &str) -> SlurmState {
        let name = text.split_whitespace().next().unwrap_or("").trim_end_matches('+');
        match name {
            "PENDING" | "PD" => SlurmState::Pending,
            "CONFIGURING" | "CF" => SlurmState::Configuring,
            "RUNNING" | "R" => SlurmState::Running,
            "COMPLETING" | "CG" => SlurmState::Completing,
            "SUSPENDED" | "S" | "STOPPED" | "ST" => SlurmState::Suspended,
            "REQUEUED" | "RQ" | "REQUEUE_HOLD" | "RH" | "REQUEUE_FED" | "RF" => SlurmState::Requeued,
            "COMPLETED" | "CD" => SlurmState::Completed,
            "FAILED" | "F" => SlurmState::Failed,
            "TIMEOUT" | "TO" => SlurmState::Timeout,
            "CANCELLED" | "CA" => SlurmState::Cancelled,
            "OUT_OF_MEMORY" | "OOM" => SlurmState::OutOfMemory,
            "NODE_FAIL" | "NF" => SlurmState::NodeFail,
            "BOOT_FAIL" | "BF" => SlurmState::BootFail,
            "PREEMPTED" | "PR" => SlurmState::Preempted,
            "DEADLINE" | "DL" => SlurmState::Deadline,
            other => SlurmState::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            SlurmState::Pending => "PENDING",
            SlurmState::Configuring => "CONFIGURING",
            SlurmState::Running => "RUNNING",
            SlurmState::Completing => "COMPLETING",
            SlurmState::Suspended => "SUSPENDED",
            SlurmState::Requeued => "REQUEUED",
            SlurmState::Completed => "COMPLETED",
            SlurmState::Failed => "FAILED",
            SlurmState::Timeout => "TIMEOUT",
            SlurmState::Cancelled => "CANCELLED",
            SlurmState::OutOfMemory => "OUT_OF_MEMORY",
            SlurmState::NodeFail => "NODE_FAIL",
            SlurmState::BootFail => "BOOT_FAIL",
            SlurmState::Preempted => "PREEMPTED",
            SlurmState::Deadline => "DEADLINE",
            SlurmState::Other(name) => name,
        }
    }

    /// Whether the task has ended: it will not run (again) unless resubmitted.
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            SlurmState::Completed
                | SlurmState::Failed
                | SlurmState::Timeout
                | SlurmState::Cancelled
                | SlurmState::OutOfMemory
                | SlurmState::NodeFail
                | SlurmState::BootFail
                | SlurmState::Preempted
                | SlurmState::Deadline
        )
    }
}

impl fmt::Display for SlurmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a task's process ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExitStatus {
    pub code: i32,
    /// The signal that ended it, 0 for none.
    pub signal: i32,
}

impl ExitStatus {
    /// From a raw wait status, as `squeue -O exit_code` prints it (`768` is exit code 3).
    pub fn from_wait_status(raw: i32) -> ExitStatus {
        ExitStatus { code: (raw >> 8) & 0xff, signal: raw & 0x7f }
    }

    /// From `CODE:SIGNAL`, as `sacct` and `scontrol` print it.
    pub fn parse_pair(text: &str) -> Option<ExitStatus> {
        let (code, signal) = text.trim().split_once(':')?;
        Some(ExitStatus { code: code.parse().ok()?, signal: signal.parse().ok()? })
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.signal {
            0 => write!(f, "exit code {}", self.code),
            signal => write!(f, "killed by signal {signal}"),
        }
    }
}

/// Where one task (or a range of tasks) stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    pub state: SlurmState,
    /// Why it is pending or ended (`Resources`, `JobArrayTaskLimit`, `NonZeroExitCode`…);
    /// empty from `sacct`.
    pub reason: String,
    pub exit: ExitStatus,
}

/// One line of `squeue` or `sacct`: a job, or tasks of an array that share a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// The array's job id (`%A`).
    pub job_id: u64,
    /// The array tasks this line stands for; `None` for a job that is not an array, and for an
    /// array that `sacct` lists whole before its tasks start.
    pub tasks: Option<Vec<u32>>,
    pub state: TaskState,
}

/// `squeue`'s arguments for the state of these arrays, all in one call: finished tasks too
/// (for as long as Slurm keeps them, `MinJobAge`), pending tasks as compressed ranges.
pub fn squeue_args(job_ids: &[u64]) -> Vec<String> {
    vec![
        "--noheader".into(),
        "--states=all".into(),
        format!("--jobs={}", id_list(job_ids)),
        format!("--Format={SQUEUE_FORMAT}"),
    ]
}

/// Parses `squeue --noheader --Format=`[`SQUEUE_FORMAT`]: `123|4|RUNNING|None|0|`, or
/// `123|5-10,12%2|PENDING|JobArrayTaskLimit|0|` for pending tasks.
pub fn parse_squeue(text: &str) -> Result<Vec<QueueEntry>, String> {
    let mut entries = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.trim_end().trim_end_matches('|').split('|').map(str::trim).collect();
        let [job_id, tasks, state, reason, exit] = fields[..] else {
            return Err(format!("expected 5 fields separated by `|`, found `{line}`"));
        };
        let bad = |what: &str| format!("{what} in `{line}`");
        entries.push(QueueEntry {
            job_id: job_id.parse().map_err(|_| bad("a job id that is not a number"))?,
            tasks: match tasks {
                "N/A" => None,
                spec => Some(parse_task_ids(spec).map_err(|e| bad(&e))?),
            },
            state: TaskState {
                state: SlurmState::parse(state),
                reason: reason.to_string(),
                exit: ExitStatus::from_wait_status(exit.parse().map_err(|_| bad("an exit code that is not a number"))?),
            },
        });
    }
    Ok(entries)
}

/// The task ids of a compressed array expression: `7`, `0-9`, `1-15:2`, `2-4,6,9-20%2`,
/// `[3-9%3]` (the throttle `%N` is dropped).
pub fn parse_task_ids(spec: &str) -> Result<Vec<u32>, String> {
    let spec = spec.trim().trim_start_matches('[').trim_end_matches(']');
    let spec = spec.split('%').next().unwrap_or("");
    let bad = || format!("an array expression that is not understood: `{spec}`");
    let number = |text: &str| text.trim().parse::<u32>().map_err(|_| bad());
    let mut ids = Vec::new();
    for part in spec.split(',') {
        let (range, step) = match part.split_once(':') {
            Some((range, step)) => (range, number(step)?.max(1)),
            None => (part, 1),
        };
        let (first, last) = match range.split_once('-') {
            Some((first, last)) => (number(first)?, number(last)?),
            None => (number(range)?, number(range)?),
        };
        if last < first || last - first > 10_000_000 {
            return Err(bad());
        }
        ids.extend((first..=last).step_by(step as usize));
    }
    Ok(ids)
}

/// Each task's state by (array job id, task id), from the lines of one `squeue` call.
pub fn task_states(entries: &[QueueEntry]) -> HashMap<(u64, u32), TaskState> {
    let mut states = HashMap::new();
    for entry in entries {
        for &task in entry.tasks.iter().flatten() {
            states.insert((entry.job_id, task), entry.state.clone());
        }
    }
    states
}

/// `sacct`'s arguments for the final state of these arrays' tasks, once they have left the queue.
pub fn sacct_args(job_ids: &[u64]) -> Vec<String> {
    vec![
        "--allocations".into(),
        "--noheader".into(),
        "--parsable2".into(),
        format!("--jobs={}", id_list(job_ids)),
        "--format=JobID,State,ExitCode".into(),
    ]
}

/// Parses `sacct -X -n -P -o JobID,State,ExitCode`: `147_1|FAILED|3:0`,
/// `147_2|CANCELLED by 0|0:0`, `147_[6-9%3]|PENDING|0:0`.
pub fn parse_sacct(text: &str) -> Result<Vec<QueueEntry>, String> {
    let mut entries = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let bad = |what: &str| format!("{what} in `{line}`");
        let [id, state, exit] = line.split('|').collect::<Vec<_>>()[..] else {
            return Err(bad("expected 3 fields separated by `|`"));
        };
        let (job_id, tasks) = match id.split_once('_') {
            Some((job_id, tasks)) => (job_id, Some(parse_task_ids(tasks).map_err(|e| bad(&e))?)),
            None => (id, None),
        };
        entries.push(QueueEntry {
            job_id: job_id.trim().parse().map_err(|_| bad("a job id that is not a number"))?,
            tasks,
            state: TaskState {
                state: SlurmState::parse(state),
                reason: String::new(),
                exit: ExitStatus::parse_pair(exit).ok_or_else(|| bad("an exit code that is not CODE:SIGNAL"))?,
            },
        });
    }
    Ok(entries)
}

fn id_list(job_ids: &[u64]) -> String {
    job_ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

// ---------------------------------------------------------------------------------------------
// What a state means for the job

/// What became of a job whose task ended without writing the job's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: JobStatus,
    /// Slurm's state, what it means and what to do, then the task's log.
    pub message: String,
    /// Whether `[job] retries` applies: Slurm stopped the task for a reason another attempt
    /// may not meet (not a cancellation, which is someone's decision).
    pub retried: bool,
}

/// The status and message of a job whose task ended, or left the queue, without a record.
/// `state` is `None` when Slurm no longer knows the task: cancelled while pending, or forgotten
/// `MinJobAge` seconds after it ended, with no `sacct` to ask.
/// What a task's end means for its job. `limits` are those its array was submitted with, for the
/// advice a time limit calls for.
pub fn verdict(state: Option<&TaskState>, log: &Path, limits: &TaskLimits) -> Verdict {
    let Some(TaskState { state, exit, .. }) = state else {
        return Verdict {
            retried: false,
            status: JobStatus::Failed,
            message: format!(
                "left the Slurm queue without writing its record, and Slurm no longer knows how it ended (cancelled while pending, or forgotten since); log: {}",
                log.display()
            ),
        };
    };
    let (status, meaning) = match state {
        SlurmState::Completed => {
            (JobStatus::Failed, "the task ended without writing the job's record; the log says why".to_string())
        }
        SlurmState::Failed => (JobStatus::Failed, format!("{exit} before the job's record was written")),
        SlurmState::Timeout => {
            let limit = limits.time.as_ref().map(|t| format!(" of {t}")).unwrap_or_default();
            let pack = if limits.jobs_per_task > 1 { ", or pack fewer jobs per task (`jobs_per_task`)" } else { "" };
            (
                JobStatus::TimedOut,
                format!("the task reached its time limit{limit}; raise `time` in [executor.slurm]{pack}"),
            )
        }
        SlurmState::Deadline => (JobStatus::TimedOut, "the task reached its deadline".to_string()),
        SlurmState::Cancelled => (JobStatus::Interrupted, "cancelled (scancel, or an administrator)".to_string()),
        SlurmState::Preempted => {
            (JobStatus::Interrupted, "preempted by another job; the next build submits it again".to_string())
        }
        SlurmState::OutOfMemory => {
            (JobStatus::Failed, "the task ran out of memory; raise `mem` in [executor.slurm]".to_string())
        }
        SlurmState::NodeFail => (JobStatus::Failed, "its node failed; the next build submits it again".to_string()),
        SlurmState::BootFail => {
            (JobStatus::Failed, "its node failed to boot; the next build submits it again".to_string())
        }
        active => (JobStatus::Failed, format!("left the queue while {}", active.as_str().to_lowercase())),
    };
    let retried = !matches!(state, SlurmState::Cancelled | SlurmState::Deadline);
    Verdict { status, message: format!("Slurm: {state}, {meaning}; log: {}", log.display()), retried }
}

// ---------------------------------------------------------------------------------------------
// Polling

/// What an array was submitted with that its tasks' ends are judged against.
#[derive(Debug, Clone, Default)]
pub struct TaskLimits {
    /// `--time`, as sbatch read it.
    pub time: Option<String>,
    /// `--mem`.
    pub mem: Option<String>,
    pub jobs_per_task: usize,
}

/// How long to wait between polls of the queue: 1 s at first, half as long again after each
/// poll that saw nothing change, up to `poll_interval`; a poll that saw a change keeps the pace.
#[derive(Debug, Clone)]
pub struct PollBackoff {
    interval: Duration,
    cap: Duration,
}

impl PollBackoff {
    pub fn new(poll_interval: Duration) -> PollBackoff {
        PollBackoff { interval: MIN_POLL_INTERVAL.min(poll_interval), cap: poll_interval }
    }

    /// The wait before the next poll, given whether the last one saw any task change state.
    pub fn next(&mut self, changed: bool) -> Duration {
        let wait = self.interval;
        if !changed {
            self.interval = (self.interval * 3 / 2).min(self.cap);
        }
        wait
    }
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from Slurm 22.05.8 (the local cluster of scripts/slurm-up.sh) with
    /// `SLURM_BITSTR_LEN=0 squeue --noheader --states=all --jobs=116,117 --Format=…`: array 116
    /// (`--array=0-9%3`) with task 1 exiting 3, tasks 3–9 held back by the throttle; array 117
    /// running.
    const SQUEUE_RUNNING: &str = "116|1|FAILED|NonZeroExitCode|768|
116|3-9%3|PENDING|JobArrayTaskLimit|0|
116|0|RUNNING|None|0|
116|2|RUNNING|None|0|
117|0|RUNNING|None|0|
117|1|RUNNING|None|0|
";

    /// The same arrays later: task 2 cancelled while running, task 3 killed by SIGKILL, array 148
    /// past its one-minute time limit.
    const SQUEUE_FINISHED: &str = "147|2|CANCELLED|None|15|
147|8|COMPLETED|None|0|
147|9|COMPLETED|None|0|
147|3|FAILED|JobLaunchFailure|9|
147|1|FAILED|NonZeroExitCode|768|
148|0|TIMEOUT|TimeLimit|15|
148|1|TIMEOUT|TimeLimit|15|
";

    /// Pending tasks after two of them were cancelled (they vanish), an array with a step held
    /// back, a job that is no array, and an array whose dependency can never be satisfied.
    const SQUEUE_RANGES: &str = "135|2-4,6-7,9-20%2|PENDING|JobArrayTaskLimit|0|
136|1-15:2|PENDING|JobHeldUser|0|
159|N/A|FAILED|NonZeroExitCode|256|
160|0-2|PENDING|DependencyNeverSatisfied|0|
";

    /// `sacct -X -n -P -j 147,148 -o JobID,State,ExitCode` with slurmdbd, while running and after.
    const SACCT_RUNNING: &str = "147_0|COMPLETED|0:0
147_1|FAILED|3:0
147_2|CANCELLED by 0|0:0
147_[6-9%3]|PENDING|0:0
148_0|RUNNING|0:0
";
    const SACCT_FINISHED: &str = "147_1|FAILED|3:0
147_2|CANCELLED by 0|0:0
147_3|FAILED|0:9
148|PENDING|0:0
148_1|TIMEOUT|0:0
";

    fn state(state: SlurmState, reason: &str, code: i32, signal: i32) -> TaskState {
        TaskState { state, reason: reason.into(), exit: ExitStatus { code, signal } }
    }

    #[test]
    fn squeue_lines_give_each_tasks_state_reason_and_exit_status() {
        let states = task_states(&parse_squeue(SQUEUE_RUNNING).unwrap());
        assert_eq!(states.len(), 12);
        assert_eq!(states[&(116, 1)], state(SlurmState::Failed, "NonZeroExitCode", 3, 0));
        assert_eq!(states[&(116, 0)], state(SlurmState::Running, "None", 0, 0));
        for task in 3..=9 {
            assert_eq!(states[&(116, task)], state(SlurmState::Pending, "JobArrayTaskLimit", 0, 0));
        }
        let states = task_states(&parse_squeue(SQUEUE_FINISHED).unwrap());
        assert_eq!(states[&(147, 2)], state(SlurmState::Cancelled, "None", 0, 15));
        assert_eq!(states[&(147, 3)], state(SlurmState::Failed, "JobLaunchFailure", 0, 9));
        assert_eq!(states[&(148, 1)], state(SlurmState::Timeout, "TimeLimit", 0, 15));
        assert!(!states.contains_key(&(147, 4)), "tasks squeue does not list are absent");
    }

    #[test]
    fn squeue_ranges_expand_into_tasks() {
        let entries = parse_squeue(SQUEUE_RANGES).unwrap();
        assert_eq!(entries[0].tasks, Some([2, 3, 4, 6, 7].into_iter().chain(9..=20).collect()));
        assert_eq!(entries[1].tasks, Some((1..=15).step_by(2).collect()));
        assert_eq!(entries[2].tasks, None);
        assert_eq!(entries[2].state, state(SlurmState::Failed, "NonZeroExitCode", 1, 0));
        assert_eq!(entries[3].state.reason, "DependencyNeverSatisfied");
        assert_eq!(parse_task_ids("[3-9%3]").unwrap(), (3..=9).collect::<Vec<_>>());
        assert_eq!(parse_task_ids("7").unwrap(), [7]);
        for wrong in ["", "3-", "9-3", "a", "1-2:x"] {
            assert!(parse_task_ids(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn malformed_squeue_output_is_an_error_naming_the_line() {
        let error = parse_squeue("116|1|RUNNING\n").unwrap_err();
        assert_eq!(error, "expected 5 fields separated by `|`, found `116|1|RUNNING`");
        assert!(parse_squeue("abc|1|RUNNING|None|0|\n").unwrap_err().contains("not a number"));
        assert_eq!(parse_squeue("\n").unwrap(), []);
    }

    #[test]
    fn sacct_lines_give_the_final_state_and_exit_code() {
        let states = task_states(&parse_sacct(SACCT_RUNNING).unwrap());
        assert_eq!(states[&(147, 1)], state(SlurmState::Failed, "", 3, 0));
        assert_eq!(states[&(147, 2)], state(SlurmState::Cancelled, "", 0, 0));
        assert_eq!(states[&(147, 7)].state, SlurmState::Pending);
        let entries = parse_sacct(SACCT_FINISHED).unwrap();
        assert_eq!(entries[2].state, state(SlurmState::Failed, "", 0, 9));
        assert_eq!((entries[3].job_id, entries[3].tasks.clone()), (148, None), "a whole array before it starts");
        assert_eq!(entries[4].state.state, SlurmState::Timeout);
        assert!(parse_sacct("147_1|FAILED\n").is_err());
    }

    #[test]
    fn states_are_read_in_full_and_short_forms() {
        assert_eq!(SlurmState::parse("OUT_OF_MEMORY"), SlurmState::OutOfMemory);
        assert_eq!(SlurmState::parse("CANCELLED by 1000"), SlurmState::Cancelled);
        assert_eq!(SlurmState::parse("CANCELLED+"), SlurmState::Cancelled);
        assert_eq!(SlurmState::parse("PD"), SlurmState::Pending);
        assert_eq!(SlurmState::parse("REQUEUE_HOLD"), SlurmState::Requeued);
        assert_eq!(SlurmState::parse("RESIZING"), SlurmState::Other("RESIZING".into()));
        assert!(!SlurmState::parse("RESIZING").is_finished(), "an unknown state is not taken for an end");
        assert!(!SlurmState::Requeued.is_finished());
        assert!(SlurmState::Preempted.is_finished());
    }

    #[test]
    fn each_way_a_task_can_end_says_what_happened_and_where_the_log_is() {
        let log = Path::new(".jobman/slurm/b1/147_3.log");
        let cases = [
            (
                SlurmState::Failed,
                3,
                0,
                JobStatus::Failed,
                "Slurm: FAILED, exit code 3 before the job's record was written",
            ),
            (SlurmState::Failed, 0, 9, JobStatus::Failed, "Slurm: FAILED, killed by signal 9 before"),
            (
                SlurmState::Timeout,
                0,
                15,
                JobStatus::TimedOut,
                "Slurm: TIMEOUT, the task reached its time limit of 01:00:00; raise `time` in [executor.slurm], or pack fewer jobs per task",
            ),
            (SlurmState::Cancelled, 0, 15, JobStatus::Interrupted, "Slurm: CANCELLED, cancelled (scancel"),
            (
                SlurmState::OutOfMemory,
                0,
                9,
                JobStatus::Failed,
                "Slurm: OUT_OF_MEMORY, the task ran out of memory; raise `mem`",
            ),
            (SlurmState::NodeFail, 0, 0, JobStatus::Failed, "Slurm: NODE_FAIL, its node failed; the next build"),
            (SlurmState::Preempted, 0, 0, JobStatus::Interrupted, "Slurm: PREEMPTED, preempted by another job"),
            (SlurmState::BootFail, 0, 0, JobStatus::Failed, "Slurm: BOOT_FAIL, its node failed to boot"),
            (SlurmState::Deadline, 0, 0, JobStatus::TimedOut, "Slurm: DEADLINE, the task reached its deadline"),
            (
                SlurmState::Completed,
                0,
                0,
                JobStatus::Failed,
                "Slurm: COMPLETED, the task ended without writing the job's record",
            ),
        ];
        for (slurm_state, code, signal, status, message) in cases {
            let limits = TaskLimits { time: Some("01:00:00".into()), mem: None, jobs_per_task: 4 };
            let verdict = verdict(Some(&state(slurm_state, "", code, signal)), log, &limits);
            assert_eq!(verdict.status, status, "{}", verdict.message);
            assert!(verdict.message.starts_with(message), "{}", verdict.message);
            assert!(verdict.message.ends_with("; log: .jobman/slurm/b1/147_3.log"), "{}", verdict.message);
        }
        let forgotten = verdict(None, log, &TaskLimits::default());
        assert_eq!(forgotten.status, JobStatus::Failed);
        assert!(
            forgotten.message.starts_with("left the Slurm queue without writing its record"),
            "{}",
            forgotten.message
        );
    }

    #[test]
    fn polls_back_off_up_to_the_interval_and_keep_the_pace_while_tasks_change() {
        let mut backoff = PollBackoff::new(Duration::from_secs(10));
        let waits: Vec<u128> = (0..8).map(|_| backoff.next(false).as_millis()).collect();
        assert_eq!(waits, [1000, 1500, 2250, 3375, 5062, 7593, 10000, 10000]);
        let mut backoff = PollBackoff::new(Duration::from_secs(10));
        let waits: Vec<u128> =
            [false, false, true, true, false].map(|changed| backoff.next(changed).as_millis()).to_vec();
        assert_eq!(waits, [1000, 1500, 2250, 2250, 2250]);
    }
}
