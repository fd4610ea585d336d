//! Why a job (re)runs, as a value: printed by `--dry-run`, `--explain` and `jobman explain`.
//!
//! A job whose key is new is compared with the previous job most like it (from the build log,
//! `.jobman/log`). Parameter differences are named with old and new values. To tell a template
//! edit apart from a parameter change that merely shows in the rendered text, the previous job's
//! parameters are rendered again with today's Jobfile: what still differs from what it rendered
//! then is an edit, shown as a diff.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::jobfile::display_value;
use crate::key::{KeyIngredients, NeededKey};
use crate::plan::render::Rendering;
use crate::store::SlotState;
use crate::store::build_log::LogEntry;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Dirty {
    /// No job with this key ran before. `closest` is the previous job most like it, with what
    /// differs, when there is one.
    New {
        closest: Option<Closest>,
    },
    /// It ran with this key and did not finish well.
    PreviouslyFailed {
        status: String,
        detail: String,
    },
    /// Its folder exists without a record: a run that was cut off.
    Interrupted,
    Forced,
    /// A shared cache holds a finished run of its key: the build restores it instead of running
    /// it; `why` is why it is not up to date here.
    InCache {
        cache: std::path::PathBuf,
        why: Box<Dirty>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Closest {
    pub id: String,
    pub name: String,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "ingredient", rename_all = "snake_case")]
pub enum Change {
    Param {
        name: String,
        old: Option<Value>,
        new: Option<Value>,
    },
    Template {
        target: String,
        change: &'static str,
        /// A unified diff of the rendered text, when both versions are known.
        #[serde(skip_serializing_if = "Option::is_none")]
        diff: Option<String>,
    },
    Command {
        old: String,
        new: String,
    },
    Input {
        path: String,
        change: &'static str,
        old_hash: Option<String>,
        new_hash: Option<String>,
    },
    Env {
        name: String,
    },
    ParamsFile {
        old: Option<String>,
        new: Option<String>,
    },
    /// An upstream job it needs (a stage's `needs`) is another, or wrote other outputs.
    Upstream {
        stage: String,
        what: String,
    },
    KeyFormat,
}

impl Dirty {
    /// What kind of reason it is, for a sum of many: `new`, `changed`, `not done last time`…
    pub fn kind(&self) -> &'static str {
        match self {
            Dirty::New { closest: None } => "new",
            Dirty::New { closest: Some(_) } => "changed",
            Dirty::PreviouslyFailed { .. } => "not done last time",
            Dirty::Interrupted => "cut off",
            Dirty::Forced => "forced",
            Dirty::InCache { .. } => "in a cache",
        }
    }

    /// The diffs of changed templates, for printing under the one-line reason.
    pub fn diffs(&self) -> impl Iterator<Item = (&str, &str)> {
        let changes = match self {
            Dirty::New { closest: Some(closest) } => closest.changes.as_slice(),
            Dirty::InCache { why, .. } => match why.as_ref() {
                Dirty::New { closest: Some(closest) } => closest.changes.as_slice(),
                _ => &[],
            },
            _ => &[],
        };
        changes.iter().filter_map(|c| match c {
            Change::Template { target, diff: Some(diff), .. } => Some((target.as_str(), diff.as_str())),
            _ => None,
        })
    }
}

impl fmt::Display for Dirty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dirty::New { closest: None } => write!(f, "new job"),
            Dirty::New { closest: Some(Closest { id, name, changes }) } => {
                let changes: Vec<String> = changes.iter().map(ToString::to_string).collect();
                let what = if changes.is_empty() { "new job".to_string() } else { changes.join("; ") };
                write!(f, "{what} (closest previous job: {id} {name})")
            }
            Dirty::PreviouslyFailed { status, detail } => write!(f, "{status} last time{detail}"),
            Dirty::Interrupted => write!(f, "interrupted last time (no record)"),
            Dirty::Forced => write!(f, "forced"),
            Dirty::InCache { cache, why } => write!(f, "in the cache {}: restored, not run ({why})", cache.display()),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: &Option<Value>| v.as_ref().map_or_else(|| "(unset)".to_string(), display_value);
        let short = |h: &Option<String>| h.as_ref().map_or("none".to_string(), |h| h[..8.min(h.len())].to_string());
        match self {
            Change::Param { name, old, new } => write!(f, "param `{name}` changed {} → {}", shown(old), shown(new)),
            Change::Template { target, change, .. } => write!(f, "template `{target}` {change}"),
            Change::Command { old, new } => write!(f, "command changed `{old}` → `{new}`"),
            Change::Input { path, change: "changed", old_hash, new_hash } => {
                write!(f, "input `{path}` changed ({} → {})", short(old_hash), short(new_hash))
            }
            Change::Input { path, change, .. } => write!(f, "input `{path}` {change}"),
            Change::Env { name } => write!(f, "env `{name}` changed"),
            Change::ParamsFile { old, new } => {
                let name = |n: &Option<String>| n.clone().unwrap_or_else(|| "none".into());
                write!(f, "params file changed `{}` → `{}`", name(old), name(new))
            }
            Change::Upstream { stage, what } => write!(f, "upstream `{stage}`: {what}"),
            Change::KeyFormat => write!(f, "jobman's key format changed"),
        }
    }
}

