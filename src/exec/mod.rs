//! Running jobs: a prepared folder ([`prepare`]), one run of its command with its retries and its
//! record ([`task`]), and the two executors that run many: the local pool ([`local`]), which runs
//! a stage's jobs to their end, and Slurm ([`slurm`]), whose session takes jobs as the build's
//! rounds make them ready and follows them while the build plans the next. Both count how their
//! jobs ended in one [`Outcome`].

mod finish;
mod local;
mod prepare;
pub mod provenance;
mod relay;
mod request;
mod running;
pub mod shared;
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

use crate::jobfile::StageView;
use crate::plan::Job;
use crate::store::lock::WorkspaceLock;
use crate::store::{FileStamp, RecordSummary, SlotState};

/// What the build asks of the local pool besides the jobs.
pub struct RunOptions {
    /// Jobs run at once.
    pub workers: usize,
    /// Start no job after one failed.
    pub fail_fast: bool,
}

/// Runs the `pending` jobs (indices into `jobs`) of one stage on the local pool, to their end;
/// each job's state becomes what its new record says.
pub fn run_local(
    options: &RunOptions,
    jobfile: StageView<'_>,
    lock: &WorkspaceLock,
    jobs: &mut [Job],
    pending: &[usize],
    interrupted: &Arc<AtomicBool>,
    clock: Instant,
) -> anyhow::Result<Outcome> {
    local::run(options, jobfile, lock, jobs, pending, Arc::clone(interrupted), clock)
}

/// Creates the jobs folder and makes Ctrl-C (and SIGTERM) raise the returned flag instead of
/// killing jobman: from here on the build stops its jobs and records what they came to.
pub fn catch_interrupts(jobs_dir: &Path) -> anyhow::Result<Arc<AtomicBool>> {
    fs::create_dir_all(jobs_dir).with_context(|| format!("cannot create {}", jobs_dir.display()))?;
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted)).context("cannot install the Ctrl-C handler")?;
    }
    Ok(interrupted)
}

/// The new records become the jobs' states (and index entries).
fn apply_records(jobs: &mut [Job], records: Vec<(usize, RecordSummary, FileStamp)>) {
    for (index, summary, stamp) in records {
        let slot = &mut jobs[index].slot;
        slot.state = SlotState::of(summary);
        slot.stamp = Some(stamp);
        slot.indexed = false;
    }
}
