//! `jobman build`: plan the jobs, run the ones that are not done, record each one, summarize.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Instant, SystemTime};

use anyhow::Context;

use crate::exec::request::{LocalRequest, Requests};
use crate::exec::slots::{self, Held, Slots};
use crate::exec::slurm::{self, SlurmRun};
use crate::exec::supervisor::{self, Supervisor};
use crate::exec::task::{self, Ran, TaskSpec};
use crate::explain::dirty::Dirty;
use crate::explain::{self, JobExplainer};
use crate::graph::BuildGraph;
use crate::jobfile::figure::FigureSpec;
use crate::jobfile::{ExecutorKind, Jobfile};
use crate::plan::render::{PlannedJob, Renderer};
use crate::plan::select;
use crate::plan::{self, Job, StagePlan, Waiting};
use crate::products;
use crate::store::build_log::{self, LogEntry};
use crate::store::lock::WorkspaceLock;
use crate::store::{self, FileStamp, JobRecord, JobStatus, RecordSummary, STDERR_FILE, SlotState, Store};
use crate::util::console::{self, Progress, Tone};
use crate::util::diagnostic::Diagnostics;
use crate::util::text::plural;

pub struct BuildOptions {
    pub jobfile: PathBuf,
    pub targets: Vec<String>,
    pub workers: usize,
    pub fail_fast: bool,
    pub dry_run: bool,
    /// Print why each job runs (with template diffs) before running it.
    pub explain: bool,
    pub force: bool,
    /// Only the jobs whose params match this expression.
    pub filter: Option<String>,
    /// Where jobs run; `None`: as the Jobfile's `[executor]` says.
    pub executor: Option<ExecutorKind>,
    /// Slurm: submit and return at once.
    pub detach: bool,
    /// Slurm: on Ctrl-C, leave the submitted jobs running.
    pub no_cancel: bool,
    /// How many times a failing job is tried again; `None`: as the Jobfile's `[job] retries` says.
    pub retries: Option<u32>,
}

/// Exit codes, as ripgrep and just use them.
pub const EXIT_OK: i32 = 0;
pub const EXIT_JOB_FAILED: i32 = 1;
pub const EXIT_INTERRUPTED: i32 = 130;

pub fn build(options: &BuildOptions) -> anyhow::Result<i32> {
    let clock = Instant::now();
    let mut jobfile = Jobfile::load(&options.jobfile)?;
    if let Some(retries) = options.retries {
        jobfile.job.retries = retries;
        for stage in &mut jobfile.stages {
            stage.job.retries = retries;
        }
    }
    let figures: Vec<FigureSpec> = jobfile.figures.iter().map(|f| f.get_ref().clone()).collect();
    let wanted_stages = jobfile.stages_for_targets(&options.targets);
    crate::plan::needs::check_matches(&jobfile)?;
    let selection =
        BuildGraph::new(1, &figures).with_stages(jobfile.stage_names()).select(&options.targets, &figures)?;
    let store = Store::open(jobfile.workspace.jobs.clone(), jobfile.workspace.state.join("index"));
    let lock = if options.dry_run { None } else { Some(WorkspaceLock::acquire(&jobfile.workspace.state)?) };
    // Jobs an earlier build left on Slurm are neither run again nor taken for done.
    let on_slurm = match &lock {
        Some(_) => {
            supervisor::stop_leftover_jobs(&store.jobs_dir);
            slurm::in_flight(&jobfile, true)
        }
        None => HashSet::new(),
    };
    let mut plans: Vec<StagePlan> = Vec::new();
    let mut outcome = StageOutcome::default();
    let products = selection.report || !selection.figures.is_empty() || selection.index;
    let for_report = if products && !jobfile.stages.is_empty() {
        jobfile.stage_closure(jobfile.stage)
    } else {
        vec![false; wanted_stages.len()]
    };
    // Stages run in waves, upstream first: a downstream job's key needs its upstream jobs' outputs.
    for view in jobfile.stage_views() {
        let needed = wanted_stages[view.stage] || for_report[view.stage];
        // A stage this build does not need is planned only to keep its jobs in the index: a
        // mistake there is for the build that needs it.
        let mut plan = match plan::plan_stage(view, &store, &plans) {
            Ok(plan) => plan,
            Err(_) if !needed => continue,
            Err(e) => return Err(e),
        };
        let stopped = outcome.interrupted || (options.fail_fast && outcome.failed);
        if selection.jobs && wanted_stages[plan.view.stage] && !stopped {
            let ran = build_stage(options, &mut plan, &store, lock.as_ref(), &on_slurm, clock)?;
            outcome.failed |= ran.failed;
            outcome.interrupted |= ran.interrupted;
            outcome.submitted |= ran.submitted;
        }
        plans.push(plan);
    }
    if options.dry_run {
        return Ok(EXIT_OK);
    }
    if let Err(e) = store.save_index(plans.iter().flat_map(|p| &p.jobs).map(|j| (&j.slot, &j.planned.key))) {
        console::failure("Warning", &format!("cannot write the index (the next build reads every record): {e}"));
    }
    if outcome.interrupted {
        return Ok(EXIT_INTERRUPTED);
    }
    // Detached, the jobs just submitted are not done: products wait for the build that collects them.
    if outcome.submitted {
        return Ok(if outcome.failed { EXIT_JOB_FAILED } else { EXIT_OK });
    }
    if products && let Some(at) = plans.iter().position(|p| p.view.stage == jobfile.stage) {
        let report = plans.swap_remove(at);
        products::build_products(&report.view, &report.jobs, report.waiting.len(), &selection, options.explain)?;
    }
    drop(lock);
    Ok(if outcome.failed { EXIT_JOB_FAILED } else { EXIT_OK })
}

