//! `[stage.NAME]`: stages that need earlier stages, ordered and checked; each stage seen as a
//! Jobfile of its own.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::util::diagnostic::did_you_mean;

use super::Jobfile;
use super::executor::ExecutorSpec;
use super::job::{JOB_KEYS, JobSpec, TemplateSpec, folder_path_problem, target_problem};
use super::params::Param;
use super::products::ReportSpec;
use super::sweep::Sweep;
use super::walker::{Item, Walker, is_identifier, kind};

/// What a `[stage.NAME]` table holds besides the [`JOB_KEYS`].
pub(super) const STAGE_KEYS: &[&str] = &["needs", "params", "sweep", "template"];
pub(super) const NEED_KEYS: &[&str] = &["stage", "group_by", "all"];
/// Build targets a stage may not be named after.
pub(super) const TARGET_NAMES: &[&str] = &["jobs", "report", "figures"];

/// `[stage.NAME]`: one kind of job of a Jobfile with stages, with the shared params and
/// templates merged in.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Empty for the one stage of a Jobfile without `[stage.NAME]` tables (a declared stage's
    /// name is an identifier, never empty).
    pub name: Spanned<String>,
    pub needs: Vec<Need>,
    pub params: Vec<Param>,
    pub sweep: Sweep,
    pub templates: Vec<TemplateSpec>,
    pub job: JobSpec,
}

/// One entry of a stage's `needs`.
#[derive(Debug, Clone)]
pub struct Need {
    pub stage: Spanned<String>,
    /// `None`: each job needs the one upstream job with the same shared params. `Some(names)`:
    /// each job needs every upstream job with its values of `names` (all of them when empty).
    pub group_by: Option<Vec<String>>,
}

/// One stage as planning, running and the products see it: its own params, sweep, templates and
/// job, and (through `Deref`) the Jobfile's shared settings. Borrowed, never cloned.
#[derive(Debug, Clone, Copy)]
pub struct StageView<'j> {
    pub jobfile: &'j Jobfile,
    /// Its index in the Jobfile's stages.
    pub index: usize,
    /// Flat parameters (nested tables become `a.b`), in declaration order.
    pub params: &'j [Param],
    pub sweep: &'j Sweep,
    pub templates: &'j [TemplateSpec],
    pub job: &'j JobSpec,
}

impl<'j> StageView<'j> {
    /// The stage's name; `None` in a Jobfile without stages.
    pub fn name(&self) -> Option<&'j str> {
        Some(self.jobfile.stages[self.index].name.get_ref().as_str()).filter(|name| !name.is_empty())
    }

    /// The stages whose jobs its jobs need.
    pub fn needs(&self) -> &'j [Need] {
        &self.jobfile.stages[self.index].needs
    }
}

impl std::ops::Deref for StageView<'_> {
    type Target = Jobfile;

    fn deref(&self) -> &Jobfile {
        self.jobfile
    }
}

impl Jobfile {
    /// Stage `index` as its jobs see it.
    pub fn stage(&self, index: usize) -> StageView<'_> {
        let stage = &self.stages[index];
        StageView {
            jobfile: self,
            index,
            params: &stage.params,
            sweep: &stage.sweep,
            templates: &stage.templates,
            job: &stage.job,
        }
    }

    /// Every stage, upstream stages first.
    pub fn stage_views(&self) -> impl Iterator<Item = StageView<'_>> {
        (0..self.stages.len()).map(|i| self.stage(i))
    }

    /// The stage whose jobs are the report's rows.
    pub fn report_stage(&self) -> StageView<'_> {
        self.stage(self.stage)
    }

    /// Whether the Jobfile has `[stage.NAME]` tables.
    pub fn has_stages(&self) -> bool {
        !self.stages[0].name.get_ref().is_empty()
    }

    /// The params of every stage, in build order (a param shared by several stages once per
    /// stage); those of the Jobfile without stages.
    pub fn params_of_every_stage(&self) -> impl Iterator<Item = &Param> {
        self.stages.iter().flat_map(|s| &s.params)
    }

    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| !name.is_empty() && s.name.get_ref() == name)
    }
}

