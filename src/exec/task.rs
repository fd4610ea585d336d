//! One run of one job in its prepared folder, wherever it runs: the command, the results check,
//! and the record, written last. The local pool calls [`run`] on a worker thread; a Slurm array
//! task calls [`run_task_main`] on a compute node (`jobman __run-task MANIFEST N`), which reads
//! the launch file the submitting build wrote into the folder, so the node renders nothing and
//! needs neither the Jobfile nor the workspace lock.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::exec::shared::Publisher;
use crate::exec::supervisor::{self, Launch, ProcessEnd, Supervisor};
use crate::key::KeyIngredients;
use crate::store::{self, FileStamp, JobRecord, JobStatus, Provenance, RECORD_FORMAT, STDERR_FILE, STDOUT_FILE, Usage};

/// The launch file a cluster task reads.
pub const LAUNCH_FILE: &str = "jobman-launch.json";
pub const LAUNCH_FORMAT: u32 = 1;

/// Everything needed to run a prepared job and write its record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskSpec {
    pub format: u32,
    pub key: String,
    pub id: String,
    pub name: String,
    pub index: usize,
    /// Rendered with the job's real id and folder.
    pub command: String,
    pub timeout_secs: Option<f64>,
    /// Declared results file: the job is done only if it exists and parses.
    pub results: Option<String>,
    /// Declared output files whose content hashes go into the record (results, series, outputs).
    pub outputs: Vec<String>,
    /// Files the job must have written to be done (`[job] outputs`).
    #[serde(default)]
    pub required: Vec<String>,
    pub ingredients: KeyIngredients,
    /// How many times a failed or timed-out run is tried again (`[job] retries`).
    #[serde(default)]
    pub retries: u32,
    /// The submitting build's, written into the record.
    #[serde(default)]
    pub provenance: Provenance,
    /// The shared cache a done job is published to (`[cache] dirs`, `JOBMAN_CACHE`: the first),
    /// for `jobman __run-task` on a Slurm node; a local build's pool has its own `Publisher`.
    #[serde(default)]
    pub publish_to: Option<PathBuf>,
}

/// How a run ended, for the build's summary.
pub struct Ran {
    pub record: JobRecord,
    /// The stamp of the record as written.
    pub stamp: FileStamp,
    pub seconds: f64,
}

