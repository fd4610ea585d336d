//! `jobman explain` (and `build --dry-run`/`--explain`): why each selected job would run, or why
//! it is up to date, as text or as JSON.

pub mod dirty;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::explain::dirty::Dirty;
use crate::graph::BuildGraph;
use crate::jobfile::ParamSet;
use crate::jobfile::StageView;
use crate::plan::Workspace;
use crate::plan::render::{Renderer, Rendering};
use crate::plan::select;
use crate::plan::{self, Job};
use crate::products::{self, ProductState};
use crate::store::build_log::{self, LogEntry};
use crate::store::{self, SlotState, Store};
use crate::util::console;
use crate::util::diagnostic::Diagnostics;
use crate::util::text::plural;

pub struct ExplainOptions {
    pub jobfile: PathBuf,
    pub targets: Vec<String>,
    pub json: bool,
}

/// Previous jobs are compared with each new one; past this many comparisons in one explanation,
/// only the newest previous jobs are candidates (the last builds' jobs are the likely ones).
const MAX_COMPARISONS: usize = 20_000_000;

/// Explains jobs against the jobs that ran before.
pub struct JobExplainer<'j> {
    /// One per stage: (stage index, its renderer).
    renderers: Vec<(usize, Renderer<'j>)>,
    /// Earlier jobs, stage by stage, oldest first within each stage.
    previous: Vec<LogEntry>,
    /// Stage name → where its jobs are in `previous`: a job is compared with its own stage's.
    stage_ranges: HashMap<Option<String>, std::ops::Range<usize>>,
    /// Canonical params → index into `previous`: a job with the same params is found at once.
    by_params: HashMap<String, usize>,
    current: HashSet<String>,
}

