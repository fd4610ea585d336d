//! `jobman ls`: the jobs of the current Jobfile, one per line, chosen by params (`--where`) and
//! status, as an aligned table, CSV, JSON (see docs/cli.md, "JSON output") or folder paths.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use serde::Serialize;

use crate::exec::slurm::{self, InFlight};
use crate::jobfile::Jobfile;
use crate::jobfile::format;
use crate::plan::Job;
use crate::plan::select::{self, CurrentJobs};
use crate::products::report::cell_text;
use crate::store::{self, JobStatus, SlotState};
use crate::util::console;
use crate::util::parallel::parallel_map;

/// The version of the JSON shapes of `ls`, `status` and `show`: bumped when a field changes
/// meaning or goes away (adding a field does not bump it).
pub const JSON_FORMAT: u32 = 1;

pub struct LsOptions {
    pub jobfile: PathBuf,
    /// Only the jobs whose params match this expression.
    pub filter: Option<String>,
    /// Only the jobs with one of these statuses (all of them when empty).
    pub statuses: Vec<StatusFilter>,
    /// Only the jobs of these stages (all of them when empty).
    pub stages: Vec<String>,
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for reading: id, name, status, duration and the params that vary.
    Table,
    /// id, name, status, duration (seconds) and every param, one column each.
    Csv,
    /// One object per job under `jobs` (the shape is documented and stable).
    Json,
    /// The absolute path of each job folder that exists, one per line.
    Paths,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFilter {
    Done,
    /// Failed, timed out or interrupted.
    Failed,
    #[value(name = "timed_out", alias = "timed-out")]
    TimedOut,
    Interrupted,
    /// No record of the job's key: never ran, or a run that was cut off.
    Pending,
    /// Pending, and a job of the same name ran before with other ingredients.
    Stale,
    /// Pending, and running on Slurm now.
    Running,
    /// Pending, and waiting in Slurm's queue (pending, held or requeued there).
    Queued,
}

/// One job in JSON output (`ls --format json`, `status --json --jobs`).
#[derive(Serialize)]
pub(crate) struct JobEntry<'a> {
    id: &'a str,
    /// The job's stage, in a Jobfile with stages.
    #[serde(skip_serializing_if = "Option::is_none")]
    stage: Option<&'a str>,
    name: &'a str,
    status: &'static str,
    duration_secs: Option<f64>,
    dir: PathBuf,
    params: serde_json::Value,
}

impl<'a> JobEntry<'a> {
    pub(crate) fn of(job: &'a Job, jobfile: &'a Jobfile) -> JobEntry<'a> {
        JobEntry {
            id: &job.slot.id,
            stage: jobfile.stage(job.stage).name(),
            name: &job.planned.name,
            status: job.slot.state.status_key(),
            duration_secs: job.slot.state.summary().map(|s| s.duration_secs),
            dir: job.slot.dir(),
            params: job.planned.params.nested(),
        }
    }
}

#[derive(Serialize)]
struct ListingHead {
    format: u32,
}

pub fn ls(options: &LsOptions) -> anyhow::Result<i32> {
    let CurrentJobs { jobfile, jobs, .. } = CurrentJobs::load(&options.jobfile)?;
    let chosen = select::matching(&jobfile, &jobs, options.filter.as_deref())?;
    let none_chosen = !chosen.contains(&true);
    let stages = select::stages_named(&jobfile, &options.stages)?;
    let stale =
        if options.statuses.contains(&StatusFilter::Stale) { ran_before(&jobfile, &jobs) } else { HashSet::new() };
    // Asking Slurm costs a call to its controller: only when the filter needs it.
    let on_slurm = if options.statuses.iter().any(|s| matches!(s, StatusFilter::Running | StatusFilter::Queued)) {
        slurm::in_flight(&jobfile, false)
    } else {
        HashMap::new()
    };
    let listed: Vec<&Job> = jobs
        .iter()
        .zip(chosen)
        .filter(|(job, chosen)| {
            *chosen
                && (stages.is_empty() || stages.contains(&job.stage))
                && (options.statuses.is_empty()
                    || options.statuses.iter().any(|&wanted| has_status(job, wanted, &stale, &on_slurm)))
        })
        .map(|(job, _)| job)
        .collect();
    if let Some(filter) = &options.filter
        && none_chosen
        && !jobs.is_empty()
    {
        let params: Vec<&crate::jobfile::ParamSet> = jobs.iter().map(|j| &j.planned.params).collect();
        console::failure("Warning", &select::matched_none(filter, &params));
    }
    match options.format {
        Format::Table => {
            if listed.is_empty() {
                console::note("Listed", &format!("0 of {}", crate::util::text::plural(jobs.len(), "job")));
                return Ok(0);
            }
            let shown = varying_params(&jobfile, &jobs);
            console::to_stdout(|out| write_table(out, &jobfile, &listed, &shown))?;
        }
        Format::Csv => console::to_stdout(|out| write_csv(out, &jobfile, &listed))?,
        Format::Json => {
            let head = ListingHead { format: JSON_FORMAT };
            console::to_stdout(|out| {
                console::write_json_with_list(out, &head, "jobs", listed, |job| JobEntry::of(job, &jobfile))
            })?;
        }
        Format::Paths => {
            // Locating the jobs found which folders exist.
            let (absent, present): (Vec<&Job>, Vec<&Job>) =
                listed.iter().partition(|j| matches!(j.slot.state, SlotState::Absent));
            console::to_stdout(|out| {
                for job in present {
                    writeln!(out, "{}", job.slot.dir().display())?;
                }
                Ok(())
            })?;
            if !absent.is_empty() {
                console::note(
                    "Skipped",
                    &format!(
                        "{} without a folder yet (never run)",
                        crate::util::text::plural(absent.len(), "pending job")
                    ),
                );
            }
        }
    }
    Ok(0)
}

