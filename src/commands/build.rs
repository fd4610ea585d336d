//! `jobman build`: plan the jobs, run the ones that are not done, record each one, summarize.
//!
//! A build goes in rounds. Each round plans every stage, upstream first, from the records on
//! disk, and hands each needed stage's ready jobs to its executor: the local pool runs them to
//! their end before the next stage is planned, so a local build is one round; Slurm takes them
//! and the round goes on. While jobs run on Slurm the build waits until one of them ends, then
//! plans again: a downstream job is submitted as soon as its own upstream jobs are done, not
//! when their whole stage is.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::exec::{self, Outcome, RunOptions, shared, slurm, supervisor};
use crate::explain::dirty::Dirty;
use crate::explain::{self, JobExplainer};
use crate::graph::{BuildGraph, Selection};
use crate::jobfile::{ExecutorKind, Jobfile, StageView};
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
    /// Slurm: submit, leave the rest of the build to a pipeline job on the cluster, and return.
    pub detach: bool,
    /// Slurm: on Ctrl-C, leave the submitted jobs running.
    pub no_cancel: bool,
    /// How many times a failing job is tried again; `None`: as the Jobfile's `[job] retries` says.
    pub retries: Option<u32>,
    /// This build is the pipeline job of a detached build: near its time limit it hands the
    /// build on to a new pipeline job.
    pub pipeline_job: bool,
}

pub fn build(options: &BuildOptions) -> anyhow::Result<i32> {
    let clock = Instant::now();
    let mut workspace = Workspace::open(&options.jobfile)?;
    if let Some(retries) = options.retries {
        for stage in &mut workspace.jobfile.stages {
            stage.job.retries = retries;
        }
    }
    let Workspace { jobfile, store } = &workspace;
    let selection = BuildGraph::of(jobfile).select(&options.targets)?;
    for warning in products::unknown_figure_columns(jobfile.report_stage(), &selection) {
        console::failure("Warning", &warning);
    }
    if options.dry_run {
        return dry_run(options, jobfile, store, &selection);
    }
    let lock = WorkspaceLock::acquire(&jobfile.workspace.state)?;
    supervisor::stop_leftover_jobs(&jobfile.workspace.state, &store.jobs_dir);
    super::verify::check_after_unclean_end(&jobfile.workspace.state, &store.jobs_dir, &jobfile.root)?;
    // Jobs an earlier build left on Slurm: followed to their end, never submitted twice.
    let earlier = slurm::in_flight(jobfile, true).into_keys().collect();
    let interrupted = exec::catch_interrupts(&store.jobs_dir)?;
    let hand_on = Arc::new(AtomicBool::new(false));
    if options.pipeline_job {
        slurm::pipeline::on_time_limit_warning(&interrupted, &hand_on)?;
    }
    let mut round = Round {
        options,
        store,
        lock: &lock,
        interrupted: &interrupted,
        cluster: slurm::Session::new(
            jobfile,
            earlier,
            options.no_cancel || options.pipeline_job,
            Arc::clone(&interrupted),
        ),
        taken: HashSet::new(),
        first: true,
        clock,
    };
    let mut outcome = Outcome::default();
    let plans = loop {
        let mut plans: Vec<StagePlan> = Vec::new();
        for view in jobfile.stage_views() {
            let needed = selection.stages[view.index];
            // A stage this build does not need is planned only to keep its jobs in the index: a
            // mistake there is for the build that needs it.
            let mut plan = match plan::plan_stage(view, store, &plans) {
                Ok(plan) => plan,
                Err(_) if !needed => continue,
                Err(e) => return Err(e),
            };
            outcome.interrupted |= interrupted.load(Ordering::SeqCst);
            let stopped = outcome.interrupted || (options.fail_fast && (outcome.failed || round.cluster.any_failed()));
            if needed && !stopped {
                outcome = outcome.and(round.stage(view, &mut plan)?);
            }
            plans.push(plan);
        }
        round.first = false;
        if outcome.interrupted || round.cluster.is_idle() {
            break plans;
        }
        if options.detach {
            outcome.submitted = true;
            break plans;
        }
        if round.cluster.wait()? {
            outcome.interrupted = true;
            break plans;
        }
    };
    let on_slurm_done = plans
        .iter()
        .filter(|p| selection.stages[p.stage] && round.executor(jobfile.stage(p.stage)) == ExecutorKind::Slurm)
        .flat_map(|p| &p.jobs)
        .filter(|j| matches!(j.slot.state, SlotState::Done(_)))
        .count();
    let followed = round.cluster.finish(on_slurm_done, clock, outcome.interrupted);
    outcome = outcome.and(followed);
    for plan in plans.iter().filter(|p| selection.stages[p.stage]) {
        outcome.failed |= report_waiting(&plan.waiting);
    }
    if let Err(e) = store.save_index(plans.iter().flat_map(|p| &p.jobs).map(|j| (&j.slot, &j.planned.key))) {
        console::failure("Warning", &format!("cannot write the index (the next build reads every record): {e}"));
    }
    workspace.link_names(plans.iter().flat_map(|p| &p.jobs));
    if hand_on.load(Ordering::SeqCst) {
        slurm::pipeline::hand_on(jobfile)?;
        return Ok(exit::OK);
    }
    // Detached, the jobs just submitted are not done: the pipeline job makes the products.
    if outcome.submitted && !outcome.interrupted {
        slurm::pipeline::detach(jobfile, &pipeline_args(options))?;
    }
    if !outcome.interrupted
        && !outcome.submitted
        && selection.products()
        && let Some(report) = plans.iter().find(|p| p.stage == jobfile.stage)
    {
        let mode = products::Mode::Make { explain: options.explain };
        match products::decide(jobfile.report_stage(), &report.jobs, report.waiting.len(), &selection, mode) {
            Ok(_) => {}
            // A failed job is the news, and exit 1, whatever else went wrong after it.
            Err(error) if outcome.failed => exit::print_error(&error),
            Err(error) => return Err(error),
        }
    }
    drop(lock);
    outcome.print_failures();
    Ok(outcome.exit_code())
}

