//! `jobman explain`: why each job, the report and each figure would be made again (or are up to
//! date), as text or JSON; a job named by its name or id is explained whether or not it
//! would run.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::exec::provenance;
use crate::explain::dirty::Dirty;
use crate::explain::{JobExplainer, made_elsewhere, print_products, print_reasons};
use crate::graph::BuildGraph;
use crate::jobfile::StageView;
use crate::plan::{self, Job, Workspace, select};
use crate::products;
use crate::store::{self, SlotState};
use crate::util::console;
use crate::util::diagnostic::Diagnostics;

pub struct ExplainOptions {
    pub jobfile: PathBuf,
    pub targets: Vec<String>,
    pub json: bool,
}

/// One job's explanation, as `--json` prints it.
#[derive(Serialize)]
struct JobExplanation<'a> {
    id: &'a str,
    name: &'a str,
    up_to_date: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<&'a Dirty>,
    /// For a job that is up to date: when its record was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    done_at: Option<String>,
    /// For a job that is up to date: `made at 3f2a1c0, dirty` when made from another commit
    /// or from changed tracked files.
    #[serde(skip_serializing_if = "Option::is_none")]
    made: Option<String>,
}

pub fn explain(options: &ExplainOptions) -> anyhow::Result<i32> {
    let (Workspace { jobfile, store }, mut plans) = Workspace::open_planned(&options.jobfile)?;
    let jobs: Vec<Job> = plans.iter_mut().flat_map(|p| std::mem::take(&mut p.jobs)).collect();
    let views: Vec<StageView<'_>> = plans.iter().map(|p| jobfile.stage(p.stage)).collect();
    let graph = BuildGraph::of(&jobfile);
    // Arguments that are not targets name jobs: those are explained one by one.
    let (targets, named): (Vec<String>, Vec<String>) =
        options.targets.iter().cloned().partition(|t| graph.is_target(t));
    if !named.is_empty() {
        let chosen = named
            .iter()
            .map(|reference| select::resolve(&jobs, reference).map_err(Diagnostics::from))
            .collect::<Result<Vec<usize>, Diagnostics>>()?;
        let explainer = JobExplainer::new(&views, &store, &jobs)?;
        return explain_jobs(&jobs, &chosen, &explainer, &jobfile.root, options.json);
    }
    let selection = graph.select(&targets)?;
    let explainer = JobExplainer::new(&views, &store, &jobs)?;
    let jobs: Vec<Job> = jobs.into_iter().filter(|j| selection.stages[j.stage]).collect();
    let pending = jobs.iter().filter(|j| !matches!(j.slot.state, SlotState::Done(_))).count();
    let mut reasons = Vec::with_capacity(jobs.len());
    for job in &jobs {
        reasons.push(explainer.why(job, pending)?);
    }
    let waiting = plans.iter().find(|p| p.stage == jobfile.stage).map_or(0, |p| p.waiting.len());
    let report_jobs = plan::stage_jobs(&jobs, jobfile.stage);
    let mode = products::Mode::Predict { jobs_first: products::unfinished(report_jobs, waiting) };
    let products = products::decide(jobfile.report_stage(), report_jobs, waiting, &selection, mode)?;
    let root = &jobfile.root;
    if options.json {
        let products: Vec<serde_json::Value> = products
            .iter()
            .map(|product| {
                let path = console::relative(&product.path, root);
                let message = product.reason.as_ref().map(ToString::to_string);
                serde_json::json!({ "path": path, "up_to_date": product.reason.is_none(), "why": product.reason, "message": message })
            })
            .collect();
        let now = provenance::head_commit(root);
        let explained: Vec<JobExplanation> = jobs
            .iter()
            .zip(&reasons)
            .map(|(job, why)| {
                let record = why.is_none().then(|| store::read_record(&job.slot.dir())).flatten();
                JobExplanation {
                    id: &job.slot.id,
                    name: &job.planned.name,
                    up_to_date: why.is_none(),
                    why: why.as_ref(),
                    done_at: record.as_ref().map(|r| r.ended.clone()),
                    made: record.and_then(|r| made_elsewhere(&r.provenance, now.as_deref())),
                }
            })
            .collect();
        let explained = if selection.jobs() { explained } else { Vec::new() };
        let json = serde_json::json!({ "format": 1, "jobs": explained, "products": products });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(0);
    }
    if selection.jobs() {
        let waiting = plans.iter().filter(|p| selection.stages[p.stage]).map(|p| p.waiting.len()).sum();
        print_reasons(&jobs, &reasons, true, waiting, usize::MAX);
    }
    print_products(&products, root);
    Ok(0)
}

/// Named jobs, each explained whether or not it would run.
fn explain_jobs(
    jobs: &[Job],
    chosen: &[usize],
    explainer: &JobExplainer<'_>,
    root: &Path,
    json: bool,
) -> anyhow::Result<i32> {
    let now = provenance::head_commit(root);
    let mut explained = Vec::new();
    for &i in chosen {
        let job = &jobs[i];
        let why = explainer.why(job, chosen.len())?;
        let record = why.is_none().then(|| store::read_record(&job.slot.dir())).flatten();
        let made = record.as_ref().and_then(|r| made_elsewhere(&r.provenance, now.as_deref()));
        if json {
            explained.push(serde_json::json!({
                "id": job.slot.id,
                "name": job.planned.name,
                "up_to_date": why.is_none(),
                "why": why,
                "key": job.planned.key.hex(),
                "done_at": record.as_ref().map(|r| &r.ended),
                "made": made,
            }));
            continue;
        }
        match (why, record) {
            (Some(why), _) => {
                let missed = explainer.caches_missed(&why);
                println!("{} ({}) would run: {why}{missed}", job.planned.name, job.slot.id);
                for (_, diff) in why.diffs() {
                    for line in diff.lines() {
                        println!("    {line}");
                    }
                }
            }
            (None, record) => {
                let when = record.map_or_else(String::new, |r| {
                    format!(", written {} after a run of {}", r.ended, console::duration(r.duration_secs))
                });
                let made = made.map_or_else(String::new, |made| format!(" ({made})"));
                println!(
                    "{} ({}) is up to date{made}: its key {} is what its record says, and the record says done{when}",
                    job.planned.name,
                    job.slot.id,
                    job.planned.key.hex()
                );
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "format": 1, "jobs": explained }))?);
    }
    Ok(0)
}
