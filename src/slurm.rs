//! The Slurm executor's own logic, as pure functions: the batch script of one job array, how
//! pending jobs are grouped and split into arrays, the manifest an array task reads its job
//! from, what `squeue`, `sacct`, `sbatch` and `scontrol` print, what a Slurm state means for a
//! job, and how often to ask. The few functions that run Slurm's commands are in [`command`],
//! each a thin wrapper around one parser here.
//!
//! One build's submissions live in `.jobman/slurm/<build>/`:
//!
//! | file | what |
//! |---|---|
//! | `manifest-N` | the job folders of array N, one absolute path per line: task `i` runs line `i` (from 0) |
//! | `array-N.sh` | the batch script submitted for array N ([`batch_script`]) |
//! | `arrays.json` | the arrays submitted: Slurm job id, manifest, task count ([`SubmittedArray`]) |
//! | `JOBID_TASK.log` | each task's Slurm output: the setup prelude and jobman's own messages ([`task_log`]) |
//!
//! A job's own output goes to `stdout.log` and `stderr.log` in its folder, as with the local
//! executor, and the task writes the job's record itself: the compute node needs no lock.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::gc::shell_word;
use crate::store::JobStatus;

/// `MaxArraySize` when `scontrol show config` does not say: Slurm's default (indices 0–1000).
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

/// The longest wait between two polls of the queue when the Jobfile does not set `poll_interval`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// The shortest `poll_interval` allowed: Slurm's controller serves every user of the cluster.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The submitted arrays' file in a build's folder.
pub const ARRAYS_FILE: &str = "arrays.json";

/// Version of [`ARRAYS_FILE`]: a file of another version is not read.
const ARRAYS_FORMAT: u32 = 1;

/// The sbatch options jobman writes itself, which `extra_args` may not repeat.
const OWN_OPTIONS: &[(&str, &str)] = &[
    ("--array", "-a"),
    ("--output", "-o"),
    ("--error", "-e"),
    ("--open-mode", ""),
    ("--chdir", "-D"),
    ("--parsable", ""),
    ("--wait", "-W"),
    ("--wrap", ""),
];

/// The sbatch settings of one job, rendered and checked: jobs with equal settings share arrays.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct SlurmSettings {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// As `--time` reads it: `HH:MM:SS`, `D-HH:MM:SS`, minutes…
    pub time: Option<String>,
    /// `--cpus-per-task`.
    pub cpus: Option<u32>,
    /// `--mem`: `4G`, `500M`, megabytes.
    pub mem: Option<String>,
    /// `--gres=gpu:N`; none when 0.
    pub gpus: Option<u32>,
    /// Further sbatch options, one `#SBATCH` line each.
    pub extra_args: Vec<String>,
    /// Shell lines run before the job (`module load …`).
    pub setup: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Checking settings

