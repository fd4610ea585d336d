//! A build's dealings with Slurm across its rounds ([`Session`]): the jobs it submits, holds,
//! adopts from earlier builds and follows to their end.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::files::{self, SubmittedArray};
use super::queue::{self, TaskState};
use super::script::{self, SlurmSettings};
use super::{
    array_script, command, done_durations, efficiency, job_name, manifest_dirs, new_build_dir, packing, plural_jobs,
    record_verdict, slurm_dir,
};
use crate::exec::Outcome;
use crate::exec::finish::{Finished, Tally};
use crate::exec::prepare::prepare;
use crate::exec::request::Requests;
use crate::exec::task::{self, TaskSpec};
use crate::jobfile::{Jobfile, JobsPerTask, StageView};
use crate::plan::Job;
use crate::plan::render::Renderer;
use crate::store::build_log::{self, LogWriter};
use crate::store::{self, JobRecord, JobStatus};
use crate::util::console;
use crate::util::diagnostic::Diagnostics;

/// A build's dealings with Slurm, across its rounds: it submits the jobs each round makes ready
/// ([`Session::submit`]), adopts the jobs earlier builds left queued ([`Session::adopt`]), and
/// follows them all with one `squeue` call per poll ([`Session::wait`]) until each has ended.
/// Jobs it cannot submit yet (the rest of a stage whose first jobs are measuring how long its
/// jobs take, jobs refused for a limit of the cluster, failed attempts to try again) it holds
/// and submits from `wait`.
pub struct Session {
    root: PathBuf,
    build_dir: PathBuf,
    /// On Ctrl-C, leave the followed jobs running instead of cancelling them.
    no_cancel: bool,
    interrupted: Arc<AtomicBool>,
    /// Job folders that earlier builds left queued or running when this build began.
    earlier: HashSet<PathBuf>,
    /// The arrays this build submitted, as `arrays.json` keeps them.
    submitted: Vec<SubmittedArray>,
    /// The arrays followed: this build's, and earlier builds' holding adopted jobs.
    arrays: Vec<Array>,
    /// (array, job of it) of the jobs not ended yet.
    open: Vec<(usize, usize)>,
    /// Ready jobs not submitted yet.
    held: Vec<Held>,
    /// How many followed jobs have ended so far: held jobs wait for the next one.
    ended: usize,
    /// A task that Slurm says completed may have written its record a moment before the shared
    /// filesystem shows it: it gets one more poll before it is judged.
    second_look: HashSet<(usize, usize)>,
    backoff: queue::PollBackoff,
    /// Whether the last poll saw a job end: the next one keeps the pace.
    changed: bool,
    progress: Option<console::Progress>,
    log: Option<LogWriter>,
    /// Asked of the cluster once, at the first submission: `MaxArraySize` (`None` until then:
    /// Slurm has not been seen to answer yet).
    max_array_size: Option<usize>,
    /// Free slots by (partition, CPUs per task), asked once per build: how wide packed arrays go.
    free_slots: HashMap<(Option<String>, u32), usize>,
    /// How long each stage's done jobs took, in this build and earlier ones.
    durations: packing::History,
    tally: Tally,
    /// Per stage, in the order their jobs ended: what the done jobs used against what they asked.
    usage: Vec<(String, efficiency::StageUsage)>,
}

/// A job whose folder and launch file are ready: what an array task needs to run it.
#[derive(Clone)]
struct Ready {
    dir: PathBuf,
    spec: TaskSpec,
    settings: SlurmSettings,
}

/// What the arrays of one stage share, from its `[executor.slurm]`.
#[derive(Debug, Clone)]
pub(super) struct StageArrays {
    /// Empty in a Jobfile without stages.
    pub stage: String,
    pub job_name: String,
    pub max_parallel: Option<u32>,
    pub requeue: Option<bool>,
    pub jobs_per_task: JobsPerTask,
}

impl StageArrays {
    pub(super) fn of(jobfile: StageView<'_>) -> Rc<StageArrays> {
        let slurm = &jobfile.executor.slurm;
        Rc::new(StageArrays {
            stage: jobfile.name().unwrap_or("").to_string(),
            job_name: job_name(&jobfile.root),
            max_parallel: slurm.max_parallel,
            requeue: slurm.requeue,
            jobs_per_task: slurm.jobs_per_task,
        })
    }

