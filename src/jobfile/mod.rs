//! Stage 1: read `Jobfile.toml` into a validated [`Jobfile`].
//!
//! The TOML is parsed with spans (`toml::de::DeTable`) and walked by hand so that every mistake
//! is collected, with its line and column, before anything runs.

pub mod expr;
pub mod figure;
mod param_set;
pub mod slurm;

pub use param_set::{ParamSet, display_params, display_value};

use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::jobfile::figure::{Aggregate, ErrorBars, FigureKind, FigureSpec};
use crate::util::diagnostic::{Diagnostic, Diagnostics, Source, did_you_mean};
use serde::Serialize;

/// Sections a Jobfile may have, in the order the reference documents them.
const SECTIONS: &[&str] = &["workspace", "params", "sweep", "template", "job", "stage", "executor", "report", "figure"];
const WORKSPACE_KEYS: &[&str] = &["jobs", "report", "figures", "templates"];
const SWEEP_KEYS: &[&str] = &["zip", "where", "include", "samples", "seed"];
const TEMPLATE_KEYS: &[&str] = &["src", "target", "where"];
const JOB_KEYS: &[&str] = &[
    "command",
    "name",
    "inputs",
    "env",
    "results",
    "series",
    "outputs",
    "params_file",
    "timeout",
    "retries",
    "gpus",
    "resources",
];
/// What a `[stage.NAME]` table holds besides the [`JOB_KEYS`].
const STAGE_KEYS: &[&str] = &["needs", "params", "sweep", "template"];
const NEED_KEYS: &[&str] = &["stage", "group_by", "all"];
/// Build targets a stage may not be named after.
const TARGET_NAMES: &[&str] = &["jobs", "report", "figures"];
const EXECUTOR_KEYS: &[&str] = &["kind", "local", "slurm"];
const LOCAL_KEYS: &[&str] = &["gpus", "resources"];
const SLURM_KEYS: &[&str] = &[
    "partition",
    "account",
    "qos",
    "time",
    "cpus",
    "mem",
    "gpus",
    "extra_args",
    "setup",
    "max_parallel",
    "jobs_per_task",
    "poll_interval",
];
const REPORT_KEYS: &[&str] = &["stage", "columns", "rename", "unfinished"];
const FIGURE_KEYS: &[&str] = &[
    "name",
    "kind",
    "x",
    "y",
    "group",
    "value",
    "aggregate",
    "error",
    "log_x",
    "log_y",
    "title",
    "x_label",
    "y_label",
    "where",
];
const GENERATORS: &[&str] = &["range", "linspace", "logspace"];
const DISTRIBUTIONS: &[&str] = &["uniform", "loguniform", "randint", "choice"];
/// More samples than this is a mistake, not a search.
const MAX_SAMPLES: i64 = 1_000_000;
/// Names the template context reserves for itself.
pub const RESERVED_PARAMS: &[&str] = &["job", "needs"];

/// A validated Jobfile. Paths are absolute.
#[derive(Debug, Clone)]
pub struct Jobfile {
    pub path: PathBuf,
    /// The folder holding the Jobfile: relative paths start here.
    pub root: PathBuf,
    pub source: Source,
    pub workspace: Workspace,
    /// Flat parameters (nested tables become `a.b`), in declaration order.
    pub params: Vec<Param>,
    pub sweep: Sweep,
    pub templates: Vec<TemplateSpec>,
    pub job: JobSpec,
    pub executor: ExecutorSpec,
    pub report: ReportSpec,
    pub figures: Vec<Spanned<FigureSpec>>,
    /// `[stage.NAME]` tables, each after the stages it needs. Empty for a Jobfile of one stage
    /// (`[job]`); otherwise `params`, `sweep`, `templates` and `job` above are those of
    /// `stages[stage]`, and [`Jobfile::stage_view`] gives the others.
    pub stages: Vec<Stage>,
    /// Which of `stages` the fields above are: the report's stage, until a view chooses another.
    pub stage: usize,
}

/// `[report]`: which columns `report.csv` has, under which names, and which jobs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReportSpec {
    /// The stage whose jobs are the rows (a Jobfile with stages; default: the last declared).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<Spanned<String>>,
    /// Chosen and ordered columns; `None`: id, name, params, results, status, duration.
    pub columns: Option<Vec<Spanned<String>>>,
    /// Column → name in the file.
    pub rename: Vec<(String, String)>,
    /// Also list failed and pending jobs, with empty result cells.
    pub unfinished: bool,
}

#[derive(Debug, Clone)]
pub struct Workspace {
    pub jobs: PathBuf,
    pub report: PathBuf,
    pub figures: PathBuf,
    pub templates: PathBuf,
    /// jobman's own state: lock, build log.
    pub state: PathBuf,
}

/// One parameter: a constant (one value, not swept) or a sweep axis.
#[derive(Debug, Clone)]
pub struct Param {
    /// Dotted path for nested tables: `model.width`.
    pub name: String,
    /// The axis's values; empty for a sampled parameter.
    pub values: Vec<Value>,
    pub swept: bool,
    /// Drawn `[sweep] samples` times per grid point instead of taking listed values.
    pub distribution: Option<Distribution>,
    pub span: Range<usize>,
}

/// Where a sampled parameter's values come from (random search).
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// A float from `low` to `high`, evenly.
    Uniform { low: f64, high: f64 },
    /// A float from `low` to `high`, evenly on a log scale: as many draws in 1e-4..1e-3 as in 1e-3..1e-2.
    LogUniform { low: f64, high: f64 },
    /// An integer from `low` to `high`, both included.
    RandInt { low: i64, high: i64 },
    /// One of these values, each as likely.
    Choice(Vec<Value>),
}

#[derive(Debug, Clone, Default)]
pub struct Sweep {
    pub zip: Vec<Spanned<Vec<String>>>,
    pub filter: Option<Spanned<String>>,
    /// Extra points: flat parameter name → value.
    pub include: Vec<Spanned<Vec<(String, Value)>>>,
    /// Random search: `samples` draws of the sampled parameters per grid point.
    pub sampling: Option<Sampling>,
}

/// `[sweep] samples` and `seed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampling {
    pub samples: usize,
    pub seed: i64,
}

#[derive(Debug, Clone)]
pub struct TemplateSpec {
    /// Path under the templates folder; may use params.
    pub src: Spanned<String>,
    /// Path inside the job folder; may use params.
    pub target: Spanned<String>,
    /// Only the jobs whose params make this expression true get the file.
    pub filter: Option<Spanned<String>>,
}

/// `[stage.NAME]`: one kind of job of a Jobfile with stages, with the shared params and
/// templates merged in.
#[derive(Debug, Clone)]
pub struct Stage {
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

#[derive(Debug, Clone)]
pub struct JobSpec {
    pub command: Spanned<String>,
    pub name: Option<Spanned<String>>,
    pub inputs: Vec<Spanned<String>>,
    pub env: Vec<Spanned<String>>,
    pub results: Option<Spanned<String>>,
    /// A CSV file of per-step rows (loss per epoch) the job writes, for `curve` figures.
    pub series: Option<Spanned<String>>,
    /// Files the job must write besides its results; their hashes are part of the keys of the
    /// jobs that need this one.
    pub outputs: Vec<Spanned<String>>,
    /// `None` when disabled with `params_file = false`.
    pub params_file: Option<Spanned<String>>,
    pub timeout: Option<Duration>,
    /// How many times a failed or timed-out job is tried again, in the same build.
    pub retries: u32,
    /// GPUs the job needs at once; the local executor gives it that many of its own.
    pub gpus: Option<PerJob<u32>>,
    /// Named resource (declared in `[executor.local] resources`) → amount the job holds while it runs.
    pub resources: Vec<(Spanned<String>, PerJob<f64>)>,
}

/// A setting that may differ between jobs: a value, or a template over params (it holds `{{` or
/// `{%`) rendered for each job and checked then.
#[derive(Debug, Clone, PartialEq)]
pub enum PerJob<T> {
    Value(T),
    Template(Spanned<String>),
}

/// `[executor]`: where and how jobs run. None of it is part of a job's key.
#[derive(Debug, Clone, Default)]
pub struct ExecutorSpec {
    pub kind: ExecutorKind,
    pub local: LocalSpec,
    pub slurm: SlurmSpec,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExecutorKind {
    #[default]
    Local,
    Slurm,
}

/// `[executor.local]`: what the machine offers jobs besides cores.
#[derive(Debug, Clone, Default)]
pub struct LocalSpec {
    pub gpus: GpuPool,
    /// Named resource → capacity, in declaration order: the jobs running at once hold at most this much.
    pub resources: Vec<(Spanned<String>, f64)>,
}

/// The GPUs the local executor hands out, one job at a time each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum GpuPool {
    /// Those `nvidia-smi -L` lists; none without it.
    #[default]
    Auto,
    /// These ids, as `CUDA_VISIBLE_DEVICES` names them.
    Ids(Vec<u32>),
}

/// `[executor.slurm]`: sbatch settings. Strings and counts may be templates over params; jobs
/// whose rendered settings differ go into different arrays.
#[derive(Debug, Clone)]
pub struct SlurmSpec {
    pub partition: Option<PerJob<String>>,
    pub account: Option<PerJob<String>>,
    pub qos: Option<PerJob<String>>,
    pub time: Option<PerJob<String>>,
    pub cpus: Option<PerJob<u32>>,
    pub mem: Option<PerJob<String>>,
    /// `--gres=gpu:N`; default: `[job] gpus`.
    pub gpus: Option<PerJob<u32>>,
    pub extra_args: Vec<PerJob<String>>,
    pub setup: Option<PerJob<String>>,
    /// At most this many tasks of one array run at once (`--array=…%N`).
    pub max_parallel: Option<u32>,
    /// How many jobs one array task runs, one after the other: Slurm's cost of starting a task is
    /// paid once for them all (for short jobs).
    pub jobs_per_task: u32,
    /// The longest wait between two looks at the queue.
    pub poll_interval: Duration,
}

impl Default for SlurmSpec {
    fn default() -> Self {
        SlurmSpec {
            partition: None,
            account: None,
            qos: None,
            time: None,
            cpus: None,
            mem: None,
            gpus: None,
            extra_args: Vec::new(),
            setup: None,
            max_parallel: None,
            jobs_per_task: 1,
            poll_interval: crate::jobfile::slurm::DEFAULT_POLL_INTERVAL,
        }
    }
}

/// Whether a Jobfile string is a template to render per job.
fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

impl Jobfile {
    /// The Jobfile as stage `index` sees it: its params, sweep, templates and job.
    pub fn stage_view(&self, index: usize) -> Jobfile {
        let stage = &self.stages[index];
        Jobfile {
            params: stage.params.clone(),
            sweep: stage.sweep.clone(),
            templates: stage.templates.clone(),
            job: stage.job.clone(),
            stage: index,
            ..self.clone()
        }
    }