/// `jobman build -n`: what each needed stage would run and why, the batch scripts a Slurm build
/// would submit, and what would become of the products.
fn dry_run(options: &BuildOptions, jobfile: &Jobfile, store: &Store, selection: &Selection) -> anyhow::Result<i32> {
    let mut plans: Vec<StagePlan> = Vec::new();
    for view in jobfile.stage_views() {
        let needed = selection.stages[view.index];
        let plan = match plan::plan_stage(view, store, &plans) {
            Ok(plan) => plan,
            Err(_) if !needed => continue,
            Err(e) => return Err(e),
        };
        if needed {
            print_stage_header(view, &plan);
            let pending = pending_jobs(options, view, &plan.jobs, &HashSet::new())?;
            let reasons = reasons(view, store, &plan.jobs, &pending, options.force)?;
            explain::print_reasons(&plan.jobs, &reasons, options.explain, plan.waiting.len(), explain::LISTED);
            if options.executor.unwrap_or(view.executor.kind) == ExecutorKind::Slurm && !pending.is_empty() {
                slurm::print_scripts(view, &plan.jobs, &pending)?;
            }
            report_waiting(&plan.waiting);
        }
        plans.push(plan);
    }
    if selection.products()
        && let Some(report) = plans.iter().find(|p| p.stage == jobfile.stage)
    {
        let (jobs, waiting) = (&report.jobs, report.waiting.len());
        let mode = products::Mode::Predict { jobs_first: products::unfinished(jobs, waiting) };
        let products = products::decide(jobfile.report_stage(), jobs, waiting, selection, mode)?;
        explain::print_products(&products, &jobfile.root);
    }
    Ok(exit::OK)
}

/// What a build carries from round to round.
struct Round<'a> {
    options: &'a BuildOptions,
    store: &'a Store,
    lock: &'a WorkspaceLock,
    interrupted: &'a Arc<AtomicBool>,
    cluster: slurm::Session,
    /// The folders of the jobs this build ran, submitted or followed: none runs twice in a build,
    /// whatever its record says (a failed job stays failed until the next build).
    taken: HashSet<PathBuf>,
    /// The build's first round, which says how each stage stands.
    first: bool,
    clock: Instant,
}