    /// How many jobs of `settings` each task runs, of `n` such jobs: as the Jobfile says, or
    /// from the stage's `durations`, the free `slots` and the time limit.
    pub(super) fn per_task(
        &self,
        durations: &[f64],
        slots: impl FnOnce() -> usize,
        settings: &SlurmSettings,
        n: usize,
    ) -> usize {
        match self.jobs_per_task {
            JobsPerTask::Fixed(k) => k as usize,
            JobsPerTask::Auto => {
                let limit = settings.time.as_deref().and_then(efficiency::time_limit_secs);
                packing::jobs_per_task(durations, n, slots(), limit)
            }
        }
    }

    fn of_stage(&self) -> String {
        if self.stage.is_empty() { String::new() } else { format!(" of {}", self.stage) }
    }
}

/// Ready jobs held back until something happens, or until `by`.
struct Held {
    arrays: Rc<StageArrays>,
    jobs: Vec<Ready>,
    until: Until,
    by: Instant,
}

enum Until {
    /// A followed job ends after this many have.
    JobEnds(usize),
    /// A job of their stage is done, so that they are packed by how long it took.
    Measured,
}

/// How long the rest of a stage never measured waits for its first jobs to end before it goes
/// one job per task: jobs slower than this gain little from packing.
const MEASURE_WAIT: Duration = Duration::from_secs(30);

/// How long jobs refused by sbatch wait when no followed job ends meanwhile.
const REFUSED_WAIT: Duration = Duration::from_secs(60);

/// One submitted array and the jobs of it this build follows.
struct Array {
    job_id: u64,
    build_dir: PathBuf,
    arrays: Rc<StageArrays>,
    /// What its tasks asked for: a job tried again goes with the same.
    settings: SlurmSettings,
    jobs: Vec<ArrayJob>,
    per_task: usize,
    limits: queue::TaskLimits,
}

/// A job of an array: task `t` runs manifest lines `t*per_task` to `t*per_task + per_task - 1`.
struct ArrayJob {
    line: usize,
    dir: PathBuf,
    spec: TaskSpec,
}

impl Array {
    /// The Slurm task that runs its `k`th job.
    fn task_of(&self, k: usize) -> (u64, u32) {
        (self.job_id, (self.jobs[k].line / self.per_task) as u32)
    }
}

impl Session {
    /// A session of a build that holds the workspace lock: `earlier` are the folders earlier
    /// builds left on Slurm ([`in_flight`]).
    pub fn new(jobfile: &Jobfile, earlier: HashSet<PathBuf>, no_cancel: bool, interrupted: Arc<AtomicBool>) -> Session {
        Session {
            root: jobfile.root.clone(),
            build_dir: new_build_dir(jobfile),
            no_cancel,
            interrupted,
            earlier,
            submitted: Vec::new(),
            arrays: Vec::new(),
            open: Vec::new(),
            held: Vec::new(),
            ended: 0,
            second_look: HashSet::new(),
            backoff: queue::PollBackoff::new(jobfile.executor.slurm.poll_interval),
            changed: false,
            progress: None,
            log: None,
            max_array_size: None,
            free_slots: HashMap::new(),
            durations: packing::History::load(&slurm_dir(jobfile)),
            tally: Tally::default(),
            usage: Vec::new(),
        }
    }

    /// Whether an earlier build left this job folder queued or running on Slurm.
    pub fn left_by_earlier_build(&self, dir: &Path) -> bool {
        self.earlier.contains(dir)
    }

    /// Whether no job is followed or held any more.
    pub fn is_idle(&self) -> bool {
        self.open.is_empty() && self.held.is_empty()
    }

    /// Whether a job this build followed failed, or could not be submitted.
    pub fn any_failed(&self) -> bool {
        !self.tally.failed.is_empty()
    }