/// A Slurm time limit, as written when Slurm reads it (`"90"` minutes, `"MM:SS"`, `"HH:MM:SS"`,
/// `"D-HH"`, `"D-HH:MM"`, `"D-HH:MM:SS"`, `"UNLIMITED"`), or a duration such as `"90m"` or
/// `"2h"` (as `[job] timeout` takes), converted to `HH:MM:SS` or `D-HH:MM:SS`.
pub fn time_limit(text: &str) -> Result<String, String> {
    let text = text.trim();
    if is_slurm_time(text) {
        return Ok(text.to_string());
    }
    let expected = "expected a Slurm time limit such as \"00:10:00\" (HH:MM:SS), \"2-00:00:00\" (D-HH:MM:SS) or \"90\" (minutes), or a duration such as \"90m\" or \"2h\"";
    let duration = humantime::parse_duration(text).map_err(|_| expected.to_string())?;
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    if seconds == 0 {
        return Err("a time limit of zero is no time at all; expected e.g. \"00:10:00\"".into());
    }
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let clock = format!("{:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    Ok(if days > 0 { format!("{days}-{clock}") } else { clock })
}

fn is_slurm_time(text: &str) -> bool {
    if text.eq_ignore_ascii_case("UNLIMITED") || text.eq_ignore_ascii_case("INFINITE") {
        return true;
    }
    let number = |part: &str| !part.is_empty() && part.len() <= 9 && part.bytes().all(|b| b.is_ascii_digit());
    let (days, clock) = match text.split_once('-') {
        Some((days, clock)) => (Some(days), clock),
        None => (None, text),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    days.is_none_or(number) && parts.iter().all(|p| number(p)) && parts.len() <= 3
}

/// An amount of memory as `--mem` reads it: megabytes, or a number with K, M, G or T.
pub fn memory(text: &str) -> Result<String, String> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let unit = text[digits..].to_ascii_uppercase();
    if digits > 0 && ["", "K", "M", "G", "T", "KB", "MB", "GB", "TB"].contains(&unit.as_str()) {
        return Ok(text.to_string());
    }
    Err(
        "expected an amount of memory such as \"4G\", \"500M\" or \"16000\" (megabytes): a whole number, then K, M, G or T"
            .into(),
    )
}

/// A partition, account or QoS name (a comma-separated list for partitions).
pub fn slurm_name(text: &str) -> Result<String, String> {
    if text.is_empty() || text.chars().any(|c| c.is_whitespace() || "\"'\\#".contains(c)) {
        return Err("expected a name without spaces or quotes, e.g. \"gpu\"".into());
    }
    Ok(text.to_string())
}

/// One further sbatch option with its value, e.g. `--constraint=a100`; not one jobman writes.
pub fn extra_arg(text: &str) -> Result<String, String> {
    let text = text.trim();
    if !text.starts_with('-') || text.contains('\n') {
        return Err("expected one sbatch option with its value, e.g. \"--constraint=a100\"".into());
    }
    for (long, short) in OWN_OPTIONS {
        let is = |option: &str| {
            !option.is_empty()
                && text.strip_prefix(option).is_some_and(|rest| {
                    rest.is_empty() || rest.starts_with(['=', ' ']) || (option.len() == 2 && !rest.starts_with('-'))
                })
        };
        if is(long) || is(short) {
            return Err(format!(
                "jobman writes `{long}` itself: the array, its logs and its throttle (`max_parallel`)"
            ));
        }
    }
    Ok(text.to_string())
}

// ---------------------------------------------------------------------------------------------
// The batch script

/// One job array to write a batch script for.
#[derive(Debug, Clone)]
pub struct ArrayScript<'a> {
    /// What `squeue` shows, e.g. `jobman-mnist`.
    pub job_name: &'a str,
    pub settings: &'a SlurmSettings,
    /// Task indices are `0..tasks`.
    pub tasks: usize,
    /// At most this many tasks run at once (`--array=…%N`).
    pub max_parallel: Option<u32>,
    /// Task `i` runs manifest lines `i*k` to `i*k + k - 1`, in turn.
    pub jobs_per_task: usize,
    /// The build's folder: Slurm writes each task's log here.
    pub build_dir: &'a Path,
    /// The job folders, line `i` for task `i` ([`manifest_text`]).
    pub manifest: &'a Path,
    /// The jobman binary the task runs (`jobman __run-task MANIFEST TASK`).
    pub jobman: &'a Path,
}

