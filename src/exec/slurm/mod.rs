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
mod files;
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

use super::finish::Finished;
use super::prepare::prepare;
use crate::exec::request::Requests;
use crate::exec::task::{self, TaskSpec};
use crate::jobfile::{Jobfile, StageView};
use crate::plan::Job;
use crate::plan::render::Renderer;
use crate::store::build_log::{self, LogWriter};
use crate::store::{self, JobRecord};
use crate::util::console;
use crate::util::diagnostic::Diagnostics;
use files::SubmittedArray;
use queue::TaskState;
use script::ArrayScript;

/// What the Slurm executor was asked besides the jobs.
pub struct SlurmRun {
    /// Submit and return at once.
    pub detach: bool,
    /// On Ctrl-C, leave the submitted jobs running instead of cancelling them.
    pub no_cancel: bool,
    /// Print each batch script instead of submitting it.
    pub dry_run: bool,
}

/// How the jobs handed to Slurm ended, as far as this build saw.
pub struct Followed {
    /// Job index → its record, for the jobs that ended.
    pub records: Vec<(usize, JobRecord)>,
    /// Jobs that could not be prepared or submitted: index and why.
    pub not_started: Vec<(usize, String)>,
    /// Ctrl-C: the build stopped following (and, unless `--no-cancel`, cancelled) its arrays.
    pub interrupted: bool,
}

fn slurm_dir(jobfile: &Jobfile) -> PathBuf {
    jobfile.workspace.state.join("slurm")
}

/// One submitted array and the jobs of it this build follows.
struct Array {
    job_id: u64,
    build_dir: PathBuf,
    jobs: Vec<ArrayJob>,
    per_task: usize,
    limits: queue::TaskLimits,
}

/// A job of an array: task `t` runs manifest lines `t*per_task` to `t*per_task + per_task - 1`.
struct ArrayJob {
    line: usize,
    /// Index into the build's jobs.
    index: usize,
    spec: TaskSpec,
}

impl Array {
    /// The Slurm task that runs its `k`th job.
    fn task_of(&self, k: usize) -> (u64, u32) {
        (self.job_id, (self.jobs[k].line / self.per_task) as u32)
    }
}

