//! `jobman status`: where the jobs of the current Jobfile stand, without running anything.

use std::path::PathBuf;

use serde::Serialize;

use crate::commands::ls::{JSON_FORMAT, JobEntry};
use crate::plan::select::CurrentJobs;
use crate::store::JobStatus;
use crate::util::console;
use crate::util::text::plural;

pub struct StatusOptions {
    pub jobfile: PathBuf,
    pub jobs: bool,
    pub json: bool,
}

/// `status --json` (with `--jobs`, followed by `jobs`); the shape is documented in docs/cli.md
/// ("JSON output").
#[derive(Serialize)]
struct Summary {
    format: u32,
    total: usize,
    done: usize,
    failed: usize,
    timed_out: usize,
    interrupted: usize,
    pending: usize,
    /// Of the pending jobs, those an earlier build submitted to Slurm that are still queued or
    /// running.
    on_slurm: usize,
}

pub fn status(options: &StatusOptions) -> anyhow::Result<i32> {
    let CurrentJobs { jobfile, jobs, waiting } = CurrentJobs::load(&options.jobfile)?;
    let submitted = crate::exec::slurm::in_flight(&jobfile, false);
    let mut summary = Summary {
        format: JSON_FORMAT,
        total: jobs.len() + waiting,
        done: 0,
        failed: 0,
        timed_out: 0,
        interrupted: 0,
        // A job waiting for upstream jobs has not run: it is pending, without an id yet.
        pending: waiting,
        on_slurm: 0,
    };
    for job in &jobs {
        let status = job.slot.state.status();
        *match status {
            Some(JobStatus::Done) => &mut summary.done,
            Some(JobStatus::Failed) => &mut summary.failed,
            Some(JobStatus::TimedOut) => &mut summary.timed_out,
            Some(JobStatus::Interrupted) => &mut summary.interrupted,
            None => &mut summary.pending,
        } += 1;
        if status.is_none() && submitted.contains(&job.slot.dir) {
            summary.on_slurm += 1;
        }
    }
    if options.json {
        return console::to_stdout(|out| {
            if options.jobs {
                console::write_json_with_list(out, &summary, "jobs", jobs.iter().collect(), |job| {
                    JobEntry::of(job, &jobfile)
                })
            } else {
                console::write_json(out, &summary)
            }
        })
        .map(|()| 0);
    }
    console::to_stdout(|out| {
        if options.jobs {
            let width = jobs.iter().map(|j| j.planned.name.chars().count()).max().unwrap_or(4).max(4);
            writeln!(out, "{:<14}{:<width$}  STATUS", "ID", "NAME")?;
            for job in &jobs {
                let status = job.slot.state.status_key().replace('_', " ");
                writeln!(out, "{:<14}{:<width$}  {status}", job.slot.id, job.planned.name)?;
            }
        }
        let mut parts = vec![format!("{} done", summary.done)];
        for (n, what) in
            [(summary.failed, "failed"), (summary.timed_out, "timed out"), (summary.interrupted, "interrupted")]
        {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        let mut notes = Vec::new();
        if summary.on_slurm > 0 {
            notes.push(format!("{} queued or running on Slurm", summary.on_slurm));
        }
        if waiting > 0 {
            notes.push(format!("{waiting} waiting for upstream jobs"));
        }
        parts.push(if notes.is_empty() {
            format!("{} pending", summary.pending)
        } else {
            format!("{} pending ({})", summary.pending, notes.join(", "))
        });
        writeln!(out, "{}: {}", plural(summary.total, "job"), parts.join(", "))
    })?;
    Ok(0)
}