/// Runs the job of `spec` in `dir` (already prepared) and writes its record, after trying it up
/// to `spec.retries` more times when it fails or times out; `retrying` hears of each failed
/// attempt that is tried again (its record, never written). Returns the final record; `None`
/// when the run was interrupted and `record_interrupted` is false; or why no record could be
/// written.
///
/// Each attempt runs in the same folder, which is not reset: a job may resume from what a
/// failed attempt left. Its logs and declared outputs are moved aside first (`stdout.log` →
/// `stdout.attempt-1.log`), so every attempt's logs are kept and a results file is only ever
/// read from the attempt that wrote it. A job stopped by jobman's own Ctrl-C, or after
/// `--fail-fast` stopped the build, is not tried again.
///
/// `attempt` is the first attempt's number: 1 in a fresh folder, more where the build kept aside
/// attempts that Slurm stopped (a time limit, a node failure).
pub fn run(
    spec: &TaskSpec,
    dir: &Path,
    supervisor: &Supervisor,
    extra_env: Vec<(&'static str, String)>,
    mut attempt: u32,
    record_interrupted: bool,
    retrying: &dyn Fn(&JobRecord),
) -> Result<Option<Ran>, String> {
    loop {
        let started = SystemTime::now();
        let clock = Instant::now();
        let (outcome, usage) = run_once(spec, dir, supervisor, &extra_env, attempt);
        let seconds = clock.elapsed().as_secs_f64();
        // On a cluster node, Slurm's SIGTERM (time limit, scancel) reaches the job and this
        // process in either order, and its SIGKILL (memory) reaches the job alone: a job that dies
        // of one of them was stopped by Slurm, which says why better than a record written here.
        let stopped = matches!(outcome, ProcessEnd::Signaled(s) if s == libc::SIGTERM || s == libc::SIGKILL);
        let cut_off = outcome == ProcessEnd::Interrupted
            || stopped
            || supervisor.interrupted() && outcome != ProcessEnd::Exited(0);
        if cut_off && !record_interrupted {
            return Ok(None);
        }
        let record = JobRecord { usage, ..record(spec, dir, &outcome, started, seconds, attempt) };
        let failed = matches!(record.status, JobStatus::Failed | JobStatus::TimedOut);
        if failed && attempt <= spec.retries && supervisor.accepting() {
            retrying(&record);
            keep_attempt(spec, dir, attempt)?;
            attempt += 1;
            continue;
        }
        let stamp = store::write_record(dir, &record).map_err(|e| format!("cannot write its record: {e}"))?;
        return Ok(Some(Ran { record, stamp, seconds }));
    }
}

/// One run of the command, with fresh logs.
fn run_once(
    spec: &TaskSpec,
    dir: &Path,
    supervisor: &Supervisor,
    extra_env: &[(&'static str, String)],
    attempt: u32,
) -> (ProcessEnd, Option<Usage>) {
    let mut env = vec![
        ("JOBMAN_JOB_ID", spec.id.clone()),
        ("JOBMAN_JOB_DIR", dir.display().to_string()),
        ("JOBMAN_JOB_INDEX", spec.index.to_string()),
        ("JOBMAN_JOB_NAME", spec.name.clone()),
        ("JOBMAN_ATTEMPT", attempt.to_string()),
    ];
    env.extend(extra_env.iter().cloned());
    supervisor.run(Launch {
        command: &spec.command,
        dir,
        env,
        stdout: dir.join(STDOUT_FILE),
        stderr: dir.join(STDERR_FILE),
        timeout: spec.timeout_secs.map(Duration::from_secs_f64),
    })
}

/// Moves the logs and declared outputs of failed attempt `attempt` aside, to their
/// [`attempt_name`]s. The kept stdout exists even when the attempt wrote none, so that the
/// attempt counts ([`attempts_in`]).
pub fn keep_attempt(spec: &TaskSpec, dir: &Path, attempt: u32) -> Result<(), String> {
    for name in [STDOUT_FILE, STDERR_FILE].into_iter().chain(spec.outputs.iter().map(String::as_str)) {
        let from = dir.join(name);
        if !from.exists() {
            continue;
        }
        let to = dir.join(attempt_name(name, attempt));
        fs::rename(&from, &to)
            .map_err(|e| format!("cannot keep attempt {attempt}'s {name} as {}: {e}", to.display()))?;
    }
    let counted = dir.join(attempt_name(STDOUT_FILE, attempt));
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&counted)
        .map(drop)
        .map_err(|e| format!("cannot keep attempt {attempt} in {}: {e}", counted.display()))
}

/// Keeps attempt `attempt`, which Slurm stopped before the job's record was written (or before
/// the job started: a failing setup line), aside as [`keep_attempt`] does, with `why` at the end
/// of its kept stderr.
pub fn keep_stopped_attempt(spec: &TaskSpec, dir: &Path, attempt: u32, why: &str) -> Result<(), String> {
    use std::io::Write as _;
    keep_attempt(spec, dir, attempt)?;
    let kept = |name: &str| dir.join(attempt_name(name, attempt));
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(kept(STDERR_FILE))
        .and_then(|mut file| writeln!(file, "jobman: {why}"))
        .map_err(|e| format!("cannot keep attempt {attempt} in {}: {e}", dir.display()))
}

/// How many times the job ran in its folder: each failed attempt kept aside, and the last one.
/// What a record written for the job by someone else (Slurm's verdict) counts.
pub fn attempts_in(dir: &Path) -> u32 {
    (1..u32::MAX).find(|&k| !dir.join(attempt_name(STDOUT_FILE, k)).exists()).unwrap_or(1)
}

/// The name a file of failed attempt `attempt` is kept under: `stdout.log` →
/// `stdout.attempt-1.log`, `out/results.json` → `out/results.attempt-1.json`, `log` →
/// `log.attempt-1`.
pub fn attempt_name(name: &str, attempt: u32) -> String {
    let (folder, file) = name.rsplit_once('/').map_or(("", name), |(folder, file)| (folder, file));
    let file = match file.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => format!("{stem}.attempt-{attempt}.{extension}"),
        _ => format!("{file}.attempt-{attempt}"),
    };
    if folder.is_empty() { file } else { format!("{folder}/{file}") }
}

/// The record of a run that ended with `outcome`.
fn record(
    spec: &TaskSpec,
    dir: &Path,
    outcome: &ProcessEnd,
    started: SystemTime,
    seconds: f64,
    attempts: u32,
) -> JobRecord {
    let (status, exit_code, signal, message) = match outcome {
        ProcessEnd::Exited(0) => match check_results(spec, dir).and_then(|()| check_required(spec, dir)) {
            Ok(()) => (JobStatus::Done, Some(0), None, None),
            Err(message) => (JobStatus::Failed, Some(0), None, Some(message)),
        },
        // The shell's own "not found", which names the command, is in stderr.log.
        ProcessEnd::Exited(127) => (JobStatus::Failed, Some(127), None, Some(shell_not_found(dir))),
        ProcessEnd::Exited(code) => (JobStatus::Failed, Some(*code), None, None),
        ProcessEnd::Signaled(signal) => {
            (JobStatus::Failed, None, Some(*signal), Some(format!("killed by signal {signal}")))
        }
        ProcessEnd::TimedOut => (
            JobStatus::TimedOut,
            None,
            None,
            spec.timeout_secs
                .map(|t| format!("over its timeout of {}", humantime::format_duration(Duration::from_secs_f64(t)))),
        ),
        ProcessEnd::Interrupted => (JobStatus::Interrupted, None, None, None),
        ProcessEnd::SpawnFailed(message) => (JobStatus::Failed, Some(127), None, Some(message.clone())),
        ProcessEnd::OutputLost(message) => (JobStatus::Failed, None, None, Some(message.clone())),
    };
    let outputs = if status == JobStatus::Done { hash_outputs(&spec.outputs, dir) } else { BTreeMap::new() };
    JobRecord {
        exit_code,
        signal,
        outputs,
        started: humantime::format_rfc3339_seconds(started).to_string(),
        duration_secs: (seconds * 1000.0).round() / 1000.0,
        attempts,
        ..verdict_record(spec, status, message)
    }
}

/// The record of a job that could not write one itself: a cluster task that Slurm stopped or
/// lost, written by the build that follows it.
pub fn verdict_record(spec: &TaskSpec, status: JobStatus, message: Option<String>) -> JobRecord {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    JobRecord {
        format: RECORD_FORMAT,
        key: spec.key.clone(),
        id: spec.id.clone(),
        name: spec.name.clone(),
        status,
        exit_code: None,
        signal: None,
        message,
        command: spec.command.clone(),
        started: now.clone(),
        ended: now,
        duration_secs: 0.0,
        host: hostname(),
        jobman_version: env!("CARGO_PKG_VERSION").to_string(),
        ingredients: spec.ingredients.clone(),
        outputs: BTreeMap::new(),
        attempts: 1,
        usage: None,
        slurm_task: slurm_task(),
        restored_from: None,
        provenance: spec.provenance.clone(),
    }
}

/// The Slurm array task this process runs in (`1234_7`), from the variables Slurm sets.
fn slurm_task() -> Option<String> {
    let job = std::env::var("SLURM_ARRAY_JOB_ID").ok()?;
    let task = std::env::var("SLURM_ARRAY_TASK_ID").ok()?;
    Some(format!("{job}_{task}"))
}

/// The launch file of a prepared folder, if it is whole and of this jobman's format.
pub fn read_launch(dir: &Path) -> Option<TaskSpec> {
    let bytes = fs::read(dir.join(LAUNCH_FILE)).ok()?;
    serde_json::from_slice::<TaskSpec>(&bytes).ok().filter(|spec| spec.format == LAUNCH_FORMAT)
}

/// `exit code 127, a command was not found: sh: 1: pythn3: not found`: the shell's exit code for a
/// missing command, with the last line of what it said.
fn shell_not_found(dir: &Path) -> String {
    let said = fs::read_to_string(dir.join(STDERR_FILE)).unwrap_or_default();
    match said.lines().rev().find(|line| !line.trim().is_empty()) {
        Some(line) => format!("exit code 127, a command was not found: {}", line.trim()),
        None => "exit code 127: a command was not found".to_string(),
    }
}

/// A job that exited 0 is done only if its declared results file exists and parses.
fn check_results(spec: &TaskSpec, dir: &Path) -> Result<(), String> {
    let Some(name) = spec.results.as_deref() else { return Ok(()) };
    let text = fs::read_to_string(dir.join(name)).map_err(|_| missing_file("results file", name, spec, dir))?;
    let parsed = if name.ends_with(".json") {
        serde_json::from_str::<serde_json::Value>(&text).map(|_| ()).map_err(|e| e.to_string())
    } else if name.ends_with(".toml") {
        toml::from_str::<toml::Table>(&text).map(|_| ()).map_err(|e| e.message().to_string())
    } else {
        Ok(())
    };
    parsed.map_err(|e| format!("results file {name} does not parse: {e}"))
}

/// A job that exited 0 is done only if it wrote every file it declares as an output.
fn check_required(spec: &TaskSpec, dir: &Path) -> Result<(), String> {
    match spec.required.iter().find(|name| !dir.join(name).is_file()) {
        Some(name) => Err(missing_file("declared output", name, spec, dir)),
        None => Ok(()),
    }
}

/// `results file result.json is missing; the folder holds out.json, notes.txt; did you mean
/// `results.json`?`: what the job wrote, without its logs and the files jobman put there.
fn missing_file(what: &str, name: &str, spec: &TaskSpec, dir: &Path) -> String {
    let ingredients = &spec.ingredients;
    let jobmans = [STDOUT_FILE, STDERR_FILE, LAUNCH_FILE, store::RECORD_FILE];
    let put_there = |file: &str| {
        jobmans.contains(&file)
            || ingredients.params_file.as_deref() == Some(file)
            || ingredients.templates.contains_key(file)
            || file.contains(".attempt-")
    };
    let folder = dir.join(name).parent().map(Path::to_path_buf).unwrap_or_else(|| dir.to_path_buf());
    let mut written: Vec<String> = fs::read_dir(&folder)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|file| !put_there(file))
        .collect();
    written.sort();
    let mut message = format!("{what} {name} is missing");
    if written.is_empty() {
        message.push_str("; the job wrote no file");
        return message;
    }
    let base = Path::new(name).file_name().and_then(|n| n.to_str()).unwrap_or(name);
    let shown: Vec<&str> = written.iter().take(8).map(String::as_str).collect();
    let more =
        if written.len() > shown.len() { format!(" and {} more", written.len() - shown.len()) } else { String::new() };
    message.push_str(&format!("; the folder holds {}{more}", shown.join(", ")));
    if let Some(hint) = crate::util::diagnostic::did_you_mean(base, written.iter().map(String::as_str)) {
        message.push_str(&format!("; {hint}"));
    }
    message
}

