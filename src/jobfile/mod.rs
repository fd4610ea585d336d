//! Stage 1: read `Jobfile.toml` into a validated [`Jobfile`].
//!
//! The TOML is parsed with spans (`toml::de::DeTable`) and walked by hand so that every mistake
//! is collected, with its line and column, before anything runs.

mod executor;
pub mod expr;
pub mod figure;
pub mod format;
mod job;
mod param_set;
mod params;
mod products;
pub mod slurm;
mod stages;
mod sweep;
mod walker;

pub use executor::{ExecutorKind, ExecutorSpec, GpuPool, JobsPerTask};
pub use job::{PerJob, target_problem};
pub use param_set::{ParamSet, display_params, display_value, flatten_nested};
pub use params::Distribution;
pub use products::{FIXED_COLUMNS, ID_COLUMNS, ReportSpec, USAGE_COLUMNS};
pub use stages::{Need, Stage, StageView};
use walker::{Item, Walker};

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::jobfile::figure::{FigureKind, FigureSpec};
use crate::jobfile::format::NumberFormat;
use crate::util::diagnostic::{Diagnostic, Diagnostics, Source};

/// Sections a Jobfile may have, in the order the reference documents them.
const SECTIONS: &[&str] = &[
    "workspace",
    "params",
    "sweep",
    "template",
    "job",
    "stage",
    "executor",
    "cache",
    "report",
    "figure",
    "plot",
    "format",
];
const CACHE_KEYS: &[&str] = &["dirs"];
const WORKSPACE_KEYS: &[&str] = &["jobs", "report", "figures", "templates", "max_jobs"];
/// Names the template context reserves for itself.
pub const RESERVED_PARAMS: &[&str] = &["job", "needs"];

/// A validated Jobfile. Paths are absolute.
#[derive(Debug, Clone)]
pub struct Jobfile {
    /// The folder holding the Jobfile: relative paths start here.
    pub root: PathBuf,
    pub source: Source,
    pub workspace: WorkspaceSpec,
    /// `[cache] dirs`: shared stores of finished jobs, by key; the first is published to.
    pub cache: Vec<PathBuf>,
    pub executor: ExecutorSpec,
    pub report: ReportSpec,
    pub figures: Vec<Spanned<FigureSpec>>,
    /// `[format]`: how a column's numbers are printed where people read them.
    pub formats: BTreeMap<String, NumberFormat>,
    /// The stages, each after the stages it needs: the `[stage.NAME]` tables, or the one unnamed
    /// stage of a Jobfile with a single `[job]`. Never empty. [`Jobfile::stage`] views one.
    pub stages: Vec<Stage>,
    /// The report's stage.
    pub stage: usize,
}

/// `[workspace]`: where the project's files go, and how many jobs a stage may have.
#[derive(Debug, Clone)]
pub struct WorkspaceSpec {
    pub jobs: PathBuf,
    pub report: PathBuf,
    pub figures: PathBuf,
    pub templates: PathBuf,
    /// jobman's own state: lock, build log.
    pub state: PathBuf,
    /// The most jobs a stage may have (`max_jobs`): a larger grid is a mistake until the
    /// Jobfile says otherwise, refused before a single job is built.
    pub max_jobs: u64,
}

/// `max_jobs` when the Jobfile does not set it.
pub const DEFAULT_MAX_JOBS: u64 = 100_000;

