//! `jobman status`: where each job of the current Jobfile stands, without running anything.

use std::path::PathBuf;

use serde::Serialize;

use crate::build::plural;
use crate::jobfile::Jobfile;
use crate::plan;
use crate::store::{SlotState, Store};

pub struct StatusOptions {
    pub jobfile: PathBuf,
    pub jobs: bool,
    pub json: bool,
}

#[derive(Serialize)]
struct JobLine {
    id: String,
    name: String,
    status: &'static str,
    params: serde_json::Value,
}

#[derive(Serialize)]
struct Summary {
    total: usize,
    done: usize,
    failed: usize,
    timed_out: usize,
    interrupted: usize,
    pending: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    jobs: Option<Vec<JobLine>>,
}

pub fn status(options: &StatusOptions) -> anyhow::Result<i32> {
    let jobfile = Jobfile::load(&options.jobfile)?;
    let store = Store::open(jobfile.workspace.jobs.clone(), jobfile.workspace.state.join("index"));
    let jobs = plan::locate(&store, plan::plan(&jobfile)?);
    let lines: Vec<JobLine> = jobs
        .into_iter()
        .map(|job| JobLine {
            id: job.slot.id,
            name: job.planned.name,
            status: match job.slot.state {
                SlotState::Done(_) => "done",
                SlotState::NotDone(record) => record.status.key(),
                SlotState::Incomplete | SlotState::Absent => "pending",
            },
            params: job.planned.params.nested(),
        })
        .collect();
    let count = |status: &str| lines.iter().filter(|l| l.status == status).count();
    let summary = Summary {
        total: lines.len(),
        done: count("done"),
        failed: count("failed"),
        timed_out: count("timed_out"),
        interrupted: count("interrupted"),
        pending: count("pending"),
        jobs: None,
    };
    if options.json {
        let summary = Summary { jobs: options.jobs.then_some(lines), ..summary };
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(0);
    }
    if options.jobs {
        let width = lines.iter().map(|l| l.name.len()).max().unwrap_or(4).max(4);
        println!("{:<14}{:<width$}  STATUS", "ID", "NAME");
        for line in &lines {
            println!("{:<14}{:<width$}  {}", line.id, line.name, line.status.replace('_', " "));
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
    parts.push(format!("{} pending", summary.pending));
    println!("{}: {}", plural(summary.total, "job"), parts.join(", "));
    Ok(0)
}
