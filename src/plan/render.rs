//! Stage 3: render each job's templates, command and name, and compute its key.
//!
//! Planning renders with placeholders for `job.id` and `job.dir` (the id comes from the key, and
//! the folder's location must not change the key); materializing, right before a job runs,
//! renders again with the real values.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, Serde};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};

use crate::jobfile::ParamSet;
use crate::jobfile::StageView;
use crate::jobfile::expr::{Origin, ParamFilter};
use crate::key::{JobKey, KEY_FORMAT, KeyIngredients, content_hash};
use crate::plan::needs::Needs;
use crate::util::diagnostic::{Diagnostic, Source, char_span, did_you_mean, snippet};

const ID_PLACEHOLDER: &str = "<job.id>";
const DIR_PLACEHOLDER: &str = "<job.dir>";
/// Prefix of the names under which strings of the Jobfile are compiled as templates.
const JOBFILE_TEMPLATE: &str = "Jobfile:";

/// A job after planning: what it is and its key. Kept small (the ingredients are computed again
/// for the few jobs that need them), so that a sweep of 100,000 jobs fits in memory.
#[derive(Debug, Clone)]
pub struct PlannedJob {
    /// Position in the sweep.
    pub index: usize,
    pub params: ParamSet,
    pub name: String,
    pub key: JobKey,
    /// The upstream jobs it needs (a stage with `needs`).
    pub needs: Option<Arc<Needs>>,
}

/// The files of a job folder and its command, rendered with the job's real id and folder.
pub struct Materialized {
    pub command: String,
    /// Target path inside the job folder → contents.
    pub files: Vec<(String, String)>,
}

/// A job rendered for its key: `job.id` and `job.dir` are placeholders in `files`.
pub struct Rendering {
    pub name: String,
    pub ingredients: KeyIngredients,
    /// Target path inside the job folder → contents.
    pub files: Vec<(String, String)>,
}

pub struct Renderer<'j> {
    stage: StageView<'j>,
    env: Environment<'static>,
    /// Input file → content hash, shared by all jobs of a build.
    input_hashes: Mutex<HashMap<String, Result<String, String>>>,
    /// Each `[[template]]`'s `where`, compiled: only the jobs it is true for get the file.
    template_filters: Vec<Option<ParamFilter>>,
}

impl<'j> Renderer<'j> {
    pub fn new(stage: StageView<'j>) -> Result<Renderer<'j>, Diagnostic> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_debug(true);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        let syntax = minijinja::syntax::SyntaxConfig::builder().keep_trailing_newline(true).build();
        if let Ok(syntax) = syntax {
            env.set_syntax(syntax);
        }
        env.set_loader(minijinja::path_loader(&stage.workspace.templates));
        let names: Vec<&str> = stage.params.iter().map(|p| p.name.as_str()).collect();
        let template_filters = stage
            .templates
            .iter()
            .map(|t| {
                t.filter.as_ref().map_or(Ok(None), |filter| {
                    let origin = Origin { source: &stage.source, span: filter.span() };
                    ParamFilter::compile(filter.get_ref(), &names, &origin).map(Some)
                })
            })
            .collect::<Result<_, _>>()?;
        let mut renderer = Renderer { stage, env, input_hashes: Mutex::new(HashMap::new()), template_filters };
        let job = stage.job;
        let mut strings = vec![("job.command".to_string(), &job.command)];
        strings.extend(job.name.iter().map(|n| ("job.name".to_string(), n)));
        for (i, t) in stage.templates.iter().enumerate() {
            strings.push((format!("template.{i}.src"), &t.src));
            strings.push((format!("template.{i}.target"), &t.target));
        }
        for (i, input) in job.inputs.iter().enumerate() {
            strings.push((format!("job.inputs.{i}"), input));
        }
        for (name, text) in strings {
            let name = format!("{JOBFILE_TEMPLATE}{name}");
            if let Err(e) = renderer.env.add_template_owned(name, text.get_ref().clone()) {
                return Err(renderer.jobfile_error(&e, text.span()));
            }
        }
        Ok(renderer)
    }

    /// Renders one job with placeholders and computes its key.
    pub fn plan(&self, index: usize, params: ParamSet, needs: Option<Arc<Needs>>) -> Result<PlannedJob, Diagnostic> {
        let Rendering { name, ingredients, .. } = self.rendering(index, &params, needs.as_deref())?;
        Ok(PlannedJob { index, params, name, key: ingredients.key(), needs })
    }