/// Why the job rendered as `job`, whose folder is in `state`, must run. `previous` are the jobs
/// that ran before (newest entry per key); `current` the keys (hex) the Jobfile names now;
/// `rerender` renders a previous job's params (and index) with today's Jobfile.
pub fn explain(
    job: &Rendering,
    state: &SlotState,
    previous: &[LogEntry],
    current: &HashSet<String>,
    rerender: impl Fn(&LogEntry) -> Option<Rendering>,
) -> Dirty {
    match state {
        SlotState::Absent => {
            let closest = closest(&job.ingredients, previous, current).map(|entry| Closest {
                id: entry.id.clone(),
                name: entry.name.clone(),
                changes: changes(entry, job, &rerender),
            });
            Dirty::New { closest }
        }
        _ => from_state(state),
    }
}

/// Why a job must run as far as its folder tells, without comparing it with earlier jobs: a new
/// key is new, with no closest job.
pub fn from_state(state: &SlotState) -> Dirty {
    match state {
        SlotState::NotDone(record) => {
            let detail = match (record.exit_code, &record.message) {
                (_, Some(message)) => format!(": {message}"),
                (Some(code), None) => format!(" (exit code {code})"),
                (None, None) => String::new(),
            };
            Dirty::PreviouslyFailed { status: record.status.as_str().to_string(), detail }
        }
        SlotState::Incomplete => Dirty::Interrupted,
        SlotState::Done(_) => Dirty::Forced,
        SlotState::Absent => Dirty::New { closest: None },
    }
}

/// The previous job most like `job`: fewest differing params; ties go to jobs the Jobfile no
/// longer names, then to the numerically nearest values, then to the newest.
fn closest<'a>(job: &KeyIngredients, previous: &'a [LogEntry], current: &HashSet<String>) -> Option<&'a LogEntry> {
    let mine = flat(&job.params);
    let key = job.key().hex();
    previous
        .iter()
        .enumerate()
        .filter(|(_, entry)| entry.key != key)
        .map(|(age, entry)| {
            let differing = param_changes(&flat(&entry.ingredients.params), &mine);
            let distance: f64 = differing
                .iter()
                .map(|c| match c {
                    Change::Param { old: Some(a), new: Some(b), .. } => match (a.as_f64(), b.as_f64()) {
                        (Some(a), Some(b)) => (a - b).abs(),
                        _ => 1.0,
                    },
                    _ => 1.0,
                })
                .sum();
            ((differing.len(), current.contains(&entry.key), distance, std::cmp::Reverse(age)), entry)
        })
        .min_by(|(a, _), (b, _)| a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.total_cmp(&b.2)).then(a.3.cmp(&b.3)))
        .map(|(_, entry)| entry)
}