    /// Follows the `queued` jobs (indices into `jobs`) that an earlier build submitted and left
    /// on Slurm (`--detach`, or a build that was killed), as the build that submitted them would
    /// have: nothing is submitted again, each ends with its record or Slurm's verdict.
    pub fn adopt(&mut self, jobfile: StageView<'_>, jobs: &[Job], queued: &[usize]) {
        let wanted: HashMap<PathBuf, &Job> = queued.iter().map(|&i| (jobs[i].slot.dir(), &jobs[i])).collect();
        let Ok(requests) = Requests::new(jobfile) else { return };
        let arrays = StageArrays::of(jobfile);
        let Ok(entries) = fs::read_dir(self.build_dir.parent().unwrap_or(&self.root)) else { return };
        for build_dir in entries.flatten().map(|e| e.path()) {
            for submitted in files::read_submitted(&build_dir) {
                let array_jobs: Vec<ArrayJob> = manifest_dirs(&build_dir, &submitted)
                    .into_iter()
                    .enumerate()
                    .filter(|(_, dir)| wanted.contains_key(dir.as_path()))
                    .filter_map(|(line, dir)| Some(ArrayJob { line, spec: task::read_launch(&dir)?, dir }))
                    .collect();
                let Some(first) = array_jobs.first() else { continue };
                self.follow(Array {
                    job_id: submitted.job_id,
                    build_dir: build_dir.clone(),
                    arrays: Rc::clone(&arrays),
                    settings: requests.slurm(&wanted[first.dir.as_path()].planned.params).unwrap_or_default(),
                    jobs: array_jobs,
                    per_task: submitted.jobs_per_task.max(1),
                    limits: submitted.limits(),
                });
            }
        }
    }

    /// Prepares the `pending` jobs (indices into `jobs`) of stage `jobfile` and submits them as
    /// arrays, one per group of jobs with the same settings, without waiting for them. With
    /// `jobs_per_task = "auto"` and no duration known for the stage, the first jobs (as many as
    /// slots are free) go one per task and the rest wait until one of them has ended, to be
    /// packed by what it took.
    pub fn submit(&mut self, jobfile: StageView<'_>, jobs: &[Job], pending: &[usize]) -> anyhow::Result<()> {
        if self.max_array_size.is_none() {
            command::cluster_answers().map_err(anyhow::Error::msg)?;
            self.max_array_size = Some(command::max_array_size());
            self.log = LogWriter::open(&build_log::path(&jobfile.workspace.state)).ok();
        }
        let renderer = Renderer::new(jobfile).map_err(Diagnostics::from)?;
        let requests = Requests::new(jobfile).map_err(Diagnostics::from)?;
        // Folders first: a task may start the moment its array is submitted.
        let mut ready: Vec<Ready> = Vec::new();
        for &index in pending {
            let job = &jobs[index];
            let settings = match requests.slurm(&job.planned.params) {
                Ok(settings) => settings,
                Err(diagnostic) => {
                    self.not_started(&job.planned.name, &Diagnostics::from(diagnostic).to_string());
                    continue;
                }
            };
            match prepare(&renderer, jobfile, &job.planned, &job.slot) {
                Ok((spec, logged)) => {
                    if let Err(e) = task::write_launch(&job.slot.dir(), &spec) {
                        self.not_started(&job.planned.name, &format!("cannot write its launch file: {e}"));
                        continue;
                    }
                    if let Some(writer) = &mut self.log {
                        let _ = writer.append(&logged);
                    }
                    ready.push(Ready { dir: job.slot.dir(), spec, settings });
                }
                Err(message) => self.not_started(&job.planned.name, &message),
            }
        }
        let arrays = StageArrays::of(jobfile);
        self.durations.plan(&arrays.stage, done_durations(jobs));
        let mut rest = Vec::new();
        if arrays.jobs_per_task == JobsPerTask::Auto
            && !self.durations.knows(&arrays.stage)
            && let Some(first) = ready.first()
        {
            let measured = self.slots(&first.settings).min(ready.len()).max(1);
            rest = ready.split_off(measured);
        }
        let measuring = ready.len();
        self.send(&arrays, ready)?;
        if !rest.is_empty() {
            console::status(
                "Holding",
                &format!(
                    "{}{} until one of the first {measuring} has ended, to pack them by how long it took",
                    plural_jobs(rest.len()),
                    arrays.of_stage(),
                ),
            );
            self.hold(&arrays, rest, Until::Measured, MEASURE_WAIT);
        }
        Ok(())
    }