    /// A job's name, its rendered files (with placeholders) and everything its key is made of.
    pub fn rendering(&self, index: usize, params: &ParamSet, needs: Option<&Needs>) -> Result<Rendering, Diagnostic> {
        let nested = params.nested();
        let needs_context = needs.map(|n| n.context(false));
        let context = |job| context(&nested, job, needs_context.as_ref());
        let mut name = match &self.stage.job.name {
            Some(_) => self.render_string("job.name", &context(JobContext::new(index, String::new(), None)))?,
            None => params
                .0
                .iter()
                .filter(|(n, _)| self.is_swept(n))
                .map(|(n, v)| format!("{n}={}", crate::jobfile::display_value(v)))
                .collect::<Vec<_>>()
                .join(","),
        };
        if let Some(template) = &self.stage.job.name {
            let problem = if name.trim().is_empty() {
                Some("it renders empty".to_string())
            } else if name == "." || name == ".." {
                Some(format!("it renders `{name}`, which reads as a folder"))
            } else if name.chars().any(char::is_control) {
                Some(format!("it renders {name:?}, with a line break or another control character"))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(Diagnostic::new(format!("job {index} ({}) has no usable name", params.describe()))
                    .at(&self.stage.source, template.span(), problem)
                    .help(
                        "a name is one line that tells the job apart: use its params, e.g. \"h{{hidden}}-lr{{lr}}\"",
                    ));
            }
        }
        if name.is_empty() {
            name = format!("job{index}");
        }
        let ctx = context(JobContext::new(index, name.clone(), None));
        let files = self.render_files(&ctx, &nested)?;
        let command = self.render_string("job.command", &ctx)?;
        let mut inputs = BTreeMap::new();
        for (i, pattern) in self.stage.job.inputs.iter().enumerate() {
            let pattern_text = self.render_string(&format!("job.inputs.{i}"), &ctx)?;
            for (path, hash) in self.hash_inputs(&pattern_text).map_err(|message| {
                Diagnostic::new(format!("input `{pattern_text}`: {message}")).at(
                    &self.stage.source,
                    pattern.span(),
                    "declared here",
                )
            })? {
                inputs.insert(path, hash);
            }
        }
        let env = self
            .stage
            .job
            .env
            .iter()
            .map(|var| {
                (var.get_ref().clone(), std::env::var_os(var.get_ref()).map(|v| content_hash(v.as_encoded_bytes())))
            })
            .collect();
        let ingredients = KeyIngredients {
            format: KEY_FORMAT,
            params: nested,
            command,
            templates: files.iter().map(|(target, text)| (target.clone(), content_hash(text.as_bytes()))).collect(),
            params_file: self.stage.job.params_file.as_ref().map(|f| f.get_ref().clone()),
            inputs,
            env,
            stage: self.stage.name().map(str::to_string),
            needs: needs.map(Needs::key_part).unwrap_or_default(),
        };
        Ok(Rendering { name, ingredients, files })
    }

    /// Renders a planned job's files and command with its real id and folder.
    pub fn materialize(&self, job: &PlannedJob, id: &str, dir: &Path) -> Result<Materialized, Diagnostic> {
        let located = JobContext::new(job.index, job.name.clone(), Some((id.to_string(), dir.display().to_string())));
        let params = job.params.nested();
        let needs = job.needs.as_ref().map(|n| n.context(true));
        let ctx = context(&params, located, needs.as_ref());
        let mut files = self.render_files(&ctx, &params)?;
        if let Some(params_file) = &self.stage.job.params_file {
            files.push((params_file.get_ref().clone(), params_file_text(params_file.get_ref(), &params)));
        }
        Ok(Materialized { command: self.render_string("job.command", &ctx)?, files })
    }

    fn is_swept(&self, name: &str) -> bool {
        self.stage.params.iter().any(|p| p.name == name && p.swept)
    }

