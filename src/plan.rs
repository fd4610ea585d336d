//! Stage 4: from a Jobfile to the jobs it names, each rendered, keyed and located in the store.

use std::collections::HashMap;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::jobfile::Jobfile;
use crate::render::{PlannedJob, Renderer};
use crate::store::{Slot, Store};
use crate::sweep::{self, ParamSet};

/// A job of the current Jobfile and where it stands.
#[derive(Debug)]
pub struct Job {
    pub planned: PlannedJob,
    pub slot: Slot,
}

/// Renders and keys every job of the sweep, on all cores.
pub fn plan_jobs(renderer: &Renderer<'_>, points: Vec<ParamSet>) -> Result<Vec<PlannedJob>, Diagnostics> {
    let indexed: Vec<(usize, ParamSet)> = points.into_iter().enumerate().collect();
    let results = parallel_map(indexed, |(index, params)| renderer.plan(index, params));
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
pub fn plan(jobfile: &Jobfile) -> anyhow::Result<Vec<PlannedJob>> {
    let points = sweep::expand(jobfile)?;
    let renderer = Renderer::new(jobfile).map_err(Diagnostics::from)?;
    let jobs = plan_jobs(&renderer, points)?;
    check_names(jobfile, &jobs)?;
    Ok(jobs)
}

/// A readable name given by the Jobfile must tell jobs apart.
fn check_names(jobfile: &Jobfile, jobs: &[PlannedJob]) -> Result<(), Diagnostics> {
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
pub fn locate(store: &Store, planned: Vec<PlannedJob>) -> Vec<Job> {
    let mut min_len = vec![0usize; planned.len()];
    loop {
        let pairs: Vec<(usize, &PlannedJob)> = planned.iter().enumerate().collect();
        let slots = parallel_map(pairs, |(i, job)| store.locate(&job.key, min_len[i]));
        let mut by_id: HashMap<&str, usize> = HashMap::new();
        let mut collided = false;
        for (i, slot) in slots.iter().enumerate() {
            if let Some(&other) = by_id.get(slot.id.as_str()) {
                min_len[i] = slot.id.len() + 4;
                min_len[other] = slot.id.len() + 4;
                collided = true;
            }
            by_id.insert(&slot.id, i);
        }
        if !collided {
            return planned.into_iter().zip(slots).map(|(planned, slot)| Job { planned, slot }).collect();
        }
    }
}

/// `f` over `items` on every core, results in input order.
pub fn parallel_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < 64 {
        return items.into_iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut items = items.into_iter();
    loop {
        let part: Vec<T> = items.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        chunks.push(part);
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            chunks.into_iter().map(|part| scope.spawn(move || part.into_iter().map(f).collect::<Vec<R>>())).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}
