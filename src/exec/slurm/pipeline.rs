//! The pipeline job: the rest of a detached build, run on the cluster.
//!
//! `jobman build --detach` submits what is ready, then one small job (1 CPU, 1 GB) that runs
//! the same build on the cluster, following instead of detaching: it collects the jobs as they
//! end, submits each downstream job once its upstream jobs are done, and makes the report and
//! figures. Nothing of the user's session has to stay. It takes the workspace lock like any
//! build (a build started meanwhile waits for it, and says so). Slurm warns it two minutes
//! before its time limit (`--signal=B:USR1@120`): it then submits a new pipeline job to go on and
//! ends, leaving the jobs running. It is submitted `--requeue`: should its node fail, Slurm
//! starts it again and it takes the build up where it was, as any later build would.
//!
//! `.jobman/slurm/pipeline.sh` is its batch script, `pipeline.json` names the last one
//! submitted, `pipeline-JOBID.log` is its output.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{command, job_name, slurm_dir};
use crate::jobfile::{Jobfile, PerJob};
use crate::store;
use crate::util::console;
use crate::util::text::shell_word;

const SCRIPT_FILE: &str = "pipeline.sh";
const JOB_FILE: &str = "pipeline.json";

/// The pipeline job last submitted for a workspace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineJob {
    pub job_id: u64,
    /// When it was submitted, in seconds since 1970.
    pub submitted: u64,
}

/// Submits the pipeline job that finishes this build on the cluster, running `jobman ARGS`;
/// none when one is still queued or running (it follows what this build submitted too).
pub fn detach(jobfile: &Jobfile, args: &[String]) -> anyhow::Result<()> {
    let root = &jobfile.root;
    if let Some(job) = live(jobfile) {
        let log = console::relative(&log_path(jobfile, job.job_id), root);
        console::status(
            "Detached",
            &format!("pipeline job {} (already on Slurm) finishes the build; log: {log}", job.job_id),
        );
        return Ok(());
    }
    let jobman = std::env::current_exe().context("cannot find the jobman binary to run on the cluster")?;
    let script = script(jobfile, &jobman, args)?;
    let path = slurm_dir(jobfile).join(SCRIPT_FILE);
    std::fs::create_dir_all(slurm_dir(jobfile))?;
    store::write_atomic(&path, script.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    let job = submit(jobfile, &path)?;
    let log = console::relative(&log_path(jobfile, job.job_id), root);
    console::status(
        "Detached",
        &format!(
            "pipeline job {} finishes the build on the cluster (log: {log}); `jobman status` shows where it stands",
            job.job_id
        ),
    );
    Ok(())
}

/// Submits the pipeline job's script again: the build goes on in a new pipeline job.
pub fn hand_on(jobfile: &Jobfile) -> anyhow::Result<()> {
    let job = submit(jobfile, &slurm_dir(jobfile).join(SCRIPT_FILE))?;
    console::status("Handed on", &format!("near its time limit, the build goes on as pipeline job {}", job.job_id));
    Ok(())
}

/// Slurm's warning before the time limit (SIGUSR1) stops following, as Ctrl-C with
/// `--no-cancel` does, and raises `hand_on`.
pub fn on_time_limit_warning(interrupted: &Arc<AtomicBool>, hand_on: &Arc<AtomicBool>) -> anyhow::Result<()> {
    for flag in [interrupted, hand_on] {
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(flag))
            .context("cannot install the time-limit handler")?;
    }
    Ok(())
}

/// The pipeline job last submitted, if Slurm still has it queued or running.
pub fn live(jobfile: &Jobfile) -> Option<PipelineJob> {
    let job = read(jobfile)?;
    let entries = command::queue(&[job.job_id]).ok()?;
    entries.iter().any(|e| e.job_id == job.job_id && !e.state.state.is_finished()).then_some(job)
}

/// The pipeline job last submitted, whether or not it still runs.
pub fn read(jobfile: &Jobfile) -> Option<PipelineJob> {
    let bytes = std::fs::read(slurm_dir(jobfile).join(JOB_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Where the pipeline job `job_id` writes its output.
pub fn log_path(jobfile: &Jobfile, job_id: u64) -> PathBuf {
    slurm_dir(jobfile).join(format!("pipeline-{job_id}.log"))
}

fn submit(jobfile: &Jobfile, script: &Path) -> anyhow::Result<PipelineJob> {
    let job_id =
        command::submit(script).map_err(command::SubmitError::into_error).context("cannot submit the pipeline job")?;
    let submitted = crate::util::unix_secs();
    let job = PipelineJob { job_id, submitted };
    let path = slurm_dir(jobfile).join(JOB_FILE);
    store::write_atomic(&path, &serde_json::to_vec(&job)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(job)
}

/// The pipeline job's batch script: the cluster's partition, account and QoS of the jobs when
/// they do not depend on params, one CPU and 1 GB, its log beside the builds' files.
fn script(jobfile: &Jobfile, jobman: &Path, args: &[String]) -> anyhow::Result<String> {
    let slurm = &jobfile.executor.slurm;
    let log = slurm_dir(jobfile).join("pipeline-%j.log");
    let mut options = vec![
        format!("--job-name={}-build", job_name(&jobfile.root)),
        format!("--output={}", super::script::sbatch_word(&log).map_err(anyhow::Error::msg)?),
        "--open-mode=append".to_string(),
        format!("--chdir={}", super::script::sbatch_word(&jobfile.root).map_err(anyhow::Error::msg)?),
        "--ntasks=1".to_string(),
        "--cpus-per-task=1".to_string(),
        "--mem=1G".to_string(),
        "--signal=B:USR1@120".to_string(),
        // Should its node fail, it starts again and takes the build up where it was.
        "--requeue".to_string(),
    ];
    for (name, setting) in [("partition", &slurm.partition), ("account", &slurm.account), ("qos", &slurm.qos)] {
        if let Some(PerJob::Value(value)) = setting {
            options.push(format!("--{name}={value}"));
        }
    }
    let mut text = String::from("#!/bin/bash\n");
    for option in options {
        text.push_str(&format!("#SBATCH {option}\n"));
    }
    text.push_str("\n# The rest of a detached `jobman build`: it follows the jobs and makes the products.\nexec");
    let jobman = jobman.to_str().with_context(|| format!("{} is not valid UTF-8", jobman.display()))?;
    for word in std::iter::once(jobman).chain(args.iter().map(String::as_str)) {
        text.push(' ');
        text.push_str(&shell_word(word));
    }
    text.push('\n');
    Ok(text)
}
