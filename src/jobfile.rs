//! Stage 1: read `Jobfile.toml` into a validated [`Jobfile`].
//!
//! The TOML is parsed with spans (`toml::de::DeTable`) and walked by hand so that every mistake
//! is collected, with its line and column, before anything runs.

use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, Diagnostics, Source, did_you_mean};
use crate::figure::{Aggregate, ErrorBars, FigureKind, FigureSpec};
use serde::Serialize;

/// Sections a Jobfile may have, in the order the reference documents them.
const SECTIONS: &[&str] = &["workspace", "params", "sweep", "template", "job", "report", "figure"];
const WORKSPACE_KEYS: &[&str] = &["jobs", "report", "figures", "templates"];
const SWEEP_KEYS: &[&str] = &["zip", "where", "include"];
const TEMPLATE_KEYS: &[&str] = &["src", "target"];
const JOB_KEYS: &[&str] = &["command", "name", "inputs", "env", "results", "series", "params_file", "timeout"];
const REPORT_KEYS: &[&str] = &["columns", "rename", "unfinished"];
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
/// Names the template context reserves for itself.
pub const RESERVED_PARAMS: &[&str] = &["job"];

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
    pub report: ReportSpec,
    pub figures: Vec<Spanned<FigureSpec>>,
}

/// `[report]`: which columns `report.csv` has, under which names, and which jobs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReportSpec {
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
    pub values: Vec<Value>,
    pub swept: bool,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct Sweep {
    pub zip: Vec<Spanned<Vec<String>>>,
    pub filter: Option<Spanned<String>>,
    /// Extra points: flat parameter name → value.
    pub include: Vec<Spanned<Vec<(String, Value)>>>,
}

#[derive(Debug, Clone)]
pub struct TemplateSpec {
    /// Path under the templates folder; may use params.
    pub src: Spanned<String>,
    /// Path inside the job folder; may use params.
    pub target: Spanned<String>,
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
    /// `None` when disabled with `params_file = false`.
    pub params_file: Option<Spanned<String>>,
    pub timeout: Option<Duration>,
}

impl Jobfile {
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
    let mut walker = Walker { source, diagnostics: Diagnostics::default() };
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
    let sweep = walker.sweep(document.get("sweep"), &params);
    let templates = walker.templates(document.get("template"));
    let job = walker.job(document.get("job"));
    let report = walker.report(document.get("report"));
    let figures = walker.figures(document.get("figure"));
    if figures.iter().any(|f| f.get_ref().kind == FigureKind::Curve)
        && job.as_ref().is_some_and(|j| j.series.is_none())
        && let Some(curve) = figures.iter().find(|f| f.get_ref().kind == FigureKind::Curve)
    {
        walker.error(
            Diagnostic::new("a `curve` figure needs the jobs' series file")
                .at(source, curve.span(), "reads per-step rows")
                .help("declare it in [job]: series = \"metrics.csv\""),
        );
    }

    if let Some(filter) = &sweep.filter {
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        let origin = crate::expr::Origin { source, span: filter.span() };
        if let Err(diagnostic) = crate::expr::ParamFilter::compile(filter.get_ref(), &names, &origin) {
            walker.error(diagnostic);
        }
    }
    // Targets without template syntax can be checked now rather than when the first job renders.
    for template in &templates {
        let target = template.target.get_ref();
        let params_file = job.as_ref().and_then(|j| j.params_file.as_ref());
        if !target.contains('{')
            && let Some(problem) = target_problem(target, params_file)
        {
            walker.error(Diagnostic::new(format!("template target `{target}` is refused")).at(
                source,
                template.target.span(),
                problem,
            ));
        }
    }

    // Shown in the order they stand in the file.
    walker.diagnostics.0.sort_by_key(|d| d.location.as_ref().map_or(0, |l| l.1.start));
    let job = match job {
        Some(job) => job,
        None => {
            if document.get("job").is_none() {
                walker.error(
                    Diagnostic::new("missing [job] section")
                        .at(source, 0..0, "expected a [job] table with a `command`")
                        .help("add:\n[job]\ncommand = \"python3 train.py\""),
                );
            }
            return Err(walker.diagnostics);
        }
    };
    walker.diagnostics.into_result(Jobfile {
        path: path.to_path_buf(),
        root: root.to_path_buf(),
        source: source.clone(),
        workspace,
        params,
        sweep,
        templates,
        job,
        report,
        figures,
    })
}