/// What building one stage came to.
#[derive(Default)]
struct StageOutcome {
    failed: bool,
    interrupted: bool,
    /// Jobs were submitted to Slurm and left there (`--detach`).
    submitted: bool,
}

/// Runs the pending jobs of one stage (or prints them, in a dry run), then says which of its
/// jobs wait for upstream jobs.
fn build_stage(
    options: &BuildOptions,
    plan: &mut StagePlan,
    store: &Store,
    lock: Option<&WorkspaceLock>,
    on_slurm: &HashSet<PathBuf>,
    clock: Instant,
) -> anyhow::Result<StageOutcome> {
    let StagePlan { view: jobfile, jobs, waiting } = plan;
    let jobfile = &*jobfile;
    let chosen = select::matching(jobfile, jobs.iter().map(|j| &j.planned.params), options.filter.as_deref())?;
    let mut pending: Vec<usize> = (0..jobs.len())
        .filter(|&i| chosen[i] && (options.force || !matches!(jobs[i].slot.state, SlotState::Done(_))))
        .collect();
    let executor = options.executor.unwrap_or(jobfile.executor.kind);
    let mut outcome = StageOutcome::default();
    if let Some(stage) = jobfile.stage_name() {
        console::status("Stage", &format!("{stage} ({})", plural(jobs.len() + waiting.len(), "job")));
    }
    let Some(lock) = lock else {
        let reasons = reasons(jobfile, store, jobs, &pending, options.force)?;
        explain::print_reasons(jobs, &reasons, options.explain);
        if executor == ExecutorKind::Slurm && !pending.is_empty() {
            let run = SlurmRun { detach: false, no_cancel: false, dry_run: true };
            slurm::run(&run, jobfile, jobs, &pending, &Arc::new(AtomicBool::new(false)))?;
        }
        report_waiting(waiting);
        return Ok(outcome);
    };
    if !on_slurm.is_empty() {
        let before = pending.len();
        pending.retain(|&i| !on_slurm.contains(&jobs[i].slot.dir));
        if before > pending.len() {
            console::status(
                "Queued",
                &format!(
                    "{} still on Slurm from an earlier build (not submitted again)",
                    plural(before - pending.len(), "job")
                ),
            );
        }
    }
    if options.explain && !pending.is_empty() {
        explain::print_reasons(jobs, &reasons(jobfile, store, jobs, &pending, options.force)?, true);
    }
    (outcome.failed, outcome.interrupted) = if pending.is_empty() {
        // A stage whose every job waits for upstream jobs has nothing up to date to speak of.
        if !jobs.is_empty() || waiting.is_empty() {
            console::status(
                "Fresh",
                &format!(
                    "{} up to date ({})",
                    plural(jobs.len(), "job"),
                    console::duration(clock.elapsed().as_secs_f64())
                ),
            );
        }
        (false, false)
    } else if executor == ExecutorKind::Slurm {
        outcome.submitted = options.detach;
        run_on_slurm(options, jobfile, jobs, &pending, clock)?
    } else {
        run_jobs(options, jobfile, lock, jobs, &pending, clock)?
    };
    outcome.failed |= report_waiting(waiting);
    Ok(outcome)
}

