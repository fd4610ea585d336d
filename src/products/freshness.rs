//! Whether a product is up to date, decided once from its key part by part: the typed reason a
//! build prints with `--explain` and `explain` prints as text or JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::graph::Node;
use crate::util::text::plural;

/// A part of a product's key. Stored in `.jobman/nodes.json` under its name (`settings`,
/// `column:acc`, …).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum Part {
    // In the order of their stored names, as reasons list them.
    /// A report column a figure reads.
    Column(String),
    /// The figures the index page shows.
    Figures,
    Jobman,
    /// The sweep's jobs: ids, names, keys.
    Jobs,
    /// The report's bytes (the index page).
    Report,
    /// The jobs' results files.
    Results,
    /// The jobs' series files (curves).
    Series,
    /// The product's own settings in the Jobfile.
    Settings,
    /// The jobs' statuses, durations and attempts.
    Statuses,
    /// A part this jobman does not know (written by another version).
    Other(String),
}

/// A product's key, part by part, so that a stale product can say which part changed.
pub type Parts = BTreeMap<Part, String>;

impl From<Part> for String {
    fn from(part: Part) -> String {
        match part {
            Part::Settings => "settings".into(),
            Part::Jobman => "jobman".into(),
            Part::Jobs => "jobs".into(),
            Part::Statuses => "statuses".into(),
            Part::Results => "results".into(),
            Part::Series => "series".into(),
            Part::Figures => "figures".into(),
            Part::Report => "report".into(),
            Part::Column(name) => format!("column:{name}"),
            Part::Other(name) => name,
        }
    }
}

impl From<String> for Part {
    fn from(name: String) -> Part {
        match name.as_str() {
            "settings" => Part::Settings,
            "jobman" => Part::Jobman,
            "jobs" => Part::Jobs,
            "statuses" => Part::Statuses,
            "results" => Part::Results,
            "series" => Part::Series,
            "figures" => Part::Figures,
            "report" => Part::Report,
            _ => match name.strip_prefix("column:") {
                Some(column) => Part::Column(column.to_string()),
                None => Part::Other(name),
            },
        }
    }
}

/// Why a product is made again.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum ProductDirty {
    /// No build made it before.
    New,
    /// Its file is missing or was changed by hand.
    FileChanged,
    /// These parts of its key changed (report columns apart).
    Changed { parts: Vec<Part>, columns: Vec<String> },
    /// Jobs it reads would run first (`explain` before a build).
    JobsFirst { jobs: usize },
    /// Jobs would run first; a figure is redrawn only if the report columns it reads change.
    MaybeAfterJobs { jobs: usize },
    /// The report or figures it shows would be remade first.
    InputsRemade,
}

impl ProductDirty {
    /// Why a product whose key was `old` (none: never made) and is now `new` is made again;
    /// `None` when it is up to date.
    pub fn of(old: Option<&Parts>, new: &Parts, files_changed: bool) -> Option<ProductDirty> {
        let Some(old) = old else { return Some(ProductDirty::New) };
        if files_changed {
            return Some(ProductDirty::FileChanged);
        }
        let changed = new
            .iter()
            .filter(|(part, hash)| old.get(*part) != Some(*hash))
            .map(|(part, _)| part)
            .chain(old.keys().filter(|part| !new.contains_key(*part)));
        let (mut parts, mut columns) = (Vec::new(), Vec::new());
        for part in changed {
            match part {
                Part::Column(name) => columns.push(name.clone()),
                other => parts.push(other.clone()),
            }
        }
        (!parts.is_empty() || !columns.is_empty()).then_some(ProductDirty::Changed { parts, columns })
    }
}

impl fmt::Display for ProductDirty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProductDirty::New => write!(f, "never made before"),
            ProductDirty::FileChanged => write!(f, "its file is missing or was changed by hand"),
            ProductDirty::Changed { parts, columns } => {
                let quoted: Vec<String> = columns.iter().map(|c| format!("`{c}`")).collect();
                let mut reasons: Vec<String> = match quoted.len() {
                    0 => Vec::new(),
                    1 => vec![format!("report column {} changed", quoted[0])],
                    n if n <= 3 => vec![format!("report columns {} changed", quoted.join(", "))],
                    n => vec![format!("report columns {} and {} more changed", quoted[..3].join(", "), n - 3)],
                };
                reasons.extend(parts.iter().map(|part| match part {
                    Part::Settings => "its settings in the Jobfile changed".to_string(),
                    Part::Jobman => "jobman changed (another version, or a build of other code)".into(),
                    Part::Jobs => "the sweep's jobs changed".into(),
                    Part::Statuses => "jobs finished, failed or reran".into(),
                    Part::Results => "jobs' results changed".into(),
                    Part::Series => "jobs' series files changed".into(),
                    Part::Figures => "the figures drawn changed".into(),
                    Part::Report => "the report changed".into(),
                    Part::Column(name) | Part::Other(name) => format!("its {name} changed"),
                }));
                write!(f, "{}", reasons.join("; "))
            }
            ProductDirty::JobsFirst { jobs } => write!(f, "{} would run first", plural(*jobs, "job")),
            ProductDirty::MaybeAfterJobs { jobs } => {
                write!(f, "{} would run first; redrawn if the report columns it reads change", plural(*jobs, "job"))
            }
            ProductDirty::InputsRemade => write!(f, "the report or figures would be remade first"),
        }
    }
}

/// Whether a product is up to date, as far as its stored key and its files tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    UpToDate,
    /// Its key changed or a file of it is missing: a build makes it again.
    Stale,
    /// It reads a product a build makes again, and is remade only if what it reads changes.
    Unsure,
}

/// A product as the decision pass found it.
pub struct ProductState {
    pub node: Node,
    pub path: PathBuf,
    pub freshness: Freshness,
    /// Why it is not up to date.
    pub reason: Option<ProductDirty>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_keep_their_stored_names() {
        for name in ["settings", "statuses", "column:acc", "someday"] {
            assert_eq!(String::from(Part::from(name.to_string())), name);
        }
        assert_eq!(Part::from("column:acc".to_string()), Part::Column("acc".into()));
    }

    #[test]
    fn a_changed_key_names_its_columns_first_then_its_parts() {
        let old = Parts::from([(Part::Settings, "a".into()), (Part::Column("acc".into()), "1".into())]);
        let new = Parts::from([(Part::Settings, "b".into()), (Part::Column("acc".into()), "2".into())]);
        let dirty = ProductDirty::of(Some(&old), &new, false).expect("stale");
        assert_eq!(dirty.to_string(), "report column `acc` changed; its settings in the Jobfile changed");
        assert_eq!(ProductDirty::of(Some(&new), &new, false), None);
        assert_eq!(ProductDirty::of(None, &new, false), Some(ProductDirty::New));
        assert_eq!(
            serde_json::to_value(&dirty).unwrap(),
            serde_json::json!({"reason": "changed", "parts": ["settings"], "columns": ["acc"]})
        );
    }
}