/// The sbatch script of one array: `#SBATCH` lines, the setup prelude (a failing line stops the
/// task before its job starts), then `jobman __run-task MANIFEST $SLURM_ARRAY_TASK_ID`, which
/// runs line `$SLURM_ARRAY_TASK_ID` of the manifest in its folder and writes its record.
/// Fails only for paths that an `#SBATCH` line cannot hold (a `"` or a line break).
pub fn batch_script(array: &ArrayScript<'_>) -> Result<String, String> {
    if array.tasks == 0 {
        return Err("an array needs at least one task".into());
    }
    let settings = array.settings;
    let mut range = if array.tasks == 1 { "0".to_string() } else { format!("0-{}", array.tasks - 1) };
    if let Some(n) = array.max_parallel {
        range.push_str(&format!("%{n}"));
    }
    let log = array.build_dir.join("%A_%a.log");
    let mut options = vec![
        format!("--job-name={}", job_name(array.job_name)),
        format!("--array={range}"),
        format!("--output={}", sbatch_word(&log)?),
        "--open-mode=append".to_string(),
        // Not wherever `jobman build` happened to run, which a compute node may not see.
        format!("--chdir={}", sbatch_word(array.build_dir)?),
    ];
    let mut option = |name: &str, value: &Option<String>| {
        if let Some(value) = value {
            options.push(format!("--{name}={value}"));
        }
    };
    option("partition", &settings.partition);
    option("account", &settings.account);
    option("qos", &settings.qos);
    option("time", &settings.time);
    option("cpus-per-task", &settings.cpus.map(|n| n.to_string()));
    option("mem", &settings.mem);
    option("gres", &settings.gpus.filter(|&n| n > 0).map(|n| format!("gpu:{n}")));
    options.extend(settings.extra_args.iter().cloned());

    let mut script = String::from("#!/bin/bash\n");
    for option in options {
        script.push_str(&format!("#SBATCH {option}\n"));
    }
    script.push_str(
        "\n# Array task i runs the job whose folder is line i (from 0) of the manifest; jobman runs\n\
         # it there and writes its record.\n",
    );
    if let Some(setup) = settings.setup.as_deref().filter(|s| !s.trim().is_empty()) {
        script.push_str("set -e  # a failing setup line stops the task before its job starts\n");
        script.push_str(setup.trim_end_matches('\n'));
        script.push_str("\nset +e\n");
    }
    let (jobman, manifest) = (path_text(array.jobman)?, path_text(array.manifest)?);
    let packed =
        if array.jobs_per_task > 1 { format!(" --jobs-per-task {}", array.jobs_per_task) } else { String::new() };
    script.push_str(&format!(
        "exec {} __run-task {} \"$SLURM_ARRAY_TASK_ID\"{packed}\n",
        shell_word(&jobman),
        shell_word(&manifest)
    ));
    Ok(script)
}

/// A job name Slurm shows as given: letters, digits, `.`, `_`, `-`; anything else becomes `_`.
fn job_name(name: &str) -> String {
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    if name.is_empty() { "jobman".into() } else { name }
}

fn path_text(path: &Path) -> Result<String, String> {
    let text = path.to_str().ok_or_else(|| format!("{} is not valid UTF-8", path.display()))?;
    if text.contains('\n') {
        return Err(format!("the path {text:?} holds a line break"));
    }
    Ok(text.to_string())
}

/// A path as one `#SBATCH` argument: sbatch splits at spaces unless the word is double-quoted.
fn sbatch_word(path: &Path) -> Result<String, String> {
    let text = path_text(path)?;
    if text.contains('"') {
        return Err(format!("{text} holds a `\"`, which an #SBATCH line cannot carry; move the project"));
    }
    Ok(if text.contains(char::is_whitespace) { format!("\"{text}\"") } else { text })
}

// ---------------------------------------------------------------------------------------------
// Arrays

/// One array to submit: the settings its tasks share and the jobs it runs, task `i` running
/// `jobs[i]` (an index into the caller's list of pending jobs).
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayPlan {
    pub settings: SlurmSettings,
    pub jobs: Vec<usize>,
}