/// Says which jobs wait for upstream jobs; true when some wait for one that failed.
fn report_waiting(waiting: &[Waiting]) -> bool {
    let mut upstream_failed = false;
    for job in waiting.iter().filter(|w| w.failed) {
        upstream_failed = true;
        let params = crate::jobfile::display_params(&job.params);
        console::failure("Skipped", &format!("{params}: upstream failed ({} job {})", job.stage, job.name));
    }
    let unbuilt = waiting.iter().filter(|w| !w.failed).count();
    if let Some(first) = waiting.iter().find(|w| !w.failed) {
        console::status(
            "Waiting",
            &format!("{} for {} jobs not done yet (first: {})", plural(unbuilt, "job"), first.stage, first.name),
        );
    }
    upstream_failed
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
    let interrupted = prepare_run(jobs_dir)?;
    let (slots, requests) = local_slots(jobfile, jobs, pending)?;
    let watchdog = supervisor::spawn_watchdog(&lock.file, jobs_dir).context("cannot start the watchdog process")?;
    let supervisor = Supervisor::new(Arc::clone(&interrupted), Some(watchdog));
    let renderer = Renderer::new(jobfile).map_err(Diagnostics::from)?;
    let root = &jobfile.root;

    let mut tally = Tally { cached: jobs.len() - pending.len(), ..Tally::default() };
    let mut records: Vec<(usize, JobRecord)> = Vec::with_capacity(pending.len());
    let log_path = build_log::path(&jobfile.workspace.state);
    let mut log = build_log::LogWriter::open(&log_path)
        .inspect_err(|e| {
            console::failure(
                "Warning",
                &format!("cannot write {} (explanations will lack it): {e}", log_path.display()),
            )
        })
        .ok();
    let progress = Progress::new(pending.len());
    let items: Vec<(usize, &Job)> = pending.iter().map(|&i| (i, &jobs[i])).collect();
    supervisor::run_pool(
        &supervisor,
        options.workers,
        items,
        |(index, job)| {
            let held = slots.as_ref().map(|slots| (slots, &requests[&index]));
            let retrying = |record: &JobRecord| {
                progress.note(retry_line(record, jobfile.job.retries, &job.slot.dir, root));
            };
            let finished = run_job(&renderer, jobfile, &supervisor, held, index, job, &retrying);
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
            if let (Some(writer), Some(entry)) = (&mut log, &finished.logged)
                && let Err(e) = writer.append(entry)
            {
                console::failure("Warning", &format!("cannot write {}: {e}", log_path.display()));
                log = None;
            }
            if let Some(record) = finished.record {
                records.push((finished.index, record));
            }
        },
    );
    progress.clear();
    store::sync_filesystem(jobs_dir);
    let was_interrupted = supervisor.interrupted();
    drop(supervisor);
    apply_records(jobs, records);
    tally.report(jobs.len(), clock.elapsed().as_secs_f64(), was_interrupted);
    Ok((!tally.failed.is_empty(), was_interrupted))
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

/// The line of a failed attempt that is tried again:
/// `Retrying name (attempt 1 of 3 failed, exit code 1): jobs/ID`.
fn retry_line(record: &JobRecord, retries: u32, dir: &Path, root: &Path) -> String {
    let detail = failure_detail(&JobRecord { attempts: 1, ..record.clone() });
    console::line(
        Tone::Note,
        "Retrying",
        &format!(
            "{} (attempt {} of {} {}{detail}): {}",
            record.name,
            record.attempts,
            retries + 1,
            record.status.as_str(),
            console::relative(dir, root)
        ),
    )
}

/// The GPU and resource pool of the local executor, and what each pending job asks of it; none
/// when the Jobfile asks for neither (jobs then see the environment as it is).
fn local_slots(
    jobfile: &Jobfile,
    jobs: &[Job],
    pending: &[usize],
) -> anyhow::Result<(Option<Slots>, HashMap<usize, LocalRequest>)> {
    if jobfile.job.gpus.is_none() && jobfile.job.resources.is_empty() {
        return Ok((None, HashMap::new()));
    }
    let local = &jobfile.executor.local;
    let gpus = slots::gpu_ids(&local.gpus);
    let total_gpus = gpus.len();
    let slots = Slots::new(gpus, local.resources.iter().map(|(name, capacity)| (name.get_ref().clone(), *capacity)));
    let requests = Requests::new(jobfile).map_err(Diagnostics::from)?;
    let mut asked = HashMap::with_capacity(pending.len());
    for &i in pending {
        let request = requests.local(&jobs[i].planned.params).map_err(Diagnostics::from)?;
        if let Some(why) = slots.impossible(&request, total_gpus) {
            anyhow::bail!("job {} can never start: {why}", jobs[i].planned.name);
        }
        asked.insert(i, request);
    }
    Ok((Some(slots), asked))
}

/// The jobs folder exists, and Ctrl-C raises the returned flag instead of killing jobman.
fn prepare_run(jobs_dir: &Path) -> anyhow::Result<Arc<AtomicBool>> {
    fs::create_dir_all(jobs_dir).with_context(|| format!("cannot create {}", jobs_dir.display()))?;
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted)).context("cannot install the Ctrl-C handler")?;
    }
    Ok(interrupted)
}

