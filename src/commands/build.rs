//! `jobman build`: plan the jobs, run the ones that are not done, record each one, summarize.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use crate::exec::{self, Outcome, RunOptions, slurm, supervisor};
use crate::explain::dirty::Dirty;
use crate::explain::{self, JobExplainer};
use crate::graph::BuildGraph;
use crate::jobfile::{ExecutorKind, StageView};
use crate::plan::Workspace;
use crate::plan::select;
use crate::plan::{self, Job, StagePlan, Waiting};
use crate::products;
use crate::store::lock::WorkspaceLock;
use crate::store::{SlotState, Store};
use crate::util::console;
use crate::util::exit;
use crate::util::text::plural;

pub struct BuildOptions {
    pub jobfile: PathBuf,
    pub targets: Vec<String>,
    pub workers: usize,
    pub fail_fast: bool,
    pub dry_run: bool,
    /// Print why each job runs (with template diffs) before running it.
    pub explain: bool,
    pub force: bool,
    /// Only the jobs whose params match this expression.
    pub filter: Option<String>,
    /// Where jobs run; `None`: as the Jobfile's `[executor]` says.
    pub executor: Option<ExecutorKind>,
    /// Slurm: submit and return at once.
    pub detach: bool,
    /// Slurm: on Ctrl-C, leave the submitted jobs running.
    pub no_cancel: bool,
    /// How many times a failing job is tried again; `None`: as the Jobfile's `[job] retries` says.
    pub retries: Option<u32>,
}

pub fn build(options: &BuildOptions) -> anyhow::Result<i32> {
    let clock = Instant::now();
    let Workspace { mut jobfile, store } = Workspace::open(&options.jobfile)?;
    if let Some(retries) = options.retries {
        for stage in &mut jobfile.stages {
            stage.job.retries = retries;
        }
    }
    let selection = BuildGraph::of(&jobfile).select(&options.targets)?;
    let lock = if options.dry_run { None } else { Some(WorkspaceLock::acquire(&jobfile.workspace.state)?) };
    // Jobs an earlier build left on Slurm: followed to their end, never submitted twice.
    let on_slurm = match &lock {
        Some(_) => {
            supervisor::stop_leftover_jobs(&store.jobs_dir);
            super::verify::check_after_unclean_end(&jobfile.workspace.state, &store.jobs_dir, &jobfile.root)?;
            slurm::in_flight(&jobfile, true)
        }
        None => HashSet::new(),
    };
    for warning in products::unknown_figure_columns(jobfile.report_stage(), &selection) {
        console::failure("Warning", &warning);
    }
    let mut plans: Vec<StagePlan> = Vec::new();
    let mut outcome = Outcome::default();
    // Stages run in waves, upstream first: a downstream job's key needs its upstream jobs' outputs.
    for view in jobfile.stage_views() {
        let needed = selection.stages[view.index];
        // A stage this build does not need is planned only to keep its jobs in the index: a
        // mistake there is for the build that needs it.
        let mut plan = match plan::plan_stage(view, &store, &plans) {
            Ok(plan) => plan,
            Err(_) if !needed => continue,
            Err(e) => return Err(e),
        };
        let stopped = outcome.interrupted || (options.fail_fast && outcome.failed);
        if needed && !stopped {
            outcome = outcome.and(build_stage(options, view, &mut plan, &store, lock.as_ref(), &on_slurm, clock)?);
        }
        plans.push(plan);
    }
    if options.dry_run {
        if selection.products()
            && let Some(report) = plans.iter().find(|p| p.stage == jobfile.stage)
        {
            let (jobs, waiting) = (&report.jobs, report.waiting.len());
            let mode = products::Mode::Predict { jobs_first: products::unfinished(jobs, waiting) };
            let products = products::decide(jobfile.report_stage(), jobs, waiting, &selection, mode)?;
            explain::print_products(&products, &jobfile.root);
        }
        return Ok(exit::OK);
    }
    if let Err(e) = store.save_index(plans.iter().flat_map(|p| &p.jobs).map(|j| (&j.slot, &j.planned.key))) {
        console::failure("Warning", &format!("cannot write the index (the next build reads every record): {e}"));
    }
    // Detached, the jobs just submitted are not done: products wait for the build that collects them.
    if outcome.interrupted || outcome.submitted {
        return Ok(outcome.exit_code());
    }
    if selection.products()
        && let Some(report) = plans.iter().find(|p| p.stage == jobfile.stage)
    {
        let mode = products::Mode::Make { explain: options.explain };
        products::decide(jobfile.report_stage(), &report.jobs, report.waiting.len(), &selection, mode)?;
    }
    drop(lock);
    Ok(outcome.exit_code())
}