type Item<'i> = Spanned<DeValue<'i>>;

struct Walker<'s> {
    source: &'s Source,
    diagnostics: Diagnostics,
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
                    "templates see jobman's own `job.id`, `job.dir`, … under this name",
                )
                .help = Some("rename the parameter".into());
                continue;
            }
            let span = item.span();
            match item.get_ref() {
                DeValue::Table(inner) if inner.keys().any(|k| GENERATORS.contains(&k.get_ref().as_ref())) => {
                    if let Some(values) = self.generator(inner, span.clone()) {
                        out.push(Param { name, values, swept: true, span });
                    }
                }
                DeValue::Table(inner) => self.params(inner, &format!("{name}."), out),
                DeValue::Array(items) if items.is_empty() => {
                    self.at(span, format!("parameter `{name}` has no values"), "an axis needs at least one value");
                }
                DeValue::Array(items) => {
                    let values = items.iter().filter_map(|v| self.value(v)).collect::<Vec<_>>();
                    if values.len() == items.len() {
                        out.push(Param { name, values, swept: true, span });
                    }
                }
                _ => {
                    if let Some(value) = self.value(item) {
                        out.push(Param { name, values: vec![value], swept: false, span });
                    }
                }
            }
        }
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
        let Some(table) = self.table(item, "[sweep]") else { return sweep };
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
                    templates.push(TemplateSpec { src, target });
                }
            }
        }
        templates
    }

    fn job(&mut self, item: Option<&Item<'_>>) -> Option<JobSpec> {
        let table = self.table(item, "[job]")?;
        self.unknown_keys(table, JOB_KEYS, "a [job] key");
        let command = self.string(table, "command", "the command that runs a job");
        if command.is_none() && table.get("command").is_none() {
            self.at(item?.span(), "[job] needs a `command`", "expected `command = \"...\"`").help =
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
        let timeout = table.get("timeout").and_then(|item| match item.get_ref() {
            DeValue::String(text) => match humantime::parse_duration(text) {
                Ok(duration) => Some(duration),
                Err(e) => {
                    self.at(item.span(), "invalid timeout", format!("{e}; expected e.g. \"90s\", \"10m\", \"2h\""));
                    None
                }
            },
            DeValue::Integer(i) => match i.as_str().parse::<u64>() {
                Ok(seconds) if i.radix() == 10 => Some(Duration::from_secs(seconds)),
                _ => {
                    self.at(item.span(), "invalid timeout", "expected a positive number of seconds");
                    None
                }
            },
            other => {
                self.at(
                    item.span(),
                    "invalid timeout",
                    format!("expected a duration such as \"10m\", found {}", kind(other)),
                );
                None
            }
        });
        Some(JobSpec {
            command: command?,
            name: self.string(table, "name", "a template such as \"h{{hidden}}-lr{{lr}}\""),
            inputs: self.strings(table, "inputs", "a glob relative to the Jobfile"),
            env: self.strings(table, "env", "an environment variable name"),
            results: self.string(table, "results", "a file the job writes, e.g. \"results.json\""),
            series: self.string(table, "series", "a CSV file the job writes, e.g. \"metrics.csv\""),
            params_file,
            timeout,
        })
    }
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
        ReportSpec { columns, rename, unfinished }
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

    #[test]
    fn all_mistakes_are_reported_at_once() {
        let error = parse_text("[parms]\nx = 1\n[job]\ncomand = \"true\"\n").unwrap_err();
        let text = error.to_string();
        assert_eq!(error.0.len(), 3, "{text}");
        assert!(text.contains("did you mean `params`?"), "{text}");
        assert!(text.contains("did you mean `command`?"), "{text}");
    }
}
