//! Stage 4: from a Jobfile to the jobs it names, each rendered, keyed and located in the store.

#[cfg(test)]
mod fuzz_tests;
pub mod needs;
pub mod render;
pub mod select;
pub mod sweep;
mod workspace;

pub use workspace::Workspace;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::key::JobKey;
use std::sync::Arc;

use crate::jobfile::ParamSet;
use crate::jobfile::{Jobfile, StageView};
use crate::plan::needs::{Matched, Needs, UpstreamStage};
use crate::plan::render::{PlannedJob, Renderer};
use crate::store::{IdMap, Slot, Store};
use crate::util::diagnostic::{Diagnostic, Diagnostics};
use crate::util::parallel::{self, parallel_for_each, parallel_map};

/// A job of the current Jobfile and where it stands.
#[derive(Debug)]
pub struct Job {
    pub planned: PlannedJob,
    pub slot: Slot,
    /// Its stage: an index into the Jobfile's stages (0 without stages).
    pub stage: usize,
}

/// The jobs of one stage: those that can be keyed, located, and those that wait for upstream
/// jobs that are not done.
pub struct StagePlan {
    /// Its index in the Jobfile's stages.
    pub stage: usize,
    pub jobs: Vec<Job>,
    pub waiting: Vec<Waiting>,
}

/// A job of a stage that cannot be keyed yet: an upstream job it needs is not done.
pub struct Waiting {
    pub params: ParamSet,
    /// The upstream job's stage and name.
    pub stage: String,
    pub name: String,
    /// Whether that job failed (otherwise it has not run).
    pub failed: bool,
}

/// Plans stage `view`, after the stages of `earlier`.
pub fn plan_stage(view: StageView<'_>, store: &Store, earlier: &[StagePlan]) -> anyhow::Result<StagePlan> {
    let stage = view.index;
    if view.needs().is_empty() {
        let jobs = locate(store, plan(view)?, stage);
        return Ok(StagePlan { stage, jobs, waiting: Vec::new() });
    }
    let upstream: HashMap<&str, UpstreamStage<'_>> = earlier
        .iter()
        .filter_map(|p| {
            let view = view.jobfile.stage(p.stage);
            Some((view.name()?, UpstreamStage { view, jobs: &p.jobs, waiting: &p.waiting }))
        })
        .collect();
    let points = sweep::expand(view)?;
    let matched = needs::match_points(view, &points, &upstream)?;
    let mut ready = Vec::with_capacity(points.len());
    let mut waiting = Vec::new();
    for ((index, params), matched) in points.into_iter().enumerate().zip(matched) {
        match matched {
            Matched::Ready(needs) => ready.push((index, params, Some(needs))),
            Matched::Waiting { stage, name, failed } => waiting.push(Waiting { params, stage, name, failed }),
        }
    }
    let renderer = Renderer::new(view).map_err(Diagnostics::from)?;
    let planned = plan_jobs(&renderer, ready)?;
    check_names(view, &planned)?;
    let jobs = locate(store, planned, stage);
    Ok(StagePlan { stage, jobs, waiting })
}

/// Every stage planned, upstream first, without running anything.
pub fn plan_all(jobfile: &Jobfile, store: &Store) -> anyhow::Result<Vec<StagePlan>> {
    let mut plans: Vec<StagePlan> = Vec::new();
    for view in jobfile.stage_views() {
        let plan = plan_stage(view, store, &plans)?;
        plans.push(plan);
    }
    Ok(plans)
}

/// The jobs of `stage` among the jobs of every stage (which come stage by stage).
pub fn stage_jobs(jobs: &[Job], stage: usize) -> &[Job] {
    let start = jobs.iter().position(|j| j.stage == stage).unwrap_or(jobs.len());
    let end = jobs[start..].iter().position(|j| j.stage != stage).map_or(jobs.len(), |n| start + n);
    &jobs[start..end]
}

