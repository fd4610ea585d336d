//! `jobman build`: plan the jobs, run the ones that are not done, record each one, summarize.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Instant, SystemTime};

use anyhow::Context;

use crate::diagnostic::Diagnostics;
use crate::dirty::{self, Dirty};
use crate::exec::{self, Launch, Outcome, Supervisor};
use crate::figure::FigureSpec;
use crate::graph::BuildGraph;
use crate::jobfile::Jobfile;
use crate::lock::WorkspaceLock;
use crate::output::{self, Progress, Tone};
use crate::plan::{self, Job};
use crate::products;
use crate::render::{PlannedJob, Renderer};
use crate::select;
use crate::store::{
    self, FileStamp, JobRecord, JobStatus, RECORD_FORMAT, RecordSummary, STDERR_FILE, STDOUT_FILE, SlotState, Store,
};

pub struct BuildOptions {
    pub jobfile: PathBuf,
    pub targets: Vec<String>,
    pub workers: usize,
    pub fail_fast: bool,
    pub dry_run: bool,
    pub force: bool,
    /// Only the jobs whose params match this expression.
    pub filter: Option<String>,
}

/// Exit codes, as ripgrep and just use them.
pub const EXIT_OK: i32 = 0;
pub const EXIT_JOB_FAILED: i32 = 1;
pub const EXIT_INTERRUPTED: i32 = 130;

pub fn build(options: &BuildOptions) -> anyhow::Result<i32> {
    let clock = Instant::now();
    let jobfile = Jobfile::load(&options.jobfile)?;
    let figures: Vec<FigureSpec> = jobfile.figures.iter().map(|f| f.get_ref().clone()).collect();
    let planned = plan::plan(&jobfile)?;
    let selection = BuildGraph::new(planned.len(), &figures).select(&options.targets, &figures)?;
    let chosen = select::matching(&jobfile, planned.iter().map(|j| &j.params), options.filter.as_deref())?;
    let store = Store::open(jobfile.workspace.jobs.clone(), jobfile.workspace.state.join("index"));
    let wanted = |jobs: &[Job]| -> Vec<usize> {
        (0..jobs.len())
            .filter(|&i| chosen[i] && (options.force || !matches!(jobs[i].slot.state, SlotState::Done(_))))
            .collect()
    };
    if options.dry_run {
        let jobs = plan::locate(&store, planned);
        print_dry_run(&jobfile, &store, &jobs, &wanted(&jobs), options.force)?;
        return Ok(EXIT_OK);
    }

    let lock = WorkspaceLock::acquire(&jobfile.workspace.state)?;
    exec::stop_leftover_jobs(&store.jobs_dir);
    let mut jobs = plan::locate(&store, planned);
    let pending = if selection.jobs { wanted(&jobs) } else { Vec::new() };
    let (failed, interrupted) = if pending.is_empty() {
        output::status(
            "Fresh",
            &format!("{} up to date ({})", plural(jobs.len(), "job"), output::duration(clock.elapsed().as_secs_f64())),
        );
        (false, false)
    } else {
        run_jobs(options, &jobfile, &lock, &mut jobs, &pending, clock)?
    };
    if let Err(e) = store.save_index(jobs.iter().map(|j| (&j.slot, &j.planned.key))) {
        output::failure("Warning", &format!("cannot write the index (the next build reads every record): {e}"));
    }
    if interrupted {
        return Ok(EXIT_INTERRUPTED);
    }
    if selection.report || !selection.figures.is_empty() || selection.index {
        products::build_products(&jobfile, &jobs, &selection)?;
    }
    drop(lock);
    Ok(if failed { EXIT_JOB_FAILED } else { EXIT_OK })
}

