//! Why a job (re)runs, as a value: printed by `--dry-run`, and by `explain` later.

use std::collections::HashSet;
use std::fmt;

use serde_json::Value;

use crate::job_key::KeyIngredients;
use crate::store::{JobRecord, SlotState};
use crate::sweep::{ParamSet, display_value};

#[derive(Debug, Clone, PartialEq)]
pub enum Dirty {
    /// No job with this key ran before. `closest` is the previous job most like it, with what
    /// differs, when there is one.
    New {
        closest: Option<(String, Vec<Change>)>,
    },
    /// It ran with this key and did not finish well.
    PreviouslyFailed {
        status: String,
        detail: String,
    },
    /// Its folder exists without a record: a run that was cut off.
    Interrupted,
    Forced,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Param { name: String, old: Option<Value>, new: Option<Value> },
    Template { target: String, change: &'static str },
    Command { old: String, new: String },
    Input { path: String, change: String },
    Env { name: String },
    ParamsFile,
    KeyFormat,
}

impl fmt::Display for Dirty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dirty::New { closest: None } => write!(f, "new job"),
            Dirty::New { closest: Some((id, changes)) } => {
                let changes: Vec<String> = changes.iter().map(ToString::to_string).collect();
                write!(f, "{} (closest previous job: {id})", changes.join("; "))
            }
            Dirty::PreviouslyFailed { status, detail } => write!(f, "{status} last time{detail}"),
            Dirty::Interrupted => write!(f, "interrupted last time (no record)"),
            Dirty::Forced => write!(f, "forced"),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: &Option<Value>| v.as_ref().map_or_else(|| "(unset)".to_string(), display_value);
        match self {
            Change::Param { name, old, new } => write!(f, "param `{name}` changed {} → {}", shown(old), shown(new)),
            Change::Template { target, change } => write!(f, "template `{target}` {change}"),
            Change::Command { old, new } => write!(f, "command changed `{old}` → `{new}`"),
            Change::Input { path, change } => write!(f, "input `{path}` {change}"),
            Change::Env { name } => write!(f, "env `{name}` changed"),
            Change::ParamsFile => write!(f, "params file name changed"),
            Change::KeyFormat => write!(f, "jobman's key format changed"),
        }
    }
}

/// Why the job with these ingredients, whose folder is in `state`, must run. `previous` are the
/// records in the store; `current` the keys (hex) the Jobfile names now.
pub fn explain(job: &KeyIngredients, state: &SlotState, previous: &[JobRecord], current: &HashSet<String>) -> Dirty {
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
        SlotState::Absent => Dirty::New { closest: closest(job, previous, current) },
    }
}

/// The previous job most like `job`: fewest differing params; ties go to jobs the Jobfile no
/// longer names, then to the numerically nearest values.
fn closest(job: &KeyIngredients, previous: &[JobRecord], current: &HashSet<String>) -> Option<(String, Vec<Change>)> {
    let mine = flat(&job.params);
    let key = job.key().hex();
    let best = previous
        .iter()
        .filter(|r| r.key != key)
        .map(|record| {
            let theirs = flat(&record.ingredients.params);
            let differing = param_changes(&theirs, &mine);
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
            let still_named = current.contains(&record.key);
            ((differing.len(), still_named, distance), record)
        })
        .min_by(|a, b| a.0.0.cmp(&b.0.0).then(a.0.1.cmp(&b.0.1)).then(a.0.2.total_cmp(&b.0.2)))?;
    let record = best.1;
    Some((record.id.clone(), changes(&record.ingredients, job)))
}

/// Every ingredient that differs from `old` to `new`.
pub fn changes(old: &KeyIngredients, new: &KeyIngredients) -> Vec<Change> {
    let mut out = param_changes(&flat(&old.params), &flat(&new.params));
    // Templates and commands that print params render differently when a param changes; naming
    // them then says nothing more.
    let params_changed = !out.is_empty();
    if old.format != new.format {
        out.push(Change::KeyFormat);
    }
    for (target, hash) in &new.templates {
        match old.templates.get(target) {
            None => out.push(Change::Template { target: target.clone(), change: "added" }),
            Some(h) if h != hash && !params_changed => {
                out.push(Change::Template { target: target.clone(), change: "changed" })
            }
            _ => {}
        }
    }
    for target in old.templates.keys().filter(|t| !new.templates.contains_key(*t)) {
        out.push(Change::Template { target: target.clone(), change: "removed" });
    }
    if old.command != new.command && !params_changed {
        out.push(Change::Command { old: old.command.clone(), new: new.command.clone() });
    }
    if old.params_file != new.params_file {
        out.push(Change::ParamsFile);
    }
    for (path, hash) in &new.inputs {
        match old.inputs.get(path) {
            None => out.push(Change::Input { path: path.clone(), change: "added".into() }),
            Some(h) if h != hash => out
                .push(Change::Input {
                    path: path.clone(), change: format!("changed ({} → {})", &h[..8], &hash[..8])
                }),
            _ => {}
        }
    }
    for path in old.inputs.keys().filter(|p| !new.inputs.contains_key(*p)) {
        out.push(Change::Input { path: path.clone(), change: "removed".into() });
    }
    let names: std::collections::BTreeSet<&String> = old.env.keys().chain(new.env.keys()).collect();
    for name in names {
        if old.env.get(name) != new.env.get(name) {
            out.push(Change::Env { name: name.clone() });
        }
    }
    out
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
    ParamSet::from_nested(params, "params").0
}