    /// Submits ready jobs as arrays. Jobs sbatch refuses for a limit of the cluster are held
    /// (after trying halves of a refused array: what fits goes now); any other error fails them.
    fn send(&mut self, arrays: &Rc<StageArrays>, ready: Vec<Ready>) -> anyhow::Result<()> {
        let settings: Vec<SlurmSettings> = ready.iter().map(|r| r.settings.clone()).collect();
        // Free slots matter only to "auto", once per distinct settings.
        let mut widths: HashMap<SlurmSettings, usize> = HashMap::new();
        if arrays.jobs_per_task == JobsPerTask::Auto {
            for s in &settings {
                if !widths.contains_key(s) {
                    let width = self.slots(s);
                    widths.insert(s.clone(), width);
                }
            }
        }
        let durations = self.durations.of(&arrays.stage);
        let per_task = |s: &SlurmSettings, n: usize| arrays.per_task(&durations, || widths[s], s, n);
        let max_array_size = self.max_array_size.unwrap_or(script::DEFAULT_MAX_ARRAY_SIZE);
        let mut plans: VecDeque<script::ArrayPlan> = script::plan_arrays(&settings, per_task, max_array_size).into();
        while let Some(plan) = plans.pop_front() {
            let n = self.submitted.len();
            let (manifest, script) = array_script(arrays, &plan, &self.build_dir, n)?;
            let dirs: Vec<PathBuf> = plan.jobs.iter().map(|&i| ready[i].dir.clone()).collect();
            files::write_manifest(&manifest, &dirs).with_context(|| format!("cannot write {}", manifest.display()))?;
            let script_path = files::script_path(&self.build_dir, n);
            store::write_atomic(&script_path, script.as_bytes())
                .with_context(|| format!("cannot write {}", script_path.display()))?;
            let job_id = match command::submit(&script_path) {
                Ok(id) => id,
                Err(command::SubmitError::Refused(refusal)) => {
                    let (script::Refusal::SubmitLimit(why) | script::Refusal::Busy(why)) = &refusal;
                    // Under a limit on queued jobs, a smaller array may fit.
                    if matches!(refusal, script::Refusal::SubmitLimit(_)) && plan.tasks() > 1 {
                        let (first, second) = plan.split();
                        plans.push_front(second);
                        plans.push_front(first);
                        continue;
                    }
                    let refused: Vec<Ready> = std::iter::once(plan)
                        .chain(plans.drain(..))
                        .flat_map(|p| p.jobs)
                        .map(|i| ready[i].clone())
                        .collect();
                    console::status(
                        "Waiting",
                        &format!(
                            "Slurm refused {}{} for now ({why}); they are submitted when some of the jobs queued end",
                            plural_jobs(refused.len()),
                            arrays.of_stage()
                        ),
                    );
                    self.hold(arrays, refused, Until::JobEnds(self.ended), REFUSED_WAIT);
                    break;
                }
                Err(command::SubmitError::Failed(e)) => {
                    // Arrays already submitted are followed as usual; these jobs did not start.
                    console::failure("Failed", &format!("to submit {}: {e:#}", plural_jobs(plan.jobs.len())));
                    for &i in &plan.jobs {
                        self.not_started(&ready[i].spec.name, &format!("sbatch failed: {e:#}"));
                    }
                    continue;
                }
            };
            let limits = queue::TaskLimits {
                time: plan.settings.time.clone(),
                mem: plan.settings.mem.clone(),
                jobs_per_task: plan.jobs_per_task,
            };
            self.submitted.push(SubmittedArray {
                job_id,
                manifest: manifest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                tasks: plan.tasks(),
                jobs_per_task: plan.jobs_per_task,
                time_limit: limits.time.clone(),
                mem: limits.mem.clone(),
                submitted: crate::util::unix_secs(),
            });
            files::write_submitted(&self.build_dir, &self.submitted)
                .with_context(|| format!("cannot record the submitted arrays in {}", self.build_dir.display()))?;
            let packed = if plan.jobs_per_task > 1 {
                format!(" ({} tasks of up to {} jobs)", plan.tasks(), plan.jobs_per_task)
            } else {
                String::new()
            };
            console::status(
                "Submitted",
                &format!("{}{} as Slurm array {job_id}{packed}", plural_jobs(plan.jobs.len()), arrays.of_stage()),
            );
            let array_jobs: Vec<ArrayJob> = plan
                .jobs
                .iter()
                .enumerate()
                .map(|(line, &i)| ArrayJob { line, dir: ready[i].dir.clone(), spec: ready[i].spec.clone() })
                .collect();
            self.follow(Array {
                job_id,
                build_dir: self.build_dir.clone(),
                arrays: Rc::clone(arrays),
                settings: plan.settings,
                jobs: array_jobs,
                per_task: plan.jobs_per_task,
                limits,
            });
        }
        Ok(())
    }

    /// How many tasks of these settings can start at once: free CPUs (asked once per build),
    /// at most `max_parallel`.
    fn slots(&mut self, settings: &SlurmSettings) -> usize {
        let cpus = settings.cpus.unwrap_or(1);
        let partition = settings.partition.clone();
        *self
            .free_slots
            .entry((partition.clone(), cpus))
            .or_insert_with(|| command::free_slots(partition.as_deref(), cpus).unwrap_or(1).max(1))
    }

