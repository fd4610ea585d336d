//! `jobman verify`: every done job's outputs checked against the hashes its record took; a job
//! that fails is done no more, and the next build reruns it. A build runs the same check by
//! itself on the jobs an earlier build finished without reaching its final sync.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::plan::Workspace;
use crate::store::lock::WorkspaceLock;
use crate::store::verify::{Unsynced, Unverified, verify_done_jobs};
use crate::util::console;
use crate::util::exit;
use crate::util::text::plural;

pub struct VerifyOptions {
    pub jobfile: PathBuf,
}

pub fn verify(options: &VerifyOptions) -> anyhow::Result<i32> {
    let Workspace { jobfile, store } = Workspace::open(&options.jobfile)?;
    let lock = WorkspaceLock::acquire(&jobfile.workspace.state)?;
    let (checked, failed) = verify_done_jobs(&store.jobs_dir, SystemTime::UNIX_EPOCH)?;
    report(&failed, &jobfile.root);
    Unsynced::clear(&jobfile.workspace.state);
    drop(lock);
    let summary = format!("{}, {} no longer matching their records", plural(checked, "done job"), failed.len());
    if failed.is_empty() {
        console::status("Verified", &summary);
        Ok(exit::OK)
    } else {
        console::failure("Verified", &format!("{summary} (the next build reruns them)"));
        Ok(exit::JOB_FAILED)
    }
}

/// Under the build's lock: when an earlier build ended before its final sync (a power cut, a
/// kill of the machine), the jobs it finished are checked before they are trusted.
pub fn check_after_unclean_end(state_dir: &Path, jobs_dir: &Path, root: &Path) -> anyhow::Result<()> {
    let Some(since) = Unsynced::left_behind(state_dir) else { return Ok(()) };
    let (checked, failed) = verify_done_jobs(jobs_dir, since)?;
    report(&failed, root);
    console::status(
        "Verified",
        &format!(
            "{} finished by a build that ended before syncing them; {} no longer matching their records, run again",
            plural(checked, "job"),
            failed.len()
        ),
    );
    Unsynced::clear(state_dir);
    Ok(())
}

fn report(failed: &[Unverified], root: &Path) {
    for job in failed {
        console::failure("Unverified", &format!("{}: {}: {}", job.name, job.why, console::relative(&job.dir, root)));
    }
}
