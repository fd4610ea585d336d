//! The Slurm executor. The build prepares each pending job's folder as the local pool would and
//! writes a launch file into it; jobs go to Slurm as arrays (one `sbatch` per group of jobs with
//! the same settings), each task running `jobman __run-task MANIFEST N`, which writes the job's
//! record on the compute node. The build then follows every array with one `squeue` call per
//! poll; a task that leaves the queue without a record gets Slurm's verdict (timeout, out of
//! memory, cancelled…) as its record.
//!
//! Each build's files live in `.jobman/slurm/<build>/`: manifests, scripts, Slurm's task logs,
//! and `arrays.json`, the ids submitted. A later build or `jobman status` reads them to find the
//! jobs still queued or running, which are neither resubmitted nor taken for done.

mod command;
mod efficiency;
mod files;
pub mod pipeline;
mod queue;
mod script;
#[cfg(test)]
mod tests;

pub use files::read_manifest_entry;
pub use script::SlurmSettings;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::Outcome;
use super::finish::{Finished, Tally};
use super::prepare::prepare;
use crate::exec::request::Requests;
use crate::exec::task::{self, TaskSpec};
use crate::jobfile::{Jobfile, StageView};
use crate::plan::Job;
use crate::plan::render::Renderer;
use crate::store::build_log::{self, LogWriter};
use crate::store::{self, JobRecord, JobStatus};
use crate::util::console;
use crate::util::diagnostic::Diagnostics;
use files::SubmittedArray;
use queue::TaskState;
use script::ArrayScript;

/// A build's dealings with Slurm, across its rounds: it submits the jobs each round makes ready
/// ([`Session::submit`]), adopts the jobs earlier builds left queued ([`Session::adopt`]), and
/// follows them all with one `squeue` call per poll ([`Session::wait`]) until each has ended.
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
    /// A task that Slurm says completed may have written its record a moment before the shared
    /// filesystem shows it: it gets one more poll before it is judged.
    second_look: HashSet<(usize, usize)>,
    backoff: queue::PollBackoff,
    /// Whether the last poll saw a job end: the next one keeps the pace.
    changed: bool,
    progress: Option<console::Progress>,
    log: Option<LogWriter>,
    /// Whether `scontrol ping` answered, asked before the first submission.
    checked: bool,
    tally: Tally,
    /// Per stage, in the order their jobs ended: what the done jobs used against what they asked.
    usage: Vec<(String, efficiency::StageUsage)>,
}