    /// One view per stage, upstream stages first; a Jobfile without stages is its own only view.
    pub fn stage_views(&self) -> Vec<Jobfile> {
        (0..self.stages.len().max(1)).map(|i| self.view_of(i)).collect()
    }

    /// The view of the stage of a job (`Job::stage`), whether or not the Jobfile has stages.
    pub fn view_of(&self, stage: usize) -> Jobfile {
        if self.stages.is_empty() { self.clone() } else { self.stage_view(stage) }
    }

    /// The name of the stage this view is of; `None` without stages.
    pub fn stage_name(&self) -> Option<&str> {
        self.stages.get(self.stage).map(|s| s.name.get_ref().as_str())
    }

    /// The stages that `stage` needs, directly or not, and itself.
    pub fn stage_closure(&self, stage: usize) -> Vec<bool> {
        let mut wanted = vec![false; self.stages.len()];
        wanted[stage] = true;
        // Stages come after the stages they need: one backward pass reaches them all.
        for i in (0..self.stages.len()).rev() {
            if wanted[i] {
                for need in &self.stages[i].needs {
                    if let Some(j) = self.stage_index(need.stage.get_ref()) {
                        wanted[j] = true;
                    }
                }
            }
        }
        wanted
    }

    /// Which stages `targets` build: those named and the stages they need; every stage when no
    /// stage is named.
    pub fn stages_for_targets(&self, targets: &[String]) -> Vec<bool> {
        let named: Vec<usize> = targets.iter().filter_map(|t| self.stage_index(t)).collect();
        if named.is_empty() {
            return vec![true; self.stages.len().max(1)];
        }
        let mut wanted = vec![false; self.stages.len()];
        for stage in named {
            for (i, needed) in self.stage_closure(stage).into_iter().enumerate() {
                wanted[i] |= needed;
            }
        }
        wanted
    }

    /// The params of every stage, in build order (a param shared by several stages once per
    /// stage); those of the Jobfile without stages.
    pub fn params_of_every_stage(&self) -> impl Iterator<Item = &Param> {
        let own = self.stages.is_empty().then_some(&self.params[..]);
        own.into_iter().chain(self.stages.iter().map(|s| &s.params[..])).flatten()
    }

    /// The names of the stages, in build order.
    pub fn stage_names(&self) -> Vec<String> {
        self.stages.iter().map(|s| s.name.get_ref().clone()).collect()
    }

    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name.get_ref() == name)
    }

    /// Reads and validates the Jobfile at `path`. I/O failures are `anyhow` errors; every mistake in
    /// the file itself is a diagnostic.
    pub fn load(path: &Path) -> anyhow::Result<Jobfile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "no Jobfile at {}\n  help: run jobman in the folder holding Jobfile.toml, name it with --file, or start one with `jobman init`",
                    path.display()
                )
            } else {
                anyhow::Error::new(e).context(format!("cannot read {}", path.display()))
            }
        })?;
        let path = std::path::absolute(path)?;
        let root = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
        let display = std::env::current_dir()
            .ok()
            .and_then(|cwd| path.strip_prefix(cwd).ok().map(|p| p.display().to_string()))
            .unwrap_or_else(|| path.display().to_string());
        let source = Source { path: display, text: text.into() };
        Ok(parse(&source, &path, &root)?)
    }
}

/// Parses Jobfile text; pure apart from the paths it is given.
pub fn parse(source: &Source, path: &Path, root: &Path) -> Result<Jobfile, Diagnostics> {
    let (document, errors) = DeTable::parse_recoverable(&source.text);
    let mut walker = Walker { source, diagnostics: Diagnostics::default(), saw_distribution: false };
    for error in errors {
        let span = error.span().unwrap_or(0..0);
        walker.error(Diagnostic::new(format!("invalid TOML: {}", error.message().trim_end())).at(source, span, "here"));
    }
    if !walker.diagnostics.is_empty() {
        return Err(walker.diagnostics);
    }
    let document = document.into_inner();
    walker.unknown_keys(&document, SECTIONS, "a Jobfile section");

    let workspace = walker.workspace(document.get("workspace"), root);
    let mut params = Vec::new();
    if let Some(table) = walker.table(document.get("params"), "[params]") {
        walker.params(table, "", &mut params);
    }
    let executor = walker.executor(document.get("executor"));
    let mut report = walker.report(document.get("report"));
    let figures = walker.figures(document.get("figure"));
    let shared_templates = walker.templates(document.get("template"));
    let (stages, declared) = match document.get("stage") {
        None => (Vec::new(), Vec::new()),
        Some(item) => walker.stages(item, &params, &document, &shared_templates, &executor),
    };
    let (view, stage) = if document.get("stage").is_some() {
        // The report's stage, checked; the fields of a Jobfile with stages are its view.
        let chosen = walker.report_stage(&report, &stages, &declared);
        match stages.get(chosen) {
            Some(stage) => {
                (Some((stage.params.clone(), stage.sweep.clone(), stage.templates.clone(), stage.job.clone())), chosen)
            }
            None => (None, 0),
        }
    } else {
        if let Some(stage) = report.stage.take() {
            walker.at(stage.span(), "`stage` needs [stage.NAME] tables", "this Jobfile has a single [job]");
        }
        let sweep = walker.sweep(document.get("sweep"), &params);
        let job = walker.job(document.get("job"), "[job]");
        walker.check_stage(&params, &sweep, &shared_templates, job.as_ref(), document.get("job"), &executor);
        if document.get("job").is_none() {
            walker.error(
                Diagnostic::new("missing [job] section")
                    .at(source, 0..0, "expected a [job] table with a `command`")
                    .help("add:\n[job]\ncommand = \"python3 train.py\""),
            );
        }
        (job.map(|job| (params.clone(), sweep, shared_templates.clone(), job)), 0)
    };
    if let Some((_, _, _, job)) = &view
        && job.series.is_none()
        && let Some(curve) = figures.iter().find(|f| f.get_ref().kind == FigureKind::Curve)
    {
        walker.error(
            Diagnostic::new("a `curve` figure needs the jobs' series file")
                .at(source, curve.span(), "reads per-step rows")
                .help("declare it in [job]: series = \"metrics.csv\""),
        );
    }

    // Shown in the order they stand in the file; a shared mistake seen by several stages, once.
    walker.diagnostics.0.sort_by_key(|d| d.location.as_ref().map_or(0, |l| l.1.start));
    walker.diagnostics.0.dedup_by(|a, b| {
        a.message == b.message && a.location.as_ref().map(|l| &l.1) == b.location.as_ref().map(|l| &l.1)
    });
    let Some((params, sweep, templates, job)) = view else { return Err(walker.diagnostics) };
    walker.diagnostics.into_result(Jobfile {
        path: path.to_path_buf(),
        root: root.to_path_buf(),
        source: source.clone(),
        workspace,
        params,
        sweep,
        templates,
        job,
        executor,
        report,
        figures,
        stages,
        stage,
    })
}

type Item<'i> = Spanned<DeValue<'i>>;

struct Walker<'s> {
    source: &'s Source,
    diagnostics: Diagnostics,
    /// Whether a parameter was written as a distribution, even one refused: `samples` is then wanted.
    saw_distribution: bool,
}