impl<'j> JobExplainer<'j> {
    /// `jobs` are the jobs the Jobfile names now, of the stages `views` show.
    pub fn new(views: &[StageView<'j>], store: &Store, jobs: &[Job]) -> Result<JobExplainer<'j>, Diagnostics> {
        let renderers = views
            .iter()
            .map(|&view| Ok((view.index, Renderer::new(view).map_err(Diagnostics::from)?)))
            .collect::<Result<Vec<_>, Diagnostics>>()?;
        let jobfile = views[0].jobfile;
        // Only a job with a new key is compared with earlier ones.
        let any_new = jobs.iter().any(|j| matches!(j.slot.state, SlotState::Absent));
        let mut previous =
            if any_new { build_log::read(&build_log::path(&jobfile.workspace.state)) } else { Vec::new() };
        // A workspace without a log (removed by hand): the records still know the ingredients,
        // if not the rendered text.
        if previous.is_empty() && any_new {
            previous = store.records().iter().map(LogEntry::from_record).collect();
        }
        // A stable sort: each stage's entries stay in the order they were written.
        previous.sort_by(|a, b| a.ingredients.stage.cmp(&b.ingredients.stage));
        let mut stage_ranges: HashMap<Option<String>, std::ops::Range<usize>> = HashMap::new();
        for (i, entry) in previous.iter().enumerate() {
            stage_ranges.entry(entry.ingredients.stage.clone()).or_insert(i..i).end = i + 1;
        }
        let by_params = previous
            .iter()
            .enumerate()
            .map(|(i, e)| (params_key(e.ingredients.stage.as_deref(), &e.ingredients.params), i))
            .collect();
        let current = jobs.iter().map(|j| j.planned.key.hex()).collect();
        Ok(JobExplainer { renderers, previous, stage_ranges, by_params, current })
    }

    /// Why `job` must run (`None`: it is done, its record naming its key). `pending` is how many jobs are being explained.
    pub fn why(&self, job: &Job, pending: usize) -> Result<Option<Dirty>, Diagnostics> {
        if matches!(job.slot.state, SlotState::Done(_)) {
            return Ok(None);
        }
        let Some((_, renderer)) = self.renderers.iter().find(|(stage, _)| *stage == job.stage) else {
            return Ok(None);
        };
        let rendering = renderer
            .rendering(job.planned.index, &job.planned.params, job.planned.needs.as_deref())
            .map_err(Diagnostics::from)?;
        let stage = rendering.ingredients.stage.as_deref();
        let same_params = self
            .by_params
            .get(&params_key(stage, &rendering.ingredients.params))
            .map(|&i| &self.previous[i..=i])
            .filter(|entry| entry[0].key != job.planned.key.hex());
        let candidates = same_params.unwrap_or_else(|| {
            let most = (MAX_COMPARISONS / pending.max(1)).max(100);
            let range = self.stage_ranges.get(&rendering.ingredients.stage).cloned().unwrap_or(0..0);
            &self.previous[range.end.saturating_sub(most).max(range.start)..range.end]
        });
        let rerender = |entry: &LogEntry| -> Option<Rendering> {
            let params = ParamSet::from_nested(&entry.ingredients.params, "params");
            // Rendered against today's upstream jobs: the upstream part of the key is compared apart.
            renderer.rendering(entry.index, &params, job.planned.needs.as_deref()).ok()
        };
        Ok(Some(dirty::explain(&rendering, &job.slot.state, candidates, &self.current, rerender)))
    }
}

fn params_key(stage: Option<&str>, params: &serde_json::Value) -> String {
    let mut text = stage.map_or_else(String::new, |s| format!("{s}:"));
    crate::key::write_canonical(params, &mut text);
    text
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
        return explain_jobs(&jobs, &chosen, &explainer, options.json);
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
        let explained: Vec<JobExplanation> = jobs
            .iter()
            .zip(&reasons)
            .map(|(job, why)| JobExplanation {
                id: &job.slot.id,
                name: &job.planned.name,
                up_to_date: why.is_none(),
                why: why.as_ref(),
                done_at: why.is_none().then(|| done_at(job)).flatten(),
            })
            .collect();
        let explained = if selection.jobs() { explained } else { Vec::new() };
        let json = serde_json::json!({ "format": 1, "jobs": explained, "products": products });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(0);
    }
    if selection.jobs() {
        print_reasons(&jobs, &reasons, true);
    }
    print_products(&products, root);
    Ok(0)
}

/// What a build would do with each product, and why.
pub fn print_products(products: &[ProductState], root: &Path) {
    for product in products {
        let path = console::relative(&product.path, root);
        match &product.reason {
            Some(why) => println!("{path} would be remade: {why}"),
            None => println!("{path} is up to date"),
        }
    }
}

/// Named jobs, each explained whether or not it would run.
fn explain_jobs(jobs: &[Job], chosen: &[usize], explainer: &JobExplainer<'_>, json: bool) -> anyhow::Result<i32> {
    let mut explained = Vec::new();
    for &i in chosen {
        let job = &jobs[i];
        let why = explainer.why(job, chosen.len())?;
        let record = why.is_none().then(|| store::read_record(&job.slot.dir)).flatten();
        if json {
            explained.push(serde_json::json!({
                "id": job.slot.id,
                "name": job.planned.name,
                "up_to_date": why.is_none(),
                "why": why,
                "key": job.planned.key.hex(),
                "done_at": record.as_ref().map(|r| &r.ended),
            }));
            continue;
        }
        match (why, record) {
            (Some(why), _) => {
                println!("{} ({}) would run: {why}", job.planned.name, job.slot.id);
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
                println!(
                    "{} ({}) is up to date: its key {} is what its record says, and the record says done{when}",
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

/// The reasons of the jobs that would run (with template diffs if asked), then a count of the
/// others.
pub fn print_reasons(jobs: &[Job], reasons: &[Option<Dirty>], diffs: bool) {
    let pending: Vec<(&Job, &Dirty)> = jobs.iter().zip(reasons).filter_map(|(j, r)| Some((j, r.as_ref()?))).collect();
    if pending.is_empty() {
        println!("{} up to date", plural(jobs.len(), "job"));
        return;
    }
    println!("would run {} of {}:", pending.len(), plural(jobs.len(), "job"));
    for (job, why) in pending {
        println!("  {}  {}  {why}", job.slot.id, job.planned.name);
        for (_, diff) in why.diffs().filter(|_| diffs) {
            for line in diff.lines() {
                println!("      {line}");
            }
        }
    }
    println!("up to date: {}", plural(jobs.len() - reasons.iter().filter(|r| r.is_some()).count(), "job"));
}

fn done_at(job: &Job) -> Option<String> {
    store::read_record(&job.slot.dir).map(|record| record.ended)
}