/// `path` with its `.` and `..` parts resolved as written (no file system lookup).
fn normalized(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` relative to the project folder `root`; `None` when it leaves the folder or is the
/// folder itself.
fn inside(root: &Path, path: &Path) -> Option<PathBuf> {
    let relative = normalized(path).strip_prefix(root).ok()?.to_path_buf();
    (!relative.as_os_str().is_empty()).then_some(relative)
}

impl WorkspaceSpec {
    /// Where the job folders may not be: the project folder or around it (they would hold its
    /// files), or mixed with its templates, figures or jobman's state.
    fn jobs_problem(&self, root: &Path) -> Option<String> {
        let jobs = normalized(&self.jobs);
        if root.starts_with(&jobs) {
            return Some("the job folders would hold the project itself (its Jobfile, its templates)".into());
        }
        for (name, folder) in
            [("templates", &self.templates), ("figures", &self.figures), ("jobman's state", &self.state)]
        {
            let folder = normalized(folder);
            if jobs.starts_with(&folder) || folder.starts_with(&jobs) {
                return Some(format!("the job folders would mix with the {name} folder"));
            }
        }
        None
    }

    /// The report is a file of the project, and not one of its inputs.
    fn report_problem(&self, root: &Path) -> Option<String> {
        let Some(report) = inside(root, &self.report) else {
            return Some("the report is written inside the project folder (no `..`, not absolute)".into());
        };
        let report = root.join(report);
        if report.extension().is_none_or(|e| e != "csv") {
            return Some("the report is a `.csv` file (this would overwrite another kind of file)".into());
        }
        self.product_problem(&report, "report")
    }

    /// The figures are a folder of the project of their own.
    fn figures_problem(&self, root: &Path) -> Option<String> {
        let Some(figures) = inside(root, &self.figures) else {
            return Some("the figures are written inside the project folder, in a folder of their own (no `..`, not absolute, not the project folder)".into());
        };
        self.product_problem(&root.join(figures), "figures")
    }

    fn product_problem(&self, product: &Path, what: &str) -> Option<String> {
        for (name, folder) in
            [("templates", &self.templates), ("job folders", &self.jobs), ("jobman's state", &self.state)]
        {
            let folder = normalized(folder);
            if product.starts_with(&folder) || (what == "figures" && folder.starts_with(product)) {
                return Some(format!("the {what} would be written among the {name}"));
            }
        }
        None
    }
}

impl Jobfile {
    /// Reads and validates the Jobfile at `path`. I/O failures are `anyhow` errors; every mistake in
    /// the file itself is a diagnostic.
    pub fn load(path: &Path) -> anyhow::Result<Jobfile> {
        if path.is_dir() {
            anyhow::bail!(
                "{} is a folder, not a Jobfile\n  help: name the file: jobman --file {}",
                path.display(),
                path.join("Jobfile.toml").display()
            );
        }
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
        Ok(parse(&source, &root)?)
    }
}

/// Parses Jobfile text; pure apart from the paths it is given.
pub fn parse(source: &Source, root: &Path) -> Result<Jobfile, Diagnostics> {
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
    let cache = walker.cache(document.get("cache"), root);
    let mut report = walker.report(document.get("report"));
    let plot = walker.plot(document.get("plot"));
    let formats = walker.formats(document.get("format"));
    let mut figures = walker.figures(document.get("figure"), plot, root);
    for figure in &mut figures {
        // A figure keeps the formats of the columns it shows: they are part of its key.
        let figure = figure.get_mut();
        let shown = [Some(&figure.x), Some(&figure.y), figure.group.as_ref(), figure.value.as_ref()];
        figure.formats = shown.into_iter().flatten().filter_map(|c| Some((c.clone(), *formats.get(c)?))).collect();
    }
    let shared_templates = walker.templates(document.get("template"));
    let (stages, declared) = match document.get("stage") {
        None => (Vec::new(), Vec::new()),
        Some(item) => walker.stages(item, &params, &document, &shared_templates, &executor),
    };
    let (stages, stage) = if document.get("stage").is_some() {
        // The report's stage, checked.
        let chosen = walker.report_stage(&report, &stages, &declared);
        (stages, chosen)
    } else {
        if let Some(stage) = report.stage.take() {
            walker.at(stage.span(), "`stage` needs [stage.NAME] tables", "this Jobfile has a single [job]");
        }
        let sweep = walker.sweep(document.get("sweep"), &params);
        let job = walker.job(document.get("job"), "[job]");
        walker.check_stage(&params, &sweep, &shared_templates, job.as_ref(), &executor);
        if document.get("job").is_none() {
            walker.error(
                Diagnostic::new("missing [job] section")
                    .at(source, 0..0, "expected a [job] table with a `command`")
                    .help("add:\n[job]\ncommand = \"python3 train.py\""),
            );
        }
        let only = job.map(|job| Stage {
            name: Spanned::new(0..0, String::new()),
            needs: Vec::new(),
            params,
            sweep,
            templates: shared_templates,
            job,
        });
        (only.into_iter().collect(), 0)
    };
    // A product may never replace what a job reads.
    let mut products = vec![workspace.report.clone(), workspace.figures.join("index.html")];
    for figure in &figures {
        let name = &figure.get_ref().name;
        products.extend(["svg", "png", "pdf"].map(|ext| workspace.figures.join(format!("{name}.{ext}"))));
    }
    for input in stages.iter().flat_map(|s| &s.job.inputs).filter(|i| !i.get_ref().contains('{')) {
        let Ok(pattern) = glob::Pattern::new(&root.join(input.get_ref()).to_string_lossy()) else { continue };
        if let Some(product) = products.iter().find(|p| pattern.matches_path(p)) {
            let product = product.strip_prefix(root).unwrap_or(product).display();
            walker.at(input.span(), "this input is a product of the build", format!("{product} would overwrite it"));
        }
    }
    if let Some(report_stage) = stages.get(stage)
        && report_stage.job.series.is_none()
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
    if stages.get(stage).is_none() {
        return Err(walker.diagnostics);
    }
    walker.diagnostics.into_result(Jobfile {
        root: root.to_path_buf(),
        source: source.clone(),
        workspace,
        cache,
        executor,
        report,
        figures,
        formats,
        stages,
        stage,
    })
}

/// `~` and `~/rest` from `$HOME`; other paths as written, relative ones from `root`.
fn expand_home(path: &str, root: &Path) -> PathBuf {
    let rest = if path == "~" { Some("") } else { path.strip_prefix("~/") };
    match (rest, std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => root.join(path),
    }
}

impl Walker<'_> {
    /// `[cache] dirs`: folders outside the project, by design (shared by workspaces, users and
    /// machines). jobman writes in a folder only if it is new, empty or a jobman cache already.
    fn cache(&mut self, item: Option<&Item<'_>>, root: &Path) -> Vec<PathBuf> {
        let Some(table) = self.table(item, "[cache]") else { return Vec::new() };
        self.unknown_keys(table, CACHE_KEYS, "a [cache] key");
        let dirs = self.strings(table, "dirs", "a folder");
        dirs.iter().map(|dir| expand_home(dir.get_ref(), root)).collect()
    }

    /// `[workspace]`. The products (report, figures) stay inside the project folder, apart from
    /// its Jobfile, templates, job folders and jobman's state; the job folders may be anywhere
    /// (a cluster's scratch file system) but not around the project; templates are only read.
    fn workspace(&mut self, item: Option<&Item<'_>>, root: &Path) -> WorkspaceSpec {
        let table = self.table(item, "[workspace]");
        if let Some(table) = table {
            self.unknown_keys(table, WORKSPACE_KEYS, "a [workspace] key");
        }
        let mut path = |key: &str, default: &str| {
            let value = table.and_then(|t| self.string(t, key, "a path"));
            let span = value.as_ref().map(Spanned::span);
            (root.join(value.map_or_else(|| default.to_string(), Spanned::into_inner)), span)
        };
        let (jobs, jobs_at) = path("jobs", "scratch_space");
        let (report, report_at) = path("report", "report.csv");
        let (figures, figures_at) = path("figures", "figures");
        let (templates, _) = path("templates", "templates");
        let max_jobs =
            table.and_then(|t| t.get("max_jobs")).map_or(Some(DEFAULT_MAX_JOBS), |item| match item.get_ref() {
                DeValue::Integer(i) if i.radix() == 10 => i.as_str().parse::<u64>().ok().filter(|&n| n > 0),
                _ => None,
            });
        if let (Some(item), None) = (table.and_then(|t| t.get("max_jobs")), max_jobs) {
            self.at(
                item.span(),
                "invalid `max_jobs`",
                "expected a whole number from 1: the most jobs a stage may have",
            )
            .help = Some(format!("e.g. `max_jobs = 1000000`; the default is {DEFAULT_MAX_JOBS}"));
        }
        let folders = WorkspaceSpec {
            jobs,
            report,
            figures,
            templates,
            state: root.join(".jobman"),
            max_jobs: max_jobs.unwrap_or(DEFAULT_MAX_JOBS),
        };
        for (at, problem) in [
            (jobs_at, folders.jobs_problem(root)),
            (report_at, folders.report_problem(root)),
            (figures_at, folders.figures_problem(root)),
        ] {
            if let (Some(at), Some(problem)) = (at, problem) {
                self.at(at, "this path is refused", problem).help =
                    Some("see \"Where the workspace lives\" in docs/jobfile.md".into());
            }
        }
        folders
    }
}

#[cfg(test)]
mod tests;