    /// The job's files: the templates whose `where` its `params` meet, rendered with `ctx`.
    fn render_files(&self, ctx: &Value, params: &serde_json::Value) -> Result<Vec<(String, String)>, Diagnostic> {
        let mut files: Vec<(String, String)> = Vec::with_capacity(self.stage.templates.len());
        for (i, spec) in self.stage.templates.iter().enumerate() {
            if let Some(filter) = &self.template_filters[i] {
                let wanted = filter.matches(params).map_err(|message| {
                    let span = spec.filter.as_ref().map_or(spec.src.span(), |f| f.span());
                    Diagnostic::new("a [[template]] `where` failed").at(&self.stage.source, span, message)
                })?;
                if !wanted {
                    continue;
                }
            }
            let src = self.render_string(&format!("template.{i}.src"), ctx)?;
            let target = self.render_string(&format!("template.{i}.target"), ctx)?;
            if let Some(problem) = crate::jobfile::target_problem(&target, self.stage.job.params_file.as_ref()) {
                return Err(Diagnostic::new(format!("template target `{target}` is refused")).at(
                    &self.stage.source,
                    spec.target.span(),
                    problem,
                ));
            }
            if files.iter().any(|(t, _)| *t == target) {
                return Err(Diagnostic::new(format!("two templates write `{target}`")).at(
                    &self.stage.source,
                    spec.target.span(),
                    "each target must be a different file",
                ));
            }
            // A template's own params, over the job's, for it alone.
            let own = spec.params.as_ref().map(|own| {
                let mut seen = params.clone();
                merge(&mut seen, own);
                seen
            });
            let template_ctx = match &own {
                Some(seen) => minijinja::context! { ..Value::from(Serde(seen)), ..ctx.clone() },
                None => ctx.clone(),
            };
            if let Some(file) = &spec.params_file {
                let problem = crate::jobfile::target_problem(file.get_ref(), self.stage.job.params_file.as_ref())
                    .or_else(|| {
                        files.iter().any(|(t, _)| t == file.get_ref()).then(|| "another file has this name".into())
                    });
                if let Some(problem) = problem {
                    let message = format!("template params file `{}` is refused", file.get_ref());
                    return Err(Diagnostic::new(message).at(&self.stage.source, file.span(), problem));
                }
                files.push((file.get_ref().clone(), params_file_text(file.get_ref(), own.as_ref().unwrap_or(params))));
            }
            let template = self.env.get_template(&src).map_err(|e| {
                if e.kind() == ErrorKind::TemplateNotFound {
                    let dir = &self.stage.workspace.templates;
                    Diagnostic::new(format!("template `{src}` not found in {}", dir.display()))
                        .at(&self.stage.source, spec.src.span(), "no such file")
                        .help_opt(did_you_mean(&src, list_templates(dir).iter().map(String::as_str)))
                } else {
                    self.template_error(&e)
                }
            })?;
            let text = template.render(&template_ctx).map_err(|e| self.template_error(&e))?;
            files.push((target, text));
        }
        Ok(files)
    }

    fn render_string(&self, what: &str, ctx: &Value) -> Result<String, Diagnostic> {
        let name = format!("{JOBFILE_TEMPLATE}{what}");
        let template = self.env.get_template(&name).map_err(|e| self.template_error(&e))?;
        template.render(ctx).map_err(|e| self.template_error(&e))
    }

    /// A minijinja error as a diagnostic pointing into the template file or the Jobfile string.
    fn template_error(&self, error: &minijinja::Error) -> Diagnostic {
        let name = error.name().unwrap_or("template");
        if let Some(field) = name.strip_prefix(JOBFILE_TEMPLATE) {
            let span = self.jobfile_span(field);
            return self.jobfile_error(error, span);
        }
        let text: Arc<str> = error.template_source().unwrap_or("").into();
        let path = self.stage.workspace.templates.join(name);
        let path = path.strip_prefix(&self.stage.root).unwrap_or(&path).display().to_string();
        let source = Source { path, text: text.clone() };
        let span = error.range().unwrap_or(0..0);
        let help = self.undefined_help(error, snippet(&text, span.clone()));
        Diagnostic::new(format!("cannot render template `{name}`: {}", kind_message(error)))
            .at(&source, span, error.detail().unwrap_or("here").to_string())
            .help_opt(help)
    }

    fn jobfile_error(&self, error: &minijinja::Error, span: std::ops::Range<usize>) -> Diagnostic {
        // Narrow the span to the failing part when the TOML string holds the template verbatim.
        let text = &self.stage.source.text;
        let inner = span.start + 1..span.end.saturating_sub(1);
        let (span, snippet) = match (error.range(), error.template_source(), text.get(inner.clone())) {
            (Some(range), Some(template), Some(written)) if written == template && range.end <= template.len() => {
                let range = char_span(template, range);
                (inner.start + range.start..inner.start + range.end, &template[range])
            }
            _ => (span, ""),
        };
        let help = self.undefined_help(error, snippet);
        Diagnostic::new(format!("cannot render this Jobfile string: {}", kind_message(error)))
            .at(&self.stage.source, span, error.detail().unwrap_or("here").to_string())
            .help_opt(help)
    }