/// Runs the pending jobs of one stage (or prints them, in a dry run), then says which of its
/// jobs wait for upstream jobs.
fn build_stage(
    options: &BuildOptions,
    jobfile: StageView<'_>,
    plan: &mut StagePlan,
    store: &Store,
    lock: Option<&WorkspaceLock>,
    on_slurm: &HashSet<PathBuf>,
    clock: Instant,
) -> anyhow::Result<Outcome> {
    let StagePlan { jobs, waiting, .. } = plan;
    let chosen = select::matching(&jobfile, jobs.iter().map(|j| &j.planned.params), options.filter.as_deref())?;
    let mut pending: Vec<usize> = (0..jobs.len())
        .filter(|&i| chosen[i] && (options.force || !matches!(jobs[i].slot.state, SlotState::Done(_))))
        .collect();
    let executor = options.executor.unwrap_or(jobfile.executor.kind);
    if let Some(stage) = jobfile.name() {
        console::status("Stage", &format!("{stage} ({})", plural(jobs.len() + waiting.len(), "job")));
    }
    let Some(lock) = lock else {
        let reasons = reasons(jobfile, store, jobs, &pending, options.force)?;
        explain::print_reasons(jobs, &reasons, options.explain);
        if executor == ExecutorKind::Slurm && !pending.is_empty() {
            exec::print_slurm_scripts(jobfile, jobs, &pending)?;
        }
        report_waiting(waiting);
        return Ok(Outcome::default());
    };
    // Jobs an earlier build left on Slurm are not submitted again; unless this build detaches
    // too, it follows them to their end before anything reads them: never "up to date" without
    // a done record.
    let (queued, rest): (Vec<usize>, Vec<usize>) = pending.iter().partition(|&&i| on_slurm.contains(&jobs[i].slot.dir));
    pending = rest;
    let mut outcome = Outcome::default();
    if !queued.is_empty() {
        let queued_jobs = plural(queued.len(), "job");
        if options.detach {
            console::status(
                "Queued",
                &format!("{queued_jobs} still on Slurm from an earlier build (not submitted again)"),
            );
            outcome.submitted = true;
        } else {
            console::status("Following", &format!("{queued_jobs} still on Slurm from an earlier build"));
            let cached = jobs.len() - queued.len() - pending.len();
            outcome = exec::follow_queued(jobfile, jobs, &queued, cached, clock)?;
        }
    }
    if options.explain && !pending.is_empty() {
        explain::print_reasons(jobs, &reasons(jobfile, store, jobs, &pending, options.force)?, true);
    }
    if pending.is_empty() {
        // A stage whose every job waits for upstream jobs has nothing up to date to speak of.
        if queued.is_empty() && (!jobs.is_empty() || waiting.is_empty()) {
            console::status(
                "Fresh",
                &format!(
                    "{} up to date ({})",
                    plural(jobs.len(), "job"),
                    console::duration(clock.elapsed().as_secs_f64())
                ),
            );
        }
    } else if !outcome.interrupted {
        let run = RunOptions {
            workers: options.workers,
            fail_fast: options.fail_fast,
            detach: options.detach,
            no_cancel: options.no_cancel,
        };
        outcome = outcome.and(exec::run(executor, &run, jobfile, lock, jobs, &pending, clock)?);
    }
    outcome.failed |= report_waiting(waiting);
    Ok(outcome)
}

/// Says which jobs wait for upstream jobs; true when some wait for one that failed.
fn report_waiting(waiting: &[Waiting]) -> bool {
    let mut upstream_failed = false;
    for job in waiting.iter().filter(|w| w.failed) {
        upstream_failed = true;
        let params = crate::jobfile::display_params(&job.params);
        console::failure("Skipped", &format!("{params}: upstream failed ({} job {})", job.stage, job.name));
    }
    let unbuilt = waiting.iter().filter(|w| !w.failed).count();
    if let Some(first) = waiting.iter().find(|w| !w.failed) {
        console::status(
            "Waiting",
            &format!("{} for {} jobs not done yet (first: {})", plural(unbuilt, "job"), first.stage, first.name),
        );
    }
    upstream_failed
}

/// Why each of the `pending` jobs (indices into `jobs`) runs; `None` for the others.
fn reasons(
    jobfile: StageView<'_>,
    store: &Store,
    jobs: &[Job],
    pending: &[usize],
    force: bool,
) -> anyhow::Result<Vec<Option<Dirty>>> {
    let mut reasons = vec![None; jobs.len()];
    let explainer = JobExplainer::new(&[jobfile], store, jobs)?;
    for &i in pending {
        reasons[i] = match explainer.why(&jobs[i], pending.len())? {
            Some(reason) if !force || !matches!(reason, Dirty::PreviouslyFailed { .. } | Dirty::Interrupted) => {
                Some(reason)
            }
            _ => Some(Dirty::Forced),
        };
    }
    Ok(reasons)
}