/// Every ingredient that differs from the previous job `old` to `new`.
fn changes(old: &LogEntry, new: &Rendering, rerender: &impl Fn(&LogEntry) -> Option<Rendering>) -> Vec<Change> {
    let mut out = param_changes(&flat(&old.ingredients.params), &flat(&new.ingredients.params));
    // With other params, the rendered text differs anyway; what today's Jobfile renders from the
    // old params tells the edits apart. When that cannot be rendered (the old params no longer
    // fit the templates), template and command differences are not told apart and not named.
    let again;
    let (base, comparable) = if out.is_empty() {
        (new, true)
    } else {
        again = rerender(old);
        match &again {
            Some(again) => (again, true),
            None => (new, false),
        }
    };
    let (was, is) = (&old.ingredients, &base.ingredients);
    if was.format != is.format {
        out.push(Change::KeyFormat);
    }
    for (target, hash) in &is.templates {
        match was.templates.get(target) {
            None => out.push(Change::Template { target: target.clone(), change: "added", diff: None }),
            Some(h) if h != hash && comparable => {
                let before = old.rendered.get(target).and_then(Option::as_ref);
                let after = base.files.iter().find(|(t, _)| t == target).map(|(_, text)| text);
                let diff = before.zip(after).map(|(a, b)| unified_diff(a, b, target));
                out.push(Change::Template { target: target.clone(), change: "changed", diff });
            }
            _ => {}
        }
    }
    for target in was.templates.keys().filter(|t| !is.templates.contains_key(*t)) {
        out.push(Change::Template { target: target.clone(), change: "removed", diff: None });
    }
    if was.command != is.command && comparable {
        out.push(Change::Command { old: was.command.clone(), new: is.command.clone() });
    }
    if was.params_file != is.params_file {
        out.push(Change::ParamsFile { old: was.params_file.clone(), new: is.params_file.clone() });
    }
    out.extend(input_changes(&was.inputs, &is.inputs));
    out.extend(upstream_changes(&was.needs, &is.needs));
    let names: BTreeSet<&String> = was.env.keys().chain(is.env.keys()).collect();
    for name in names {
        if was.env.get(name) != is.env.get(name) {
            out.push(Change::Env { name: name.clone() });
        }
    }
    out
}

/// Per upstream stage, the first difference between the jobs needed then and now.
fn upstream_changes(old: &BTreeMap<String, Vec<NeededKey>>, new: &BTreeMap<String, Vec<NeededKey>>) -> Vec<Change> {
    let stages: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let short = |h: &str| h[..8.min(h.len())].to_string();
    stages
        .into_iter()
        .filter_map(|stage| {
            let (was, is) =
                (old.get(stage).map_or(&[][..], Vec::as_slice), new.get(stage).map_or(&[][..], Vec::as_slice));
            let what = if was.len() != is.len() {
                format!("needs {} jobs, was {}", is.len(), was.len())
            } else {
                let (a, b) = was.iter().zip(is).find(|(a, b)| a != b)?;
                if a.key != b.key {
                    format!("a job needed has a new key ({} → {})", short(&a.key), short(&b.key))
                } else {
                    let names: BTreeSet<&String> = a.outputs.keys().chain(b.outputs.keys()).collect();
                    let changed: Vec<String> = names
                        .into_iter()
                        .filter(|n| a.outputs.get(*n) != b.outputs.get(*n))
                        .map(|n| format!("output `{n}` changed"))
                        .collect();
                    format!("job {} reran: {}", short(&b.key), changed.join(", "))
                }
            };
            Some(Change::Upstream { stage: stage.clone(), what })
        })
        .collect()
}

fn input_changes(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<Change> {
    let paths: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    paths
        .into_iter()
        .filter_map(|path| {
            let (old_hash, new_hash) = (old.get(path).cloned(), new.get(path).cloned());
            let change = match (&old_hash, &new_hash) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (Some(a), Some(b)) if a != b => "changed",
                _ => return None,
            };
            Some(Change::Input { path: path.clone(), change, old_hash, new_hash })
        })
        .collect()
}

/// A short unified diff (two lines of context, at most 40 lines).
fn unified_diff(old: &str, new: &str, target: &str) -> String {
    const MAX_LINES: usize = 40;
    let diff = similar::TextDiff::from_lines(old, new);
    let text = diff.unified_diff().context_radius(2).header(&format!("a/{target}"), &format!("b/{target}")).to_string();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= MAX_LINES {
        return text;
    }
    let mut short = lines[..MAX_LINES].join("\n");
    short.push_str(&format!("\n… {} more lines\n", lines.len() - MAX_LINES));
    short
}

fn param_changes(old: &[(String, Value)], new: &[(String, Value)]) -> Vec<Change> {
    let mut out = Vec::new();
    for (name, value) in new {
        let before = old.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        if before != Some(value) {
            out.push(Change::Param { name: name.clone(), old: before.cloned(), new: Some(value.clone()) });
        }
    }
    for (name, value) in old {
        if !new.iter().any(|(n, _)| n == name) {
            out.push(Change::Param { name: name.clone(), old: Some(value.clone()), new: None });
        }
    }
    out
}

/// Nested params back to dotted names.
fn flat(params: &Value) -> Vec<(String, Value)> {
    crate::jobfile::flatten_nested(params, "params")
}
