//! `[job]` and `[[template]]`: what each job renders and runs, and what it leaves behind.

use std::path::{Component, Path};
use std::time::Duration;

use toml::Spanned;
use toml::de::DeValue;

use super::walker::{Item, Walker, is_identifier, kind};

pub(super) const TEMPLATE_KEYS: &[&str] = &["src", "target", "where", "params", "params_file"];
pub(super) const JOB_KEYS: &[&str] = &[
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

#[derive(Debug, Clone)]
pub struct TemplateSpec {
    /// Path under the templates folder; may use params.
    pub src: Spanned<String>,
    /// Path inside the job folder; may use params.
    pub target: Spanned<String>,
    /// Only the jobs whose params make this expression true get the file.
    pub filter: Option<Spanned<String>>,
    /// Values this template sees over the job's params (nested as they are), for it alone.
    pub params: Option<serde_json::Value>,
    /// A file written beside it with the params it sees (`.json`, `.toml`, `.yaml`).
    pub params_file: Option<Spanned<String>>,
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
    pub gpus: Option<Spanned<PerJob<u32>>>,
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

impl Walker<'_> {
    pub(super) fn templates(&mut self, item: Option<&Item<'_>>) -> Vec<TemplateSpec> {
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
            let params = match table.get("params") {
                Some(item) if matches!(item.get_ref(), DeValue::Table(_)) => self.value(item),
                Some(item) => {
                    self.at(
                        item.span(),
                        "a template's `params` is a table",
                        "expected e.g. `params = { optimizer = \"adam\" }`",
                    );
                    None
                }
                None => None,
            };
            let params_file = self.string(table, "params_file", "a file name such as \"config.yaml\"");
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
                    templates.push(TemplateSpec { src, target, filter, params, params_file });
                }
            }
        }
        templates
    }

    /// A job table: `[job]`, or a `[stage.NAME]` (`section`) with `[job]`'s keys merged in.
    pub(super) fn job(&mut self, item: Option<&Item<'_>>, section: &str) -> Option<JobSpec> {
        let table = self.table(item, section)?;
        if section == "[job]" {
            self.unknown_keys(table, JOB_KEYS, "a [job] key");
        }
        let command = self.string(table, "command", "the command that runs a job");
        if let Some(command) = command.as_ref().filter(|c| c.get_ref().trim().is_empty()) {
            self.at(command.span(), "the command is empty", "a job needs something to run").help =
                Some("e.g. `command = \"python3 train.py\"`".into());
        }
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
        let gpus = self
            .count(table, "gpus", "a number of GPUs")
            .zip(table.get("gpus"))
            .map(|(gpus, item)| Spanned::new(item.span(), gpus));
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
        let env = self.strings(table, "env", "an environment variable name");
        for var in env.iter().filter(|v| !is_identifier(v.get_ref())) {
            self.at(var.span(), format!("`{}` is not a variable name", var.get_ref()), "expected a name such as `CUDA_HOME`")
                .help = Some(
                "`env` names variables whose values are part of the key; to set one for the jobs, write it in the command: `A=B python3 train.py`"
                    .into(),
            );
        }
        Some(JobSpec {
            command: command?,
            name: self.string(table, "name", "a template such as \"h{{hidden}}-lr{{lr}}\""),
            inputs: self.strings(table, "inputs", "a glob relative to the Jobfile"),
            env,
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

/// Why a path in the job folder (a target, an output, the results) is not allowed, if it is not:
/// it names a file inside the folder.
pub fn folder_path_problem(path: &str) -> Option<String> {
    if !Path::new(path).components().any(|c| matches!(c, Component::Normal(_))) {
        return Some("expected a file inside the job folder, found none".into());
    }
    if !Path::new(path).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Some("it must stay inside the job folder (no `..`, not absolute)".into());
    }
    None
}

/// Why a template target is not allowed, if it is not: it must stay inside the job folder and
/// leave jobman's own files alone.
pub fn target_problem(target: &str, params_file: Option<&Spanned<String>>) -> Option<String> {
    if let Some(problem) = folder_path_problem(target) {
        return Some(problem);
    }
    let path = Path::new(target);
    let reserved = crate::store::RESERVED_FILES.iter().copied().chain(params_file.map(|f| f.get_ref().as_str()));
    for name in reserved {
        if path == Path::new(name) {
            return Some(format!("`{name}` is written by jobman itself"));
        }
    }
    None
}