/// The new records become the jobs' states (and index entries).
fn apply_records(jobs: &mut [Job], records: Vec<(usize, JobRecord)>) {
    for (index, record) in records {
        let slot = &mut jobs[index].slot;
        slot.state = SlotState::of(RecordSummary::from(&record));
        slot.stamp = FileStamp::of(&slot.dir.join(store::RECORD_FILE));
        slot.indexed = false;
    }
}

/// Runs the `pending` jobs on Slurm (see [`cluster`]); same contract as [`run_jobs`].
fn run_on_slurm(
    options: &BuildOptions,
    jobfile: &Jobfile,
    jobs: &mut [Job],
    pending: &[usize],
    clock: Instant,
) -> anyhow::Result<(bool, bool)> {
    let interrupted = prepare_run(&jobfile.workspace.jobs)?;
    let run = SlurmRun { detach: options.detach, no_cancel: options.no_cancel, dry_run: false };
    let outcome = slurm::run(&run, jobfile, jobs, pending, &interrupted)?;
    let root = &jobfile.root;
    let mut tally = Tally { cached: jobs.len() - pending.len(), ..Tally::default() };
    for (index, message) in &outcome.not_started {
        tally.failed.push(format!("  {} (not submitted): {message}", jobs[*index].planned.name));
    }
    for (index, record) in &outcome.records {
        match record.status {
            JobStatus::Done => tally.ran += 1,
            JobStatus::Interrupted => tally.interrupted += 1,
            _ => {
                let finished = Finished::of_record(*index, record.clone(), jobs[*index].slot.dir.clone());
                tally.failed.push(finished.summary(root));
            }
        }
    }
    let followed = outcome.records.len() + outcome.not_started.len();
    tally.interrupted += pending.len() - followed.min(pending.len());
    apply_records(jobs, outcome.records);
    if options.detach && !outcome.interrupted {
        return Ok((!tally.failed.is_empty(), false));
    }
    tally.report(jobs.len(), clock.elapsed().as_secs_f64(), outcome.interrupted);
    Ok((!tally.failed.is_empty(), outcome.interrupted))
}

/// Why each of the `pending` jobs (indices into `jobs`) runs; `None` for the others.
fn reasons(
    jobfile: &Jobfile,
    store: &Store,
    jobs: &[Job],
    pending: &[usize],
    force: bool,
) -> anyhow::Result<Vec<Option<Dirty>>> {
    let mut reasons = vec![None; jobs.len()];
    let explainer = JobExplainer::new(&[jobfile], store, jobs)?;
    for &i in pending {
        reasons[i] = match explainer.why(&jobs[i], pending.len())? {
            Some(reason) if !force || !matches!(reason, Dirty::PreviouslyFailed { .. } | Dirty::Interrupted) => {
                Some(reason)
            }
            _ => Some(Dirty::Forced),
        };
    }
    Ok(reasons)
}

/// A job's end, as the build loop sees it.
pub(crate) struct Finished {
    index: usize,
    /// The record written, when one was.
    record: Option<JobRecord>,
    /// What it rendered, for the build log.
    logged: Option<LogEntry>,
    name: String,
    dir: PathBuf,
    /// `None` when the job never started (Ctrl-C, --fail-fast).
    status: Option<JobStatus>,
    detail: String,
    seconds: f64,
    /// How many times it ran.
    attempts: u32,
}

impl Finished {
    /// A job that ended with this record (a Slurm task's, read or written by the build).
    pub(crate) fn of_record(index: usize, record: JobRecord, dir: PathBuf) -> Finished {
        Finished {
            index,
            name: record.name.clone(),
            dir,
            status: Some(record.status),
            detail: failure_detail(&record),
            seconds: record.duration_secs,
            attempts: record.attempts,
            logged: None,
            record: Some(record),
        }
    }

