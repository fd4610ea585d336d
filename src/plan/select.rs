//! Naming jobs on the command line: a JOB argument (a name, an id, or the start of an id or key)
//! and `--where` expressions over the params.
//!
//! A JOB argument is tried, in order, as
//! 1. the exact name of a current job;
//! 2. the start (at least [`MIN_PREFIX`] hex characters) of a current job's key, which covers
//!    its id (the id is the key's first characters) and the full key;
//! 3. for [`resolve_in_store`] only: the start of a folder name in the jobs folder, or of the key
//!    in that folder's record — a job that is no longer part of the Jobfile.
//!
//! A reference that fits several jobs of one step is an error listing them, never a guess.

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use super::Workspace;
use crate::jobfile::Jobfile;
use crate::jobfile::ParamSet;
use crate::jobfile::expr::{Origin, ParamFilter};
use crate::plan::Job;
use crate::store::{self, JobRecord, PROVENANCE_COLUMNS};
use crate::util::diagnostic::{Diagnostic, Diagnostics, Source, did_you_mean};
use crate::util::parallel::parallel_map;

/// The fewest hex characters accepted as the start of an id.
pub const MIN_PREFIX: usize = 4;

/// How many candidates an ambiguity error lists.
const SHOWN_CANDIDATES: usize = 10;

/// The jobs of the current Jobfile, each located in the store.
pub struct CurrentJobs {
    pub jobfile: Jobfile,
    pub jobs: Vec<Job>,
    /// Per stage (its index), how many of its jobs wait for upstream jobs, unkeyed.
    pub waiting: Vec<(usize, usize)>,
}

impl CurrentJobs {
    /// Loads the Jobfile, plans its jobs (from the plan cache when it fits) and locates them.
    pub fn load(jobfile: &Path) -> anyhow::Result<CurrentJobs> {
        CurrentJobs::of(Workspace::load_jobfile(jobfile)?)
    }

    /// Plans the jobs of a Jobfile read by [`Workspace::load_jobfile`] and locates them.
    pub fn of(jobfile: Jobfile) -> anyhow::Result<CurrentJobs> {
        let (workspace, plans) = Workspace::planned(jobfile)?;
        let waiting = plans.iter().map(|p| (p.stage, p.waiting.len())).collect();
        let jobs = plans.into_iter().flat_map(|p| p.jobs).collect();
        Ok(CurrentJobs { jobfile: workspace.jobfile, jobs, waiting })
    }
}

/// A job named on the command line.
#[derive(Debug)]
pub enum Selected {
    /// A job of the current Jobfile: its position in the plan.
    Current(usize),
    /// A folder of the jobs folder that belongs to no current job, with its record if it has a
    /// readable one.
    Former { id: String, dir: PathBuf, record: Option<Box<JobRecord>> },
}