/// Renders and keys jobs (position in the sweep, params, upstream jobs), on all cores.
pub fn plan_jobs(
    renderer: &Renderer<'_>,
    points: Vec<(usize, ParamSet, Option<Arc<Needs>>)>,
) -> Result<Vec<PlannedJob>, Diagnostics> {
    let results = parallel_map(points, |(index, params, needs)| renderer.plan(index, params, needs));
    let mut jobs = Vec::with_capacity(results.len());
    let mut diagnostics = Diagnostics::default();
    let mut failing = 0usize;
    for result in results {
        match result {
            Ok(job) => jobs.push(job),
            Err(diagnostic) => {
                failing += 1;
                // The same template mistake repeats in every job: show it once.
                if !diagnostics.0.iter().any(|d| d.message == diagnostic.message && d.label == diagnostic.label) {
                    diagnostics.push(diagnostic);
                }
            }
        }
    }
    if failing > 1
        && let Some(last) = diagnostics.0.last_mut()
        && last.help.is_none()
    {
        last.help = Some(format!("{failing} jobs failed to render"));
    }
    diagnostics.into_result(jobs)
}

/// Expands, renders and keys the Jobfile's jobs.
///
/// Rendering 100,000 jobs is most of a no-op build's time, so the keys and names are cached in
/// `.jobman/plan` under a fingerprint of everything rendering reads besides the params: the
/// Jobfile, every file under the templates folder, the declared inputs and env values, and
/// jobman's version. Any change to one of them renders everything again.
pub fn plan(jobfile: StageView<'_>) -> anyhow::Result<Vec<PlannedJob>> {
    let cache_path = match jobfile.name() {
        Some(stage) => jobfile.workspace.state.join(format!("plan-{stage}")),
        None => jobfile.workspace.state.join("plan"),
    };
    let fingerprint = fingerprint(jobfile);
    // The cache is read while the sweep expands: neither needs the other until they are zipped.
    let (cached, points) = parallel::join(
        many_jobs(jobfile),
        || fingerprint.as_ref().and_then(|fingerprint| read_cache(&cache_path, fingerprint)),
        || sweep::expand(jobfile),
    );
    let points = points?;
    if let Some(cached) = cached.filter(|cached| cached.len() == points.len()) {
        return Ok(points
            .into_iter()
            .zip(cached)
            .enumerate()
            .map(|(index, (params, (key, name)))| PlannedJob { index, params, name, key, needs: None })
            .collect());
    }
    let renderer = Renderer::new(jobfile).map_err(Diagnostics::from)?;
    let jobs = plan_jobs(&renderer, points.into_iter().enumerate().map(|(i, p)| (i, p, None)).collect())?;
    check_names(jobfile, &jobs)?;
    if let Some(fingerprint) = fingerprint {
        // A cache that cannot be written only costs the next build a full render.
        let _ = write_cache(&cache_path, &fingerprint, &jobs);
    }
    Ok(jobs)
}

/// Whether the stage may have enough jobs that reading a file beside planning them pays for a
/// thread.
fn many_jobs(stage: StageView<'_>) -> bool {
    sweep::jobs_at_most(stage) >= 1_000
}

const CACHE_HEADER: &str = "jobman plan v1";

/// What every stage's jobs are planned from besides the records of upstream jobs (see
/// [`fingerprint`]); `None` when some stage's inputs are chosen per job.
pub fn fingerprint_all(jobfile: &Jobfile) -> Option<String> {
    let mut hasher = blake3::Hasher::new();
    for view in jobfile.stage_views() {
        hasher.update(fingerprint(view)?.as_bytes());
    }
    Some(hasher.finalize().to_hex().to_string())
}