/// Groups pending jobs by their settings (groups in order of their first job, jobs in order) and
/// splits each group into arrays of at most `max_array_size` tasks: the cluster's
/// `MaxArraySize` allows task indices up to `MaxArraySize - 1`.
pub fn plan_arrays(settings: &[SlurmSettings], max_array_size: usize) -> Vec<ArrayPlan> {
    let mut groups: Vec<ArrayPlan> = Vec::new();
    let mut group_of: HashMap<&SlurmSettings, usize> = HashMap::new();
    for (job, s) in settings.iter().enumerate() {
        let group = *group_of.entry(s).or_insert_with(|| {
            groups.push(ArrayPlan { settings: s.clone(), jobs: Vec::new() });
            groups.len() - 1
        });
        groups[group].jobs.push(job);
    }
    let size = max_array_size.max(1);
    groups
        .into_iter()
        .flat_map(|group| {
            let settings = group.settings;
            group
                .jobs
                .chunks(size)
                .map(|jobs| ArrayPlan { settings: settings.clone(), jobs: jobs.to_vec() })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `MaxArraySize` from `scontrol show config`.
pub fn parse_max_array_size(config: &str) -> Option<usize> {
    config.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        (name.trim() == "MaxArraySize").then(|| value.trim().parse().ok())?
    })
}

/// The job id `sbatch --parsable` prints: `ID` or `ID;CLUSTER`.
pub fn parse_sbatch_id(output: &str) -> Option<u64> {
    output.trim().split(';').next()?.trim().parse().ok()
}

// ---------------------------------------------------------------------------------------------
// A build's files

/// The manifest of array `n`.
pub fn manifest_path(build_dir: &Path, n: usize) -> PathBuf {
    build_dir.join(format!("manifest-{n}"))
}

/// The batch script of array `n`.
pub fn script_path(build_dir: &Path, n: usize) -> PathBuf {
    build_dir.join(format!("array-{n}.sh"))
}

/// Where Slurm writes the output of task `task` of array job `job_id` ([`batch_script`]'s
/// `--output`).
pub fn task_log(build_dir: &Path, job_id: u64, task: u32) -> PathBuf {
    build_dir.join(format!("{job_id}_{task}.log"))
}

/// A manifest's bytes: each job folder's absolute path on its own line.
pub fn manifest_text(job_dirs: &[PathBuf]) -> Result<Vec<u8>, String> {
    use std::os::unix::ffi::OsStrExt;
    let mut text = Vec::new();
    for dir in job_dirs {
        let bytes = dir.as_os_str().as_bytes();
        if !dir.is_absolute() || bytes.contains(&b'\n') {
            return Err(format!("a manifest holds absolute paths on one line each, not {dir:?}"));
        }
        text.extend_from_slice(bytes);
        text.push(b'\n');
    }
    Ok(text)
}

/// Writes a manifest atomically (temp + rename), creating the build's folder.
pub fn write_manifest(path: &Path, job_dirs: &[PathBuf]) -> io::Result<()> {
    let text = manifest_text(job_dirs).map_err(io::Error::other)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    crate::store::write_atomic(path, &text)
}

/// The job folder of task `task`: line `task` (from 0) of the manifest.
pub fn manifest_entry(manifest: &[u8], task: usize) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let line = manifest.split(|&b| b == b'\n').nth(task).filter(|line| !line.is_empty())?;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(line)))
}

/// What `jobman __run-task MANIFEST TASK` reads: the job folder of one task, or an error saying
/// which file and line were expected.
pub fn read_manifest_entry(manifest: &Path, task: &str) -> anyhow::Result<PathBuf> {
    let index: usize = task
        .parse()
        .map_err(|_| anyhow::anyhow!("the array task id `{task}` is not a number (is SLURM_ARRAY_TASK_ID set?)"))?;
    let bytes =
        std::fs::read(manifest).map_err(|e| anyhow::anyhow!("cannot read the manifest {}: {e}", manifest.display()))?;
    manifest_entry(&bytes, index).ok_or_else(|| {
        let lines = bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
        anyhow::anyhow!("the manifest {} has {lines} lines; task {index} has none", manifest.display())
    })
}

/// An array this build submitted, so that a later build or `jobman status` finds jobs that are
/// still queued or running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmittedArray {
    /// Slurm's id of the array (`%A`).
    pub job_id: u64,
    /// The manifest's file name in the build's folder.
    pub manifest: String,
    pub tasks: usize,
    /// Jobs per task: task `i` runs manifest lines `i*k` to `i*k + k - 1`.
    #[serde(default = "one")]
    pub jobs_per_task: usize,
}

fn one() -> usize {
    1
}

#[derive(Serialize, Deserialize)]
struct ArraysFile {
    format: u32,
    arrays: Vec<SubmittedArray>,
}