/// Content hashes of the declared outputs the job wrote.
fn hash_outputs(outputs: &[String], dir: &Path) -> BTreeMap<String, String> {
    outputs
        .iter()
        .filter_map(|name| {
            let bytes = fs::read(dir.join(name)).ok()?;
            Some((name.clone(), crate::key::content_hash(&bytes)))
        })
        .collect()
}

fn hostname() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
    })
    .clone()
}

/// Writes the launch file of a prepared folder, for a cluster task.
pub fn write_launch(dir: &Path, spec: &TaskSpec) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(spec).map_err(std::io::Error::other)?;
    store::write_atomic(&dir.join(LAUNCH_FILE), &bytes)
}

/// `jobman __run-task MANIFEST N [--jobs-per-task K]`: runs the jobs of manifest lines `N*K` to
/// `N*K + K - 1` on this node, one after the other. On SIGTERM (scancel, or Slurm's time limit)
/// the running job is stopped, no record is written for it and no further job starts: the build
/// that follows the array records Slurm's own verdict (cancelled, timeout) instead.
pub fn run_task_main(manifest: &Path, task: &str, jobs_per_task: usize) -> anyhow::Result<i32> {
    use anyhow::Context;
    let task: usize = task
        .parse()
        .map_err(|_| anyhow::anyhow!("the array task id `{task}` is not a number (is SLURM_ARRAY_TASK_ID set?)"))?;
    let per_task = jobs_per_task.max(1);
    let lines: Vec<String> = (task * per_task..(task + 1) * per_task).map(|line| line.to_string()).collect();
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))?;
    }
    let supervisor = Supervisor::new(Arc::clone(&interrupted), None);
    let mut code = 0;
    // Started with the first job: the launch file names the cache.
    let mut publisher: Option<Publisher> = None;
    for (n, line) in lines.iter().enumerate() {
        // The last task of an array may have fewer lines than the others.
        let dir = match crate::exec::slurm::read_manifest_entry(manifest, line) {
            Ok(dir) => dir,
            Err(_) if n > 0 => break,
            Err(e) => return Err(e),
        };
        let spec = read_launch(&dir).with_context(|| {
            format!("no readable {LAUNCH_FILE} in {} (written by another jobman version?)", dir.display())
        })?;
        // A task Slurm requeued (preemption, a node failure) runs again from its start: its jobs
        // that ended before keep the record they wrote, and are counted once.
        if store::read_record(&dir).is_some_and(|r| r.key == spec.key) {
            eprintln!("jobman: {} ended before this task was requeued; not run again", spec.name);
            continue;
        }
        // A log is made when the job first writes to it: one that the cut-off run left must go,
        // or a rerun that writes nothing there would seem to have written it.
        if std::env::var("SLURM_RESTART_COUNT").is_ok_and(|count| count.trim() != "0") {
            for name in [STDOUT_FILE, STDERR_FILE] {
                let _ = fs::remove_file(dir.join(name));
            }
        }
        let mut ran = None;
        supervisor::run_pool(
            &supervisor,
            1,
            vec![()],
            |()| {
                let retrying = |record: &JobRecord| {
                    eprintln!(
                        "jobman: {} attempt {} of {} {}{}; trying again",
                        spec.name,
                        record.attempts,
                        spec.retries + 1,
                        record.status.as_str(),
                        super::failure_detail(&JobRecord { attempts: 1, ..record.clone() })
                    );
                };
                run(&spec, &dir, &supervisor, Vec::new(), attempts_in(&dir), false, &retrying)
            },
            |r| ran = Some(r),
        );
        match ran {
            Some(Ok(Some(ran))) => {
                eprintln!(
                    "jobman: {} {} in {:.1}s{}",
                    spec.name,
                    ran.record.status.as_str(),
                    ran.seconds,
                    super::attempt_note(ran.record.attempts)
                );
                if ran.record.status == JobStatus::Done {
                    publisher
                        .get_or_insert_with(|| Publisher::start(spec.publish_to.clone(), Arc::clone(&interrupted)))
                        .publish(spec.key.clone(), dir.clone());
                } else {
                    code = 1;
                }
            }
            Some(Ok(None)) | None => return Ok(crate::util::exit::INTERRUPTED),
            Some(Err(message)) => {
                eprintln!("jobman: {}: {message}", spec.name);
                code = 1;
            }
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::{attempt_name, attempts_in};

    #[test]
    fn a_failed_attempts_files_are_kept_beside_the_originals_with_the_attempt_before_the_extension() {
        assert_eq!(attempt_name("stdout.log", 1), "stdout.attempt-1.log");
        assert_eq!(attempt_name("out/results.json", 2), "out/results.attempt-2.json");
        assert_eq!(attempt_name("metrics", 3), "metrics.attempt-3");
        assert_eq!(attempt_name(".hidden", 1), ".hidden.attempt-1");
    }

    #[test]
    fn the_attempts_of_a_folder_are_its_kept_failed_attempts_and_the_last() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(attempts_in(dir.path()), 1);
        for k in 1..=2 {
            std::fs::write(dir.path().join(attempt_name("stdout.log", k)), "").unwrap();
        }
        assert_eq!(attempts_in(dir.path()), 3);
    }
}
