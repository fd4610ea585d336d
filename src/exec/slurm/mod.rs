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
mod packing;
pub mod pipeline;
mod queue;
mod script;
mod session;
#[cfg(test)]
mod tests;

pub use files::read_manifest_entry;
pub use script::SlurmSettings;
pub use session::Session;
use session::StageArrays;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::exec::request::Requests;
use crate::exec::task::{self, TaskSpec};
use crate::jobfile::{Jobfile, StageView};
use crate::plan::Job;
use crate::store::{self, JobRecord, SlotState};
use crate::util::console;
use crate::util::diagnostic::Diagnostics;
use files::SubmittedArray;
use queue::TaskState;
use script::ArrayScript;

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
    let arrays = StageArrays::of(jobfile);
    let mut durations = packing::History::load(&slurm_dir(&jobfile));
    durations.plan(&arrays.stage, done_durations(jobs));
    let per_task = |s: &SlurmSettings, n: usize| {
        let slots = || command::free_slots(s.partition.as_deref(), s.cpus.unwrap_or(1)).unwrap_or(1);
        arrays.per_task(&durations.of(&arrays.stage), slots, s, n)
    };
    let build_dir = new_build_dir(&jobfile);
    for (n, plan) in script::plan_arrays(&settings, per_task, script::DEFAULT_MAX_ARRAY_SIZE).iter().enumerate() {
        let (manifest, script) = array_script(&arrays, plan, &build_dir, n)?;
        println!("# array {n}: {} ({})", plural_jobs(plan.jobs.len()), console::relative(&manifest, &jobfile.root));
        print!("{script}");
    }
    Ok(())
}

/// Array `n` of a build's folder: its manifest's path and its batch script.
fn array_script(
    arrays: &StageArrays,
    plan: &script::ArrayPlan,
    build_dir: &Path,
    n: usize,
) -> anyhow::Result<(PathBuf, String)> {
    let manifest = files::manifest_path(build_dir, n);
    let jobman = std::env::current_exe().context("cannot find the jobman binary to run on the nodes")?;
    let script = script::batch_script(&ArrayScript {
        job_name: &arrays.job_name,
        settings: &plan.settings,
        tasks: plan.tasks(),
        max_parallel: arrays.max_parallel,
        jobs_per_task: plan.jobs_per_task,
        requeue: arrays.requeue,
        build_dir,
        manifest: &manifest,
        jobman: &jobman,
    })
    .map_err(anyhow::Error::msg)?;
    Ok((manifest, script))
}

/// How long the done ones of these jobs took.
fn done_durations(jobs: &[Job]) -> impl Iterator<Item = f64> + '_ {
    jobs.iter().filter_map(|job| match &job.slot.state {
        SlotState::Done(summary) => Some(summary.duration_secs),
        _ => None,
    })
}

fn plural_jobs(n: usize) -> String {
    crate::util::text::plural(n, "job")
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
fn settle(
    job_dir: &Path,
    state: Option<&TaskState>,
    (build_dir, task): (&Path, (u64, u32)),
    limits: &queue::TaskLimits,
) {
    let Some(spec) = task::read_launch(job_dir) else { return };
    if store::read_record(job_dir).is_some_and(|r| r.key == spec.key) {
        return;
    }
    let verdict = queue::verdict(state, &files::task_log(build_dir, task.0, task.1), limits);
    record_verdict(&spec, job_dir, verdict, task);
}

/// Writes Slurm's verdict on a task (array and task ids) that ended without the job's record
/// as that record.
fn record_verdict(spec: &TaskSpec, dir: &Path, verdict: queue::Verdict, (job_id, task_id): (u64, u32)) -> JobRecord {
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
