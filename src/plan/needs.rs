//! Stage 3b: jobs of a stage that need jobs of earlier stages (`needs`). Each downstream job is
//! matched to its upstream jobs by their shared params; once those are done, it sees them in its
//! templates (`needs.train.dir`, `needs.train.results.accuracy`, …) and its key covers each one's
//! key and the hashes of its declared outputs.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::jobfile::{Jobfile, Need, StageView};
use crate::jobfile::{ParamSet, display_value};
use crate::key::NeededKey;
use crate::plan::{Job, Waiting};
use crate::store::SlotState;
use crate::util::diagnostic::{Diagnostic, Diagnostics};

/// A done upstream job, as its downstream jobs see it.
#[derive(Debug)]
pub struct Upstream {
    pub id: String,
    pub name: String,
    pub dir: PathBuf,
    pub key: NeededKey,
    pub params: Value,
    /// The parsed results file; null when the stage declares none.
    pub results: Value,
}

#[derive(Debug)]
pub enum Needed {
    One(Arc<Upstream>),
    Group(Vec<Arc<Upstream>>),
}

/// Stage name → the upstream jobs of that stage one downstream job needs.
#[derive(Debug, Default)]
pub struct Needs(pub Vec<(String, Needed)>);

/// Placeholder of an upstream folder while keys are computed: the upstream key already says which
/// folder it is, and the project's location must not change keys.
const DIR_PLACEHOLDER: &str = "<needs.dir>";

impl Needs {
    /// The `needs` variable of the template context; `located`: with the real folders.
    pub fn context(&self, located: bool) -> Value {
        let job = |u: &Upstream| {
            serde_json::json!({
                "id": u.id,
                "name": u.name,
                "dir": if located { u.dir.display().to_string() } else { DIR_PLACEHOLDER.to_string() },
                "params": u.params,
                "results": u.results,
            })
        };
        let stages = self.0.iter().map(|(stage, needed)| {
            let value = match needed {
                Needed::One(u) => job(u),
                Needed::Group(group) => Value::Array(group.iter().map(|u| job(u)).collect()),
            };
            (stage.clone(), value)
        });
        Value::Object(stages.collect())
    }

    /// The ids of the upstream jobs, every stage's.
    pub fn upstream_ids(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .flat_map(|(_, needed)| match needed {
                Needed::One(upstream) => std::slice::from_ref(upstream),
                Needed::Group(group) => &group[..],
            })
            .map(|upstream| upstream.id.as_str())
    }

    /// What the key takes of them: per stage, each upstream job's key and output hashes.
    pub fn key_part(&self) -> BTreeMap<String, Vec<NeededKey>> {
        self.0
            .iter()
            .map(|(stage, needed)| {
                let keys = match needed {
                    Needed::One(u) => vec![u.key.clone()],
                    Needed::Group(group) => group.iter().map(|u| u.key.clone()).collect(),
                };
                (stage.clone(), keys)
            })
            .collect()
    }
}

/// The located jobs of a stage planned before, for the stages that need it.
pub struct UpstreamStage<'a> {
    pub view: StageView<'a>,
    pub jobs: &'a [Job],
    /// Its jobs that wait for jobs of their own upstream stages.
    pub waiting: &'a [Waiting],
}

/// Where a downstream job stands.
pub enum Matched {
    /// Every upstream job it needs is done.
    Ready(Arc<Needs>),
    /// It waits for this upstream job (stage, name); `failed`: that job failed.
    Waiting { stage: String, name: String, failed: bool },
}