    fn hold(&mut self, arrays: &Rc<StageArrays>, jobs: Vec<Ready>, until: Until, wait: Duration) {
        self.held.push(Held { arrays: Rc::clone(arrays), jobs, until, by: Instant::now() + wait });
    }

    /// Submits the held jobs whose wait is over.
    fn release(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        let due = |h: &Held| {
            now >= h.by
                || match h.until {
                    Until::JobEnds(ended) => self.ended > ended,
                    Until::Measured => self.durations.knows(&h.arrays.stage),
                }
        };
        let (due, kept): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.held).into_iter().partition(due);
        self.held = kept;
        if !due.is_empty() {
            // What is submitted is said on lines of its own.
            self.clear_progress();
        }
        for held in due {
            self.send(&held.arrays, held.jobs)?;
        }
        Ok(())
    }

    fn follow(&mut self, array: Array) {
        let a = self.arrays.len();
        self.open.extend((0..array.jobs.len()).map(|k| (a, k)));
        self.arrays.push(array);
    }

    fn not_started(&mut self, name: &str, message: &str) {
        self.tally.failed.push(format!("  {name} (not submitted): {message}"));
    }

    /// Polls the queue until at least one followed job has ended (each ends with its record,
    /// or Slurm's verdict written as its record) or Ctrl-C, which cancels the followed arrays
    /// unless `--no-cancel`; submits held jobs as their wait ends. Returns whether the build
    /// was interrupted.
    pub fn wait(&mut self) -> anyhow::Result<bool> {
        loop {
            self.release()?;
            if self.progress.is_none() {
                // A bar per wait: between waits the build prints what it submits.
                self.progress = Some(console::Progress::new(self.open.len()));
            }
            sleep_unless_interrupted(self.backoff.next(self.changed), &self.interrupted);
            if self.interrupted.load(Ordering::SeqCst) {
                self.clear_progress();
                let ids: Vec<u64> = self.arrays.iter().map(|a| a.job_id).collect();
                if self.no_cancel {
                    console::failure("Interrupted", "the submitted jobs go on running on Slurm (--no-cancel)");
                } else {
                    command::cancel(&ids).context("cannot cancel the submitted arrays")?;
                    console::failure("Cancelled", &format!("Slurm arrays {}", join(&ids)));
                }
                self.tally.interrupted += self.open.len();
                self.tally.not_started += self.held.iter().map(|h| h.jobs.len()).sum::<usize>();
                self.open.clear();
                self.held.clear();
                return Ok(true);
            }
            let ids: Vec<u64> = self.arrays.iter().map(|a| a.job_id).collect();
            let states = match command::queue(&ids) {
                Ok(entries) => queue::task_states(&entries),
                Err(e) => {
                    console::failure("Warning", &format!("{e:#}; trying again"));
                    self.changed = false;
                    continue;
                }
            };
            self.changed = self.collect(&states) > 0;
            if self.changed || self.is_idle() {
                self.clear_progress();
                return Ok(false);
            }
            if let Some(progress) = &self.progress {
                let held: usize = self.held.iter().map(|h| h.jobs.len()).sum();
                let held = if held > 0 { format!(", {} held", plural_jobs(held)) } else { String::new() };
                progress.message(&format!("{} on Slurm{held}", plural_jobs(self.open.len())));
            }
        }
    }

    fn clear_progress(&mut self) {
        if let Some(progress) = self.progress.take() {
            progress.clear();
        }
    }

    /// The jobs that ended by this poll's `states`: each with its record, or Slurm's verdict;
    /// returns how many.
    fn collect(&mut self, states: &HashMap<(u64, u32), TaskState>) -> usize {
        let mut ended: Vec<((usize, usize), Option<JobRecord>)> = Vec::new();
        let (arrays, second_look) = (&self.arrays, &mut self.second_look);
        self.open.retain(|&(a, k)| {
            let array = &arrays[a];
            let ArrayJob { dir, spec, .. } = &array.jobs[k];
            let state = states.get(&array.task_of(k));
            if state.is_some_and(|s| !s.state.is_finished()) {
                return true;
            }
            if let Some(record) = store::read_record(dir).filter(|r| r.key == spec.key) {
                ended.push(((a, k), Some(record)));
                return false;
            }
            if state.is_some_and(|s| s.state == queue::SlurmState::Completed) && second_look.insert((a, k)) {
                return true;
            }
            ended.push(((a, k), None));
            false
        });
        // Tasks Slurm no longer lists: its accounting may still know how they ended.
        let forgotten: Vec<u64> = ended
            .iter()
            .filter(|((a, k), record)| record.is_none() && !states.contains_key(&self.arrays[*a].task_of(*k)))
            .map(|((a, _), _)| self.arrays[*a].job_id)
            .collect();
        let accounted = if forgotten.is_empty() {
            HashMap::new()
        } else {
            command::accounting(&forgotten).ok().flatten().map(|e| queue::task_states(&e)).unwrap_or_default()
        };
        let count = ended.len();
        self.ended += count;
        let mut again: Vec<(Rc<StageArrays>, Ready)> = Vec::new();
        for ((a, k), record) in ended {
            let array = &self.arrays[a];
            let ArrayJob { dir, spec, .. } = &array.jobs[k];
            let record = match record {
                Some(record) => record,
                None => {
                    let task = array.task_of(k);
                    let state = states.get(&task).or_else(|| accounted.get(&task));
                    let log = files::task_log(&array.build_dir, task.0, task.1);
                    let verdict = queue::verdict(state, &log, &array.limits);
                    let attempt = task::attempts_in(dir);
                    // Slurm stopped it (time limit, node failure, preemption…): `[job] retries`
                    // applies as to a failure on the node, its logs kept aside the same way.
                    if verdict.retried
                        && attempt <= spec.retries
                        && task::keep_stopped_attempt(spec, dir, attempt, &verdict.message).is_ok()
                    {
                        let line = format!(
                            "{} attempt {attempt} of {} ended: {}; trying again",
                            spec.name,
                            spec.retries + 1,
                            verdict.message
                        );
                        match &self.progress {
                            Some(progress) => progress.note(line),
                            None => console::note("Retrying", &line),
                        }
                        let ready = Ready { dir: dir.clone(), spec: spec.clone(), settings: array.settings.clone() };
                        again.push((Rc::clone(&array.arrays), ready));
                        continue;
                    }
                    record_verdict(spec, dir, verdict, task)
                }
            };
            let stage = &array.arrays.stage;
            if record.status == JobStatus::Done {
                self.durations.add(stage, record.duration_secs);
            }
            let at = match self.usage.iter().position(|(s, _)| s == stage) {
                Some(at) => at,
                None => {
                    self.usage.push((stage.clone(), efficiency::StageUsage::default()));
                    self.usage.len() - 1
                }
            };
            let limits = &array.limits;
            self.usage[at].1.add(&record, limits.mem.as_deref(), limits.time.as_deref(), limits.jobs_per_task);
            let finished = Finished::of_record(0, record, dir.clone());
            if let Some(progress) = &self.progress {
                progress.finished(finished.line(&self.root), true);
            }
            match finished.status {
                Some(JobStatus::Done) => self.tally.ran += 1,
                Some(JobStatus::Interrupted) => self.tally.interrupted += 1,
                _ => self.tally.failed.push(finished.summary(&self.root)),
            }
        }
        for (arrays, ready) in again {
            self.hold(&arrays, vec![ready], Until::JobEnds(0), Duration::ZERO);
        }
        count
    }

    /// The summary of the jobs this build followed on Slurm (none: nothing is printed), as the
    /// local pool prints its own; `done`: the done jobs of the stages that run on Slurm, those it
    /// ran and those it found done.
    pub fn finish(&self, done: usize, clock: Instant, interrupted: bool) -> Outcome {
        if let Err(e) = self.durations.save() {
            console::failure("Warning", &format!("cannot keep the jobs' durations for packing later builds: {e}"));
        }
        let tally = &self.tally;
        let followed = tally.ran + tally.interrupted + tally.not_started + tally.failed.len();
        if followed == 0 {
            return Outcome::default();
        }
        for (stage, usage) in &self.usage {
            if let Some(line) = usage.line() {
                let of = if stage.is_empty() { String::new() } else { format!("{stage}: ") };
                console::status("Used", &format!("{of}{line}"));
            }
        }
        let cached = done.saturating_sub(tally.ran);
        Tally { cached, ..tally.clone() }.finish(followed + cached, clock.elapsed().as_secs_f64(), interrupted)
    }
}

fn join(ids: &[u64]) -> String {
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

fn sleep_unless_interrupted(wait: Duration, interrupted: &AtomicBool) {
    let until = Instant::now() + wait;
    while Instant::now() < until && !interrupted.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
}