fn has_status(job: &Job, wanted: StatusFilter, stale: &HashSet<String>, on_slurm: &HashMap<PathBuf, InFlight>) -> bool {
    let status = job.slot.state.status();
    let flight = || if status.is_none() { on_slurm.get(&job.slot.dir()) } else { None };
    match wanted {
        StatusFilter::Done => status == Some(JobStatus::Done),
        StatusFilter::Failed => matches!(job.slot.state, SlotState::NotDone(_)),
        StatusFilter::TimedOut => status == Some(JobStatus::TimedOut),
        StatusFilter::Interrupted => status == Some(JobStatus::Interrupted),
        StatusFilter::Pending => status.is_none(),
        StatusFilter::Stale => status.is_none() && stale.contains(&job.planned.name),
        StatusFilter::Running => flight() == Some(&InFlight::Running),
        StatusFilter::Queued => matches!(flight(), Some(InFlight::Queued { .. })),
    }
}

/// The names of jobs that ran with other ingredients than any current job's: read from the
/// records of the folders no current job owns. A pending job of such a name is stale.
fn ran_before(jobfile: &Jobfile, jobs: &[Job]) -> HashSet<String> {
    let owned: HashSet<&str> =
        jobs.iter().filter(|j| j.slot.state.summary().is_some()).map(|j| j.slot.id.as_str()).collect();
    let current: HashSet<String> = jobs.iter().map(|j| j.planned.key.hex()).collect();
    let Ok(entries) = fs::read_dir(&jobfile.workspace.jobs) else { return HashSet::new() };
    let others: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_hexdigit()) && !owned.contains(n))
        })
        .map(|e| e.path())
        .collect();
    parallel_map(others, |dir| store::read_record(&dir))
        .into_iter()
        .flatten()
        .filter(|record| !current.contains(&record.key))
        .map(|record| record.name)
        .collect()
}

/// The params worth a column in the table: the swept ones, and constants that `include` points
/// set to another value. A constant everywhere the same would repeat on every line.
/// The params of every stage, in stage order, each once: (name, swept in some stage).
fn all_params(jobfile: &Jobfile) -> Vec<(&str, bool)> {
    let mut params: Vec<(&str, bool)> = Vec::new();
    for param in jobfile.params_of_every_stage() {
        match params.iter_mut().find(|(name, _)| *name == param.name) {
            Some((_, swept)) => *swept |= param.swept,
            None => params.push((&param.name, param.swept)),
        }
    }
    params
}

/// A job's value of a param, if its stage has it.
fn value_of<'j>(job: &'j Job, name: &str) -> Option<&'j serde_json::Value> {
    job.planned.params.get(name)
}

/// The params whose values differ between jobs (or that are swept): the columns worth showing.
fn varying_params<'f>(jobfile: &'f Jobfile, jobs: &[Job]) -> Vec<&'f str> {
    all_params(jobfile)
        .into_iter()
        .filter(|&(name, swept)| swept || jobs.iter().any(|j| value_of(j, name) != value_of(&jobs[0], name)))
        .map(|(name, _)| name)
        .collect()
}

fn write_table(out: &mut dyn Write, jobfile: &Jobfile, jobs: &[&Job], shown: &[&str]) -> io::Result<()> {
    let staged = jobfile.has_stages();
    let mut header: Vec<String> = ["ID", "NAME", "STATUS", "DURATION"].map(String::from).to_vec();
    if staged {
        header.insert(1, "STAGE".into());
    }
    header.extend(shown.iter().map(|name| name.to_string()));
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|job| {
            let mut row = vec![
                job.slot.id.clone(),
                job.planned.name.clone(),
                job.slot.state.status_key().replace('_', " "),
                job.slot.state.summary().map_or_else(String::new, |s| console::duration(s.duration_secs)),
            ];
            if staged {
                row.insert(1, jobfile.stages[job.stage].name.get_ref().clone());
            }
            row.extend(shown.iter().map(|name| {
                value_of(job, name).map_or_else(String::new, |v| format::display(v, jobfile.formats.get(*name)))
            }));
            row
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn write_csv(out: &mut dyn Write, jobfile: &Jobfile, jobs: &[&Job]) -> io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    let staged = jobfile.has_stages();
    let params: Vec<&str> = all_params(jobfile).into_iter().map(|(name, _)| name).collect();
    let mut header: Vec<&str> = vec!["id", "name", "status", "duration"];
    if staged {
        header.insert(1, "stage");
    }
    header.extend(&params);
    writer.write_record(&header)?;
    for job in jobs {
        let mut row = vec![
            job.slot.id.clone(),
            job.planned.name.clone(),
            job.slot.state.status_key().to_string(),
            job.slot.state.summary().map_or_else(String::new, |s| s.duration_secs.to_string()),
        ];
        if staged {
            row.insert(1, jobfile.stages[job.stage].name.get_ref().clone());
        }
        row.extend(params.iter().map(|name| value_of(job, name).map_or_else(String::new, cell_text)));
        writer.write_record(&row)?;
    }
    writer.flush()
}