/// Matches each point of stage `view` to the upstream jobs it needs. A point that matches no
/// upstream job, or several where it needs one, is a mistake of the Jobfile.
pub fn match_points(
    view: StageView<'_>,
    points: &[ParamSet],
    upstream: &HashMap<&str, UpstreamStage<'_>>,
) -> Result<Vec<Matched>, Diagnostics> {
    let mut matchers = Vec::with_capacity(view.needs().len());
    for need in view.needs() {
        // Stages are planned after the stages they need, unless one could not be planned.
        let Some(up) = upstream.get(need.stage.get_ref().as_str()) else {
            let message = format!("stage `{}` could not be planned", need.stage.get_ref());
            return Err(Diagnostic::new(message).at(&view.source, need.stage.span(), "needed here").into());
        };
        matchers.push(Matcher::new(view, need, up));
    }
    let mut diagnostics = Diagnostics::default();
    let mut matched = Vec::with_capacity(points.len());
    for point in points {
        let mut needs = Needs::default();
        let mut waiting = None;
        for matcher in &mut matchers {
            match matcher.needed(point) {
                Err(diagnostic) => {
                    if diagnostics.0.len() < 3 {
                        diagnostics.push(diagnostic);
                    }
                }
                Ok(Err(wait)) => waiting = waiting.or(Some(wait)),
                Ok(Ok(needed)) => needs.0.push((matcher.need.stage.get_ref().clone(), needed)),
            }
        }
        matched.push(waiting.unwrap_or_else(|| Matched::Ready(Arc::new(needs))));
    }
    diagnostics.into_result(matched)
}

/// One `needs` entry of a stage, with the upstream jobs indexed by the params it matches on.
struct Matcher<'a> {
    view: StageView<'a>,
    need: &'a Need,
    up: &'a UpstreamStage<'a>,
    /// The params a downstream job and its upstream jobs agree on.
    on: Vec<String>,
    /// Values of `on` → upstream jobs: indices into `up.jobs`, then past its end into `up.waiting`,
    /// each list ordered by params (so that the sweep's order is not part of a fan-in key).
    by_values: HashMap<String, Vec<usize>>,
    /// Upstream job → what downstream jobs see of it, made once (it reads the results file).
    seen: Vec<Option<Arc<Upstream>>>,
}

impl<'a> Matcher<'a> {
    fn new(view: StageView<'a>, need: &'a Need, up: &'a UpstreamStage<'a>) -> Matcher<'a> {
        let on = shared_params(view, need, up.view);
        let params: Vec<&ParamSet> =
            up.jobs.iter().map(|j| &j.planned.params).chain(up.waiting.iter().map(|w| &w.params)).collect();
        let mut by_values: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, params) in params.iter().enumerate() {
            by_values.entry(values_of(params, &on)).or_default().push(i);
        }
        let sort_key = |i: &usize| {
            let mut text = String::new();
            crate::key::write_canonical(&params[*i].nested(), &mut text);
            text
        };
        for group in by_values.values_mut().filter(|g| g.len() > 1) {
            group.sort_by_cached_key(sort_key);
        }
        Matcher { view, need, up, on, by_values, seen: vec![None; up.jobs.len()] }
    }

    /// The upstream jobs `point` needs, or the first of them that is not done.
    fn needed(&mut self, point: &ParamSet) -> Result<Result<Needed, Matched>, Diagnostic> {
        let stage = self.need.stage.get_ref();
        let found = self.by_values.get(&values_of(point, &self.on)).map_or(&[][..], Vec::as_slice);
        let wanted_one = self.need.group_by.is_none();
        if let Some(mistake) = unmatched(self.view, self.need, &self.on, point, found.len()) {
            return Err(mistake);
        }
        let mut group = Vec::with_capacity(found.len());
        for &i in found {
            let Some(job) = self.up.jobs.get(i) else {
                // It waits itself: so does this job, failed if what it waits for failed.
                let waiting = &self.up.waiting[i - self.up.jobs.len()];
                let name = crate::jobfile::display_params(&waiting.params);
                return Ok(Err(Matched::Waiting { stage: stage.clone(), name, failed: waiting.failed }));
            };
            let SlotState::Done(summary) = &job.slot.state else {
                let failed = matches!(job.slot.state, SlotState::NotDone(_));
                return Ok(Err(Matched::Waiting { stage: stage.clone(), name: job.planned.name.clone(), failed }));
            };
            let upstream = self.seen[i].get_or_insert_with(|| {
                let results = self.up.view.job.results.as_ref().and_then(|name| {
                    let recorded = summary.outputs.get(name.get_ref());
                    crate::store::read_results(&job.slot.dir().join(name.get_ref()), recorded)
                });
                Arc::new(Upstream {
                    id: job.slot.id.clone(),
                    name: job.planned.name.clone(),
                    dir: job.slot.dir(),
                    key: NeededKey {
                        key: job.planned.key.hex(),
                        outputs: read_outputs(self.up.view, &summary.outputs),
                    },
                    params: job.planned.params.nested(),
                    results: results.unwrap_or(Value::Null),
                })
            });
            group.push(Arc::clone(upstream));
        }
        Ok(Ok(if wanted_one { Needed::One(group.remove(0)) } else { Needed::Group(group) }))
    }
}

