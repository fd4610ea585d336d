//! Running jobs: a prepared folder ([`prepare`]), one run of its command with its retries and its
//! record ([`task`]), and the two executors that run many: the local pool ([`local`]) and Slurm
//! ([`slurm`]). Both return one [`Outcome`].

mod finish;
mod local;
mod prepare;
mod request;
mod slots;
pub mod slurm;
pub mod supervisor;
pub mod task;

pub use finish::{Outcome, attempt_note, failure_detail};

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;

use crate::jobfile::{ExecutorKind, StageView};
use crate::plan::Job;
use crate::store::lock::WorkspaceLock;
use crate::store::{self, FileStamp, JobRecord, JobStatus, RecordSummary, SlotState};
use finish::{Finished, Tally};

/// What the build asks of an executor besides the jobs.
pub struct RunOptions {
    /// Jobs run at once (local).
    pub workers: usize,
    /// Start no job after one failed.
    pub fail_fast: bool,
    /// Slurm: submit and return at once.
    pub detach: bool,
    /// Slurm: on Ctrl-C, leave the submitted jobs running.
    pub no_cancel: bool,
}

/// Runs the `pending` jobs (indices into `jobs`) of one stage on `executor`; each job's state
/// becomes what its new record says.
pub fn run(
    executor: ExecutorKind,
    options: &RunOptions,
    jobfile: StageView<'_>,
    lock: &WorkspaceLock,
    jobs: &mut [Job],
    pending: &[usize],
    clock: Instant,
) -> anyhow::Result<Outcome> {
    let interrupted = prepare_run(&jobfile.workspace.jobs)?;
    match executor {
        ExecutorKind::Local => local::run(options, jobfile, lock, jobs, pending, interrupted, clock),
        ExecutorKind::Slurm => on_slurm(options, jobfile, jobs, pending, &interrupted, clock),
    }
}

/// Prints the batch scripts that a Slurm build of the `pending` jobs would submit.
pub fn print_slurm_scripts(jobfile: StageView<'_>, jobs: &[Job], pending: &[usize]) -> anyhow::Result<()> {
    let run = slurm::SlurmRun { detach: false, no_cancel: false, dry_run: true };
    slurm::run(&run, jobfile, jobs, pending, &Arc::new(AtomicBool::new(false)))?;
    Ok(())
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

/// Runs the `pending` jobs on Slurm and counts how they ended, as the local pool does.
fn on_slurm(
    options: &RunOptions,
    jobfile: StageView<'_>,
    jobs: &mut [Job],
    pending: &[usize],
    interrupted: &Arc<AtomicBool>,
    clock: Instant,
) -> anyhow::Result<Outcome> {
    let run = slurm::SlurmRun { detach: options.detach, no_cancel: options.no_cancel, dry_run: false };
    let followed = slurm::run(&run, jobfile, jobs, pending, interrupted)?;
    if options.detach && !followed.interrupted {
        let failed =
            !followed.not_started.is_empty() || followed.records.iter().any(|(_, r)| r.status != JobStatus::Done);
        apply_records(jobs, followed.records);
        return Ok(Outcome { failed, interrupted: false, submitted: true });
    }
    let cached = jobs.len() - pending.len();
    Ok(tally(jobfile, jobs, pending.len(), cached, followed, clock))
}

/// Follows the `queued` jobs that an earlier build left on Slurm to their end (they are not
/// submitted again), and counts how they ended; `cached`: the stage's jobs that neither these
/// nor the jobs this build runs next are.
pub fn follow_queued(
    jobfile: StageView<'_>,
    jobs: &mut [Job],
    queued: &[usize],
    cached: usize,
    clock: Instant,
) -> anyhow::Result<Outcome> {
    let interrupted = prepare_run(&jobfile.workspace.jobs)?;
    let followed = slurm::follow_earlier(jobfile, jobs, queued, &interrupted)?;
    Ok(tally(jobfile, jobs, queued.len(), cached, followed, clock))
}

/// The summary of jobs followed on Slurm, as the local pool gives its own; each job's state
/// becomes what its record says.
fn tally(
    jobfile: StageView<'_>,
    jobs: &mut [Job],
    followed_count: usize,
    cached: usize,
    followed: slurm::Followed,
    clock: Instant,
) -> Outcome {
    let root = &jobfile.root;
    let mut tally = Tally { cached, ..Tally::default() };
    for (index, message) in &followed.not_started {
        tally.failed.push(format!("  {} (not submitted): {message}", jobs[*index].planned.name));
    }
    for (index, record) in &followed.records {
        match record.status {
            JobStatus::Done => tally.ran += 1,
            JobStatus::Interrupted => tally.interrupted += 1,
            _ => {
                let finished = Finished::of_record(*index, record.clone(), jobs[*index].slot.dir.clone());
                tally.failed.push(finished.summary(root));
            }
        }
    }
    let ended = followed.records.len() + followed.not_started.len();
    tally.interrupted += followed_count - ended.min(followed_count);
    apply_records(jobs, followed.records);
    tally.finish(jobs.len(), clock.elapsed().as_secs_f64(), followed.interrupted)
}