impl Walker<'_> {
    /// The checks of one stage's settings against its params.
    pub(super) fn check_stage(
        &mut self,
        params: &[Param],
        sweep: &Sweep,
        templates: &[TemplateSpec],
        job: Option<&JobSpec>,
        executor: &ExecutorSpec,
    ) {
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        for filter in sweep.filter.iter().chain(templates.iter().filter_map(|t| t.filter.as_ref())) {
            let origin = crate::jobfile::expr::Origin { source: self.source, span: filter.span() };
            if let Err(diagnostic) = crate::jobfile::expr::ParamFilter::compile(filter.get_ref(), &names, &origin) {
                self.error(diagnostic);
            }
        }
        self.per_job_settings(job, executor, params);
        // Checked even when the job table has mistakes of its own: all mistakes are shown at once.
        let params_file = job.and_then(|j| j.params_file.as_ref());
        // What jobman writes or moves in the job folder stays in it, whatever the path.
        let written = job
            .into_iter()
            .flat_map(|j| [("params_file", &j.params_file), ("results", &j.results), ("series", &j.series)]);
        for (key, path) in written {
            if let Some(path) = path
                && let Some(problem) = folder_path_problem(path.get_ref())
            {
                self.at(path.span(), format!("`{key}` is refused"), problem);
            }
        }
        let outputs = job.map_or(&[][..], |j| &j.outputs[..]);
        for output in outputs {
            if let Some(problem) = target_problem(output.get_ref(), params_file) {
                self.at(output.span(), format!("output `{}` is refused", output.get_ref()), problem);
            }
        }
        // Targets without template syntax can be checked now rather than when the first job renders.
        for template in templates {
            let target = template.target.get_ref();
            if !target.contains('{')
                && let Some(problem) = target_problem(target, params_file)
            {
                self.at(template.target.span(), format!("template target `{target}` is refused"), problem);
            }
            for output in outputs {
                if output.get_ref() == target {
                    self.at(
                        output.span(),
                        format!("`{target}` is rendered by a template"),
                        "an output is written by the job",
                    );
                }
            }
        }
    }

    /// `[stage.NAME]` tables: each gets the shared params (its own added or overriding them),
    /// the shared templates before its own, `[job]`'s keys unless it sets them, and `[sweep]`
    /// unless it has its own. Returned after the stages they need.
    pub(super) fn stages(
        &mut self,
        item: &Item<'_>,
        shared: &[Param],
        document: &DeTable<'_>,
        shared_templates: &[TemplateSpec],
        executor: &ExecutorSpec,
    ) -> (Vec<Stage>, Vec<String>) {
        let Some(tables) = self.table(Some(item), "[stage]") else { return (Vec::new(), Vec::new()) };
        let declared: Vec<String> = tables.keys().map(|k| k.get_ref().to_string()).collect();
        if declared.is_empty() {
            self.at(item.span(), "[stage] declares no stage", "expected [stage.NAME] tables").help =
                Some("add e.g.:\n[stage.train]\ncommand = \"python3 train.py\"".into());
        }
        let defaults = self.table(document.get("job"), "[job]").cloned().unwrap_or_default();
        self.unknown_keys(&defaults, JOB_KEYS, "a [job] key");
        let mut stages = Vec::new();
        for (name, item) in tables.iter() {
            let section = format!("[stage.{}]", name.get_ref());
            let Some(table) = self.table(Some(item), &section) else { continue };
            if !is_identifier(name.get_ref()) || TARGET_NAMES.contains(&name.get_ref().as_ref()) {
                self.at(
                    name.span(),
                    format!("stage name `{}` is not usable", name.get_ref()),
                    "expected letters, digits and `_`, other than jobs, report and figures",
                )
                .help = Some("it names the stage on the command line: `jobman build NAME`".into());
                continue;
            }
            let allowed: Vec<&str> = JOB_KEYS.iter().chain(STAGE_KEYS).copied().collect();
            self.unknown_keys(table, &allowed, &format!("a {section} key"));
            let mut merged = defaults.clone();
            for (key, value) in table.iter().filter(|(k, _)| JOB_KEYS.contains(&k.get_ref().as_ref())) {
                merged.insert(key.clone(), value.clone());
            }
            let needs = self.needs(table.get("needs"));
            let mut own = Vec::new();
            if let Some(params) = self.table(table.get("params"), &format!("{section} params")) {
                self.params(params, "", &mut own);
            }
            let params = stage_params(shared, own, &needs);
            let before = self.diagnostics.0.len();
            let sweep = self.sweep(table.get("sweep").or_else(|| document.get("sweep")), &params);
            let after_sweep = self.diagnostics.0.len();
            let mut templates = shared_templates.to_vec();
            templates.extend(self.templates(table.get("template")));
            let job_item = Spanned::new(item.span(), DeValue::Table(merged));
            let job = self.job(Some(&job_item), &section);
            self.check_stage(&params, &sweep, &templates, job.as_ref(), executor);
            // A mistake in the shared [sweep] or templates' `where` may be one stage's only (a
            // stage that groups an axis away): say which.
            let inherited = table.get("sweep").is_none();
            let shared: Vec<Range<usize>> = sweep
                .filter
                .iter()
                .filter(|_| inherited)
                .chain(shared_templates.iter().filter_map(|t| t.filter.as_ref()))
                .map(Spanned::span)
                .collect();
            let sweep_mistakes = before..after_sweep;
            for (i, diagnostic) in self.diagnostics.0.iter_mut().enumerate().skip(before) {
                let at = diagnostic.location.as_ref().map(|l| l.1.clone());
                if (inherited && sweep_mistakes.contains(&i)) || at.is_some_and(|at| shared.contains(&at)) {
                    diagnostic.message = format!("{} (in stage `{}`)", diagnostic.message, name.get_ref());
                }
            }
            let Some(job) = job else { continue };
            let name = Spanned::new(name.span(), name.get_ref().to_string());
            stages.push(Stage { name, needs, params, sweep, templates, job });
        }
        self.check_needs(&stages, &declared);
        (order_stages(stages), declared)
    }

    pub(super) fn needs(&mut self, item: Option<&Item<'_>>) -> Vec<Need> {
        let Some(item) = item else { return Vec::new() };
        let entries = match item.get_ref() {
            DeValue::Array(entries) => &entries[..],
            other => {
                self.at(
                    item.span(),
                    "`needs` must be a list",
                    format!("expected e.g. `needs = [\"train\"]`, found {}", kind(other)),
                );
                return Vec::new();
            }
        };
        let mut needs = Vec::new();
        for entry in entries {
            match entry.get_ref() {
                DeValue::String(stage) => {
                    needs.push(Need { stage: Spanned::new(entry.span(), stage.to_string()), group_by: None });
                }
                DeValue::Table(table) => {
                    self.unknown_keys(table, NEED_KEYS, "a key of a `needs` entry");
                    let Some(stage) = self.string(table, "stage", "the name of the stage needed") else {
                        self.at(
                            entry.span(),
                            "a `needs` entry needs `stage`",
                            "expected `{ stage = \"train\", group_by = [\"lr\"] }`",
                        );
                        continue;
                    };
                    let all = self.boolean(table, "all").unwrap_or(false);
                    let group_by = table.get("group_by").map(|_| self.strings(table, "group_by", "a parameter name"));
                    if all && group_by.is_some() {
                        self.at(
                            entry.span(),
                            "`all` and `group_by` exclude each other",
                            "`all = true` is grouping by nothing",
                        );
                    }
                    let group_by = match group_by {
                        Some(names) => Some(names.into_iter().map(Spanned::into_inner).collect()),
                        None if all => Some(Vec::new()),
                        None => None,
                    };
                    needs.push(Need { stage, group_by });
                }
                other => {
                    self.at(
                        entry.span(),
                        "a `needs` entry is a stage name or a table",
                        format!("found {}", kind(other)),
                    );
                }
            }
        }
        needs
    }

    /// Each need names another declared stage, groups by params both stages have, and no stage
    /// needs itself through others.
    pub(super) fn check_needs(&mut self, stages: &[Stage], declared: &[String]) {
        let names: Vec<&str> = stages.iter().map(|s| s.name.get_ref().as_str()).collect();
        for stage in stages {
            for (i, need) in stage.needs.iter().enumerate() {
                let wanted = need.stage.get_ref();
                if stage.needs[..i].iter().any(|n| n.stage.get_ref() == wanted) {
                    self.at(need.stage.span(), format!("`{wanted}` is needed twice"), "needed before").help =
                        Some("keep one entry per stage needed".into());
                    continue;
                }
                let Some(upstream) = stages.iter().find(|s| s.name.get_ref() == wanted) else {
                    // A stage with mistakes of its own is reported there.
                    if !declared.contains(wanted) {
                        let help = did_you_mean(wanted, names.iter().copied())
                            .unwrap_or_else(|| format!("the stages are: {}", names.join(", ")));
                        self.at(need.stage.span(), format!("no stage named `{wanted}`"), "needed here").help =
                            Some(help);
                    }
                    continue;
                };
                for name in need.group_by.iter().flatten() {
                    let has = |s: &Stage| s.params.iter().any(|p| &p.name == name);
                    if !has(upstream) || !has(stage) {
                        let help = did_you_mean(name, upstream.params.iter().map(|p| p.name.as_str()))
                            .unwrap_or_else(|| "group by params of both stages".into());
                        self.at(
                            need.stage.span(),
                            format!(
                                "`group_by` names `{name}`, which is not a param of both `{}` and `{wanted}`",
                                stage.name.get_ref()
                            ),
                            "in this need",
                        )
                        .help = Some(help);
                    }
                }
            }
        }
        if let Some(cycle) = find_cycle(stages) {
            let first = &stages[cycle[0]];
            let next = stages[cycle[1 % cycle.len()]].name.get_ref();
            let span =
                first.needs.iter().find(|n| n.stage.get_ref() == next).map_or(first.name.span(), |n| n.stage.span());
            let path: Vec<&str> = cycle.iter().chain(&cycle[..1]).map(|&i| stages[i].name.get_ref().as_str()).collect();
            self.at(
                span,
                format!("stage `{}` needs itself: {}", first.name.get_ref(), path.join(" → ")),
                "a cycle of stages",
            )
            .help = Some("a stage can only need stages that do not need it".into());
        }
    }

    /// Which stage the report reads: `[report] stage`, or the last declared.
    pub(super) fn report_stage(&mut self, report: &ReportSpec, stages: &[Stage], declared: &[String]) -> usize {
        let Some(wanted) = &report.stage else {
            return stages.iter().enumerate().max_by_key(|(_, s)| s.name.span().start).map_or(0, |(i, _)| i);
        };
        stages.iter().position(|s| s.name.get_ref() == wanted.get_ref()).unwrap_or_else(|| {
            // A stage with mistakes of its own is reported there.
            if declared.contains(wanted.get_ref()) {
                return usize::MAX;
            }
            let names = stages.iter().map(|s| s.name.get_ref().as_str());
            let help =
                did_you_mean(wanted.get_ref(), names).unwrap_or_else(|| "name one of the [stage.NAME] tables".into());
            self.at(wanted.span(), format!("no stage named `{}`", wanted.get_ref()), "the report's stage").help =
                Some(help);
            usize::MAX
        })
    }
}