/// Why a JOB argument names no single job.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectError {
    /// No job fits; `suggestion` is the closest job name, if one is close.
    Unknown { reference: String, suggestion: Option<String> },
    /// Several jobs fit: their ids and names.
    Ambiguous { reference: String, candidates: Vec<(String, String)> },
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::Unknown { reference, .. } if is_id_prefix(reference) => {
                write!(f, "no job is named `{reference}` or has an id starting with `{reference}`")
            }
            SelectError::Unknown { reference, .. } => write!(f, "no job is named `{reference}`"),
            SelectError::Ambiguous { reference, candidates } => {
                write!(f, "`{reference}` fits {} jobs:", candidates.len())?;
                let width = candidates.iter().take(SHOWN_CANDIDATES).map(|(id, _)| id.len()).max().unwrap_or(0);
                for (id, name) in candidates.iter().take(SHOWN_CANDIDATES) {
                    write!(f, "\n  {id:<width$}  {name}")?;
                }
                if candidates.len() > SHOWN_CANDIDATES {
                    write!(f, "\n  … and {} more", candidates.len() - SHOWN_CANDIDATES)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for SelectError {}

impl SelectError {
    /// What to do about it.
    pub fn help(&self) -> String {
        match self {
            SelectError::Unknown { reference, suggestion } => {
                let mut help = match suggestion {
                    Some(name) => format!("did you mean `{name}`? "),
                    None => String::new(),
                };
                if reference.len() < MIN_PREFIX && is_hex(reference) {
                    help.push_str(&format!("an id prefix needs at least {MIN_PREFIX} characters; "));
                }
                help.push_str("`jobman ls` lists the jobs with their ids and names");
                help
            }
            SelectError::Ambiguous { .. } => "give more characters of the id, or the job's name".to_string(),
        }
    }
}

impl From<SelectError> for Diagnostics {
    fn from(error: SelectError) -> Diagnostics {
        let help = error.help();
        Diagnostic::new(error.to_string()).help(help).into()
    }
}

/// The current job that `reference` names: its exact name, or the start of its id or key.
pub fn resolve(jobs: &[Job], reference: &str) -> Result<usize, SelectError> {
    let by_name: Vec<usize> = (0..jobs.len()).filter(|&i| jobs[i].planned.name == reference).collect();
    let found = if !by_name.is_empty() || !is_id_prefix(reference) {
        by_name
    } else {
        let prefix = reference.to_ascii_lowercase();
        (0..jobs.len()).filter(|&i| jobs[i].planned.key.hex().starts_with(&prefix)).collect()
    };
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(SelectError::Unknown {
            reference: reference.to_string(),
            suggestion: closest_name(jobs.iter().map(|j| j.planned.name.as_str()), reference),
        }),
        many => Err(SelectError::Ambiguous {
            reference: reference.to_string(),
            candidates: many.iter().map(|&i| (jobs[i].slot.id.clone(), jobs[i].planned.name.clone())).collect(),
        }),
    }
}

/// Like [`resolve`], and when no current job fits, a folder of `jobs_dir` whose name, or whose
/// record's key, starts with `reference`.
pub fn resolve_in_store(jobs: &[Job], jobs_dir: &Path, reference: &str) -> Result<Selected, SelectError> {
    let unknown = match resolve(jobs, reference) {
        Ok(index) => return Ok(Selected::Current(index)),
        Err(unknown @ SelectError::Unknown { .. }) if is_id_prefix(reference) => unknown,
        Err(error) => return Err(error),
    };
    let prefix = reference.to_ascii_lowercase();
    let Ok(entries) = fs::read_dir(jobs_dir) else { return Err(unknown) };
    let mut found: Vec<(String, PathBuf, Option<Box<JobRecord>>)> = entries
        .flatten()
        .filter_map(|entry| {
            let id = entry.file_name().into_string().ok()?;
            // Only a folder name can be a prefix of the reference; reading the record tells
            // whether the rest of the reference fits its key.
            if !is_hex(&id) || !(id.starts_with(&prefix) || prefix.starts_with(&id)) {
                return None;
            }
            let dir = entry.path();
            let record = store::read_record(&dir);
            let fits = match &record {
                Some(record) => record.key.starts_with(&prefix),
                None => id.starts_with(&prefix),
            };
            (fits && dir.is_dir()).then(|| (id, dir, record.map(Box::new)))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    match found.len() {
        0 => Err(unknown),
        1 => {
            let (id, dir, record) = found.remove(0);
            Ok(Selected::Former { id, dir, record })
        }
        _ => Err(SelectError::Ambiguous {
            reference: reference.to_string(),
            candidates: found
                .into_iter()
                .map(|(id, _, record)| (id, record.map_or_else(|| "(no record)".to_string(), |r| r.name)))
                .collect(),
        }),
    }
}

/// How a command names one job: a reference (name, id prefix, key), or a `--where` expression
/// that exactly one current job meets.
#[derive(Debug, Clone)]
pub enum JobRef {
    Reference(String),
    Filter(String),
}

/// The one job `named` names: see [`resolve_in_store`] and [`matching`].
pub fn resolve_one(jobfile: &Jobfile, jobs: &[Job], named: &JobRef) -> anyhow::Result<Selected> {
    let filter = match named {
        JobRef::Reference(reference) => {
            return resolve_in_store(jobs, &jobfile.workspace.jobs, reference).map_err(|e| Diagnostics::from(e).into());
        }
        JobRef::Filter(filter) => filter,
    };
    let chosen = matching(jobfile, jobs, Some(filter))?;
    let found: Vec<usize> = (0..jobs.len()).filter(|&i| chosen[i]).collect();
    match found.as_slice() {
        [one] => Ok(Selected::Current(*one)),
        [] => Err(Diagnostics::from(
            Diagnostic::new(format!("no job has params that meet `{filter}`"))
                .help("`jobman ls` lists the jobs with their params"),
        )
        .into()),
        many => Err(Diagnostics::from(SelectError::Ambiguous {
            reference: filter.clone(),
            candidates: many.iter().map(|&i| (jobs[i].slot.id.clone(), jobs[i].planned.name.clone())).collect(),
        })
        .into()),
    }
}

/// Which of these jobs a `--where` expression selects; all of them without one. The expression
/// reads the params; in a Jobfile with stages, `stage` (the job's stage name); and what the
/// job's record says of where it was made: `git.commit`, `git.dirty`, `host`, `user` (a job
/// whose record lacks one, or that has no record, matches no expression that reads it). A
/// param of one of these names hides it. A name that is none of them is a diagnostic with the
/// closest one.
pub fn matching(jobfile: &Jobfile, jobs: &[Job], filter: Option<&str>) -> anyhow::Result<Vec<bool>> {
    let Some(text) = filter else { return Ok(vec![true; jobs.len()]) };
    // With stages, the params of every stage: a job of a stage without one of the names read
    // does not match.
    let mut names: Vec<&str> = jobfile.params_of_every_stage().map(|p| p.name.as_str()).collect();
    let top = |name: &str| name.split('.').next().unwrap_or_default().to_string();
    let taken: HashSet<String> = names.iter().map(|name| top(name)).collect();
    let stage_is_a_name = jobfile.has_stages() && !taken.contains(STAGE);
    if stage_is_a_name {
        names.push(STAGE);
    }
    let recorded: Vec<&str> = PROVENANCE_COLUMNS.into_iter().filter(|name| !taken.contains(&top(name))).collect();
    names.extend(&recorded);
    names.sort_unstable();
    names.dedup();
    let source = Source { path: "--where".into(), text: text.into() };
    let filter = ParamFilter::compile(text, &names, &Origin { source: &source, span: 0..text.len() })
        .map_err(Diagnostics::from)?;
    let read = filter.names();
    let reads_records = recorded.iter().any(|name| read.contains(&top(name)));
    let matches = |job: &Job| -> anyhow::Result<bool> {
        let mut nested = job.planned.params.nested();
        if let Some(table) = nested.as_object_mut() {
            if stage_is_a_name {
                table.insert(STAGE.to_string(), jobfile.stages[job.stage].name.get_ref().clone().into());
            }
            if let Some(record) = reads_records.then(|| store::read_record(&job.slot.dir())).flatten() {
                let made = PROVENANCE_COLUMNS.into_iter().zip(record.provenance_values());
                let made = made.filter(|(name, value)| recorded.contains(name) && !value.is_null());
                let made = ParamSet(made.map(|(name, value)| (name.into(), value)).collect());
                if let serde_json::Value::Object(made) = made.nested() {
                    table.extend(made);
                }
            }
        }
        if read.iter().any(|name| nested.get(name).is_none()) {
            return Ok(false);
        }
        filter.matches(&nested).map_err(anyhow::Error::msg)
    };
    if reads_records {
        // A record read per job: on every core, as a shared file system answers each in turn.
        return parallel_map(jobs.iter().collect(), matches).into_iter().collect();
    }
    jobs.iter().map(matches).collect()
}

/// The name by which `--where` reads a job's stage.
const STAGE: &str = "stage";

/// The indices of the stages `names` names, for `--stage`; an unknown name is an error listing
/// the stages there are.
pub fn stages_named(jobfile: &Jobfile, names: &[String]) -> anyhow::Result<Vec<usize>> {
    names
        .iter()
        .map(|name| {
            jobfile.stage_index(name).ok_or_else(|| {
                let names: Vec<&str> = jobfile.stage_views().filter_map(|view| view.name()).collect();
                let known = if names.is_empty() {
                    "this Jobfile has no stages".to_string()
                } else {
                    format!("its stages are {}", names.join(", "))
                };
                let mut error = Diagnostic::new(format!("no stage is named `{name}`: {known}"));
                if let Some(hint) = did_you_mean(name, names.iter().copied()) {
                    error = error.help(hint);
                }
                Diagnostics::from(error).into()
            })
        })
        .collect()
}

/// What to say when `--where FILTER` chose none of the jobs of `params`: `--where 'lr ==
/// 0.0316' matches none of the 36 jobs; lr takes 0.01, 0.03162277660168379, 0.1`, the exact
/// values of the params it reads, to copy (a float compares exactly, not as it is printed).
pub fn matched_none(filter: &str, params: &[&ParamSet]) -> String {
    let words: Vec<&str> = filter.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')).collect();
    let takes: Vec<String> = params
        .first()
        .into_iter()
        .flat_map(|first| first.0.iter().map(|(name, _)| &**name))
        .filter(|name| words.contains(name))
        .map(|name| {
            let mut values: Vec<String> = Vec::new();
            for set in params {
                let value = set.get(name).map(|v| v.to_string());
                if let Some(value) = value.filter(|v| !values.contains(v)) {
                    values.push(value);
                }
            }
            let more = if values.len() > 10 { format!(" and {} more", values.len() - 10) } else { String::new() };
            values.truncate(10);
            format!("{name} takes {}{more}", values.join(", "))
        })
        .collect();
    let jobs = crate::util::text::plural(params.len(), "job");
    let mut note = format!("--where '{filter}' matches none of the {jobs}");
    if !takes.is_empty() {
        note.push_str(&format!("; {}", takes.join("; ")));
    }
    note
}

fn closest_name<'a>(names: impl Iterator<Item = &'a str>, reference: &str) -> Option<String> {
    let help = did_you_mean(reference, names)?;
    // did_you_mean's text is "did you mean `name`?": keep the name alone.
    help.split('`').nth(1).map(str::to_string)
}

fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `text` can be the start of an id: hex, long enough, no longer than a key.
fn is_id_prefix(text: &str) -> bool {
    is_hex(text) && (MIN_PREFIX..=64).contains(&text.len())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::key::JobKey;
    use crate::plan::render::PlannedJob;
    use crate::store::Slot;

    fn job(name: &str, key_byte: u8, second: u8) -> Job {
        let mut bytes = [key_byte; 32];
        bytes[2] = second;
        let key = JobKey(bytes);
        let id = key.hex()[..12].to_string();
        Job {
            planned: PlannedJob { index: 0, params: ParamSet(Vec::new()), name: name.into(), key, needs: None },
            stage: 0,
            slot: Slot::absent(Arc::from(Path::new("")), id),
        }
    }

    fn jobs() -> Vec<Job> {
        vec![job("h8-s0", 0xab, 0x10), job("h8-s1", 0xab, 0x20), job("h16-s0", 0xcd, 0x10)]
    }

    #[test]
    fn a_name_an_id_a_prefix_and_the_full_key_name_the_same_job() {
        let jobs = jobs();
        let key = jobs[2].planned.key.hex();
        for reference in ["h16-s0", &key[..12], &key[..4], &key, &key[..6].to_uppercase()] {
            assert_eq!(resolve(&jobs, reference), Ok(2), "{reference}");
        }
    }

    #[test]
    fn a_prefix_of_two_ids_is_ambiguous_and_lists_both() {
        let error = resolve(&jobs(), "abab").unwrap_err();
        let SelectError::Ambiguous { candidates, .. } = &error else { panic!("{error:?}") };
        let names: Vec<&str> = candidates.iter().map(|(_, name)| name.as_str()).collect();
        assert_eq!(names, ["h8-s0", "h8-s1"]);
        assert!(error.to_string().starts_with("`abab` fits 2 jobs:\n  abab10ababab  h8-s0\n"), "{error}");
    }

    #[test]
    fn an_unknown_name_suggests_the_closest_and_a_short_prefix_is_not_an_id() {
        let error = resolve(&jobs(), "h16-s9").unwrap_err();
        assert_eq!(error, SelectError::Unknown { reference: "h16-s9".into(), suggestion: Some("h16-s0".into()) });
        assert!(error.help().starts_with("did you mean `h16-s0`?"), "{}", error.help());
        let error = resolve(&jobs(), "abc").unwrap_err();
        assert!(error.help().contains("at least 4 characters"), "{}", error.help());
    }

    #[test]
    fn a_folder_no_current_job_owns_is_found_by_its_record_key() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("0123456789ab");
        fs::create_dir_all(&old).unwrap();
        fs::create_dir_all(dir.path().join("0123ffffffff")).unwrap();
        let found = resolve_in_store(&jobs(), dir.path(), "01234").unwrap();
        assert!(matches!(&found, Selected::Former { id, record: None, .. } if id == "0123456789ab"), "{found:?}");
        assert!(matches!(resolve_in_store(&jobs(), dir.path(), "0123"), Err(SelectError::Ambiguous { .. })));
        assert!(matches!(resolve_in_store(&jobs(), dir.path(), "0123456789abcd"), Err(SelectError::Unknown { .. })));
    }
}