/// Runs the `pending` jobs (indices into `jobs`), updating their state as records come in.
/// Returns whether any failed and whether the build was interrupted.
fn run_jobs(
    options: &BuildOptions,
    jobfile: &Jobfile,
    lock: &WorkspaceLock,
    jobs: &mut [Job],
    pending: &[usize],
    clock: Instant,
) -> anyhow::Result<(bool, bool)> {
    let jobs_dir = &jobfile.workspace.jobs;
    fs::create_dir_all(jobs_dir).with_context(|| format!("cannot create {}", jobs_dir.display()))?;
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted)).context("cannot install the Ctrl-C handler")?;
    }
    let watchdog = exec::spawn_watchdog(&lock.file, jobs_dir).context("cannot start the watchdog process")?;
    let supervisor = Supervisor::new(Arc::clone(&interrupted), Some(watchdog));
    let renderer = Renderer::new(jobfile).map_err(Diagnostics::from)?;
    let root = &jobfile.root;

    let mut tally = Tally { cached: jobs.len() - pending.len(), ..Tally::default() };
    let mut records: Vec<(usize, JobRecord)> = Vec::with_capacity(pending.len());
    let progress = Progress::new(pending.len());
    let items: Vec<(usize, &Job)> = pending.iter().map(|&i| (i, &jobs[i])).collect();
    exec::run_pool(
        &supervisor,
        options.workers,
        items,
        |(index, job)| {
            let finished = run_job(&renderer, jobfile, &supervisor, index, job);
            // Decided on the worker, before it takes the next job.
            if options.fail_fast
                && matches!(finished.status, Some(s) if s != JobStatus::Done && s != JobStatus::Interrupted)
            {
                supervisor.stop_accepting();
            }
            finished
        },
        |finished| {
            let line = finished.line(root);
            match finished.status {
                Some(JobStatus::Done) => tally.ran += 1,
                Some(JobStatus::Interrupted) | None => tally.interrupted += 1,
                Some(_) => tally.failed.push(finished.summary(root)),
            }
            let shown = !matches!(finished.status, Some(JobStatus::Interrupted) | None);
            progress.finished(line, shown);
            progress.message(&finished.name);
            if let Some(record) = finished.record {
                records.push((finished.index, record));
            }
        },
    );
    progress.clear();
    store::sync_filesystem(jobs_dir);
    let was_interrupted = supervisor.interrupted();
    drop(supervisor);
    for (index, record) in records {
        let slot = &mut jobs[index].slot;
        slot.state = SlotState::of(RecordSummary::from(&record));
        slot.stamp = FileStamp::of(&slot.dir.join(store::RECORD_FILE));
        slot.indexed = false;
    }
    tally.report(jobs.len(), clock.elapsed().as_secs_f64(), was_interrupted);
    Ok((!tally.failed.is_empty(), was_interrupted))
}

fn print_dry_run(jobfile: &Jobfile, store: &Store, jobs: &[Job], pending: &[usize], force: bool) -> anyhow::Result<()> {
    let pending: Vec<&Job> = pending.iter().map(|&i| &jobs[i]).collect();
    let previous =
        if pending.iter().any(|j| matches!(j.slot.state, SlotState::Absent)) { store.records() } else { Vec::new() };
    let current: HashSet<String> = jobs.iter().map(|j| j.planned.key.hex()).collect();
    let renderer = Renderer::new(jobfile).map_err(Diagnostics::from)?;
    println!("would run {} of {}:", pending.len(), plural(jobs.len(), "job"));
    for job in &pending {
        let reason = if force {
            Dirty::Forced
        } else {
            let (_, ingredients) =
                renderer.ingredients(job.planned.index, &job.planned.params).map_err(Diagnostics::from)?;
            dirty::explain(&ingredients, &job.slot.state, &previous, &current)
        };
        println!("  {}  {}  {}", job.slot.id, job.planned.name, reason);
    }
    println!("up to date: {}", plural(jobs.len() - pending.len(), "job"));
    Ok(())
}

/// A job's end, as the build loop sees it.
struct Finished {
    index: usize,
    /// The record written, when one was.
    record: Option<JobRecord>,
    name: String,
    dir: PathBuf,
    /// `None` when the job never started (Ctrl-C, --fail-fast).
    status: Option<JobStatus>,
    detail: String,
    seconds: f64,
}

impl Finished {
    fn line(&self, root: &Path) -> String {
        let time = output::duration(self.seconds);
        match self.status {
            Some(JobStatus::Done) => output::line(Tone::Good, "Ran", &format!("{} in {time}", self.name)),
            Some(status) => output::line(
                Tone::Bad,
                "Failed",
                &format!(
                    "{} ({}{}) in {time}: {}",
                    self.name,
                    status.as_str(),
                    self.detail,
                    output::relative(&self.dir, root)
                ),
            ),
            None => output::line(Tone::Note, "Skipped", &self.name),
        }
    }