/// The hashes, of all that an upstream job recorded, of the files its stage declares in `outputs`:
/// what a downstream job reads from its folder. Results reach a downstream job rendered into its
/// templates, and so its key, already; the whole results file would rerun it for a timing field.
fn read_outputs(upstream: StageView<'_>, recorded: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let declared = &upstream.job.outputs;
    recorded
        .iter()
        .filter(|(name, _)| declared.iter().any(|d| d.get_ref() == *name))
        .map(|(n, h)| (n.clone(), h.clone()))
        .collect()
}

/// The params a job of stage `view` shares with the jobs of the stage `need` names.
fn shared_params(view: StageView<'_>, need: &Need, upstream: StageView<'_>) -> Vec<String> {
    match &need.group_by {
        Some(names) => names.clone(),
        None => view
            .params
            .iter()
            .filter(|p| upstream.params.iter().any(|u| u.name == p.name))
            .map(|p| p.name.clone())
            .collect(),
    }
}

/// The mistake of a job (`point`) that found `count` upstream jobs, if it is one: none, or
/// several where it needs one.
fn unmatched(view: StageView<'_>, need: &Need, on: &[String], point: &ParamSet, count: usize) -> Option<Diagnostic> {
    let one = need.group_by.is_none();
    if count > 0 && !(one && count > 1) {
        return None;
    }
    let stage = need.stage.get_ref();
    let this = view.name().unwrap_or_default();
    let values: Vec<String> =
        on.iter().filter_map(|name| point.get(name).map(|v| format!("{name}={}", display_value(v)))).collect();
    let job = if values.is_empty() {
        format!("a job of `{this}`")
    } else {
        format!("a job of `{this}` with {}", values.join(", "))
    };
    let (message, help) = if count == 0 && on.is_empty() {
        (
            format!("{job} needs the jobs of `{stage}`, and it has none"),
            format!("give `{stage}` jobs, or drop this need"),
        )
    } else if count == 0 {
        (
            format!("{job} needs a job of `{stage}` with the same values, and there is none"),
            format!(
                "give `{stage}` these values, or group by fewer params: needs = [{{ stage = \"{stage}\", group_by = [...] }}]"
            ),
        )
    } else {
        let all = if on.is_empty() {
            "all = true".to_string()
        } else {
            format!("group_by = [{}]", on.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", "))
        };
        (
            format!("{job} matches {count} jobs of `{stage}`, and needs one"),
            format!("to need all of them: needs = [{{ stage = \"{stage}\", {all} }}]"),
        )
    };
    Some(Diagnostic::new(message).at(&view.source, need.stage.span(), "needed here").help(help))
}

/// Checks, before anything runs, that every job of every stage finds the upstream jobs it needs.
pub fn check_matches(jobfile: &Jobfile) -> anyhow::Result<()> {
    if !jobfile.has_stages() {
        return Ok(());
    }
    let views: Vec<StageView<'_>> = jobfile.stage_views().collect();
    let points: Vec<Vec<ParamSet>> =
        views.iter().map(|&view| crate::plan::sweep::expand(view)).collect::<Result<_, _>>()?;
    for (&view, stage_points) in views.iter().zip(&points) {
        for need in view.needs() {
            let Some(up) = jobfile.stage_index(need.stage.get_ref()) else { continue };
            let on = shared_params(view, need, views[up]);
            let mut counts: HashMap<String, usize> = HashMap::new();
            for point in &points[up] {
                *counts.entry(values_of(point, &on)).or_default() += 1;
            }
            for point in stage_points {
                let count = counts.get(&values_of(point, &on)).copied().unwrap_or(0);
                if let Some(mistake) = unmatched(view, need, &on, point, count) {
                    return Err(Diagnostics::from(mistake).into());
                }
            }
        }
    }
    Ok(())
}

/// The values of `names` in `params`, as one string to look up.
fn values_of(params: &ParamSet, names: &[String]) -> String {
    let values: Vec<Option<&Value>> = names.iter().map(|name| params.get(name)).collect();
    serde_json::to_string(&values).unwrap_or_default()
}