/// Writes a build's [`ARRAYS_FILE`] atomically; call it after each `sbatch`, with all arrays so far.
pub fn write_submitted(build_dir: &Path, arrays: &[SubmittedArray]) -> io::Result<()> {
    let file = ArraysFile { format: ARRAYS_FORMAT, arrays: arrays.to_vec() };
    let bytes = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
    crate::store::write_atomic(&build_dir.join(ARRAYS_FILE), &bytes)
}

/// The arrays a build submitted; none when the file is missing, torn, or of another version.
pub fn read_submitted(build_dir: &Path) -> Vec<SubmittedArray> {
    std::fs::read(build_dir.join(ARRAYS_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<ArraysFile>(&bytes).ok())
        .filter(|file| file.format == ARRAYS_FORMAT)
        .map(|file| file.arrays)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The queue

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
}

/// The status and message of a job whose task ended, or left the queue, without a record.
/// `state` is `None` when Slurm no longer knows the task: cancelled while pending, or forgotten
/// `MinJobAge` seconds after it ended, with no `sacct` to ask.
pub fn verdict(state: Option<&TaskState>, log: &Path) -> Verdict {
    let Some(TaskState { state, exit, .. }) = state else {
        return Verdict {
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
            (JobStatus::TimedOut, "the task reached its time limit; raise `time` in [executor.slurm]".to_string())
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
    Verdict { status, message: format!("Slurm: {state}, {meaning}; log: {}", log.display()) }
}

// ---------------------------------------------------------------------------------------------
// Polling

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

/// The thin layer that runs Slurm's commands; everything it reads goes through the parsers above.
pub mod command {
    use std::path::Path;
    use std::process::{Command, Output};

    use anyhow::{Context, bail};

    use super::{DEFAULT_MAX_ARRAY_SIZE, QueueEntry};

    fn run(program: &str, args: &[String]) -> anyhow::Result<Output> {
        Command::new(program)
            // Pending tasks print as one range however long it gets, instead of cut at 64 bytes.
            .env("SLURM_BITSTR_LEN", "0")
            .args(args)
            .output()
            .with_context(|| {
                format!(
                    "cannot run `{program}`; the Slurm executor needs Slurm's commands on PATH: run jobman on the cluster's login node, or build with `--executor local`"
                )
            })
    }

    fn stdout(program: &str, args: &[String]) -> anyhow::Result<String> {
        let output = run(program, args)?;
        if !output.status.success() {
            bail!("`{program} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Whether Slurm's controller answers (`scontrol ping`).
    pub fn cluster_answers() -> bool {
        run("scontrol", &["ping".into()])
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("UP"))
    }

    /// The cluster's `MaxArraySize`, or Slurm's default when it cannot be read.
    pub fn max_array_size() -> usize {
        stdout("scontrol", &["show".into(), "config".into()])
            .ok()
            .and_then(|config| super::parse_max_array_size(&config))
            .unwrap_or(DEFAULT_MAX_ARRAY_SIZE)
    }

    /// Submits a batch script; returns the array's job id.
    pub fn submit(script: &Path) -> anyhow::Result<u64> {
        let args = ["--parsable".to_string(), script.display().to_string()];
        let out = stdout("sbatch", &args)?;
        super::parse_sbatch_id(&out).with_context(|| format!("sbatch printed `{}` instead of a job id", out.trim()))
    }

    /// The state of every task of these arrays, in one `squeue` call. Arrays Slurm has forgotten
    /// are absent (squeue fails when asked for one forgotten job alone: that is no entry).
    pub fn queue(job_ids: &[u64]) -> anyhow::Result<Vec<QueueEntry>> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        let args = super::squeue_args(job_ids);
        let output = run("squeue", &args)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            if stderr.contains("Invalid job id") {
                return Ok(Vec::new());
            }
            bail!("`squeue {}` failed: {}", args.join(" "), stderr.trim());
        }
        super::parse_squeue(&String::from_utf8_lossy(&output.stdout)).map_err(|e| anyhow::anyhow!("squeue: {e}"))
    }

    /// The final state of these arrays' tasks from Slurm's accounting, in one `sacct` call;
    /// `None` when the cluster keeps no accounting (`sacct` then says it is disabled).
    pub fn accounting(job_ids: &[u64]) -> anyhow::Result<Option<Vec<QueueEntry>>> {
        let args = super::sacct_args(job_ids);
        let output = run("sacct", &args)?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.contains("accounting storage is disabled") {
                return Ok(None);
            }
            bail!("`sacct {}` failed: {}", args.join(" "), stderr.trim());
        }
        super::parse_sacct(&String::from_utf8_lossy(&output.stdout))
            .map(Some)
            .map_err(|e| anyhow::anyhow!("sacct: {e}"))
    }

    /// Cancels these arrays, all their tasks (`scancel`).
    pub fn cancel(job_ids: &[u64]) -> anyhow::Result<()> {
        if job_ids.is_empty() {
            return Ok(());
        }
        stdout("scancel", &job_ids.iter().map(u64::to_string).collect::<Vec<_>>()).map(drop)
    }
}

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

    fn script(settings: &SlurmSettings, tasks: usize, max_parallel: Option<u32>) -> String {
        batch_script(&ArrayScript {
            job_name: "jobman-mnist",
            settings,
            tasks,
            max_parallel,
            jobs_per_task: 1,
            build_dir: Path::new("/home/ada/mnist/.jobman/slurm/b1"),
            manifest: Path::new("/home/ada/mnist/.jobman/slurm/b1/manifest-0"),
            jobman: Path::new("/home/ada/.cargo/bin/jobman"),
        })
        .unwrap()
    }

    #[test]
    fn the_script_of_an_array_without_settings_runs_each_task_through_jobman() {
        assert_eq!(
            script(&SlurmSettings::default(), 3, None),
            r#"#!/bin/bash
#SBATCH --job-name=jobman-mnist
#SBATCH --array=0-2
#SBATCH --output=/home/ada/mnist/.jobman/slurm/b1/%A_%a.log
#SBATCH --open-mode=append
#SBATCH --chdir=/home/ada/mnist/.jobman/slurm/b1

# Array task i runs the job whose folder is line i (from 0) of the manifest; jobman runs
# it there and writes its record.
exec /home/ada/.cargo/bin/jobman __run-task /home/ada/mnist/.jobman/slurm/b1/manifest-0 "$SLURM_ARRAY_TASK_ID"
"#
        );
    }

    #[test]
    fn the_script_carries_every_setting_the_throttle_and_the_setup() {
        let settings = SlurmSettings {
            partition: Some("gpu".into()),
            account: Some("lab".into()),
            qos: Some("high".into()),
            time: Some("04:00:00".into()),
            cpus: Some(8),
            mem: Some("32G".into()),
            gpus: Some(2),
            extra_args: vec!["--constraint=a100".into(), "--exclusive".into()],
            setup: Some("module load cuda/12.1\nsource ~/venv/bin/activate\n".into()),
        };
        assert_eq!(
            script(&settings, 1000, Some(16)),
            r#"#!/bin/bash
#SBATCH --job-name=jobman-mnist
#SBATCH --array=0-999%16
#SBATCH --output=/home/ada/mnist/.jobman/slurm/b1/%A_%a.log
#SBATCH --open-mode=append
#SBATCH --chdir=/home/ada/mnist/.jobman/slurm/b1
#SBATCH --partition=gpu
#SBATCH --account=lab
#SBATCH --qos=high
#SBATCH --time=04:00:00
#SBATCH --cpus-per-task=8
#SBATCH --mem=32G
#SBATCH --gres=gpu:2
#SBATCH --constraint=a100
#SBATCH --exclusive

# Array task i runs the job whose folder is line i (from 0) of the manifest; jobman runs
# it there and writes its record.
set -e  # a failing setup line stops the task before its job starts
module load cuda/12.1
source ~/venv/bin/activate
set +e
exec /home/ada/.cargo/bin/jobman __run-task /home/ada/mnist/.jobman/slurm/b1/manifest-0 "$SLURM_ARRAY_TASK_ID"
"#
        );
    }

    #[test]
    fn paths_with_spaces_are_quoted_for_sbatch_and_for_the_shell() {
        let text = batch_script(&ArrayScript {
            job_name: "my project!",
            settings: &SlurmSettings { gpus: Some(0), ..SlurmSettings::default() },
            tasks: 1,
            max_parallel: None,
            jobs_per_task: 1,
            build_dir: Path::new("/data/my runs/.jobman/slurm/b1"),
            manifest: Path::new("/data/my runs/.jobman/slurm/b1/manifest-0"),
            jobman: Path::new("/opt/it's/jobman"),
        })
        .unwrap();
        assert!(text.contains("#SBATCH --job-name=my_project_\n"), "{text}");
        assert!(text.contains("#SBATCH --array=0\n"), "{text}");
        assert!(text.contains("#SBATCH --output=\"/data/my runs/.jobman/slurm/b1/%A_%a.log\"\n"), "{text}");
        assert!(text.contains("#SBATCH --chdir=\"/data/my runs/.jobman/slurm/b1\"\n"), "{text}");
        assert!(!text.contains("--gres"), "no GPUs asked for: {text}");
        assert!(
            text.ends_with("exec '/opt/it'\\''s/jobman' __run-task '/data/my runs/.jobman/slurm/b1/manifest-0' \"$SLURM_ARRAY_TASK_ID\"\n"),
            "{text}"
        );
        let quoted = ArrayScript {
            job_name: "x",
            settings: &SlurmSettings::default(),
            tasks: 1,
            max_parallel: None,
            jobs_per_task: 1,
            build_dir: Path::new("/data/\"q\""),
            manifest: Path::new("/m"),
            jobman: Path::new("/j"),
        };
        assert!(batch_script(&quoted).unwrap_err().contains("holds a `\"`"));
    }

    #[test]
    fn time_limits_are_kept_as_slurm_reads_them_or_converted_from_durations() {
        for kept in ["10", "10:00", "1:00:00", "48:00:00", "1-0", "1-2:3", "1-02:03:04", "UNLIMITED"] {
            assert_eq!(time_limit(kept).as_deref(), Ok(kept));
        }
        assert_eq!(time_limit("90s").as_deref(), Ok("00:01:30"));
        assert_eq!(time_limit("1h 30m").as_deref(), Ok("01:30:00"));
        assert_eq!(time_limit("3days 1s").as_deref(), Ok("3-00:00:01"));
        for wrong in ["", "-", "1:2:3:4", "1-1:2:3:4", "x", "10 parsecs", "0s", "1.5"] {
            assert!(time_limit(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn memory_takes_the_units_sbatch_takes() {
        for right in ["4G", "4g", "4GB", "4000", "4000M", "1T", "0", "512K"] {
            assert_eq!(memory(right).as_deref(), Ok(right));
        }
        for wrong in ["4.5G", "G", "4 GB", "4P", "-1", ""] {
            assert!(memory(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn extra_args_may_not_repeat_what_jobman_writes() {
        for own in ["--array=1-3", "-a 1-3", "-a1-3", "--output=x", "-o x", "--error", "-e", "--wait", "--wrap=ls"] {
            assert!(extra_arg(own).is_err(), "{own}");
        }
        for fine in ["--exclusive", "-A lab", "--export=ALL", "--exclude=node1", "-C a100", "--mail-type=END"] {
            assert_eq!(extra_arg(fine).as_deref(), Ok(fine));
        }
    }

    #[test]
    fn jobs_with_equal_settings_share_arrays_split_at_the_cluster_limit() {
        let cpu = SlurmSettings { partition: Some("cpu".into()), ..SlurmSettings::default() };
        let gpu = SlurmSettings { partition: Some("gpu".into()), gpus: Some(1), ..SlurmSettings::default() };
        let jobs = [cpu.clone(), gpu.clone(), cpu.clone(), cpu.clone(), gpu.clone(), cpu.clone(), cpu.clone()];
        let arrays = plan_arrays(&jobs, 3);
        let shape: Vec<_> = arrays.iter().map(|a| (a.settings.partition.as_deref().unwrap(), a.jobs.clone())).collect();
        assert_eq!(shape, [("cpu", vec![0, 2, 3]), ("cpu", vec![5, 6]), ("gpu", vec![1, 4])]);
        assert_eq!(plan_arrays(&[], 1001), []);
        assert_eq!(
            plan_arrays(&vec![cpu; 2003], 1001).iter().map(|a| a.jobs.len()).collect::<Vec<_>>(),
            [1001, 1001, 1]
        );
    }

    #[test]
    fn the_array_limit_and_the_job_id_are_read_from_slurms_output() {
        let config = "Configuration data as of 2026-11-26T03:40:01\nMailProg                = /bin/true\nMaxArraySize            = 1001\nMaxDBDMsgs              = 20008\n";
        assert_eq!(parse_max_array_size(config), Some(1001));
        assert_eq!(parse_max_array_size("MaxJobCount = 10000\n"), None);
        assert_eq!(parse_sbatch_id("145\n"), Some(145));
        assert_eq!(parse_sbatch_id("145;cluster2\n"), Some(145));
        assert_eq!(parse_sbatch_id("sbatch: error: Batch job submission failed"), None);
    }

    #[test]
    fn a_manifest_holds_one_absolute_job_folder_per_line() {
        let dirs = [PathBuf::from("/w/scratch_space/a1b2c3d4e5f6"), PathBuf::from("/w/scratch space/0123456789ab")];
        let text = manifest_text(&dirs).unwrap();
        assert_eq!(text, b"/w/scratch_space/a1b2c3d4e5f6\n/w/scratch space/0123456789ab\n");
        assert_eq!(manifest_entry(&text, 1), Some(dirs[1].clone()));
        assert_eq!(manifest_entry(&text, 2), None);
        assert!(manifest_text(&[PathBuf::from("relative/dir")]).is_err());
        assert!(manifest_text(&[PathBuf::from("/a\nb")]).is_err());
    }

    #[test]
    fn a_manifest_is_written_whole_and_read_back_by_task() {
        let dir = tempfile::tempdir().unwrap();
        let build = dir.path().join("slurm/b1");
        let manifest = manifest_path(&build, 0);
        let dirs = [PathBuf::from("/w/a"), PathBuf::from("/w/b")];
        write_manifest(&manifest, &dirs).unwrap();
        assert_eq!(read_manifest_entry(&manifest, "1").unwrap(), dirs[1]);
        let error = read_manifest_entry(&manifest, "2").unwrap_err().to_string();
        assert!(error.ends_with("manifest-0 has 2 lines; task 2 has none"), "{error}");
        let error = read_manifest_entry(&manifest, "").unwrap_err().to_string();
        assert!(error.contains("is SLURM_ARRAY_TASK_ID set?"), "{error}");
        let leftovers: Vec<_> = std::fs::read_dir(&build).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, ["manifest-0"], "no temporary file is left");
    }

    #[test]
    fn submitted_arrays_round_trip_and_another_version_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_submitted(dir.path()), []);
        let arrays = [SubmittedArray { job_id: 145, manifest: "manifest-0".into(), tasks: 3, jobs_per_task: 1 }];
        write_submitted(dir.path(), &arrays).unwrap();
        assert_eq!(read_submitted(dir.path()), arrays);
        std::fs::write(dir.path().join(ARRAYS_FILE), r#"{"format": 2, "arrays": []}"#).unwrap();
        assert_eq!(read_submitted(dir.path()), []);
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
                "Slurm: TIMEOUT, the task reached its time limit; raise `time`",
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
            let verdict = verdict(Some(&state(slurm_state, "", code, signal)), log);
            assert_eq!(verdict.status, status, "{}", verdict.message);
            assert!(verdict.message.starts_with(message), "{}", verdict.message);
            assert!(verdict.message.ends_with("; log: .jobman/slurm/b1/147_3.log"), "{}", verdict.message);
        }
        let forgotten = verdict(None, log);
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