/// Prepares and submits the `pending` jobs (indices into `jobs`), then follows them to their end
/// unless detached.
pub fn run(
    run: &SlurmRun,
    jobfile: StageView<'_>,
    jobs: &[Job],
    pending: &[usize],
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<Followed> {
    let mut outcome = Followed { records: Vec::new(), not_started: Vec::new(), interrupted: false };
    if !run.dry_run && !command::cluster_answers() {
        anyhow::bail!(
            "Slurm does not answer (`scontrol ping`): run the build on the cluster's login node, or start a local \
             cluster for trying jobman with `bash scripts/slurm-up.sh`"
        );
    }
    let renderer = Renderer::new(jobfile).map_err(Diagnostics::from)?;
    let requests = Requests::new(jobfile).map_err(Diagnostics::from)?;
    let build_dir = slurm_dir(&jobfile).join(format!(
        "{}-{}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        std::process::id()
    ));
    let mut log = if run.dry_run { None } else { LogWriter::open(&build_log::path(&jobfile.workspace.state)).ok() };

    // Folders first: a task may start the moment its array is submitted.
    // (job index, its launch spec: none in a dry run, which prepares no folder, its settings)
    let mut prepared: Vec<(usize, Option<TaskSpec>, script::SlurmSettings)> = Vec::new();
    for &index in pending {
        let job = &jobs[index];
        let settings = match requests.slurm(&job.planned.params) {
            Ok(settings) => settings,
            Err(diagnostic) => {
                outcome.not_started.push((index, Diagnostics::from(diagnostic).to_string()));
                continue;
            }
        };
        if run.dry_run {
            prepared.push((index, None, settings));
            continue;
        }
        match prepare(&renderer, jobfile, &job.planned, &job.slot) {
            Ok((spec, logged)) => {
                if let Err(e) = task::write_launch(&job.slot.dir, &spec) {
                    outcome.not_started.push((index, format!("cannot write its launch file: {e}")));
                    continue;
                }
                if let Some(writer) = &mut log {
                    let _ = writer.append(&logged);
                }
                prepared.push((index, Some(spec), settings));
            }
            Err(message) => outcome.not_started.push((index, message)),
        }
    }

    let max_array_size = if run.dry_run { script::DEFAULT_MAX_ARRAY_SIZE } else { command::max_array_size() };
    let settings: Vec<script::SlurmSettings> = prepared.iter().map(|(_, _, s)| s.clone()).collect();
    let per_task = jobfile.executor.slurm.jobs_per_task.max(1) as usize;
    let plans = script::plan_arrays(&settings, max_array_size * per_task);
    let jobman = std::env::current_exe().context("cannot find the jobman binary to run on the nodes")?;
    let job_name = format!(
        "jobman-{}",
        jobfile.root.file_name().map_or_else(|| "jobs".into(), |n| n.to_string_lossy().into_owned())
    );
    let mut arrays: Vec<Array> = Vec::new();
    let mut submitted: Vec<SubmittedArray> = Vec::new();
    for (n, plan) in plans.iter().enumerate() {
        let dirs: Vec<PathBuf> = plan.jobs.iter().map(|&i| jobs[prepared[i].0].slot.dir.clone()).collect();
        let tasks = plan.jobs.len().div_ceil(per_task);
        let manifest = files::manifest_path(&build_dir, n);
        let script = script::batch_script(&ArrayScript {
            job_name: &job_name,
            settings: &plan.settings,
            tasks,
            max_parallel: jobfile.executor.slurm.max_parallel,
            jobs_per_task: per_task,
            build_dir: &build_dir,
            manifest: &manifest,
            jobman: &jobman,
        })
        .map_err(anyhow::Error::msg)?;
        if run.dry_run {
            println!("# array {n}: {} ({})", plural_jobs(plan.jobs.len()), console::relative(&manifest, &jobfile.root));
            print!("{script}");
            continue;
        }
        files::write_manifest(&manifest, &dirs).with_context(|| format!("cannot write {}", manifest.display()))?;
        let script_path = files::script_path(&build_dir, n);
        store::write_atomic(&script_path, script.as_bytes())
            .with_context(|| format!("cannot write {}", script_path.display()))?;
        let array_jobs: Vec<ArrayJob> = plan
            .jobs
            .iter()
            .enumerate()
            .filter_map(|(line, &i)| Some(ArrayJob { line, index: prepared[i].0, spec: prepared[i].1.clone()? }))
            .collect();
        let job_id = match command::submit(&script_path) {
            Ok(id) => id,
            Err(e) => {
                // Arrays already submitted are followed as usual; these jobs did not start.
                console::failure("Failed", &format!("to submit {}: {e:#}", plural_jobs(array_jobs.len())));
                outcome.not_started.extend(array_jobs.iter().map(|job| (job.index, format!("sbatch failed: {e:#}"))));
                continue;
            }
        };
        submitted.push(SubmittedArray {
            job_id,
            manifest: manifest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            tasks,
            jobs_per_task: per_task,
            time_limit: plan.settings.time.clone(),
        });
        files::write_submitted(&build_dir, &submitted)
            .with_context(|| format!("cannot record the submitted arrays in {}", build_dir.display()))?;
        console::status("Submitted", &format!("{} as Slurm array {job_id}", plural_jobs(array_jobs.len())));
        let limits = queue::TaskLimits { time: plan.settings.time.clone(), jobs_per_task: per_task };
        arrays.push(Array { job_id, build_dir: build_dir.clone(), jobs: array_jobs, per_task, limits });
    }
    if run.dry_run || arrays.is_empty() {
        return Ok(outcome);
    }
    if run.detach {
        console::status(
            "Detached",
            "the jobs run on Slurm; `jobman status` shows them, a later `jobman build` collects them",
        );
        return Ok(outcome);
    }
    follow(run, jobfile, jobs, &arrays, interrupted, &mut outcome)?;
    Ok(outcome)
}

/// Follows to their end the `queued` jobs (indices into `jobs`) that an earlier build submitted
/// and left on Slurm (`--detach`, or a build that was killed), as the build that submitted them
/// would have: nothing is submitted again, each ends with its record or Slurm's verdict. On
/// Ctrl-C they go on running: they were left there on purpose.
pub fn follow_earlier(
    jobfile: StageView<'_>,
    jobs: &[Job],
    queued: &[usize],
    interrupted: &Arc<AtomicBool>,
) -> anyhow::Result<Followed> {
    let index_of: HashMap<&Path, usize> = queued.iter().map(|&i| (jobs[i].slot.dir.as_path(), i)).collect();
    let mut arrays = Vec::new();
    let builds = fs::read_dir(slurm_dir(&jobfile)).map(|entries| entries.flatten().map(|e| e.path()).collect());
    for build_dir in builds.unwrap_or_else(|_| Vec::new()) {
        for submitted in files::read_submitted(&build_dir) {
            let per_task = submitted.jobs_per_task.max(1);
            let array_jobs: Vec<ArrayJob> = manifest_dirs(&build_dir, &submitted)
                .iter()
                .enumerate()
                .filter_map(|(line, dir)| {
                    let index = *index_of.get(dir.as_path())?;
                    Some(ArrayJob { line, index, spec: task::read_launch(dir)? })
                })
                .collect();
            if !array_jobs.is_empty() {
                arrays.push(Array {
                    job_id: submitted.job_id,
                    build_dir: build_dir.clone(),
                    jobs: array_jobs,
                    per_task,
                    limits: submitted.limits(),
                });
            }
        }
    }
    let mut outcome = Followed { records: Vec::new(), not_started: Vec::new(), interrupted: false };
    let run = SlurmRun { detach: false, no_cancel: true, dry_run: false };
    follow(&run, jobfile, jobs, &arrays, interrupted, &mut outcome)?;
    Ok(outcome)
}

fn plural_jobs(n: usize) -> String {
    crate::util::text::plural(n, "job")
}

/// Polls the queue until every task of `arrays` has ended (or Ctrl-C), collecting records.
fn follow(
    run: &SlurmRun,
    jobfile: StageView<'_>,
    jobs: &[Job],
    arrays: &[Array],
    interrupted: &Arc<AtomicBool>,
    outcome: &mut Followed,
) -> anyhow::Result<()> {
    let ids: Vec<u64> = arrays.iter().map(|a| a.job_id).collect();
    // (array, job of it) of the jobs not ended yet.
    let mut open: Vec<(usize, usize)> =
        arrays.iter().enumerate().flat_map(|(a, array)| (0..array.jobs.len()).map(move |k| (a, k))).collect();
    let mut backoff = queue::PollBackoff::new(jobfile.executor.slurm.poll_interval);
    // A task that Slurm says completed may have written its record a moment before the shared
    // filesystem shows it: it gets one more poll before it is judged.
    let mut second_look: HashSet<(usize, usize)> = HashSet::new();
    let progress = console::Progress::new(open.len());
    let root = &jobfile.root;
    loop {
        if interrupted.load(Ordering::SeqCst) {
            progress.clear();
            outcome.interrupted = true;
            if run.no_cancel {
                console::failure("Interrupted", "the submitted jobs go on running on Slurm (--no-cancel)");
            } else {
                command::cancel(&ids).context("cannot cancel the submitted arrays")?;
                console::failure("Cancelled", &format!("Slurm arrays {}", join(&ids)));
            }
            return Ok(());
        }
        let states = match command::queue(&ids) {
            Ok(entries) => queue::task_states(&entries),
            Err(e) => {
                console::failure("Warning", &format!("{e:#}; trying again"));
                sleep_unless_interrupted(backoff.next(false), interrupted);
                continue;
            }
        };
        let mut gone: Vec<(usize, usize)> = Vec::new();
        let mut changed = false;
        open.retain(|&(a, k)| {
            let array = &arrays[a];
            let ArrayJob { index, spec, .. } = &array.jobs[k];
            let dir = &jobs[*index].slot.dir;
            let state = states.get(&array.task_of(k));
            if state.is_some_and(|s| !s.state.is_finished()) {
                return true;
            }
            if let Some(record) = store::read_record(dir).filter(|r| r.key == spec.key) {
                changed = true;
                report(&progress, *index, &record, dir, root);
                outcome.records.push((*index, record));
                return false;
            }
            if state.is_some_and(|s| s.state == queue::SlurmState::Completed) && second_look.insert((a, k)) {
                return true;
            }
            gone.push((a, k));
            false
        });
        if !gone.is_empty() {
            changed = true;
            // Tasks Slurm no longer lists: its accounting may still know how they ended.
            let forgotten: Vec<u64> = gone
                .iter()
                .filter(|&&(a, k)| !states.contains_key(&arrays[a].task_of(k)))
                .map(|(a, _)| arrays[*a].job_id)
                .collect();
            let accounted = if forgotten.is_empty() {
                HashMap::new()
            } else {
                command::accounting(&forgotten).ok().flatten().map(|e| queue::task_states(&e)).unwrap_or_default()
            };
            for (a, k) in gone {
                let array = &arrays[a];
                let ArrayJob { index, spec, .. } = &array.jobs[k];
                let key = array.task_of(k);
                let state: Option<&TaskState> = states.get(&key).or_else(|| accounted.get(&key));
                let log = files::task_log(&array.build_dir, key.0, key.1);
                let dir = &jobs[*index].slot.dir;
                let record = record_verdict(spec, dir, state, &log, &array.limits);
                report(&progress, *index, &record, dir, root);
                outcome.records.push((*index, record));
            }
        }
        if open.is_empty() {
            progress.clear();
            return Ok(());
        }
        progress.message(&format!("{} on Slurm", plural_jobs(open.len())));
        sleep_unless_interrupted(backoff.next(changed), interrupted);
    }
}

fn report(progress: &console::Progress, index: usize, record: &JobRecord, dir: &Path, root: &Path) {
    progress.finished(Finished::of_record(index, record.clone(), dir.to_path_buf()).line(root), true);
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

/// The job folders that arrays submitted by earlier builds still have queued or running. Asks
/// Slurm only when such arrays exist; a build folder whose tasks all ended is marked done
/// (`retire`, for the build holding the lock) so that later builds stop asking.
pub fn in_flight(jobfile: &Jobfile, retire: bool) -> HashSet<PathBuf> {
    let Ok(entries) = fs::read_dir(slurm_dir(jobfile)) else { return HashSet::new() };
    let builds: Vec<(PathBuf, Vec<SubmittedArray>)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .map(|dir| {
            let arrays = files::read_submitted(&dir);
            (dir, arrays)
        })
        .filter(|(_, arrays)| !arrays.is_empty())
        .collect();
    if builds.is_empty() {
        return HashSet::new();
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
            return builds.iter().flat_map(|(dir, arrays)| arrays.iter().flat_map(|a| manifest_dirs(dir, a))).collect();
        }
    };
    let mut running = HashSet::new();
    let mut ended = Vec::new();
    for (dir, arrays) in &builds {
        let mut any = false;
        for array in arrays {
            let dirs = manifest_dirs(dir, array);
            for (line, job_dir) in dirs.into_iter().enumerate() {
                let task = (line / array.jobs_per_task.max(1)) as u32;
                let state = states.get(&(array.job_id, task));
                if state.is_some_and(|s| !s.state.is_finished()) {
                    running.insert(job_dir);
                    any = true;
                } else if retire {
                    ended.push((job_dir, state, files::task_log(dir, array.job_id, task), array.limits()));
                }
            }
        }
        if retire && !any {
            let _ = fs::rename(dir.join(files::ARRAYS_FILE), dir.join(format!("{}.ended", files::ARRAYS_FILE)));
        }
    }
    // A folder submitted again by a later build is that build's.
    for (job_dir, state, log, limits) in ended.into_iter().filter(|(dir, ..)| !running.contains(dir)) {
        settle(&job_dir, state, &log, &limits);
    }
    running
}

/// A task of an earlier (detached) build that ended without writing its record — stopped by
/// Slurm — gets Slurm's verdict as its record, as the build that follows its arrays would do.
fn settle(job_dir: &Path, state: Option<&TaskState>, log: &Path, limits: &queue::TaskLimits) {
    let Some(spec) = task::read_launch(job_dir) else { return };
    if store::read_record(job_dir).is_some_and(|r| r.key == spec.key) {
        return;
    }
    record_verdict(&spec, job_dir, state, log, limits);
}

/// Writes Slurm's verdict on a task that ended without the job's record as that record.
fn record_verdict(
    spec: &TaskSpec,
    dir: &Path,
    state: Option<&TaskState>,
    log: &Path,
    limits: &queue::TaskLimits,
) -> JobRecord {
    let verdict = queue::verdict(state, log, limits);
    let record = JobRecord {
        attempts: task::attempts_in(dir),
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