impl Walker<'_> {
    fn error(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn at(&mut self, span: Range<usize>, message: impl Into<String>, label: impl Into<String>) -> &mut Diagnostic {
        let diagnostic = Diagnostic::new(message).at(self.source, span, label);
        self.diagnostics.push(diagnostic);
        self.diagnostics.0.last_mut().expect("just pushed")
    }

    fn unknown_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], what: &str) {
        for key in table.keys() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                let help = did_you_mean(key.get_ref(), allowed.iter().copied())
                    .unwrap_or_else(|| format!("expected one of: {}", allowed.join(", ")));
                self.at(key.span(), format!("unknown key `{}`", key.get_ref()), format!("not {what}")).help =
                    Some(help);
            }
        }
    }

    fn table<'a, 'i>(&mut self, item: Option<&'a Item<'i>>, what: &str) -> Option<&'a DeTable<'i>> {
        match item.map(|i| (i, i.get_ref())) {
            None => None,
            Some((_, DeValue::Table(table))) => Some(table),
            Some((item, other)) => {
                self.at(item.span(), format!("{what} must be a table"), format!("found {}", kind(other)));
                None
            }
        }
    }

    fn string(&mut self, table: &DeTable<'_>, key: &str, what: &str) -> Option<Spanned<String>> {
        let item = table.get(key)?;
        match item.get_ref() {
            DeValue::String(s) => Some(Spanned::new(item.span(), s.to_string())),
            other => {
                self.at(
                    item.span(),
                    format!("`{key}` must be a string"),
                    format!("expected {what}, found {}", kind(other)),
                );
                None
            }
        }
    }

    fn strings(&mut self, table: &DeTable<'_>, key: &str, what: &str) -> Vec<Spanned<String>> {
        let Some(item) = table.get(key) else { return Vec::new() };
        match item.get_ref() {
            DeValue::String(s) => vec![Spanned::new(item.span(), s.to_string())],
            DeValue::Array(items) => items
                .iter()
                .filter_map(|element| match element.get_ref() {
                    DeValue::String(s) => Some(Spanned::new(element.span(), s.to_string())),
                    other => {
                        self.at(
                            element.span(),
                            format!("`{key}` must list strings"),
                            format!("expected {what}, found {}", kind(other)),
                        );
                        None
                    }
                })
                .collect(),
            other => {
                self.at(
                    item.span(),
                    format!("`{key}` must be a list of strings"),
                    format!("expected {what}, found {}", kind(other)),
                );
                Vec::new()
            }
        }
    }

    fn workspace(&mut self, item: Option<&Item<'_>>, root: &Path) -> Workspace {
        let path = |walker: &mut Self, table: Option<&DeTable<'_>>, key: &str, default: &str| {
            let value = table.and_then(|t| walker.string(t, key, "a path"));
            root.join(value.map_or_else(|| default.to_string(), Spanned::into_inner))
        };
        let table = self.table(item, "[workspace]");
        if let Some(table) = table {
            self.unknown_keys(table, WORKSPACE_KEYS, "a [workspace] key");
        }
        Workspace {
            jobs: path(self, table, "jobs", "scratch_space"),
            report: path(self, table, "report", "report.csv"),
            figures: path(self, table, "figures", "figures"),
            templates: path(self, table, "templates", "templates"),
            state: root.join(".jobman"),
        }
    }

    fn params(&mut self, table: &DeTable<'_>, prefix: &str, out: &mut Vec<Param>) {
        for (key, item) in table.iter() {
            let name = format!("{prefix}{}", key.get_ref());
            if !is_identifier(key.get_ref()) {
                self.at(
                    key.span(),
                    format!("parameter name `{name}` is not usable in templates"),
                    "expected letters, digits and `_`, not starting with a digit",
                )
                .help = Some("rename it, e.g. `learning_rate` instead of `learning-rate`".into());
                continue;
            }
            if prefix.is_empty() && RESERVED_PARAMS.contains(&name.as_str()) {
                self.at(
                    key.span(),
                    format!("`{name}` is reserved"),
                    "templates see jobman's own `job.id`, `job.dir`, … and `needs.STAGE` under these names",
                )
                .help = Some("rename the parameter".into());
                continue;
            }
            let span = item.span();
            match item.get_ref() {
                DeValue::Table(inner) if inner.keys().any(|k| DISTRIBUTIONS.contains(&k.get_ref().as_ref())) => {
                    if let Some(distribution) = self.distribution(inner, span.clone()) {
                        out.push(Param {
                            name,
                            values: Vec::new(),
                            swept: true,
                            distribution: Some(distribution),
                            span,
                        });
                    }
                }
                DeValue::Table(inner) if inner.keys().any(|k| GENERATORS.contains(&k.get_ref().as_ref())) => {
                    if let Some(values) = self.generator(inner, span.clone()) {
                        out.push(Param { name, values, swept: true, distribution: None, span });
                    }
                }
                DeValue::Table(inner) if self.misspelt_generator(&name, inner) => {}
                DeValue::Table(inner) => self.params(inner, &format!("{name}."), out),
                DeValue::Array(items) if items.is_empty() => {
                    self.at(span, format!("parameter `{name}` has no values"), "an axis needs at least one value");
                }
                DeValue::Array(items) => {
                    let values = items.iter().filter_map(|v| self.value(v)).collect::<Vec<_>>();
                    if values.len() == items.len() {
                        out.push(Param { name, values, swept: true, distribution: None, span });
                    }
                }
                _ => {
                    if let Some(value) = self.value(item) {
                        out.push(Param { name, values: vec![value], swept: false, distribution: None, span });
                    }
                }
            }
        }
    }

    /// Whether `{ unifrom = [0, 1] }` is a misspelt distribution or generated axis (reported)
    /// rather than a nested param: a table of one key close to one of their names, holding a list.
    fn misspelt_generator(&mut self, name: &str, table: &DeTable<'_>) -> bool {
        let mut keys = table.iter();
        let (Some((key, value)), None) = (keys.next(), keys.next()) else { return false };
        if !matches!(value.get_ref(), DeValue::Array(_)) {
            return false;
        }
        let known = DISTRIBUTIONS.iter().chain(GENERATORS).copied();
        let Some(help) = did_you_mean(key.get_ref(), known) else { return false };
        self.at(
            key.span(),
            format!("unknown generator or distribution `{}` for `{name}`", key.get_ref()),
            format!("expected one of: {}, {}", GENERATORS.join(", "), DISTRIBUTIONS.join(", ")),
        )
        .help = Some(format!("{help} (a param nested under `{name}` would need another name)"));
        // `samples` is then wanted, not a second mistake.
        self.saw_distribution = true;
        true
    }

    /// `{ range = [a, b, step] }`, `{ linspace = [a, b, n] }`, `{ logspace = [a, b, n] }`.
    fn generator(&mut self, table: &DeTable<'_>, span: Range<usize>) -> Option<Vec<Value>> {
        if table.len() != 1 {
            self.at(
                span,
                "a generated axis takes exactly one key",
                "expected `{ range = [..] }`, `{ linspace = [..] }` or `{ logspace = [..] }`",
            );
            return None;
        }
        let (key, item) = table.iter().next()?;
        let numbers: Vec<Value> = match item.get_ref() {
            DeValue::Array(items) => items.iter().filter_map(|v| self.value(v)).collect(),
            _ => Vec::new(),
        };
        let floats: Option<Vec<f64>> = numbers.iter().map(Value::as_f64).collect();
        let result = match (key.get_ref().as_ref(), floats.as_deref()) {
            ("range", Some([start, stop])) => generate_range(*start, *stop, 1.0, all_integers(&numbers)),
            ("range", Some([start, stop, step])) => generate_range(*start, *stop, *step, all_integers(&numbers)),
            ("linspace", Some([start, stop, n])) => {
                generate_linspace(*start, *stop, *n).map(|v| v.into_iter().map(number).collect())
            }
            ("logspace", Some([start, stop, n])) => generate_linspace(*start, *stop, *n)
                .map(|v| v.into_iter().map(|exponent| number(tidy(10f64.powf(exponent)))).collect()),
            _ => Err(match key.get_ref().as_ref() {
                "range" => "expected `range = [start, stop, step]` (stop excluded) or `[start, stop]`".to_string(),
                name => format!("expected `{name} = [start, stop, count]` with numbers"),
            }),
        };
        match result {
            Ok(values) if values.is_empty() => {
                self.at(item.span(), "this axis has no values", "the range is empty");
                None
            }
            Ok(values) => Some(values),
            Err(expected) => {
                self.at(item.span(), format!("invalid `{}` axis", key.get_ref()), expected);
                None
            }
        }
    }

    /// `{ uniform = [low, high] }`, `{ loguniform = [low, high] }`, `{ randint = [low, high] }`,
    /// `{ choice = [..] }`.
    fn distribution(&mut self, table: &DeTable<'_>, span: Range<usize>) -> Option<Distribution> {
        self.saw_distribution = true;
        if table.len() != 1 {
            self.at(
                span,
                "a sampled parameter takes exactly one key",
                "expected e.g. `{ uniform = [0, 1] }` or `{ choice = [\"a\", \"b\"] }`",
            );
            return None;
        }
        let (key, item) = table.iter().next()?;
        let name = key.get_ref().as_ref();
        let DeValue::Array(items) = item.get_ref() else {
            let expected = if name == "choice" {
                "expected `choice = [..]`, the values to choose from".to_string()
            } else {
                format!("expected `{name} = [low, high]`")
            };
            self.at(
                item.span(),
                format!("invalid `{name}` distribution"),
                format!("{expected}, found {}", kind(item.get_ref())),
            );
            return None;
        };
        if name == "choice" {
            if items.is_empty() {
                self.at(item.span(), "`choice` has no values", "expected at least one value to choose from");
                return None;
            }
            let values: Vec<Value> = items.iter().filter_map(|v| self.value(v)).collect();
            return (values.len() == items.len()).then_some(Distribution::Choice(values));
        }
        let bounds: Vec<Value> = items.iter().filter_map(|v| self.value(v)).collect();
        if bounds.len() != items.len() {
            return None;
        }
        let distribution = match (name, &bounds[..]) {
            ("randint", [low, high]) if low.is_i64() && high.is_i64() => {
                let (low, high) = (low.as_i64()?, high.as_i64()?);
                (low < high).then_some(Distribution::RandInt { low, high })
            }
            ("randint", _) => {
                self.at(
                    item.span(),
                    "invalid `randint` distribution",
                    "expected `randint = [low, high]` with integers, both included",
                );
                return None;
            }
            (_, [low, high]) if low.is_number() && high.is_number() => {
                let (low, high) = (low.as_f64()?, high.as_f64()?);
                if name == "loguniform" && low <= 0.0 {
                    self.at(item.span(), "invalid `loguniform` distribution", "expected bounds above 0").help =
                        Some(format!(
                            "a log scale has no 0 nor negative numbers; try `loguniform = [{}, {high}]`",
                            high / 1000.0
                        ));
                    return None;
                }
                match name {
                    "uniform" => (low < high).then_some(Distribution::Uniform { low, high }),
                    _ => (low < high).then_some(Distribution::LogUniform { low, high }),
                }
            }
            _ => {
                self.at(
                    item.span(),
                    format!("invalid `{name}` distribution"),
                    format!("expected `{name} = [low, high]` with numbers"),
                );
                return None;
            }
        };
        if distribution.is_none() {
            self.at(
                item.span(),
                format!("invalid `{name}` distribution"),
                "expected the low bound below the high bound",
            )
            .help = Some("for a parameter with one value, write the value: `epochs = 30`".into());
        }
        distribution
    }

    /// A TOML value as a JSON value; NaN and infinity are refused because no report can hold them.
    fn value(&mut self, item: &Item<'_>) -> Option<Value> {
        Some(match item.get_ref() {
            DeValue::String(s) => Value::String(s.to_string()),
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(i) => Value::from(i),
                Err(_) => {
                    self.at(item.span(), "integer out of range", "expected a 64-bit integer");
                    return None;
                }
            },
            DeValue::Float(f) => {
                match f.as_str().replace('_', "").parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                    Some(n) => Value::Number(n),
                    None => {
                        self.at(
                            item.span(),
                            "this float cannot be a parameter",
                            "expected a finite number (not nan or inf)",
                        );
                        return None;
                    }
                }
            }
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::String(d.to_string()),
            DeValue::Array(items) => Value::Array(items.iter().map(|v| self.value(v)).collect::<Option<_>>()?),
            DeValue::Table(table) => {
                let mut map = serde_json::Map::new();
                for (k, v) in table.iter() {
                    map.insert(k.get_ref().to_string(), self.value(v)?);
                }
                Value::Object(map)
            }
        })
    }

    fn sweep(&mut self, item: Option<&Item<'_>>, params: &[Param]) -> Sweep {
        let mut sweep = Sweep::default();
        let Some(table) = self.table(item, "[sweep]") else {
            self.sampling(None, params);
            return sweep;
        };
        self.unknown_keys(table, SWEEP_KEYS, "a [sweep] key");
        let param_names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        if let Some(zip) = table.get("zip") {
            let groups = match zip.get_ref() {
                DeValue::Array(groups) => &groups[..],
                _ => &[],
            };
            if groups.is_empty() {
                self.at(
                    zip.span(),
                    "`zip` must be a list of groups",
                    "expected e.g. `zip = [[\"hidden\", \"batch\"]]`",
                );
            }
            for group in groups {
                let names = match group.get_ref() {
                    DeValue::Array(names) => names
                        .iter()
                        .filter_map(|n| match n.get_ref() {
                            DeValue::String(s) => Some(Spanned::new(n.span(), s.to_string())),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                    _ => Vec::new(),
                };
                if names.len() < 2 {
                    self.at(
                        group.span(),
                        "a zip group names two or more parameters",
                        "expected e.g. [\"hidden\", \"batch\"]",
                    );
                    continue;
                }
                for name in &names {
                    self.known_param(name, &param_names);
                }
                sweep.zip.push(Spanned::new(group.span(), names.into_iter().map(Spanned::into_inner).collect()));
            }
        }
        sweep.filter = self.string(table, "where", "an expression such as \"lr < 0.1\"");
        sweep.sampling = self.sampling(Some(table), params);
        if let Some(include) = table.get("include") {
            let points = match include.get_ref() {
                DeValue::Array(points) => &points[..],
                other => {
                    self.at(include.span(), "`include` must be a list of tables", format!("found {}", kind(other)));
                    &[]
                }
            };
            for point in points {
                let DeValue::Table(fields) = point.get_ref() else {
                    self.at(
                        point.span(),
                        "an `include` point must be a table",
                        "expected e.g. { hidden = 128, lr = 0.01 }",
                    );
                    continue;
                };
                let mut values = Vec::new();
                self.include_point(fields, "", &param_names, &mut values);
                sweep.include.push(Spanned::new(point.span(), values));
            }
        }
        sweep
    }

    /// `[sweep] samples` and `seed`, which random search needs and nothing else may have.
    fn sampling(&mut self, table: Option<&DeTable<'_>>, params: &[Param]) -> Option<Sampling> {
        let sampled = params.iter().find(|p| p.distribution.is_some());
        let samples = table.and_then(|t| t.get("samples"));
        let seed = table.and_then(|t| t.get("seed"));
        let integer = |item: &Item<'_>| match item.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        };
        let count = samples.and_then(|item| match integer(item) {
            Some(n) if (1..=MAX_SAMPLES).contains(&n) => Some(n as usize),
            _ => {
                self.at(
                    item.span(),
                    "invalid `samples`",
                    format!("expected a whole number from 1 to 1,000,000, found {}", kind(item.get_ref())),
                );
                None
            }
        });
        let seed = match seed {
            None => Some(0),
            Some(item) => integer(item).or_else(|| {
                self.at(item.span(), "invalid `seed`", format!("expected an integer, found {}", kind(item.get_ref())));
                None
            }),
        };
        match (sampled, samples) {
            (Some(param), None) => {
                self.at(
                    param.span.clone(),
                    format!("`{}` is sampled, but [sweep] has no `samples`", param.name),
                    "a distribution is drawn `samples` times per grid point",
                )
                .help = Some("say how many draws to make:\n[sweep]\nsamples = 20\nseed = 0".into());
                None
            }
            (None, Some(_)) if self.saw_distribution => None,
            (None, Some(item)) => {
                self.at(item.span(), "`samples` without a sampled parameter", "no parameter has a distribution").help =
                    Some(
                        "declare one in [params], e.g. `lr = { loguniform = [1e-4, 1e-1] }`, or remove `samples`"
                            .into(),
                    );
                None
            }
            (None, None) => {
                if let Some(item) = table.and_then(|t| t.get("seed")) {
                    self.at(item.span(), "`seed` without `samples`", "seeds the draws of a random search").help =
                        Some("declare a sampled parameter and `samples`, or remove `seed`".into());
                }
                None
            }
            (Some(_), Some(_)) => Some(Sampling { samples: count?, seed: seed? }),
        }
    }

    fn include_point(&mut self, fields: &DeTable<'_>, prefix: &str, names: &[&str], out: &mut Vec<(String, Value)>) {
        for (key, item) in fields.iter() {
            let name = format!("{prefix}{}", key.get_ref());
            if let DeValue::Table(inner) = item.get_ref()
                && !names.contains(&name.as_str())
            {
                self.include_point(inner, &format!("{name}."), names, out);
                continue;
            }
            if self.known_param(&Spanned::new(key.span(), name.clone()), names)
                && let Some(value) = self.value(item)
            {
                out.push((name, value));
            }
        }
    }

    fn known_param(&mut self, name: &Spanned<String>, names: &[&str]) -> bool {
        if names.contains(&name.get_ref().as_str()) {
            return true;
        }
        let help = did_you_mean(name.get_ref(), names.iter().copied());
        self.at(name.span(), format!("unknown parameter `{}`", name.get_ref()), "not declared in [params]").help = help;
        false
    }

    fn templates(&mut self, item: Option<&Item<'_>>) -> Vec<TemplateSpec> {
        let Some(item) = item else { return Vec::new() };
        let DeValue::Array(entries) = item.get_ref() else {
            self.at(
                item.span(),
                "templates are declared as [[template]] entries",
                "expected [[template]], not [template]",
            );
            return Vec::new();
        };
        let mut templates = Vec::new();
        for entry in entries {
            let Some(table) = self.table(Some(entry), "a [[template]] entry") else { continue };
            self.unknown_keys(table, TEMPLATE_KEYS, "a [[template]] key");
            let src = self.string(table, "src", "a path under templates/");
            let target = self.string(table, "target", "a path inside the job folder");
            let filter = self.string(table, "where", "an expression over the params such as \"model == 'cnn'\"");
            match src {
                None => {
                    self.at(entry.span(), "a [[template]] needs `src`", "expected `src = \"train.py.j2\"`");
                }
                Some(src) => {
                    // The target defaults to the source name without its `.j2`/`.jinja` ending.
                    let target = target.unwrap_or_else(|| {
                        let name = src.get_ref().trim_end_matches(".j2").trim_end_matches(".jinja").to_string();
                        Spanned::new(src.span(), name)
                    });
                    templates.push(TemplateSpec { src, target, filter });
                }
            }
        }
        templates
    }

    /// A job table: `[job]`, or a `[stage.NAME]` (`section`) with `[job]`'s keys merged in.
    fn job(&mut self, item: Option<&Item<'_>>, section: &str) -> Option<JobSpec> {
        let table = self.table(item, section)?;
        if section == "[job]" {
            self.unknown_keys(table, JOB_KEYS, "a [job] key");
        }
        let command = self.string(table, "command", "the command that runs a job");
        if command.is_none() && table.get("command").is_none() {
            self.at(item?.span(), format!("{section} needs a `command`"), "expected `command = \"...\"`").help =
                Some("add e.g. `command = \"python3 train.py\"`".into());
        }
        let params_file = match table.get("params_file").map(|i| (i, i.get_ref())) {
            None => Some(Spanned::new(0..0, "params.json".to_string())),
            Some((_, DeValue::Boolean(false))) => None,
            Some((item, DeValue::String(name))) => {
                let name = name.to_string();
                if !(name.ends_with(".json") || name.ends_with(".toml")) {
                    self.at(item.span(), "unsupported params file format", "expected a name ending in .json or .toml");
                }
                Some(Spanned::new(item.span(), name))
            }
            Some((item, other)) => {
                self.at(item.span(), "`params_file` must be a file name or false", format!("found {}", kind(other)));
                None
            }
        };
        let timeout = self.duration(table, "timeout");
        let retries = table.get("retries").map_or(0, |item| {
            let found = match item.get_ref() {
                DeValue::Integer(i) if i.radix() == 10 => match i.as_str().parse::<u32>() {
                    Ok(n) => return n,
                    Err(_) => format!("`{}`", i.as_str()),
                },
                other => kind(other).to_string(),
            };
            self.at(item.span(), "invalid `retries`", format!("expected a whole number from 0, found {found}")).help =
                Some("write how many more times a failed job is tried, e.g. `retries = 2`".into());
            0
        });
        let gpus = self.count(table, "gpus", "a number of GPUs");
        let resources = match self.table(table.get("resources"), "`resources`") {
            None => Vec::new(),
            Some(amounts) => amounts
                .iter()
                .filter_map(|(name, _)| {
                    let amount = self.quantity(amounts, name.get_ref())?;
                    Some((Spanned::new(name.span(), name.get_ref().to_string()), amount))
                })
                .collect(),
        };
        Some(JobSpec {
            command: command?,
            name: self.string(table, "name", "a template such as \"h{{hidden}}-lr{{lr}}\""),
            inputs: self.strings(table, "inputs", "a glob relative to the Jobfile"),
            env: self.strings(table, "env", "an environment variable name"),
            results: self.string(table, "results", "a file the job writes, e.g. \"results.json\""),
            series: self.string(table, "series", "a CSV file the job writes, e.g. \"metrics.csv\""),
            outputs: self.strings(table, "outputs", "a file the job writes, e.g. \"weights.json\""),
            params_file,
            timeout,
            retries,
            gpus,
            resources,
        })
    }
}

impl Walker<'_> {
    /// The checks of one stage's settings against its params.
    fn check_stage(
        &mut self,
        params: &[Param],
        sweep: &Sweep,
        templates: &[TemplateSpec],
        job: Option<&JobSpec>,
        job_item: Option<&Item<'_>>,
        executor: &ExecutorSpec,
    ) {
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        for filter in sweep.filter.iter().chain(templates.iter().filter_map(|t| t.filter.as_ref())) {
            let origin = crate::jobfile::expr::Origin { source: self.source, span: filter.span() };
            if let Err(diagnostic) = crate::jobfile::expr::ParamFilter::compile(filter.get_ref(), &names, &origin) {
                self.error(diagnostic);
            }
        }
        self.per_job_settings(job, job_item, executor, params);
        // Checked even when the job table has mistakes of its own: all mistakes are shown at once.
        let params_file = job.and_then(|j| j.params_file.as_ref());
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
    fn stages(
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
            self.check_stage(&params, &sweep, &templates, job.as_ref(), Some(&job_item), executor);
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

    fn needs(&mut self, item: Option<&Item<'_>>) -> Vec<Need> {
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
    fn check_needs(&mut self, stages: &[Stage], declared: &[String]) {
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
    fn report_stage(&mut self, report: &ReportSpec, stages: &[Stage], declared: &[String]) -> usize {
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
fn stage_params(shared: &[Param], own: Vec<Param>, needs: &[Need]) -> Vec<Param> {
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
fn find_cycle(stages: &[Stage]) -> Option<Vec<usize>> {
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
fn order_stages(mut pending: Vec<Stage>) -> Vec<Stage> {
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

/// Why a template target is not allowed, if it is not: it must stay inside the job folder and
/// leave jobman's own files alone.
pub fn target_problem(target: &str, params_file: Option<&Spanned<String>>) -> Option<String> {
    let path = Path::new(target);
    if target.is_empty() {
        return Some("the target is empty".into());
    }
    if !path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Some("a target must stay inside the job folder (no `..`, not absolute)".into());
    }
    let reserved = crate::store::RESERVED_FILES.iter().copied().chain(params_file.map(|f| f.get_ref().as_str()));
    for name in reserved {
        if path == Path::new(name) {
            return Some(format!("`{name}` is written by jobman itself"));
        }
    }
    None
}

impl Walker<'_> {
    fn report(&mut self, item: Option<&Item<'_>>) -> ReportSpec {
        let Some(table) = self.table(item, "[report]") else { return ReportSpec::default() };
        self.unknown_keys(table, REPORT_KEYS, "a [report] key");
        let columns = table.get("columns").map(|_| self.strings(table, "columns", "a column name"));
        let mut rename = Vec::new();
        if let Some(renames) = self.table(table.get("rename"), "`rename`") {
            for (from, to) in renames.iter() {
                match to.get_ref() {
                    DeValue::String(name) => rename.push((from.get_ref().to_string(), name.to_string())),
                    other => {
                        self.at(to.span(), "a new column name must be a string", format!("found {}", kind(other)));
                    }
                }
            }
        }
        let unfinished = self.boolean(table, "unfinished").unwrap_or(false);
        let stage = self.string(table, "stage", "the name of a stage");
        ReportSpec { stage, columns, rename, unfinished }
    }

    fn boolean(&mut self, table: &DeTable<'_>, key: &str) -> Option<bool> {
        let item = table.get(key)?;
        match item.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.at(item.span(), format!("`{key}` must be true or false"), format!("found {}", kind(other)));
                None
            }
        }
    }

    /// One of `choices` (the string's text), with a suggestion when misspelt.
    fn choice<T: Copy>(&mut self, table: &DeTable<'_>, key: &str, choices: &[(&str, T)]) -> Option<T> {
        let text = self.string(table, key, "a name")?;
        let found = choices.iter().find(|(name, _)| *name == text.get_ref().as_str()).map(|(_, v)| *v);
        if found.is_none() {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            let help = did_you_mean(text.get_ref(), names.iter().copied())
                .unwrap_or_else(|| format!("expected one of: {}", names.join(", ")));
            self.at(text.span(), format!("unknown {key} `{}`", text.get_ref()), format!("not a {key}")).help =
                Some(help);
        }
        found
    }

    fn figures(&mut self, item: Option<&Item<'_>>) -> Vec<Spanned<FigureSpec>> {
        let Some(item) = item else { return Vec::new() };
        let DeValue::Array(entries) = item.get_ref() else {
            self.at(item.span(), "figures are declared as [[figure]] entries", "expected [[figure]], not [figure]");
            return Vec::new();
        };
        let mut figures: Vec<Spanned<FigureSpec>> = Vec::new();
        for entry in entries.iter() {
            let Some(table) = self.table(Some(entry), "a [[figure]] entry") else { continue };
            self.unknown_keys(table, FIGURE_KEYS, "a [[figure]] key");
            let kinds = [
                ("line", FigureKind::Line),
                ("scatter", FigureKind::Scatter),
                ("bar", FigureKind::Bar),
                ("heatmap", FigureKind::Heatmap),
                ("curve", FigureKind::Curve),
            ];
            let name = self.string(table, "name", "a file name such as \"accuracy_vs_hidden\"");
            let kind = self.choice(table, "kind", &kinds);
            let aggregate = self.choice(
                table,
                "aggregate",
                &[
                    ("mean", Aggregate::Mean),
                    ("median", Aggregate::Median),
                    ("min", Aggregate::Min),
                    ("max", Aggregate::Max),
                ],
            );
            let error = self.choice(
                table,
                "error",
                &[("std", ErrorBars::Std), ("min_max", ErrorBars::MinMax), ("none", ErrorBars::None)],
            );
            let column =
                |walker: &mut Self, key: &str| walker.string(table, key, "a column name").map(Spanned::into_inner);
            let x = column(self, "x");
            let y = column(self, "y");
            let group = column(self, "group");
            let value = column(self, "value");
            let title = column(self, "title");
            let x_label = column(self, "x_label");
            let y_label = column(self, "y_label");
            let filter = column(self, "where");
            let (log_x, log_y) = (self.boolean(table, "log_x"), self.boolean(table, "log_y"));
            let Some(name) = name else {
                self.at(entry.span(), "a [[figure]] needs a `name`", "expected `name = \"...\"`");
                continue;
            };
            if !name.get_ref().chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                || name.get_ref().is_empty()
            {
                self.at(name.span(), "a figure name becomes a file name", "use letters, digits, `_` and `-`");
                continue;
            }
            if figures.iter().any(|f| f.get_ref().name == *name.get_ref()) {
                self.at(name.span(), format!("two figures are named `{}`", name.get_ref()), "names must differ");
                continue;
            }
            let Some(kind) = kind.or_else(|| {
                if table.get("kind").is_none() {
                    self.at(
                        entry.span(),
                        "a [[figure]] needs a `kind`",
                        "expected line, scatter, bar, heatmap or curve",
                    );
                }
                None
            }) else {
                continue;
            };
            let (Some(x), Some(y)) = (x, y) else {
                self.at(entry.span(), "a [[figure]] needs `x` and `y`", "the columns to plot");
                continue;
            };
            if kind == FigureKind::Heatmap && value.is_none() {
                self.at(entry.span(), "a heatmap needs a `value`", "the column shown in each cell").help =
                    Some("e.g. x = \"hidden\", y = \"lr\", value = \"accuracy\"".into());
                continue;
            }
            let spec = FigureSpec {
                name: name.get_ref().clone(),
                kind,
                x,
                y,
                group,
                value,
                aggregate: aggregate.unwrap_or(Aggregate::Mean),
                error: error.unwrap_or(ErrorBars::Std),
                log_x: log_x.unwrap_or(false),
                log_y: log_y.unwrap_or(false),
                title,
                x_label,
                y_label,
                filter,
            };
            figures.push(Spanned::new(entry.span(), spec));
        }
        figures
    }
}

/// `[executor]`, `[executor.local]`, `[executor.slurm]`, and the per-job `gpus` and `resources`.
impl Walker<'_> {
    fn executor(&mut self, item: Option<&Item<'_>>) -> ExecutorSpec {
        let Some(table) = self.table(item, "[executor]") else { return ExecutorSpec::default() };
        self.unknown_keys(table, EXECUTOR_KEYS, "an [executor] key");
        let kind = self.choice(table, "kind", &[("local", ExecutorKind::Local), ("slurm", ExecutorKind::Slurm)]);
        ExecutorSpec {
            kind: kind.unwrap_or_default(),
            local: self.local(table.get("local")),
            slurm: self.slurm(table.get("slurm")),
        }
    }

    fn local(&mut self, item: Option<&Item<'_>>) -> LocalSpec {
        let Some(table) = self.table(item, "[executor.local]") else { return LocalSpec::default() };
        self.unknown_keys(table, LOCAL_KEYS, "an [executor.local] key");
        let expected = "expected \"auto\" or a list of GPU ids such as [0, 1]";
        let gpus = match table.get("gpus").map(|item| (item, item.get_ref())) {
            None => GpuPool::Auto,
            Some((_, DeValue::String(text))) if text.as_ref() == "auto" => GpuPool::Auto,
            Some((item, DeValue::Array(items))) => {
                let mut ids: Vec<u32> = Vec::new();
                for element in items.iter() {
                    match element.get_ref() {
                        DeValue::Integer(i) if i.radix() == 10 => match i.as_str().parse::<u32>() {
                            Ok(id) if ids.contains(&id) => {
                                self.at(element.span(), format!("GPU {id} is listed twice"), "each id once");
                            }
                            Ok(id) => ids.push(id),
                            Err(_) => {
                                self.at(element.span(), "invalid GPU id", "expected a number from 0");
                            }
                        },
                        other => {
                            self.at(
                                element.span(),
                                "invalid GPU id",
                                format!("expected a number from 0, found {}", kind(other)),
                            );
                        }
                    }
                }
                if ids.is_empty() && items.is_empty() {
                    self.at(item.span(), "an empty GPU list", expected).help =
                        Some("leave `gpus` out when jobs need no GPU".into());
                }
                GpuPool::Ids(ids)
            }
            Some((item, other)) => {
                let found = match other {
                    DeValue::String(text) => format!("found \"{text}\""),
                    other => format!("found {}", kind(other)),
                };
                self.at(item.span(), "invalid `gpus`", format!("{expected}, {found}"));
                GpuPool::Auto
            }
        };
        let mut resources = Vec::new();
        if let Some(capacities) = self.table(table.get("resources"), "`resources`") {
            for (name, item) in capacities.iter() {
                match toml_number(item.get_ref()) {
                    Some(capacity) if capacity > 0.0 && capacity.is_finite() => {
                        resources.push((Spanned::new(name.span(), name.get_ref().to_string()), capacity));
                    }
                    _ => {
                        self.at(
                            item.span(),
                            format!("invalid capacity of `{}`", name.get_ref()),
                            "expected a positive number",
                        )
                        .help = Some("e.g. `resources = { mem_gb = 64, licenses = 4 }`".into());
                    }
                }
            }
        }
        LocalSpec { gpus, resources }
    }

    fn slurm(&mut self, item: Option<&Item<'_>>) -> SlurmSpec {
        let Some(table) = self.table(item, "[executor.slurm]") else { return SlurmSpec::default() };
        self.unknown_keys(table, SLURM_KEYS, "an [executor.slurm] key");
        use crate::jobfile::slurm::{extra_arg, memory, slurm_name, time_limit};
        let extra_args = self
            .strings(table, "extra_args", "an sbatch option such as \"--constraint=a100\"")
            .into_iter()
            .filter_map(|arg| self.checked("extra_args", arg, extra_arg))
            .collect();
        let max_parallel = table.get("max_parallel").and_then(|item| match item.get_ref() {
            DeValue::Integer(i) if i.radix() == 10 => i.as_str().parse::<u32>().ok().filter(|&n| n > 0),
            _ => None,
        });
        if let (Some(item), None) = (table.get("max_parallel"), max_parallel) {
            self.at(
                item.span(),
                "invalid `max_parallel`",
                "expected a whole number from 1: how many tasks of an array run at once",
            );
        }
        let jobs_per_task = table.get("jobs_per_task").map_or(Some(1), |item| match item.get_ref() {
            DeValue::Integer(i) if i.radix() == 10 => i.as_str().parse::<u32>().ok().filter(|&n| n > 0),
            _ => None,
        });
        if let (Some(item), None) = (table.get("jobs_per_task"), jobs_per_task) {
            self.at(
                item.span(),
                "invalid `jobs_per_task`",
                "expected a whole number from 1: how many jobs one array task runs in turn",
            );
        }
        let poll_interval =
            self.duration(table, "poll_interval").unwrap_or(crate::jobfile::slurm::DEFAULT_POLL_INTERVAL);
        if let Some(item) = table.get("poll_interval")
            && poll_interval < crate::jobfile::slurm::MIN_POLL_INTERVAL
        {
            self.at(item.span(), "`poll_interval` is too short", "expected at least 1 s").help = Some(
                "every look at the queue is a request to the cluster's controller, which all its users share".into(),
            );
        }
        SlurmSpec {
            partition: self.slurm_string(table, "partition", "a partition name such as \"gpu\"", slurm_name),
            account: self.slurm_string(table, "account", "an account name", slurm_name),
            qos: self.slurm_string(table, "qos", "a QoS name", slurm_name),
            time: self.slurm_string(table, "time", "a time limit such as \"00:10:00\"", time_limit),
            cpus: self.count(table, "cpus", "a number of CPUs per task"),
            mem: self.slurm_string(table, "mem", "an amount of memory such as \"4G\"", memory),
            gpus: self.count(table, "gpus", "a number of GPUs per task"),
            extra_args,
            setup: self.string(table, "setup", "shell lines such as \"module load cuda\"").map(|setup| {
                if is_template(setup.get_ref()) { PerJob::Template(setup) } else { PerJob::Value(setup.into_inner()) }
            }),
            max_parallel,
            jobs_per_task: jobs_per_task.unwrap_or(1),
            poll_interval,
        }
    }

    /// A string setting: a template (checked once rendered), or a value checked now.
    fn slurm_string(
        &mut self,
        table: &DeTable<'_>,
        key: &str,
        what: &str,
        check: fn(&str) -> Result<String, String>,
    ) -> Option<PerJob<String>> {
        let text = self.string(table, key, what)?;
        self.checked(key, text, check)
    }

    fn checked(
        &mut self,
        key: &str,
        text: Spanned<String>,
        check: fn(&str) -> Result<String, String>,
    ) -> Option<PerJob<String>> {
        if is_template(text.get_ref()) {
            return Some(PerJob::Template(text));
        }
        match check(text.get_ref()) {
            Ok(value) => Some(PerJob::Value(value)),
            Err(expected) => {
                self.at(text.span(), format!("invalid `{key}` \"{}\"", text.get_ref()), expected);
                None
            }
        }
    }

    /// A whole number from 0, or a template that renders to one.
    fn count(&mut self, table: &DeTable<'_>, key: &str, what: &str) -> Option<PerJob<u32>> {
        let item = table.get(key)?;
        match item.get_ref() {
            DeValue::Integer(i) if i.radix() == 10 => match i.as_str().parse::<u32>() {
                Ok(n) => Some(PerJob::Value(n)),
                Err(_) => {
                    self.at(item.span(), format!("invalid `{key}`"), format!("expected {what}: a whole number from 0"));
                    None
                }
            },
            DeValue::String(text) if is_template(text) => {
                Some(PerJob::Template(Spanned::new(item.span(), text.to_string())))
            }
            other => {
                self.at(item.span(), format!("invalid `{key}`"), format!("expected {what}, found {}", kind(other)))
                    .help = Some(format!(
                    "write a number, `{key} = 2`, or a template over params, `{key} = \"{{{{ 2 if big else 1 }}}}\"`"
                ));
                None
            }
        }
    }

    /// A number from 0 (whole or not), or a template that renders to one.
    fn quantity(&mut self, table: &DeTable<'_>, key: &str) -> Option<PerJob<f64>> {
        let item = table.get(key)?;
        match (item.get_ref(), toml_number(item.get_ref())) {
            (_, Some(n)) if n >= 0.0 && n.is_finite() => Some(PerJob::Value(n)),
            (DeValue::String(text), _) if is_template(text) => {
                Some(PerJob::Template(Spanned::new(item.span(), text.to_string())))
            }
            (other, _) => {
                self.at(
                    item.span(),
                    format!("invalid amount of `{key}`"),
                    format!("expected a number from 0, or a template over params; found {}", kind(other)),
                );
                None
            }
        }
    }

    /// A duration: `"90s"`, `"10m"`, `"2h"` or a whole number of seconds.
    fn duration(&mut self, table: &DeTable<'_>, key: &str) -> Option<Duration> {
        let item = table.get(key)?;
        let message = format!("invalid {key}");
        match item.get_ref() {
            DeValue::String(text) => match humantime::parse_duration(text) {
                Ok(duration) => Some(duration),
                Err(e) => {
                    self.at(item.span(), message, format!("{e}; expected e.g. \"90s\", \"10m\", \"2h\""));
                    None
                }
            },
            DeValue::Integer(i) => match i.as_str().parse::<u64>() {
                Ok(seconds) if i.radix() == 10 => Some(Duration::from_secs(seconds)),
                _ => {
                    self.at(item.span(), message, "expected a positive number of seconds");
                    None
                }
            },
            other => {
                self.at(item.span(), message, format!("expected a duration such as \"10m\", found {}", kind(other)));
                None
            }
        }
    }

    /// What can only be checked with the whole file read: resources named in `[job]` are declared,
    /// fixed amounts fit what the machine offers, and templates use only declared params.
    fn per_job_settings(
        &mut self,
        job: Option<&JobSpec>,
        job_table: Option<&Item<'_>>,
        executor: &ExecutorSpec,
        params: &[Param],
    ) {
        let local = &executor.local;
        let mut templates: Vec<&Spanned<String>> = Vec::new();
        if let Some(job) = job {
            if let (Some(PerJob::Value(needed)), GpuPool::Ids(ids)) = (&job.gpus, &local.gpus)
                && *needed as usize > ids.len()
            {
                let span = match job_table.map(Spanned::get_ref) {
                    Some(DeValue::Table(table)) => table.get("gpus").map_or(0..0, Spanned::span),
                    _ => 0..0,
                };
                self.at(
                    span,
                    format!("each job needs {needed} GPUs, but [executor.local] lists {}", ids.len()),
                    "no job could ever start",
                )
                .help = Some("list more ids in [executor.local] gpus, or ask for fewer".into());
            }
            for (name, amount) in &job.resources {
                let declared = local.resources.iter().find(|(declared, _)| declared.get_ref() == name.get_ref());
                match (declared, amount) {
                    (None, _) => {
                        let names = local.resources.iter().map(|(n, _)| n.get_ref().as_str());
                        let help = did_you_mean(name.get_ref(), names).unwrap_or_else(|| {
                            format!(
                                "declare how much the machine has: [executor.local] resources = {{ {} = 16 }}",
                                name.get_ref()
                            )
                        });
                        self.at(
                            name.span(),
                            format!("unknown resource `{}`", name.get_ref()),
                            "not declared in [executor.local] resources",
                        )
                        .help = Some(help);
                    }
                    (Some((_, capacity)), PerJob::Value(needed)) if needed > capacity => {
                        self.at(
                            name.span(),
                            format!(
                                "each job needs {needed} of `{}`, but [executor.local] offers {capacity}",
                                name.get_ref()
                            ),
                            "no job could ever start",
                        );
                    }
                    _ => {}
                }
            }
            templates.extend(job.gpus.iter().filter_map(template_of));
            templates.extend(job.resources.iter().filter_map(|(_, amount)| template_of(amount)));
        }
        let slurm = &executor.slurm;
        let strings = [&slurm.partition, &slurm.account, &slurm.qos, &slurm.time, &slurm.mem, &slurm.setup];
        templates.extend(strings.into_iter().flatten().chain(&slurm.extra_args).filter_map(template_of));
        templates.extend([&slurm.cpus, &slurm.gpus].into_iter().flatten().filter_map(template_of));
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        for template in templates {
            let origin = crate::jobfile::expr::Origin { source: self.source, span: template.span() };
            if let Err(diagnostic) = crate::jobfile::expr::check_template(template.get_ref(), &names, &origin) {
                self.error(diagnostic);
            }
        }
    }
}

fn template_of<T>(setting: &PerJob<T>) -> Option<&Spanned<String>> {
    match setting {
        PerJob::Value(_) => None,
        PerJob::Template(template) => Some(template),
    }
}

/// A TOML integer or float as a number.
fn toml_number(value: &DeValue<'_>) -> Option<f64> {
    match value {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|n| n as f64),
        DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
        _ => None,
    }
}

fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn all_integers(values: &[Value]) -> bool {
    values.iter().all(|v| v.is_i64())
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// Rounds away floating-point noise (`0.1 * 3 = 0.30000000000000004`) to 12 significant digits, so
/// generated values print and hash as the numbers a user would write.
fn tidy(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    format!("{x:.11e}").parse().unwrap_or(x)
}

/// Values from `start` up to, not including, `stop`, as Python's `range` and numpy's `arange`.
fn generate_range(start: f64, stop: f64, step: f64, integers: bool) -> Result<Vec<Value>, String> {
    if step == 0.0 || !step.is_finite() {
        return Err("the step must be a non-zero number".into());
    }
    // The tolerance keeps float noise from adding the excluded stop: [0.1, 0.4, 0.1] has 3 values.
    let count = ((stop - start) / step - 1e-9).ceil();
    if count > 1_000_000.0 {
        return Err(format!("this range has {count} values; the limit is 1,000,000"));
    }
    let count = count.max(0.0) as usize;
    Ok((0..count)
        .map(|i| {
            let x = start + step * i as f64;
            if integers { Value::from(x as i64) } else { number(tidy(x)) }
        })
        .collect())
}

/// `n` evenly spaced values from `start` to `stop`, both included, as numpy's `linspace`.
fn generate_linspace(start: f64, stop: f64, n: f64) -> Result<Vec<f64>, String> {
    if n < 1.0 || n.fract() != 0.0 || n > 1_000_000.0 {
        return Err("the count must be a whole number from 1 to 1,000,000".into());
    }
    let n = n as usize;
    if n == 1 {
        return Ok(vec![tidy(start)]);
    }
    let step = (stop - start) / (n - 1) as f64;
    Ok((0..n).map(|i| tidy(start + step * i as f64)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Jobfile, Diagnostics> {
        let source = Source { path: "Jobfile.toml".into(), text: text.into() };
        parse(&source, Path::new("/w/Jobfile.toml"), Path::new("/w"))
    }

    #[test]
    fn generated_axes_give_the_numbers_a_user_would_write() {
        let jobfile = parse_text(
            "[params]\na = { range = [0, 6, 2] }\nb = { linspace = [0, 1, 3] }\nc = { logspace = [-3, -1, 3] }\nd = { range = [0.1, 0.4, 0.1] }\n[job]\ncommand = \"true\"\n",
        )
        .unwrap();
        let values: Vec<String> = jobfile.params.iter().map(|p| serde_json::to_string(&p.values).unwrap()).collect();
        assert_eq!(values, ["[0,2,4]", "[0.0,0.5,1.0]", "[0.001,0.01,0.1]", "[0.1,0.2,0.3]"]);
    }

    #[test]
    fn nested_tables_flatten_into_dotted_names() {
        let jobfile =
            parse_text("[params]\nepochs = 3\n[params.model]\nwidth = [1, 2]\n[job]\ncommand = \"true\"\n").unwrap();
        let names: Vec<_> = jobfile.params.iter().map(|p| (p.name.as_str(), p.swept)).collect();
        assert_eq!(names, [("epochs", false), ("model.width", true)]);
    }

    /// The one diagnostic of a Jobfile with exactly one mistake, rendered.
    fn mistake(text: &str) -> String {
        let error = parse_text(text).unwrap_err();
        assert_eq!(error.0.len(), 1, "{error}");
        error.to_string()
    }

    const JOB: &str = "[params]\nmodel = [\"small\", \"large\"]\n[job]\ncommand = \"true\"\n";

    #[test]
    fn executor_settings_parse_into_their_types() {
        let jobfile = parse_text(&format!(
            "{JOB}gpus = 1\nresources = {{ mem_gb = 8, licenses = 0.5 }}\n[executor]\nkind = \"slurm\"\n[executor.local]\ngpus = [0, 2]\nresources = {{ mem_gb = 64, licenses = 2 }}\n[executor.slurm]\npartition = \"gpu\"\naccount = \"lab\"\nqos = \"normal\"\ntime = \"00:10:00\"\ncpus = 4\nmem = \"16G\"\ngpus = 2\nextra_args = [\"--constraint=a100\"]\nsetup = \"\"\"\nmodule load cuda\nsource venv/bin/activate\n\"\"\"\nmax_parallel = 8\npoll_interval = \"30s\"\n"
        ))
        .unwrap();
        let executor = &jobfile.executor;
        assert_eq!(executor.kind, ExecutorKind::Slurm);
        assert_eq!(executor.local.gpus, GpuPool::Ids(vec![0, 2]));
        let capacities: Vec<_> = executor.local.resources.iter().map(|(n, c)| (n.get_ref().as_str(), *c)).collect();
        assert_eq!(capacities, [("mem_gb", 64.0), ("licenses", 2.0)]);
        assert_eq!(jobfile.job.gpus, Some(PerJob::Value(1)));
        let needs: Vec<_> = jobfile.job.resources.iter().map(|(n, a)| (n.get_ref().as_str(), a.clone())).collect();
        assert_eq!(needs, [("mem_gb", PerJob::Value(8.0)), ("licenses", PerJob::Value(0.5))]);
        let slurm = &executor.slurm;
        let value = |text: &str| Some(PerJob::Value(text.to_string()));
        assert_eq!(slurm.partition, value("gpu"));
        assert_eq!(slurm.account, value("lab"));
        assert_eq!(slurm.qos, value("normal"));
        assert_eq!(slurm.time, value("00:10:00"));
        assert_eq!(slurm.mem, value("16G"));
        assert_eq!(slurm.setup, value("module load cuda\nsource venv/bin/activate\n"));
        assert_eq!((slurm.cpus.clone(), slurm.gpus.clone()), (Some(PerJob::Value(4)), Some(PerJob::Value(2))));
        assert_eq!(slurm.extra_args, [PerJob::Value("--constraint=a100".to_string())]);
        assert_eq!((slurm.max_parallel, slurm.poll_interval), (Some(8), Duration::from_secs(30)));
    }

    #[test]
    fn without_an_executor_section_jobs_run_locally_on_auto_detected_gpus() {
        let jobfile = parse_text(JOB).unwrap();
        assert_eq!(jobfile.executor.kind, ExecutorKind::Local);
        assert_eq!(jobfile.executor.local.gpus, GpuPool::Auto);
        assert_eq!(jobfile.executor.slurm.poll_interval, crate::jobfile::slurm::DEFAULT_POLL_INTERVAL);
        assert_eq!(jobfile.job.gpus, None);
    }

    #[test]
    fn a_setting_with_template_syntax_is_kept_for_rendering_per_job() {
        let jobfile = parse_text(&format!(
            "{JOB}gpus = \"{{{{ 2 if model == 'large' else 1 }}}}\"\n[executor.slurm]\ntime = \"{{{{ '04:00:00' if model == 'large' else '00:30:00' }}}}\"\nsetup = \"echo ${{HOME}}\"\n"
        ))
        .unwrap();
        assert!(matches!(jobfile.job.gpus, Some(PerJob::Template(_))));
        assert!(matches!(jobfile.executor.slurm.time, Some(PerJob::Template(_))));
        // `${HOME}` is shell, not a template.
        assert_eq!(jobfile.executor.slurm.setup, Some(PerJob::Value("echo ${HOME}".into())));
    }

    #[test]
    fn durations_become_slurm_time_limits() {
        for (written, limit) in [("90m", "01:30:00"), ("36h", "1-12:00:00"), ("2-00:00:00", "2-00:00:00"), ("90", "90")]
        {
            let jobfile = parse_text(&format!("{JOB}[executor.slurm]\ntime = \"{written}\"\n")).unwrap();
            assert_eq!(jobfile.executor.slurm.time, Some(PerJob::Value(limit.to_string())), "{written}");
        }
    }

    #[test]
    fn an_unknown_executor_kind_suggests_the_closest() {
        let text = mistake(&format!("{JOB}[executor]\nkind = \"slrum\"\n"));
        assert!(text.contains("unknown kind `slrum`"), "{text}");
        assert!(text.contains("did you mean `slurm`?"), "{text}");
    }

    #[test]
    fn a_job_table_with_a_mistake_does_not_hide_the_mistakes_of_the_filters() {
        let errors =
            parse_text("[params]\nlr = [1, 2]\n[sweep]\nwhere = \"lrr > 1\"\n[job]\nname = \"x\"\n").unwrap_err();
        assert_eq!(errors.0.len(), 2, "{errors}");
        let text = errors.to_string();
        assert!(text.contains("[job] needs a `command`"), "{text}");
        assert!(text.contains("unknown parameter `lrr`"), "{text}");
    }

    #[test]
    fn a_misspelt_distribution_is_a_mistake_not_a_nested_param() {
        let text = mistake("[params]\nlr = { unifrom = [0, 1] }\n[sweep]\nsamples = 3\n[job]\ncommand = \"true\"\n");
        assert!(text.contains("unknown generator or distribution `unifrom` for `lr`"), "{text}");
        assert!(text.contains("did you mean `uniform`?"), "{text}");
        assert!(!text.contains("`samples` without"), "one mistake, not two: {text}");
        let text = mistake("[params]\nn = { linspce = [0, 1, 5] }\n[job]\ncommand = \"true\"\n");
        assert!(text.contains("did you mean `linspace`?"), "{text}");
        // A real nested param stays one.
        let jobfile = parse_text("[params]\nmodel = { width = [1, 2] }\n[job]\ncommand = \"true\"\n").unwrap();
        assert_eq!(jobfile.params[0].name, "model.width");
    }

    #[test]
    fn a_misspelt_slurm_key_suggests_the_closest() {
        let text = mistake(&format!("{JOB}[executor.slurm]\npartiton = \"gpu\"\n"));
        assert!(text.contains("unknown key `partiton`"), "{text}");
        assert!(text.contains("did you mean `partition`?"), "{text}");
        let text = mistake(&format!("{JOB}[executor]\nslrum = {{}}\n"));
        assert!(text.contains("did you mean `slurm`?"), "{text}");
    }

    #[test]
    fn a_time_slurm_cannot_read_is_refused_with_the_forms_it_can() {
        let text = mistake(&format!("{JOB}[executor.slurm]\ntime = \"ten minutes\"\n"));
        assert!(text.contains("invalid `time` \"ten minutes\""), "{text}");
        assert!(text.contains("expected a Slurm time limit such as \"00:10:00\" (HH:MM:SS)"), "{text}");
        assert!(text.contains("Jobfile.toml:6:8"), "{text}");
        for wrong in ["1:2:3:4", "1-", "a-01:00:00", ""] {
            mistake(&format!("{JOB}[executor.slurm]\ntime = \"{wrong}\"\n"));
        }
    }

    #[test]
    fn a_time_limit_is_a_string() {
        let text = mistake(&format!("{JOB}[executor.slurm]\ntime = 90\n"));
        assert!(text.contains("`time` must be a string"), "{text}");
        assert!(text.contains("expected a time limit such as \"00:10:00\", found an integer"), "{text}");
    }

    #[test]
    fn memory_needs_a_whole_number_and_a_unit_slurm_knows() {
        let text = mistake(&format!("{JOB}[executor.slurm]\nmem = \"4.5G\"\n"));
        assert!(text.contains("invalid `mem` \"4.5G\""), "{text}");
        assert!(text.contains("expected an amount of memory such as \"4G\""), "{text}");
        mistake(&format!("{JOB}[executor.slurm]\nmem = \"4 PB\"\n"));
    }

    #[test]
    fn names_with_spaces_are_refused() {
        let text = mistake(&format!("{JOB}[executor.slurm]\npartition = \"gpu large\"\n"));
        assert!(text.contains("expected a name without spaces or quotes"), "{text}");
    }

    #[test]
    fn extra_args_are_options_that_jobman_does_not_write_itself() {
        let text = mistake(&format!("{JOB}[executor.slurm]\nextra_args = [\"--constraint=a100\", \"--array=0-3\"]\n"));
        assert!(text.contains("invalid `extra_args` \"--array=0-3\""), "{text}");
        assert!(text.contains("jobman writes `--array` itself"), "{text}");
        for own in ["-o log.txt", "--output=x", "-e/tmp/x", "--wrap=true", "--error"] {
            mistake(&format!("{JOB}[executor.slurm]\nextra_args = [\"{own}\"]\n"));
        }
        let text = mistake(&format!("{JOB}[executor.slurm]\nextra_args = [\"constraint=a100\"]\n"));
        assert!(text.contains("expected one sbatch option with its value"), "{text}");
        let jobfile = parse_text(&format!(
            "{JOB}[executor.slurm]\nextra_args = [\"--exclusive\", \"-C a100\", \"--export=ALL\"]\n"
        ))
        .unwrap();
        assert_eq!(jobfile.executor.slurm.extra_args.len(), 3);
    }

    #[test]
    fn counts_must_be_whole_numbers_or_templates() {
        let text = mistake(&format!("{JOB}[executor.slurm]\ncpus = \"four\"\n"));
        assert!(text.contains("invalid `cpus`"), "{text}");
        assert!(text.contains("expected a number of CPUs per task, found a string"), "{text}");
        mistake(&format!("{JOB}gpus = -1\n"));
        let text = mistake(&format!("{JOB}[executor.slurm]\nmax_parallel = 0\n"));
        assert!(text.contains("expected a whole number from 1"), "{text}");
    }

    #[test]
    fn a_poll_interval_under_a_second_is_refused() {
        let text = mistake(&format!("{JOB}[executor.slurm]\npoll_interval = \"200ms\"\n"));
        assert!(text.contains("`poll_interval` is too short"), "{text}");
        mistake(&format!("{JOB}[executor.slurm]\npoll_interval = \"soon\"\n"));
    }

    #[test]
    fn local_gpus_are_auto_or_distinct_ids() {
        let text = mistake(&format!("{JOB}[executor.local]\ngpus = \"all\"\n"));
        assert!(text.contains("expected \"auto\" or a list of GPU ids such as [0, 1], found \"all\""), "{text}");
        let text = mistake(&format!("{JOB}[executor.local]\ngpus = [0, 1, 0]\n"));
        assert!(text.contains("GPU 0 is listed twice"), "{text}");
        mistake(&format!("{JOB}[executor.local]\ngpus = [-1]\n"));
    }

    #[test]
    fn a_job_may_not_need_more_gpus_than_the_machine_lists() {
        let text = mistake(&format!("{JOB}gpus = 3\n[executor.local]\ngpus = [0, 1]\n"));
        assert!(text.contains("each job needs 3 GPUs, but [executor.local] lists 2"), "{text}");
        assert!(text.contains("Jobfile.toml:5:8"), "{text}");
    }

    #[test]
    fn job_resources_must_be_declared_and_fit() {
        let text =
            mistake(&format!("{JOB}resources = {{ mem_gbs = 8 }}\n[executor.local]\nresources = {{ mem_gb = 64 }}\n"));
        assert!(text.contains("unknown resource `mem_gbs`"), "{text}");
        assert!(text.contains("did you mean `mem_gb`?"), "{text}");
        let text = mistake(&format!("{JOB}resources = {{ licenses = 1 }}\n"));
        assert!(
            text.contains("declare how much the machine has: [executor.local] resources = { licenses = 16 }"),
            "{text}"
        );
        let text =
            mistake(&format!("{JOB}resources = {{ mem_gb = 80 }}\n[executor.local]\nresources = {{ mem_gb = 64 }}\n"));
        assert!(text.contains("each job needs 80 of `mem_gb`, but [executor.local] offers 64"), "{text}");
        let text = mistake(&format!("{JOB}[executor.local]\nresources = {{ mem_gb = 0 }}\n"));
        assert!(text.contains("invalid capacity of `mem_gb`"), "{text}");
    }

    #[test]
    fn a_setting_template_may_use_only_declared_params() {
        let text = mistake(&format!("{JOB}[executor.slurm]\npartition = \"{{{{ modle }}}}\"\n"));
        assert!(text.contains("unknown parameter `modle`"), "{text}");
        assert!(text.contains("did you mean `model`?"), "{text}");
        let text = mistake(&format!("{JOB}gpus = \"{{{{ 1 if model == 'large' }}\"\n"));
        assert!(text.contains("invalid template"), "{text}");
    }

    #[test]
    fn all_mistakes_are_reported_at_once() {
        let error = parse_text("[parms]\nx = 1\n[job]\ncomand = \"true\"\n").unwrap_err();
        let text = error.to_string();
        assert_eq!(error.0.len(), 3, "{text}");
        assert!(text.contains("did you mean `params`?"), "{text}");
        assert!(text.contains("did you mean `command`?"), "{text}");
    }

    const SAMPLED: &str = "[job]\ncommand = \"true\"\n[params]\n";

    #[test]
    fn distributions_and_sampling_parse_into_their_types() {
        let jobfile = parse_text(&format!(
            "{SAMPLED}a = {{ uniform = [0, 0.5] }}\nb = {{ loguniform = [1e-4, 1e-1] }}\nc = {{ randint = [1, 8] }}\nd = {{ choice = [\"x\", 2] }}\n[sweep]\nsamples = 20\nseed = -3\n"
        ))
        .unwrap();
        let distributions: Vec<_> = jobfile.params.iter().map(|p| (p.swept, p.distribution.clone().unwrap())).collect();
        assert_eq!(
            distributions,
            [
                (true, Distribution::Uniform { low: 0.0, high: 0.5 }),
                (true, Distribution::LogUniform { low: 1e-4, high: 1e-1 }),
                (true, Distribution::RandInt { low: 1, high: 8 }),
                (true, Distribution::Choice(vec![Value::from("x"), Value::from(2)])),
            ]
        );
        assert_eq!(jobfile.sweep.sampling, Some(Sampling { samples: 20, seed: -3 }));
        let unseeded = parse_text(&format!("{SAMPLED}a = {{ uniform = [0, 1] }}\n[sweep]\nsamples = 2\n")).unwrap();
        assert_eq!(unseeded.sweep.sampling, Some(Sampling { samples: 2, seed: 0 }));
    }

    #[test]
    fn a_distribution_without_samples_says_to_add_them() {
        let text = mistake(&format!("{SAMPLED}lr = {{ loguniform = [1e-4, 1e-1] }}\n"));
        assert!(text.contains("`lr` is sampled, but [sweep] has no `samples`"), "{text}");
        assert!(text.contains("Jobfile.toml:4:6"), "{text}");
        assert!(text.contains("samples = 20"), "{text}");
        let text = mistake(&format!("{SAMPLED}lr = {{ uniform = [0, 1] }}\n[sweep]\nseed = 1\n"));
        assert!(text.contains("has no `samples`"), "{text}");
    }

    #[test]
    fn samples_or_seed_without_a_distribution_are_refused() {
        let text = mistake(&format!("{SAMPLED}lr = [0.1, 0.01]\n[sweep]\nsamples = 20\n"));
        assert!(text.contains("`samples` without a sampled parameter"), "{text}");
        assert!(text.contains("lr = { loguniform = [1e-4, 1e-1] }"), "{text}");
        let text = mistake(&format!("{SAMPLED}lr = [0.1, 0.01]\n[sweep]\nseed = 20\n"));
        assert!(text.contains("`seed` without `samples`"), "{text}");
    }

    #[test]
    fn samples_and_seed_are_whole_numbers() {
        for wrong in ["0", "-2", "2.5", "\"10\"", "2000000"] {
            let text = mistake(&format!("{SAMPLED}lr = {{ uniform = [0, 1] }}\n[sweep]\nsamples = {wrong}\n"));
            assert!(text.contains("invalid `samples`"), "{text}");
            assert!(text.contains("expected a whole number from 1 to 1,000,000"), "{text}");
        }
        let text = mistake(&format!("{SAMPLED}lr = {{ uniform = [0, 1] }}\n[sweep]\nsamples = 3\nseed = \"a\"\n"));
        assert!(text.contains("invalid `seed`"), "{text}");
        let text = parse_text(&format!("{SAMPLED}lr = {{ uniform = [0, 1] }}\n[sweep]\nsampels = 3\n"))
            .unwrap_err()
            .to_string();
        assert!(text.contains("did you mean `samples`?"), "{text}");
    }

    #[test]
    fn distribution_bounds_are_checked() {
        let cases = [
            ("{ uniform = [1, 1] }", "expected the low bound below the high bound"),
            ("{ uniform = [2, 1] }", "expected the low bound below the high bound"),
            ("{ uniform = [0] }", "expected `uniform = [low, high]` with numbers"),
            ("{ uniform = [\"a\", 1] }", "expected `uniform = [low, high]` with numbers"),
            ("{ uniform = 1 }", "expected `uniform = [low, high]`, found an integer"),
            ("{ loguniform = [0, 1] }", "expected bounds above 0"),
            ("{ loguniform = [-1, 1] }", "expected bounds above 0"),
            ("{ randint = [1, 2.5] }", "expected `randint = [low, high]` with integers, both included"),
            ("{ randint = [3, 3] }", "expected the low bound below the high bound"),
            ("{ choice = [] }", "expected at least one value to choose from"),
            ("{ choice = \"adam\" }", "expected `choice = [..]`, the values to choose from, found a string"),
            ("{ uniform = [0, 1], choice = [1] }", "a sampled parameter takes exactly one key"),
            ("{ uniform = [0, nan] }", "expected a finite number"),
        ];
        for (written, expected) in cases {
            let text = mistake(&format!("{SAMPLED}x = {written}\n[sweep]\nsamples = 3\n"));
            assert!(text.contains(expected), "{written}: {text}");
        }
    }
}
