//! `jobman show --lineage JOB`: where a result comes from. The job's params, command, rendered
//! templates, input files and env (with the hashes its key took), the commit it was made at, and
//! each upstream job it read, with the outputs it read and that job's own lineage, down to the
//! first stage. Everything comes from records: what the jobs were made of, not what the
//! Jobfile says today.

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::key::{ID_LEN, KeyIngredients};
use crate::store::{self, JobRecord, Provenance};
use crate::util::console;
use crate::util::text::prefix;

/// One job of a lineage, as `--json` prints it.
#[derive(Serialize)]
pub struct Lineage {
    id: String,
    name: String,
    stage: Option<String>,
    status: String,
    ended: String,
    provenance: Provenance,
    ingredients: KeyIngredients,
    needs: Vec<Needed>,
}

/// An upstream job a job read.
#[derive(Serialize)]
struct Needed {
    stage: String,
    key: String,
    /// Each declared output as the downstream job read it: path → blake3.
    read: std::collections::BTreeMap<String, String>,
    /// Whether the upstream folder still holds those outputs (a forced rerun may have changed
    /// them since).
    unchanged: bool,
    /// Its own lineage; null when its folder is gone (`jobman gc`).
    job: Option<Box<Lineage>>,
}

/// The lineage of the job whose record is `record`, its upstream jobs found in `jobs_dir`.
pub fn of(record: &JobRecord, jobs_dir: &Path) -> Lineage {
    let needs = record
        .ingredients
        .needs
        .iter()
        .flat_map(|(stage, keys)| keys.iter().map(move |needed| (stage, needed)))
        .map(|(stage, needed)| {
            let upstream = folder_of(jobs_dir, &needed.key);
            let unchanged =
                upstream.as_ref().is_some_and(|(_, r)| needed.outputs.iter().all(|(n, h)| r.outputs.get(n) == Some(h)));
            Needed {
                stage: stage.clone(),
                key: needed.key.clone(),
                read: needed.outputs.clone(),
                unchanged,
                job: upstream.map(|(_, record)| Box::new(of(&record, jobs_dir))),
            }
        })
        .collect();
    Lineage {
        id: record.id.clone(),
        name: record.name.clone(),
        stage: record.ingredients.stage.clone(),
        status: record.status.key().to_string(),
        ended: record.ended.clone(),
        provenance: record.provenance.clone(),
        ingredients: record.ingredients.clone(),
        needs,
    }
}

/// The folder of the job of `key` and its record: named by the key's first characters, more of
/// them when another key took the shorter name (at most 14 folders looked at).
fn folder_of(jobs_dir: &Path, key: &str) -> Option<(PathBuf, JobRecord)> {
    // A key from a record edited by hand names no folder outside the jobs folder.
    if !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // Ids grow by four characters past a collision, as `Store::locate` names them.
    (ID_LEN..=key.len()).step_by(4).find_map(|len| {
        let dir = jobs_dir.join(&key[..len]);
        let record = store::read_record(&dir).filter(|record| record.key == key)?;
        Some((dir, record))
    })
}

/// The lineage as an indented tree, each upstream job under the job that read it; a job read by
/// several is written in full once.
fn write_text(out: &mut dyn Write, lineage: &Lineage) -> io::Result<()> {
    write_tree(out, lineage, 0, &mut HashSet::new())
}

fn write_tree(out: &mut dyn Write, lineage: &Lineage, depth: usize, shown: &mut HashSet<String>) -> io::Result<()> {
    let pad = "  ".repeat(depth);
    let stage = lineage.stage.as_ref().map_or_else(String::new, |s| format!(" in {s}"));
    let made = match &lineage.provenance.git {
        Some(git) => format!(", made at {}", git.short()),
        None => String::new(),
    };
    writeln!(
        out,
        "{pad}{} ({}){stage}: {} {}{made}",
        lineage.name,
        lineage.id,
        lineage.status.replace('_', " "),
        lineage.ended
    )?;
    let ingredients = &lineage.ingredients;
    let params = crate::jobfile::ParamSet::from_nested(&ingredients.params, "params");
    let mut lines: Vec<(&str, String)> = vec![("params", params.describe()), ("command", ingredients.command.clone())];
    lines.extend(ingredients.templates.iter().map(|(target, hash)| ("template", format!("{target}  {}", short(hash)))));
    lines.extend(ingredients.inputs.iter().map(|(path, hash)| ("input", format!("{path}  {}", short(hash)))));
    lines.extend(
        ingredients
            .env
            .iter()
            .map(|(name, hash)| ("env", format!("{name}  {}", hash.as_deref().map_or("(unset)", short)))),
    );
    for (label, text) in lines {
        writeln!(out, "{pad}  {label:<9} {text}")?;
    }
    for needed in &lineage.needs {
        let reads: Vec<String> = needed.read.iter().map(|(path, hash)| format!("{path} {}", short(hash))).collect();
        let state = match (&needed.job, needed.unchanged) {
            (None, _) => " (its folder is gone)",
            (Some(_), false) => " (its folder now holds other outputs)",
            (Some(_), true) => "",
        };
        let reads = if reads.is_empty() { String::new() } else { format!(": read {}", reads.join(", ")) };
        writeln!(out, "{pad}  needs {} {}{reads}{state}", needed.stage, short(&needed.key))?;
        match &needed.job {
            Some(_) if !shown.insert(needed.key.clone()) => writeln!(out, "{pad}    (its lineage is shown above)")?,
            Some(job) => write_tree(out, job, depth + 2, shown)?,
            None => {}
        }
    }
    Ok(())
}

fn short(hash: &str) -> &str {
    prefix(hash, ID_LEN)
}

/// `show --lineage` of the job in `dir`: its record's lineage, as text or JSON.
pub fn show(dir: &Path, jobs_dir: &Path, name: &str, json: bool) -> anyhow::Result<i32> {
    let Some(record) = store::read_record(dir) else {
        anyhow::bail!(
            "{name} has no record yet: nothing is known of what made it (`jobman show {name}` says what it will be made of)"
        );
    };
    let lineage = of(&record, jobs_dir);
    if json {
        console::to_stdout(|out| console::write_json(out, &serde_json::json!({ "format": 1, "lineage": lineage })))?;
    } else {
        console::to_stdout(|out| write_text(out, &lineage))?;
    }
    Ok(0)
}