/// A stage's params: the shared ones with its own replacing those of the same name (in place)
/// or added after them. A stage that needs a group of upstream jobs (`group_by`, `all`) leaves
/// out the shared axes it does not group by: it makes one job per group, not one per upstream job.
pub(super) fn stage_params(shared: &[Param], own: Vec<Param>, needs: &[Need]) -> Vec<Param> {
    let grouped_away =
        |name: &str| needs.iter().any(|n| n.group_by.as_ref().is_some_and(|names| !names.iter().any(|g| g == name)));
    let mut params: Vec<Param> = shared.iter().filter(|p| !(p.swept && grouped_away(&p.name))).cloned().collect();
    for param in own {
        match params.iter_mut().find(|p| p.name == param.name) {
            Some(slot) => *slot = param,
            None => params.push(param),
        }
    }
    params
}

/// A cycle of `needs`, as indices into `stages` in the order they need each other.
pub(super) fn find_cycle(stages: &[Stage]) -> Option<Vec<usize>> {
    let ordered = order_stages(stages.to_vec());
    let stuck = |i: usize| !ordered.iter().any(|o| o.name.get_ref() == stages[i].name.get_ref());
    let index = |name: &str| stages.iter().position(|s| s.name.get_ref() == name);
    // A stage left out needs another left out (or itself): following such needs must come back.
    let mut path = vec![(0..stages.len()).find(|&i| stuck(i))?];
    loop {
        let last = *path.last()?;
        let next = stages[last].needs.iter().filter_map(|n| index(n.stage.get_ref())).find(|&j| stuck(j))?;
        if let Some(start) = path.iter().position(|&i| i == next) {
            return Some(path.split_off(start));
        }
        path.push(next);
    }
}

/// Stages after the stages they need, otherwise in declared order; stages in a cycle are left out.
pub(super) fn order_stages(mut pending: Vec<Stage>) -> Vec<Stage> {
    let mut ordered: Vec<Stage> = Vec::with_capacity(pending.len());
    while let Some(next) = pending.iter().position(|stage| {
        stage.needs.iter().all(|n| {
            ordered.iter().any(|o| o.name.get_ref() == n.stage.get_ref())
                || !pending.iter().any(|p| p.name.get_ref() == n.stage.get_ref())
        })
    }) {
        ordered.push(pending.remove(next));
    }
    ordered
}