impl Round<'_> {
    fn executor(&self, view: StageView<'_>) -> ExecutorKind {
        self.options.executor.unwrap_or(view.executor.kind)
    }

    /// Hands the ready jobs of one stage to its executor: the local pool runs them to their end,
    /// Slurm takes them (and follows those an earlier build left queued).
    fn stage(&mut self, view: StageView<'_>, plan: &mut StagePlan) -> anyhow::Result<Outcome> {
        if self.first {
            print_stage_header(view, plan);
        }
        let jobs = &mut plan.jobs;
        let pending = pending_jobs(self.options, view, jobs, &self.taken)?;
        self.taken.extend(pending.iter().map(|&i| jobs[i].slot.dir()));
        // Jobs an earlier build left on Slurm are not submitted again; unless this build detaches
        // too, it follows them to their end before anything reads them: never "up to date"
        // without a done record.
        let (queued, pending): (Vec<usize>, Vec<usize>) =
            pending.iter().partition(|&&i| self.cluster.left_by_earlier_build(&jobs[i].slot.dir()));
        // A forced job runs again; the others may be in a shared cache.
        let pending = if self.options.force { pending } else { shared::from_caches(view, jobs, pending) };
        if !queued.is_empty() {
            let queued_jobs = plural(queued.len(), "job");
            if self.options.detach {
                console::status(
                    "Queued",
                    &format!("{queued_jobs} still on Slurm from an earlier build (not submitted again)"),
                );
            } else {
                console::status("Following", &format!("{queued_jobs} still on Slurm from an earlier build"));
            }
            self.cluster.adopt(view, jobs, &queued);
        }
        if pending.is_empty() {
            // A stage whose every job waits for upstream jobs has nothing up to date to speak of.
            if self.first && queued.is_empty() && (!jobs.is_empty() || plan.waiting.is_empty()) {
                let took = console::duration(self.clock.elapsed().as_secs_f64());
                console::status("Fresh", &format!("{} up to date ({took})", plural(jobs.len(), "job")));
            }
            return Ok(Outcome::default());
        }
        if self.options.explain {
            let reasons = reasons(view, self.store, jobs, &pending, self.options.force)?;
            explain::print_reasons(jobs, &reasons, true, plan.waiting.len(), usize::MAX);
        }
        match self.executor(view) {
            ExecutorKind::Local => {
                let run = RunOptions { workers: self.options.workers, fail_fast: self.options.fail_fast };
                exec::run_local(&run, view, self.lock, jobs, &pending, self.interrupted, self.clock)
            }
            ExecutorKind::Slurm => {
                self.cluster.submit(view, jobs, &pending)?;
                Ok(Outcome::default())
            }
        }
    }
}

/// `Stage NAME (N jobs)`, for a Jobfile with stages.
fn print_stage_header(view: StageView<'_>, plan: &StagePlan) {
    if let Some(stage) = view.name() {
        console::status("Stage", &format!("{stage} ({})", plural(plan.jobs.len() + plan.waiting.len(), "job")));
    }
}

/// The jobs of a stage this build runs (indices into `jobs`): those `--where` chooses that are
/// not done (all of them with `--force`), and not `taken` already.
fn pending_jobs(
    options: &BuildOptions,
    view: StageView<'_>,
    jobs: &[Job],
    taken: &HashSet<PathBuf>,
) -> anyhow::Result<Vec<usize>> {
    let chosen = select::matching(&view, jobs, options.filter.as_deref())?;
    Ok((0..jobs.len())
        .filter(|&i| chosen[i] && (options.force || !matches!(jobs[i].slot.state, SlotState::Done(_))))
        .filter(|&i| !taken.contains(&jobs[i].slot.dir()))
        .collect())
}

/// The command line of the pipeline job that finishes a detached build on the cluster: this
/// build's, following instead of detaching. `--force` is not passed on: the jobs it forced are
/// submitted already, and the pipeline job must not run them again.
fn pipeline_args(options: &BuildOptions) -> Vec<String> {
    let jobfile = std::path::absolute(&options.jobfile).unwrap_or_else(|_| options.jobfile.clone());
    let mut args = vec!["--file".to_string(), jobfile.display().to_string(), "build".to_string()];
    args.extend(options.targets.iter().cloned());
    if let Some(executor) = options.executor {
        args.extend(["--executor".to_string(), executor.as_str().to_string()]);
    }
    if let Some(filter) = &options.filter {
        args.extend(["--where".to_string(), filter.clone()]);
    }
    if let Some(retries) = options.retries {
        args.extend(["--retries".to_string(), retries.to_string()]);
    }
    if options.fail_fast {
        args.push("--fail-fast".to_string());
    }
    args.push("--pipeline-job".to_string());
    args
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
