//! Why a job or a product would be made again, as values (`dirty`), and the explainer that
//! finds, for a job with a new key, the closest earlier job and what changed; `build -n`,
//! `build --explain` and `jobman explain` all print from here.

pub mod dirty;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::explain::dirty::Dirty;
use crate::jobfile::ParamSet;
use crate::jobfile::StageView;
use crate::plan::Job;
use crate::plan::render::{Renderer, Rendering};
use crate::products::ProductState;
use crate::store::build_log::{self, LogEntry};
use crate::store::cache::{self, Cache};
use crate::store::{Provenance, SlotState, Store};
use crate::util::console;
use crate::util::diagnostic::Diagnostics;
use crate::util::text::plural;

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
    /// The shared caches a build would restore jobs from.
    caches: Vec<Cache>,
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
        let current =
            if previous.is_empty() { HashSet::new() } else { jobs.iter().map(|j| j.planned.key.hex()).collect() };
        let caches = cache::readable(&jobfile.cache);
        Ok(JobExplainer { renderers, previous, stage_ranges, by_params, current, caches })
    }

    /// Why `job` must run (`None`: it is done, its record naming its key). `pending` is how many jobs are being explained.
    pub fn why(&self, job: &Job, pending: usize) -> Result<Option<Dirty>, Diagnostics> {
        let why = self.why_here(job, pending)?;
        Ok(why.map(|why| {
            // A forced job runs again whatever a cache holds.
            if matches!(why, Dirty::Forced) {
                return why;
            }
            let key = job.planned.key.hex();
            match self.caches.iter().find(|cache| cache.holds(&key)) {
                Some(cache) => Dirty::InCache { cache: cache.dir.clone(), why: Box::new(why) },
                None => why,
            }
        }))
    }

    /// `; no cache holds its key (/shared/a, /shared/b)` for a job the caches do not give,
    /// when there are caches: a miss said as plainly as a hit.
    pub fn caches_missed(&self, why: &Dirty) -> String {
        if self.caches.is_empty() || matches!(why, Dirty::InCache { .. } | Dirty::Forced) {
            return String::new();
        }
        let dirs: Vec<String> = self.caches.iter().map(|cache| cache.dir.display().to_string()).collect();
        format!("; no cache holds its key ({})", dirs.join(", "))
    }

    /// Why `job` is not up to date in this workspace.
    fn why_here(&self, job: &Job, pending: usize) -> Result<Option<Dirty>, Diagnostics> {
        if matches!(job.slot.state, SlotState::Done(_)) {
            return Ok(None);
        }
        let Some((_, renderer)) = self.renderers.iter().find(|(stage, _)| *stage == job.stage) else {
            return Ok(None);
        };
        // Only a new key is compared with earlier jobs, which takes its rendering.
        if !matches!(job.slot.state, SlotState::Absent) || self.previous.is_empty() {
            return Ok(Some(dirty::from_state(&job.slot.state)));
        }
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

/// `made at 3f2a1c0, dirty`: for a job up to date by its key, when it was made from another
/// commit than the one checked out `now` (its full hash), or from changed tracked files. `None`
/// when made from this commit, clean, or outside git: the key decides what reruns, this only
/// tells.
pub fn made_elsewhere(made: &Provenance, now: Option<&str>) -> Option<String> {
    let made = made.git.as_ref()?;
    let same_commit = now == Some(made.commit.as_str());
    (made.dirty || !same_commit).then(|| format!("made at {}", made.short()))
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

/// How many jobs a dry run lists before it sums the rest up; `explain` lists them all.
pub const LISTED: usize = 100;

/// The reasons of the jobs that would run (with template diffs if asked: each distinct diff
/// once, under the first job it applies to), the first `limit` of them, the rest summed up by
/// kind; then a count of the others. `waiting` jobs wait for upstream jobs: they count in the
/// total, and would run once those have.
pub fn print_reasons(jobs: &[Job], reasons: &[Option<Dirty>], diffs: bool, waiting: usize, limit: usize) {
    let pending: Vec<(&Job, &Dirty)> = jobs.iter().zip(reasons).filter_map(|(j, r)| Some((j, r.as_ref()?))).collect();
    let total = plural(jobs.len() + waiting, "job");
    let then = if waiting > 0 { format!(", then the {waiting} waiting for upstream jobs") } else { String::new() };
    if pending.is_empty() {
        match waiting {
            0 => println!("{total} up to date"),
            _ => println!("would run the {waiting} of {total} waiting for upstream jobs"),
        }
        return;
    }
    let restored = pending.iter().filter(|(_, why)| matches!(why, Dirty::InCache { .. })).count();
    match restored {
        0 => println!("would run {} of {total}{then}:", pending.len()),
        _ => println!("would restore {restored} and run {} of {total}{then}:", pending.len() - restored),
    }
    let mut shown: HashMap<&str, &str> = HashMap::new();
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for (_, why) in pending.iter().skip(limit) {
        match kinds.iter_mut().find(|(kind, _)| *kind == why.kind()) {
            Some((_, n)) => *n += 1,
            None => kinds.push((why.kind(), 1)),
        }
    }
    let more = pending.len().saturating_sub(limit);
    for (job, why) in pending.into_iter().take(limit) {
        println!("  {}  {}  {why}", job.slot.id, job.planned.name);
        for (_, diff) in why.diffs().filter(|_| diffs) {
            match shown.get(diff) {
                Some(first) => println!("      (the same diff as {first})"),
                None => {
                    shown.insert(diff, &job.planned.name);
                    for line in diff.lines() {
                        println!("      {line}");
                    }
                }
            }
        }
    }
    if more > 0 {
        let kinds: Vec<String> = kinds.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
        println!("  … and {more} more ({}); `jobman explain` lists every one", kinds.join(", "));
    }
    println!("up to date: {}", plural(jobs.len() - reasons.iter().filter(|r| r.is_some()).count(), "job"));
}