    /// For an undefined variable: the parameter it was probably meant to be.
    fn undefined_help(&self, error: &minijinja::Error, snippet: &str) -> Option<String> {
        if error.kind() != ErrorKind::UndefinedError {
            return None;
        }
        let mut names: Vec<String> =
            self.stage.params.iter().map(|p| p.name.split('.').next().unwrap_or("").to_string()).collect();
        names.extend(["job.id", "job.dir", "job.index", "job.name"].map(String::from));
        for need in self.stage.needs() {
            let stage = need.stage.get_ref();
            names.push(format!("needs.{stage}"));
            if need.group_by.is_none() {
                names.extend(["dir", "id", "name", "params", "results"].map(|f| format!("needs.{stage}.{f}")));
            }
        }
        // The name as jobman's minijinja detail quotes it (`needs.trian` is undefined); the failing
        // expression's text otherwise, whose range may start at an attribute.
        let quoted = error.detail().and_then(|d| d.split('`').nth(1)).filter(|n| !n.is_empty());
        let used = quoted.unwrap_or_else(|| snippet.trim().trim_start_matches("{{").trim());
        let used: String = used.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.').collect();
        did_you_mean(&used, names.iter().map(String::as_str))
            .or_else(|| Some(format!("the parameters are: {}", names.join(", "))))
    }

    fn jobfile_span(&self, field: &str) -> std::ops::Range<usize> {
        let job = &self.stage.job;
        let spanned = match field.split('.').collect::<Vec<_>>().as_slice() {
            ["job", "command"] => Some(&job.command),
            ["job", "name"] => job.name.as_ref(),
            ["job", "inputs", i] => i.parse::<usize>().ok().and_then(|i| job.inputs.get(i)),
            ["template", i, "src"] => i.parse::<usize>().ok().and_then(|i| self.stage.templates.get(i)).map(|t| &t.src),
            ["template", i, "target"] => {
                i.parse::<usize>().ok().and_then(|i| self.stage.templates.get(i)).map(|t| &t.target)
            }
            _ => None,
        };
        spanned.map_or(0..0, |s| s.span())
    }

    /// The files a glob names, each with its content hash; a pattern that names nothing is an error.
    fn hash_inputs(&self, pattern: &str) -> Result<Vec<(String, String)>, String> {
        let root = &self.stage.root;
        let full = root.join(pattern);
        let paths = glob::glob(&full.to_string_lossy()).map_err(|e| format!("invalid pattern: {e}"))?;
        let mut found = Vec::new();
        for path in paths {
            let path = path.map_err(|e| e.to_string())?;
            if path.is_dir() {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
            let mut cache = self.input_hashes.lock().unwrap_or_else(|p| p.into_inner());
            let hash = cache
                .entry(relative.clone())
                .or_insert_with(|| hash_file(&path).map_err(|e| format!("cannot read {relative}: {e}")))
                .clone()?;
            found.push((relative, hash));
        }
        if found.is_empty() {
            return Err("matches no file".into());
        }
        Ok(found)
    }
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(hasher.finalize().to_hex().to_string())
}

fn kind_message(error: &minijinja::Error) -> String {
    match error.kind() {
        ErrorKind::UndefinedError => "undefined variable".into(),
        ErrorKind::SyntaxError => "syntax error".into(),
        other => other.to_string(),
    }
}

fn list_templates(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default()
}

/// The params file a job (or a template) reads its parameters from: TOML, YAML or JSON by the
/// file's extension.
fn params_file_text(name: &str, params: &serde_json::Value) -> String {
    if name.ends_with(".toml") {
        toml::to_string(params).unwrap_or_default()
    } else if name.ends_with(".yaml") || name.ends_with(".yml") {
        serde_saphyr::to_string(params).unwrap_or_default()
    } else {
        serde_json::to_string_pretty(params).unwrap_or_default() + "\n"
    }
}

/// `over` merged into `base`: tables key by key, any other value replaced.
fn merge(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(base), serde_json::Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// `job.*` in templates. `id` and `dir` are placeholders while planning.
#[derive(Debug)]
struct JobContext {
    index: usize,
    name: String,
    location: Option<(String, String)>,
}

impl JobContext {
    fn new(index: usize, name: String, location: Option<(String, String)>) -> Self {
        JobContext { index, name, location }
    }
}

impl Object for JobContext {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let location = self.location.as_ref();
        Some(match key.as_str()? {
            "index" => Value::from(self.index),
            "name" => Value::from(self.name.clone()),
            "id" => Value::from(location.map_or(ID_PLACEHOLDER, |l| l.0.as_str())),
            "dir" => Value::from(location.map_or(DIR_PLACEHOLDER, |l| l.1.as_str())),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["id", "dir", "index", "name"])
    }
}

fn context(params: &serde_json::Value, job: JobContext, needs: Option<&serde_json::Value>) -> Value {
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    if let Some(object) = params.as_object() {
        for (k, v) in object {
            map.insert(k.clone(), Value::from(Serde(v)));
        }
    }
    map.insert("job".into(), Value::from_object(job));
    if let Some(needs) = needs {
        map.insert("needs".into(), Value::from(Serde(needs)));
    }
    Value::from(map)
}