/// One submitted array and the jobs of it this build follows.
struct Array {
    job_id: u64,
    build_dir: PathBuf,
    /// The stage of its jobs; empty in a Jobfile without stages.
    stage: String,
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
            second_look: HashSet::new(),
            backoff: queue::PollBackoff::new(jobfile.executor.slurm.poll_interval),
            changed: false,
            progress: None,
            log: None,
            checked: false,
            tally: Tally::default(),
            usage: Vec::new(),
        }
    }

    /// Whether an earlier build left this job folder queued or running on Slurm.
    pub fn left_by_earlier_build(&self, dir: &Path) -> bool {
        self.earlier.contains(dir)
    }

    /// Whether no job followed is still queued or running.
    pub fn is_idle(&self) -> bool {
        self.open.is_empty()
    }

    /// Whether a job this build followed failed, or could not be submitted.
    pub fn any_failed(&self) -> bool {
        !self.tally.failed.is_empty()
    }

    /// Follows the `queued` jobs (indices into `jobs`) that an earlier build submitted and left
    /// on Slurm (`--detach`, or a build that was killed), as the build that submitted them would
    /// have: nothing is submitted again, each ends with its record or Slurm's verdict.
    pub fn adopt(&mut self, jobfile: StageView<'_>, jobs: &[Job], queued: &[usize]) {
        let wanted: HashSet<&Path> = queued.iter().map(|&i| jobs[i].slot.dir.as_path()).collect();
        let Ok(entries) = fs::read_dir(self.build_dir.parent().unwrap_or(&self.root)) else { return };
        for build_dir in entries.flatten().map(|e| e.path()) {
            for submitted in files::read_submitted(&build_dir) {
                let array_jobs: Vec<ArrayJob> = manifest_dirs(&build_dir, &submitted)
                    .into_iter()
                    .enumerate()
                    .filter(|(_, dir)| wanted.contains(dir.as_path()))
                    .filter_map(|(line, dir)| Some(ArrayJob { line, spec: task::read_launch(&dir)?, dir }))
                    .collect();
                if !array_jobs.is_empty() {
                    self.follow(Array {
                        job_id: submitted.job_id,
                        build_dir: build_dir.clone(),
                        stage: jobfile.name().unwrap_or("").to_string(),
                        jobs: array_jobs,
                        per_task: submitted.jobs_per_task.max(1),
                        limits: submitted.limits(),
                    });
                }
            }
        }
    }

    /// Prepares the `pending` jobs (indices into `jobs`) of stage `jobfile` and submits them as
    /// arrays, one per group of jobs with the same settings, without waiting for them.
    pub fn submit(&mut self, jobfile: StageView<'_>, jobs: &[Job], pending: &[usize]) -> anyhow::Result<()> {
        if !self.checked {
            if !command::cluster_answers() {
                anyhow::bail!(
                    "Slurm does not answer (`scontrol ping`): run the build on the cluster's login node, or start a \
                     local cluster for trying jobman with `bash scripts/slurm-up.sh`"
                );
            }
            self.checked = true;
            self.log = LogWriter::open(&build_log::path(&jobfile.workspace.state)).ok();
        }
        let renderer = Renderer::new(jobfile).map_err(Diagnostics::from)?;
        let requests = Requests::new(jobfile).map_err(Diagnostics::from)?;
        // Folders first: a task may start the moment its array is submitted.
        let mut prepared: Vec<(PathBuf, TaskSpec, SlurmSettings)> = Vec::new();
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
                    if let Err(e) = task::write_launch(&job.slot.dir, &spec) {
                        self.not_started(&job.planned.name, &format!("cannot write its launch file: {e}"));
                        continue;
                    }
                    if let Some(writer) = &mut self.log {
                        let _ = writer.append(&logged);
                    }
                    prepared.push((job.slot.dir.clone(), spec, settings));
                }
                Err(message) => self.not_started(&job.planned.name, &message),
            }
        }
        let per_task = jobfile.executor.slurm.jobs_per_task.max(1) as usize;
        let settings: Vec<SlurmSettings> = prepared.iter().map(|(_, _, s)| s.clone()).collect();
        let plans = script::plan_arrays(&settings, command::max_array_size() * per_task);
        let of_stage = jobfile.name().map(|stage| format!(" of {stage}")).unwrap_or_default();
        for plan in plans {
            let n = self.submitted.len();
            let tasks = plan.jobs.len().div_ceil(per_task);
            let (manifest, script) = array_script(jobfile, &plan, &self.build_dir, n)?;
            let dirs: Vec<PathBuf> = plan.jobs.iter().map(|&i| prepared[i].0.clone()).collect();
            files::write_manifest(&manifest, &dirs).with_context(|| format!("cannot write {}", manifest.display()))?;
            let script_path = files::script_path(&self.build_dir, n);
            store::write_atomic(&script_path, script.as_bytes())
                .with_context(|| format!("cannot write {}", script_path.display()))?;
            let array_jobs: Vec<ArrayJob> = plan
                .jobs
                .iter()
                .enumerate()
                .map(|(line, &i)| ArrayJob { line, dir: prepared[i].0.clone(), spec: prepared[i].1.clone() })
                .collect();
            let job_id = match command::submit(&script_path) {
                Ok(id) => id,
                Err(e) => {
                    // Arrays already submitted are followed as usual; these jobs did not start.
                    console::failure("Failed", &format!("to submit {}: {e:#}", plural_jobs(array_jobs.len())));
                    for job in &array_jobs {
                        self.not_started(&job.spec.name, &format!("sbatch failed: {e:#}"));
                    }
                    continue;
                }
            };
            self.submitted.push(SubmittedArray {
                job_id,
                manifest: manifest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                tasks,
                jobs_per_task: per_task,
                time_limit: plan.settings.time.clone(),
                mem: plan.settings.mem.clone(),
                submitted: crate::util::unix_secs(),
            });
            files::write_submitted(&self.build_dir, &self.submitted)
                .with_context(|| format!("cannot record the submitted arrays in {}", self.build_dir.display()))?;
            console::status(
                "Submitted",
                &format!("{}{of_stage} as Slurm array {job_id}", plural_jobs(array_jobs.len())),
            );
            let limits = queue::TaskLimits {
                time: plan.settings.time.clone(),
                mem: plan.settings.mem.clone(),
                jobs_per_task: per_task,
            };
            let stage = jobfile.name().unwrap_or("").to_string();
            let build_dir = self.build_dir.clone();
            self.follow(Array { job_id, build_dir, stage, jobs: array_jobs, per_task, limits });
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
    /// unless `--no-cancel`. Returns whether the build was interrupted.
    pub fn wait(&mut self) -> anyhow::Result<bool> {
        // A bar per wait: between waits the build prints what it submits.
        self.progress = Some(console::Progress::new(self.open.len()));
        loop {
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
                self.open.clear();
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
            if self.changed || self.open.is_empty() {
                self.clear_progress();
                return Ok(false);
            }
            if let Some(progress) = &self.progress {
                progress.message(&format!("{} on Slurm", plural_jobs(self.open.len())));
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
        for ((a, k), record) in ended {
            let array = &self.arrays[a];
            let ArrayJob { dir, spec, .. } = &array.jobs[k];
            let record = record.unwrap_or_else(|| {
                let task = array.task_of(k);
                let state = states.get(&task).or_else(|| accounted.get(&task));
                record_verdict(spec, dir, state, (&array.build_dir, task), &array.limits)
            });
            let at = match self.usage.iter().position(|(stage, _)| *stage == array.stage) {
                Some(at) => at,
                None => {
                    self.usage.push((array.stage.clone(), efficiency::StageUsage::default()));
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
        count
    }

    /// The summary of the jobs this build followed on Slurm (none: nothing is printed), as the
    /// local pool prints its own; `done`: the done jobs of the stages that run on Slurm, those it
    /// ran and those it found done.
    pub fn finish(&self, done: usize, clock: Instant, interrupted: bool) -> Outcome {
        let tally = &self.tally;
        let followed = tally.ran + tally.interrupted + tally.failed.len();
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

fn slurm_dir(jobfile: &Jobfile) -> PathBuf {
    jobfile.workspace.state.join("slurm")
}

/// The folder of this build's submissions: `.jobman/slurm/<seconds since 1970>-<pid>`.
fn new_build_dir(jobfile: &Jobfile) -> PathBuf {
    let seconds = crate::util::unix_secs();
    slurm_dir(jobfile).join(format!("{seconds}-{}", std::process::id()))
}

fn job_name(root: &Path) -> String {
    format!("jobman-{}", root.file_name().map_or_else(|| "jobs".into(), |n| n.to_string_lossy().into_owned()))
}

/// Prints the batch scripts that submitting the `pending` jobs (indices into `jobs`) of stage
/// `jobfile` would submit; prepares no folder.
pub fn print_scripts(jobfile: StageView<'_>, jobs: &[Job], pending: &[usize]) -> anyhow::Result<()> {
    let requests = Requests::new(jobfile).map_err(Diagnostics::from)?;
    let mut settings = Vec::new();
    for &index in pending {
        match requests.slurm(&jobs[index].planned.params) {
            Ok(s) => settings.push(s),
            Err(diagnostic) => console::failure(
                "Failed",
                &format!("{} cannot be submitted: {}", jobs[index].planned.name, Diagnostics::from(diagnostic)),
            ),
        }
    }
    let per_task = jobfile.executor.slurm.jobs_per_task.max(1) as usize;
    let build_dir = new_build_dir(&jobfile);
    for (n, plan) in script::plan_arrays(&settings, script::DEFAULT_MAX_ARRAY_SIZE * per_task).iter().enumerate() {
        let (manifest, script) = array_script(jobfile, plan, &build_dir, n)?;
        println!("# array {n}: {} ({})", plural_jobs(plan.jobs.len()), console::relative(&manifest, &jobfile.root));
        print!("{script}");
    }
    Ok(())
}

/// Array `n` of a build's folder: its manifest's path and its batch script.
fn array_script(
    jobfile: StageView<'_>,
    plan: &script::ArrayPlan,
    build_dir: &Path,
    n: usize,
) -> anyhow::Result<(PathBuf, String)> {
    let per_task = jobfile.executor.slurm.jobs_per_task.max(1) as usize;
    let manifest = files::manifest_path(build_dir, n);
    let jobman = std::env::current_exe().context("cannot find the jobman binary to run on the nodes")?;
    let script = script::batch_script(&ArrayScript {
        job_name: &job_name(&jobfile.root),
        settings: &plan.settings,
        tasks: plan.jobs.len().div_ceil(per_task),
        max_parallel: jobfile.executor.slurm.max_parallel,
        jobs_per_task: per_task,
        build_dir,
        manifest: &manifest,
        jobman: &jobman,
    })
    .map_err(anyhow::Error::msg)?;
    Ok((manifest, script))
}

fn plural_jobs(n: usize) -> String {
    crate::util::text::plural(n, "job")
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

/// Where a job an earlier build submitted stands on Slurm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlight {
    Running,
    /// Queued (pending, held, requeued…), its array submitted at this time (seconds since
    /// 1970; 0 when not recorded).
    Queued {
        since: u64,
    },
}

/// The job folders that arrays submitted by earlier builds still have queued or running. Asks
/// Slurm only when such arrays exist; a build folder whose tasks all ended is marked done
/// (`retire`, for the build holding the lock) so that later builds stop asking.
pub fn in_flight(jobfile: &Jobfile, retire: bool) -> HashMap<PathBuf, InFlight> {
    let Ok(entries) = fs::read_dir(slurm_dir(jobfile)) else { return HashMap::new() };
    let builds: Vec<(PathBuf, Vec<SubmittedArray>)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .map(|dir| {
            let arrays = files::read_submitted(&dir);
            (dir, arrays)
        })
        .filter(|(_, arrays)| !arrays.is_empty())
        .collect();
    if builds.is_empty() {
        return HashMap::new();
    }
    let ids: Vec<u64> = builds.iter().flat_map(|(_, arrays)| arrays.iter().map(|a| a.job_id)).collect();
    let states = match command::queue(&ids) {
        Ok(entries) => queue::task_states(&entries),
        Err(e) => {
            console::failure(
                "Warning",
                &format!(
                    "cannot ask Slurm about the jobs submitted earlier ({e:#}); they are taken for still running \
                     (remove {} to forget them)",
                    console::relative(&slurm_dir(jobfile), &jobfile.root)
                ),
            );
            return builds
                .iter()
                .flat_map(|(dir, arrays)| arrays.iter().flat_map(|a| manifest_dirs(dir, a)))
                .map(|dir| (dir, InFlight::Running))
                .collect();
        }
    };
    let mut flying = HashMap::new();
    let mut ended = Vec::new();
    for (dir, arrays) in &builds {
        let mut any = false;
        for array in arrays {
            let dirs = manifest_dirs(dir, array);
            for (line, job_dir) in dirs.into_iter().enumerate() {
                let task = (line / array.jobs_per_task.max(1)) as u32;
                let state = states.get(&(array.job_id, task));
                match state.map(|s| &s.state) {
                    Some(queue::SlurmState::Running | queue::SlurmState::Completing) => {
                        flying.insert(job_dir, InFlight::Running);
                        any = true;
                    }
                    Some(state) if !state.is_finished() => {
                        flying.insert(job_dir, InFlight::Queued { since: array.submitted });
                        any = true;
                    }
                    _ if retire => ended.push((job_dir, state, (dir, (array.job_id, task)), array.limits())),
                    _ => {}
                }
            }
        }
        if retire && !any {
            let _ = fs::rename(dir.join(files::ARRAYS_FILE), dir.join(format!("{}.ended", files::ARRAYS_FILE)));
        }
    }
    // A folder submitted again by a later build is that build's.
    for (job_dir, state, task, limits) in ended.into_iter().filter(|(dir, ..)| !flying.contains_key(dir)) {
        settle(&job_dir, state, (task.0.as_path(), task.1), &limits);
    }
    flying
}

/// A task of an earlier (detached) build that ended without writing its record — stopped by
/// Slurm — gets Slurm's verdict as its record, as the build that follows its arrays would do.
fn settle(job_dir: &Path, state: Option<&TaskState>, task: (&Path, (u64, u32)), limits: &queue::TaskLimits) {
    let Some(spec) = task::read_launch(job_dir) else { return };
    if store::read_record(job_dir).is_some_and(|r| r.key == spec.key) {
        return;
    }
    record_verdict(&spec, job_dir, state, task, limits);
}

/// Writes Slurm's verdict on a task (its build's folder, array and task ids) that ended without
/// the job's record as that record.
fn record_verdict(
    spec: &TaskSpec,
    dir: &Path,
    state: Option<&TaskState>,
    (build_dir, (job_id, task_id)): (&Path, (u64, u32)),
    limits: &queue::TaskLimits,
) -> JobRecord {
    let log = files::task_log(build_dir, job_id, task_id);
    let verdict = queue::verdict(state, &log, limits);
    let record = JobRecord {
        attempts: task::attempts_in(dir),
        slurm_task: Some(format!("{job_id}_{task_id}")),
        ..task::verdict_record(spec, verdict.status, Some(verdict.message))
    };
    if let Err(e) = store::write_record(dir, &record) {
        console::failure("Warning", &format!("cannot write the record of {}: {e}", spec.name));
    }
    record
}

fn manifest_dirs(build_dir: &Path, array: &SubmittedArray) -> Vec<PathBuf> {
    let bytes = fs::read(build_dir.join(&array.manifest)).unwrap_or_default();
    (0..array.tasks * array.jobs_per_task.max(1)).map_while(|line| files::manifest_entry(&bytes, line)).collect()
}