/// What rendering reads besides the params; `None` when inputs are chosen per job (patterns with
/// template syntax), which only rendering can tell.
fn fingerprint(jobfile: StageView<'_>) -> Option<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(CACHE_HEADER.as_bytes());
    hasher.update(crate::util::JOBMAN_BUILD.as_bytes());
    hasher.update(jobfile.source.text.as_bytes());
    hasher.update(jobfile.name().unwrap_or_default().as_bytes());
    let mut templates = Vec::new();
    collect_files(&jobfile.workspace.templates, &mut templates);
    templates.sort();
    for path in templates {
        hasher.update(path.as_os_str().as_encoded_bytes());
        hasher.update(&std::fs::read(&path).ok()?);
    }
    for pattern in &jobfile.job.inputs {
        let pattern = pattern.get_ref();
        if pattern.contains('{') {
            return None;
        }
        let mut paths: Vec<PathBuf> =
            glob::glob(&jobfile.root.join(pattern).to_string_lossy()).ok()?.flatten().collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.is_file()) {
            hasher.update(path.as_os_str().as_encoded_bytes());
            hasher.update_reader(std::fs::File::open(&path).ok()?).ok()?;
        }
    }
    for var in &jobfile.job.env {
        let value = std::env::var_os(var.get_ref());
        hasher.update(var.get_ref().as_bytes());
        hasher.update(&[u8::from(value.is_some())]);
        hasher.update(value.unwrap_or_default().as_encoded_bytes());
    }
    Some(hasher.finalize().to_hex().to_string())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() { collect_files(&path, out) } else { out.push(path) }
    }
}

/// The cached key and name of each job, in sweep order, when the cache was written under this
/// fingerprint.
fn read_cache(path: &Path, fingerprint: &str) -> Option<Vec<(JobKey, String)>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let count: usize = lines.next()?.strip_prefix(&format!("{CACHE_HEADER} {fingerprint} "))?.parse().ok()?;
    let cached: Vec<(JobKey, String)> = lines
        .map(|line| line.split_once('\t').and_then(|(key, name)| Some((JobKey::from_hex(key)?, name.to_string()))))
        .collect::<Option<_>>()?;
    (cached.len() == count).then_some(cached)
}

fn write_cache(path: &Path, fingerprint: &str, jobs: &[PlannedJob]) -> std::io::Result<()> {
    // Names with a tab or newline cannot be cached in this format.
    if jobs.iter().any(|j| j.name.contains(['\t', '\n'])) {
        return Ok(());
    }
    let mut text = format!("{CACHE_HEADER} {fingerprint} {}\n", jobs.len());
    for job in jobs {
        text.push_str(&job.key.hex());
        text.push('\t');
        text.push_str(&job.name);
        text.push('\n');
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    crate::store::write_atomic(path, text.as_bytes())
}

/// A readable name given by the Jobfile must tell jobs apart.
fn check_names(jobfile: StageView<'_>, jobs: &[PlannedJob]) -> Result<(), Diagnostics> {
    let Some(template) = &jobfile.job.name else { return Ok(()) };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for job in jobs {
        if let Some(first) = seen.insert(&job.name, job.index) {
            return Err(Diagnostic::new(format!("jobs {first} and {} are both named `{}`", job.index, job.name))
                .at(&jobfile.source, template.span(), "this name must differ between jobs")
                .help("use every swept parameter in the name, e.g. \"h{{hidden}}-lr{{lr}}-s{{seed}}\"")
                .into());
        }
    }
    Ok(())
}

/// Finds each job's folder; two current jobs whose ids collide both get longer ids.
pub fn locate(store: &Store, planned: Vec<PlannedJob>, stage: usize) -> Vec<Job> {
    // Each job's slot is filled in place: at 10⁶ jobs, a list of slots beside the jobs would be a
    // seventh of the memory.
    let mut jobs: Vec<Job> = planned
        .into_iter()
        .map(|planned| Job { planned, slot: Slot::absent(store.jobs_dir.clone(), String::new()), stage })
        .collect();
    let mut min_len = vec![0usize; jobs.len()];
    loop {
        parallel_for_each(&mut jobs, |i, job| job.slot = store.locate(&job.planned.key, min_len[i]));
        let mut by_id: IdMap<&str, usize> = IdMap::with_capacity_and_hasher(jobs.len(), Default::default());
        let mut collided = false;
        for (i, job) in jobs.iter().enumerate() {
            if let Some(&other) = by_id.get(job.slot.id.as_str()) {
                min_len[i] = job.slot.id.len() + 4;
                min_len[other] = job.slot.id.len() + 4;
                collided = true;
            }
            by_id.insert(&job.slot.id, i);
        }
        if !collided {
            return jobs;
        }
    }
}