    /// The failure as the end-of-build summary shows it: name, why, the tail of its stderr.
    fn summary(&self, root: &Path) -> String {
        let log = self.dir.join(STDERR_FILE);
        let tail = read_tail(&log, 4096);
        let lines: Vec<&str> = tail.lines().collect();
        let tail: Vec<String> = lines[lines.len().saturating_sub(5)..].iter().map(|l| format!("      | {l}")).collect();
        let status = self.status.map_or("", JobStatus::as_str);
        let mut text = format!("  {} ({status}{})\n    log: {}", self.name, self.detail, output::relative(&log, root));
        if !tail.is_empty() {
            text.push('\n');
            text.push_str(&tail.join("\n"));
        }
        text
    }
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

#[derive(Default)]
struct Tally {
    ran: usize,
    cached: usize,
    interrupted: usize,
    failed: Vec<String>,
}

impl Tally {
    fn report(&self, total: usize, seconds: f64, interrupted: bool) -> i32 {
        if !self.failed.is_empty() {
            output::failure("Failures", &format!("{}:", plural(self.failed.len(), "job")));
            for failure in &self.failed {
                eprintln!("{failure}");
            }
        }
        let summary = format!(
            "{}: {} ran, {} cached, {} failed{} in {}",
            plural(total, "job"),
            self.ran,
            self.cached,
            self.failed.len(),
            if self.interrupted > 0 { format!(", {} interrupted", self.interrupted) } else { String::new() },
            output::duration(seconds)
        );
        if interrupted {
            output::failure("Interrupted", &summary);
            EXIT_INTERRUPTED
        } else if !self.failed.is_empty() {
            output::failure("Finished", &summary);
            EXIT_JOB_FAILED
        } else {
            output::status("Finished", &summary);
            EXIT_OK
        }
    }
}

pub fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

/// Runs one job in a fresh folder and writes its record last.
fn run_job(renderer: &Renderer<'_>, jobfile: &Jobfile, supervisor: &Supervisor, index: usize, job: &Job) -> Finished {
    let Job { planned, slot } = job;
    let mut finished = Finished {
        index,
        record: None,
        name: planned.name.clone(),
        dir: slot.dir.clone(),
        status: None,
        detail: String::new(),
        seconds: 0.0,
    };
    if !supervisor.accepting() {
        return finished;
    }
    let started = SystemTime::now();
    let clock = Instant::now();
    // The key's ingredients are kept in the record, for explaining later reruns.
    let ingredients = match renderer.ingredients(planned.index, &planned.params) {
        Ok((_, ingredients)) if ingredients.key() == planned.key => ingredients,
        Ok(_) => {
            finished.status = Some(JobStatus::Failed);
            finished.detail = ": its templates changed while jobman was planning; run the build again".into();
            return finished;
        }
        Err(diagnostic) => {
            finished.status = Some(JobStatus::Failed);
            finished.detail = format!(": {}", Diagnostics::from(diagnostic));
            return finished;
        }
    };
    let (outcome, command) = match prepare(renderer, planned, slot) {
        Ok((command, stdout, stderr)) => {
            let env = vec![
                ("JOBMAN_JOB_ID", slot.id.clone()),
                ("JOBMAN_JOB_DIR", slot.dir.display().to_string()),
                ("JOBMAN_JOB_INDEX", planned.index.to_string()),
                ("JOBMAN_JOB_NAME", planned.name.clone()),
            ];
            let launch =
                Launch { command: &command, dir: &slot.dir, env, stdout, stderr, timeout: jobfile.job.timeout };
            (supervisor.run(launch), command)
        }
        Err(message) => (Outcome::SpawnFailed(message), ingredients.command.clone()),
    };
    let seconds = clock.elapsed().as_secs_f64();
    let (status, exit_code, signal, message) = match &outcome {
        Outcome::Exited(0) => match check_results(jobfile, &slot.dir) {
            Ok(()) => (JobStatus::Done, Some(0), None, None),
            Err(message) => (JobStatus::Failed, Some(0), None, Some(message)),
        },
        Outcome::Exited(code) => (JobStatus::Failed, Some(*code), None, None),
        Outcome::Signaled(signal) => {
            (JobStatus::Failed, None, Some(*signal), Some(format!("killed by signal {signal}")))
        }
        Outcome::TimedOut => (
            JobStatus::TimedOut,
            None,
            None,
            jobfile.job.timeout.map(|t| format!("over its timeout of {}", humantime::format_duration(t))),
        ),
        Outcome::Interrupted => (JobStatus::Interrupted, None, None, None),
        Outcome::SpawnFailed(message) => (JobStatus::Failed, Some(127), None, Some(message.clone())),
    };
    let record = JobRecord {
        format: RECORD_FORMAT,
        key: planned.key.hex(),
        id: slot.id.clone(),
        name: planned.name.clone(),
        status,
        exit_code,
        signal,
        message: message.clone(),
        command,
        started: humantime::format_rfc3339_seconds(started).to_string(),
        ended: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        duration_secs: (seconds * 1000.0).round() / 1000.0,
        host: hostname(),
        jobman_version: env!("CARGO_PKG_VERSION").to_string(),
        ingredients,
        outputs: if status == JobStatus::Done { hash_outputs(jobfile, &slot.dir) } else { BTreeMap::new() },
    };
    let status = match store::write_record(&slot.dir, &record) {
        Ok(()) => status,
        Err(e) => {
            finished.detail = format!(": cannot write its record: {e}");
            finished.status = Some(JobStatus::Failed);
            finished.seconds = seconds;
            return finished;
        }
    };
    finished.status = Some(status);
    finished.seconds = seconds;
    finished.detail = match (message, exit_code) {
        (Some(message), _) => format!(": {message}"),
        (None, Some(code)) if status != JobStatus::Done => format!(", exit code {code}"),
        _ => String::new(),
    };
    finished.record = Some(record);
    finished
}

/// A fresh folder with the rendered files, and the log files; the rendered command.
fn prepare(
    renderer: &Renderer<'_>,
    job: &PlannedJob,
    slot: &store::Slot,
) -> Result<(String, fs::File, fs::File), String> {
    let (id, dir) = (&slot.id, &slot.dir);
    // A forced rerun must not lose a finished result if it fails: the done folder is kept as
    // `ID.previous` (until the next forced rerun of the job).
    if matches!(slot.state, SlotState::Done(_)) {
        let previous = dir.with_extension("previous");
        let _ = fs::remove_dir_all(&previous);
        fs::rename(dir, &previous)
            .map_err(|e| format!("cannot keep the previous run in {}: {e}", previous.display()))?;
    }
    store::reset_dir(dir).map_err(|e| format!("cannot prepare {}: {e}", dir.display()))?;
    let materialized = renderer.materialize(job, id, dir).map_err(|d| Diagnostics::from(d).to_string())?;
    for (target, text) in &materialized.files {
        let path = dir.join(target);
        if let Some(parent) = path.parent().filter(|p| *p != dir) {
            fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let open = |name: &str| fs::File::create(dir.join(name)).map_err(|e| format!("cannot create {name}: {e}"));
    Ok((materialized.command, open(STDOUT_FILE)?, open(STDERR_FILE)?))
}

/// A job that exited 0 is done only if its declared results file exists and parses.
fn check_results(jobfile: &Jobfile, dir: &Path) -> Result<(), String> {
    let Some(results) = &jobfile.job.results else { return Ok(()) };
    let name = results.get_ref();
    let text = fs::read_to_string(dir.join(name)).map_err(|_| format!("results file {name} is missing"))?;
    let parsed = if name.ends_with(".json") {
        serde_json::from_str::<serde_json::Value>(&text).map(|_| ()).map_err(|e| e.to_string())
    } else if name.ends_with(".toml") {
        toml::from_str::<toml::Table>(&text).map(|_| ()).map_err(|e| e.message().to_string())
    } else {
        Ok(())
    };
    parsed.map_err(|e| format!("results file {name} does not parse: {e}"))
}

/// Content hashes of the declared outputs the job wrote.
fn hash_outputs(jobfile: &Jobfile, dir: &Path) -> BTreeMap<String, String> {
    [&jobfile.job.results, &jobfile.job.series]
        .into_iter()
        .flatten()
        .filter_map(|name| {
            let bytes = fs::read(dir.join(name.get_ref())).ok()?;
            Some((name.get_ref().clone(), crate::job_key::content_hash(&bytes)))
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