    pub(crate) fn line(&self, root: &Path) -> String {
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
    fn summary(&self, root: &Path) -> String {
        let log = self.dir.join(STDERR_FILE);
        let tail = read_tail(&log, 4096);
        let lines: Vec<&str> = tail.lines().collect();
        let tail: Vec<String> = lines[lines.len().saturating_sub(5)..].iter().map(|l| format!("      | {l}")).collect();
        let status = self.status.map_or("", JobStatus::as_str);
        let mut text = format!("  {} ({status}{})\n    log: {}", self.name, self.detail, console::relative(&log, root));
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
            console::failure("Failures", &format!("{}:", plural(self.failed.len(), "job")));
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
            console::duration(seconds)
        );
        if interrupted {
            console::failure("Interrupted", &summary);
            EXIT_INTERRUPTED
        } else if !self.failed.is_empty() {
            console::failure("Finished", &summary);
            EXIT_JOB_FAILED
        } else {
            console::status("Finished", &summary);
            EXIT_OK
        }
    }
}

/// Runs one job in a fresh folder and writes its record last. `retrying` hears of each failed
/// attempt that is tried again.
fn run_job(
    renderer: &Renderer<'_>,
    jobfile: &Jobfile,
    supervisor: &Supervisor,
    slots: Option<(&Slots, &LocalRequest)>,
    index: usize,
    job: &Job,
    retrying: &dyn Fn(&JobRecord),
) -> Finished {
    let Job { planned, slot, .. } = job;
    let mut finished = Finished {
        index,
        record: None,
        logged: None,
        name: planned.name.clone(),
        dir: slot.dir.clone(),
        status: None,
        detail: String::new(),
        seconds: 0.0,
        attempts: 0,
    };
    if !supervisor.accepting() {
        return finished;
    }
    // The GPUs and resources it asks for, held until it ends.
    let held = match slots {
        Some((slots, request)) => match slots.acquire(request, || supervisor.accepting()) {
            Some(held) => Some(held),
            None => return finished,
        },
        None => None,
    };
    let env: Vec<(&'static str, String)> =
        held.as_ref().and_then(Held::cuda_visible_devices).map(|d| ("CUDA_VISIBLE_DEVICES", d)).into_iter().collect();
    let prepared = prepare(renderer, jobfile, planned, slot);
    let ran = prepared.and_then(|(spec, logged)| {
        finished.logged = Some(logged);
        task::run(&spec, &slot.dir, supervisor, env, true, retrying)
    });
    drop(held);
    match ran {
        Ok(Some(Ran { record, seconds })) => {
            finished.status = Some(record.status);
            finished.seconds = seconds;
            finished.detail = failure_detail(&record);
            finished.attempts = record.attempts;
            finished.record = Some(record);
        }
        Ok(None) => finished.status = Some(JobStatus::Interrupted),
        Err(message) => {
            finished.status = Some(JobStatus::Failed);
            finished.detail = format!(": {message}");
        }
    }
    finished
}

/// A fresh folder with the rendered files: what runs there, and what the build log keeps of it.
pub fn prepare(
    renderer: &Renderer<'_>,
    jobfile: &Jobfile,
    job: &PlannedJob,
    slot: &store::Slot,
) -> Result<(TaskSpec, LogEntry), String> {
    // The key's ingredients are kept in the record, for explaining later reruns.
    let rendering = renderer
        .rendering(job.index, &job.params, job.needs.as_deref())
        .map_err(|d| Diagnostics::from(d).to_string())?;
    if rendering.ingredients.key() != job.key {
        return Err("its templates changed while jobman was planning; run the build again".into());
    }
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
    let key = job.key.hex();
    let logged = LogEntry {
        key: key.clone(),
        id: id.clone(),
        name: job.name.clone(),
        index: job.index,
        at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        ingredients: rendering.ingredients.clone(),
        rendered: LogEntry::rendered_files(&rendering.files),
    };
    let spec = TaskSpec {
        format: task::LAUNCH_FORMAT,
        key,
        id: id.clone(),
        name: job.name.clone(),
        index: job.index,
        command: materialized.command,
        timeout_secs: jobfile.job.timeout.map(|t| t.as_secs_f64()),
        results: jobfile.job.results.as_ref().map(|r| r.get_ref().clone()),
        outputs: [&jobfile.job.results, &jobfile.job.series]
            .into_iter()
            .flatten()
            .chain(&jobfile.job.outputs)
            .map(|n| n.get_ref().clone())
            .collect(),
        required: jobfile.job.outputs.iter().map(|n| n.get_ref().clone()).collect(),
        ingredients: rendering.ingredients,
        retries: jobfile.job.retries,
    };
    Ok((spec, logged))
}

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
