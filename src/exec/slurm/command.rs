//! The thin layer that runs Slurm's commands; everything it reads goes through the parsers of
//! [`super::queue`] and [`super::script`].

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{Context, bail};

use super::queue::QueueEntry;
use super::queue::{parse_sacct, parse_squeue, sacct_args, squeue_args};
use super::script::{
    DEFAULT_MAX_ARRAY_SIZE, Refusal, parse_idle_cpus, parse_max_array_size, parse_refusal, parse_sbatch_id,
};

/// Why Slurm's commands cannot work here, found without running one: each of them waits a
/// minute for a missing configuration file before it fails.
fn missing_config() -> Option<String> {
    let conf = std::env::var_os("SLURM_CONF").filter(|conf| !Path::new(conf).exists())?;
    Some(format!(
        "SLURM_CONF names {}, which does not exist: point it at the cluster's slurm.conf, or unset it",
        Path::new(&conf).display()
    ))
}

fn run(program: &str, args: &[String]) -> anyhow::Result<Output> {
    if let Some(problem) = missing_config() {
        bail!(problem);
    }
    Command::new(program)
        // Pending tasks print as one range however long it gets, instead of cut at 64 bytes.
        .env("SLURM_BITSTR_LEN", "0")
        .args(args)
        .output()
        .with_context(|| {
            format!(
                "cannot run `{program}`; the Slurm executor needs Slurm's commands on PATH: run jobman on the cluster's login node, or build with `--executor local`"
            )
        })
}

fn stdout(program: &str, args: &[String]) -> anyhow::Result<String> {
    let output = run(program, args)?;
    if !output.status.success() {
        bail!("`{program} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Whether Slurm's controller answers (`scontrol ping`); why not, when it does not.
pub fn cluster_answers() -> Result<(), String> {
    if let Some(problem) = missing_config() {
        return Err(problem);
    }
    let up = run("scontrol", &["ping".into()])
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("UP"));
    if up {
        return Ok(());
    }
    Err("Slurm does not answer (`scontrol ping`): run the build on the cluster's login node, or start a local \
         cluster for trying jobman with `bash scripts/slurm-up.sh`"
        .into())
}

/// The cluster's `MaxArraySize`, or Slurm's default when it cannot be read.
pub fn max_array_size() -> usize {
    stdout("scontrol", &["show".into(), "config".into()])
        .ok()
        .and_then(|config| parse_max_array_size(&config))
        .unwrap_or(DEFAULT_MAX_ARRAY_SIZE)
}

/// Why a submission did not go through.
#[derive(Debug)]
pub enum SubmitError {
    /// Slurm refused it for now: wait and submit again.
    Refused(Refusal),
    Failed(anyhow::Error),
}

impl SubmitError {
    pub fn into_error(self) -> anyhow::Error {
        match self {
            SubmitError::Refused(Refusal::SubmitLimit(why) | Refusal::Busy(why)) => anyhow::anyhow!("sbatch: {why}"),
            SubmitError::Failed(error) => error,
        }
    }
}

/// Submits a batch script; returns the array's job id.
pub fn submit(script: &Path) -> Result<u64, SubmitError> {
    let args = ["--parsable".to_string(), script.display().to_string()];
    let output = run("sbatch", &args).map_err(SubmitError::Failed)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        if let Some(refusal) = parse_refusal(&stderr) {
            return Err(SubmitError::Refused(refusal));
        }
        return Err(SubmitError::Failed(anyhow::anyhow!("`sbatch {}` failed: {}", args.join(" "), stderr.trim())));
    }
    let out = String::from_utf8_lossy(&output.stdout);
    parse_sbatch_id(&out)
        .with_context(|| format!("sbatch printed `{}` instead of a job id", out.trim()))
        .map_err(SubmitError::Failed)
}

/// How many tasks needing `cpus` CPUs each could start now on `partition` (the cluster's default
/// partitions when `None`): its idle CPUs, from one `sinfo` call.
pub fn free_slots(partition: Option<&str>, cpus: u32) -> Option<usize> {
    let mut args = vec!["--noheader".to_string(), "--format=%C".to_string()];
    args.extend(partition.map(|p| format!("--partition={p}")));
    let text = stdout("sinfo", &args).ok()?;
    let idle: usize = text.lines().filter_map(parse_idle_cpus).sum();
    Some(idle / cpus.max(1) as usize)
}

/// The state of every task of these arrays, in one `squeue` call. Arrays Slurm has forgotten
/// are absent (squeue fails when asked for one forgotten job alone: that is no entry).
pub fn queue(job_ids: &[u64]) -> anyhow::Result<Vec<QueueEntry>> {
    if job_ids.is_empty() {
        return Ok(Vec::new());
    }
    let args = squeue_args(job_ids);
    let output = run("squeue", &args)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        if stderr.contains("Invalid job id") {
            return Ok(Vec::new());
        }
        bail!("`squeue {}` failed: {}", args.join(" "), stderr.trim());
    }
    parse_squeue(&String::from_utf8_lossy(&output.stdout)).map_err(|e| anyhow::anyhow!("squeue: {e}"))
}

/// The final state of these arrays' tasks from Slurm's accounting, in one `sacct` call;
/// `None` when the cluster keeps no accounting (`sacct` then says it is disabled).
pub fn accounting(job_ids: &[u64]) -> anyhow::Result<Option<Vec<QueueEntry>>> {
    let args = sacct_args(job_ids);
    let output = run("sacct", &args)?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("accounting storage is disabled") {
            return Ok(None);
        }
        bail!("`sacct {}` failed: {}", args.join(" "), stderr.trim());
    }
    parse_sacct(&String::from_utf8_lossy(&output.stdout)).map(Some).map_err(|e| anyhow::anyhow!("sacct: {e}"))
}

/// Cancels these arrays, all their tasks (`scancel`).
pub fn cancel(job_ids: &[u64]) -> anyhow::Result<()> {
    if job_ids.is_empty() {
        return Ok(());
    }
    stdout("scancel", &job_ids.iter().map(u64::to_string).collect::<Vec<_>>()).map(drop)
}
